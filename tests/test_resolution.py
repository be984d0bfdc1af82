"""trainer/resolution.py: the dose scale, the smallest dose detected, and where an A/B
difference sits on it; the comparison at every evaluation along the run."""

from __future__ import annotations

import pandas as pd
import pytest

from trainer.ablate import Arm
from trainer.compare import compare
from trainer.resolution import calibration_summary, curve_points, equivalent_share, rule_lines


def test_a_difference_is_placed_on_the_dose_scale_by_linear_interpolation():
    doses = [(0.1, 0.01), (0.25, 0.03), (0.5, 0.08)]
    assert equivalent_share(0.02, doses) == pytest.approx(0.175)
    assert equivalent_share(-0.005, doses) == pytest.approx(0.05)  # the size counts, not the side
    assert equivalent_share(0.08, doses) == pytest.approx(0.5)
    assert equivalent_share(0.1, doses) is None  # beyond the largest dose
    # a dose that hurts less than a smaller one does not bend the scale back
    assert equivalent_share(0.02, [(0.1, 0.03), (0.25, 0.01), (0.5, 0.05)]) == pytest.approx(0.1 * 2 / 3)


def _seeds(base: float, noise=(0.0, 0.002, -0.002)) -> dict[int, float]:
    return {k: base + n for k, n in enumerate(noise)}


def test_calibration_names_the_smallest_detected_dose_and_places_the_pair():
    arms = [
        Arm(f"A~shuffled@{s:g}", f"/m/{s}", {"control": {"kind": "shuffled", "share": s}}, role="calibration") for s in (0.1, 0.25, 0.5)
    ]
    # the 10% dose costs 0.001 nats (lost in the seed noise), 25% 0.03 and 50% 0.08: only those are detected
    spread = {0.001: (0, 0.006, -0.006), 0.03: (0, 0.003, -0.001), 0.08: (0, 0.003, -0.001)}
    calibration = [compare("web", "A", _seeds(4.0), a.name, _seeds(4.0 + d, spread[d]), sets=1) for a, d in zip(arms, (0.001, 0.03, 0.08))]
    pair = compare("web", "A", _seeds(4.0), "B", _seeds(4.055, (0, 0.003, -0.001)), sets=1)
    summary = calibration_summary(calibration, [pair], arms)["web"]["shuffled"]
    assert [(d["share"], d["detected"]) for d in summary["doses"]] == [(0.1, False), (0.25, True), (0.5, True)]
    assert summary["smallest_detected"] == 0.25
    # 0.001 ± 0.004 nats would take more than 64 seeds to see; detected doses need no estimate
    assert [d["seeds_needed"] for d in summary["doses"]] == [None, None, None]
    # |Δ| 0.055 lies half way between the 25% dose (0.03) and the 50% dose (0.08)
    assert summary["pairs"]["B"] == pytest.approx(0.375)


def test_per_rule_table_lists_documents_tokens_and_each_sets_delta():
    info = {
        "rule": "c4.x",
        "removed_first": 15,
        "removed_by": 20,
        "removed_only": 12,
        "tokens_only": 3456,
        "also_removed_by": {"fineweb.y": 3, "gopher.z": 2},
        "duplicates_of_mix": 1,
    }
    arm = Arm("A+c4.x", "/m/r", {"rule_mix": info}, role="rule")
    rules = [compare(s, "A", _seeds(4.0), "A+c4.x", _seeds(4.0 + d), sets=2) for s, d in (("wiki", -0.05), ("web", 0.0))]
    lines, table = rule_lines(rules, [arm])
    assert table == [{**info, "wiki": pytest.approx(-0.05), "web": pytest.approx(0.0)}]
    row = next(line for line in lines if line.startswith("| c4.x "))
    assert row.startswith("| c4.x | 15 | 20 | 12 | 3,456 | fineweb.y 3, gopher.z 2 | -0.0500 [") and row.count("✓") == 1


def test_curve_points_compare_the_mixes_at_every_evaluation():
    rows = []
    for recipe, early, late in (("A", 5.0, 4.0), ("B", 4.8, 4.1)):
        for seed, noise in enumerate((0.0, 0.01, -0.01)):
            rows.append({"recipe": recipe, "seed": seed, "step": 1, "tokens": 1000, "eval_web": early + noise})
            rows.append({"recipe": recipe, "seed": seed, "step": 2, "tokens": 2000, "eval_web": late + 2 * noise})
    points = curve_points(pd.DataFrame(rows), "eval_web", "A", "B", sets=1)
    assert [(t, round(c.delta, 4)) for t, c in points] == [(1000, -0.2), (2000, 0.1)]
    assert [c.better for _, c in points] == ["B", "A"]
