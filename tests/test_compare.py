"""trainer/compare.py: known gaps and spreads give known standard errors and verdicts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trainer.compare import CONTRADICTS, DECISIVE, compare, verdict


def test_paired_seeds_use_the_spread_of_the_differences():
    # B is worse by exactly 0.1 under every seed, though the seeds themselves spread by 0.5:
    # pairing removes the shared spread, so the gap is exact and decisive
    a = {0: 5.0, 1: 5.5, 2: 6.0}
    b = {0: 5.1, 1: 5.6, 2: 6.1}
    c = compare("web", "A", a, "B", b)
    assert c.paired and c.n_a == c.n_b == 3
    assert c.delta == pytest.approx(0.1)
    assert c.se == pytest.approx(0.0, abs=1e-12)
    assert c.z == math.inf and c.better == "A"
    assert c.std_a == pytest.approx(0.5) and c.seed_std == pytest.approx(0.5)
    assert c.gap_in_seed_std == pytest.approx(0.2)
    assert c.sentence() == "A is better than B on web by Δ 0.1000 (inf σ)"


def test_paired_standard_error_is_std_of_differences_over_root_n():
    a = {0: 4.0, 1: 4.0, 2: 4.0, 3: 4.0}
    b = {0: 4.1, 1: 4.3, 2: 4.1, 3: 4.3}  # differences 0.1, 0.3, 0.1, 0.3: mean 0.2, std 0.11547
    c = compare("wiki", "A", a, "B", b)
    assert c.delta == pytest.approx(0.2)
    assert c.se == pytest.approx(0.115470 / 2, rel=1e-4)
    assert c.z == pytest.approx(0.2 / (0.115470 / 2), rel=1e-4)
    assert c.better == "A"


def test_unpaired_seeds_fall_back_to_the_welch_error():
    a = {0: 4.0, 1: 4.2}
    b = {5: 4.5, 6: 4.9}
    c = compare("web", "A", a, "B", b)
    assert not c.paired
    std_a, std_b = math.sqrt(0.02), math.sqrt(0.08)
    assert c.se == pytest.approx(math.sqrt(std_a**2 / 2 + std_b**2 / 2))
    assert c.delta == pytest.approx(0.6)


def test_small_gap_is_no_difference():
    c = compare("web", "A", {0: 4.00, 1: 4.10, 2: 4.05}, "B", {0: 4.02, 1: 4.05, 2: 4.10})
    assert abs(c.z) < DECISIVE and c.better is None
    assert c.sentence().startswith("web: no difference detectable at this budget")


def test_one_seed_gives_no_estimate_and_no_verdict():
    c = compare("web", "A", {0: 4.0}, "B", {0: 5.0})
    assert math.isnan(c.se) and math.isnan(c.std_a)
    assert "one seed" in c.sentence()
    v = verdict([c], [])
    assert v.status == "no estimate" and v.winner is None


def _pair(set_name, gap, noise=(0.0, 0.01, -0.01)):
    a = {k: 4.0 + n for k, n in enumerate(noise)}
    b = {k: 4.0 + gap + 2 * n for k, n in enumerate(noise)}
    return compare(set_name, "A", a, "B", b)


def test_verdict_names_a_winner_only_without_contradiction():
    win = verdict([_pair("web", 0.2), _pair("wiki", 0.001)], [])
    assert win.status == "winner" and win.winner == "A"
    assert win.text.startswith("A is better than B on web by Δ 0.2000")
    disagree = verdict([_pair("web", 0.2), _pair("wiki", -0.2)], [])
    assert disagree.status == "sets disagree" and disagree.winner is None
    assert "web favours A" in disagree.text and "wiki favours B" in disagree.text
    nothing = verdict([_pair("web", 0.001), _pair("wiki", -0.001)], [])
    assert nothing.status == "no difference"


def test_warnings_refuse_the_verdict():
    v = verdict([_pair("web", 0.5)], ["A repeats its data: 3.00 epochs over its 1,000 tokens"])
    assert v.status == "refused" and v.winner is None and "repeats its data" in v.text


@given(
    st.lists(st.floats(3.0, 9.0), min_size=2, max_size=6),
    st.floats(-1.0, 1.0),
    st.floats(0.0, 0.2),
)
def test_swapping_the_mixes_flips_the_sign_and_keeps_the_size(losses, gap, spread):
    a = dict(enumerate(losses))
    b = {k: v + gap + spread * (-1) ** k for k, v in a.items()}
    ab, ba = compare("s", "A", a, "B", b), compare("s", "B", b, "A", a)
    assert ab.delta == pytest.approx(-ba.delta, abs=1e-9)
    assert ab.se == pytest.approx(ba.se, abs=1e-9)
    if ab.better:
        assert ab.better == ba.better
    # a set that contradicts is at least CONTRADICTS σ; a decisive one at least DECISIVE σ
    assert ab.favours(CONTRADICTS) in (None, "A", "B")
