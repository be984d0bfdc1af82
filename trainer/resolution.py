"""What an ablation can see and why two mixes differ: the report's calibration, per-rule and
learning-curve sections, from the comparisons of the first mix with its known-answer copies
(trainer/controls.py) and with the other mixes along the run.

* Calibration: per eval set and degradation, the Δ of every dose (loss of the degraded copy
  minus the first mix's: positive when the degradation hurts), the smallest dose the verdict's
  rule detects, and where the A/B difference sits on that scale (the dose whose Δ it equals,
  interpolated linearly from 0 through the measured doses).
* Per rule: Δ of "first mix + what one rule alone removed" (trainer.rule_mixes.build_rule_mix)
  against the first mix; negative when those documents would have helped on that set.
* Along the run: the comparison at every evaluation (trainer.compare.describe_curve).
"""

from __future__ import annotations

from trainer.compare import Comparison, compare, describe_curve, seeds_needed


def curve_points(results, column: str, a: str, b: str, sets: int) -> list[tuple[int, Comparison]]:
    """(tokens, comparison of a and b on one set at that evaluation) for every evaluation both have."""
    rows = results[results["recipe"].isin([a, b])]
    points = []
    for tokens, at in rows.groupby("tokens"):
        losses = {m: dict(zip(at.loc[at["recipe"] == m, "seed"], at.loc[at["recipe"] == m, column])) for m in (a, b)}
        if losses[a] and losses[b]:
            points.append((int(tokens), compare(column[5:], a, losses[a], b, losses[b], sets=sets)))
    return points


def curve_lines(results, a: str, others: list[str]) -> tuple[list[str], dict]:
    columns = [c for c in results.columns if c.startswith("eval_")]
    lines, record = [], {}
    for b in others:
        lines += ["", f"## Along the run: {a} vs {b}", ""]
        for column in columns:
            text = describe_curve(curve_points(results, column, a, b, len(columns)))
            record.setdefault(b, {})[column[5:]] = text
            lines.append(f"- {text}")
    return lines, record


def equivalent_share(delta: float, doses: list[tuple[float, float]]) -> float | None:
    """The dose whose Δ equals ``|delta|`` on the line from (0, 0) through ``doses`` (share, Δ),
    or None when ``|delta|`` is beyond every measured dose."""
    target, (x0, y0) = abs(delta), (0.0, 0.0)
    for x1, y1 in sorted(doses):
        if y0 <= target <= y1 and y1 > y0:
            return x0 + (x1 - x0) * (target - y0) / (y1 - y0)
        x0, y0 = x1, max(y0, y1)
    return None


def _dose(arm) -> tuple[str, float]:
    control = arm.manifest["control"]
    return control["kind"], float(control["share"])


def calibration_summary(calibration: list[Comparison], pairs: list[Comparison], arms: list) -> dict:
    """{set: {kind: {"doses": [{share, delta, ci, detected, seeds_needed}], "smallest_detected": share or None,
    "pairs": {mix: the share whose Δ equals the A/B |Δ|, or None}}}}."""
    by_name = {a.name: a for a in arms}
    out: dict = {}
    for c in calibration:
        kind, share = _dose(by_name[c.b])
        entry = out.setdefault(c.eval_set, {}).setdefault(kind, {"doses": [], "smallest_detected": None, "pairs": {}})
        detected = c.better == c.a
        entry["doses"].append(
            {
                "share": share,
                "delta": c.delta,
                "ci": [c.ci_low, c.ci_high],
                "detected": detected,
                "seeds_needed": None if detected else seeds_needed(c),
            }
        )
    for per_set in out.values():
        for entry in per_set.values():
            entry["doses"].sort(key=lambda d: d["share"])
            entry["smallest_detected"] = next((d["share"] for d in entry["doses"] if d["detected"]), None)
    for p in pairs:
        for entry in out.get(p.eval_set, {}).values():
            entry["pairs"][p.b] = equivalent_share(p.delta, [(d["share"], d["delta"]) for d in entry["doses"]])
    return out


def calibration_lines(calibration: list[Comparison], pairs: list[Comparison], arms: list) -> tuple[list[str], dict]:
    if not calibration:
        return [], {}
    summary = calibration_summary(calibration, pairs, arms)
    lines = ["", "## Resolution (calibration: the first mix against copies of itself with a known degradation)", ""]
    lines += [
        "Δ = loss(degraded copy) − loss(first mix), positive when the degradation hurts; ✓ = detected: its interval excludes 0 "
        "(the verdict's rule); (≈ n seeds): paired seeds that would detect it 4 times in 5 at this budget, if its Δ and spread "
        "are the truth. The last column puts each A/B |Δ| on that set on the dose scale.",
        "",
        "| set | degradation | dose: Δ [interval] | smallest dose detected | A/B difference on this scale |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, per_set in summary.items():
        for kind, entry in per_set.items():
            cells = [f"{d['share']:.0%}: {d['delta']:+.4f} [{d['ci'][0]:+.4f}, {d['ci'][1]:+.4f}]{_mark(d)}" for d in entry["doses"]]
            smallest = entry["smallest_detected"]
            smallest = f"{smallest:.0%}" if smallest is not None else f"none up to {entry['doses'][-1]['share']:.0%}"
            placed = "; ".join(_placed(mix, share, pairs, name) for mix, share in entry["pairs"].items()) or "-"
            lines.append(f"| {name} | {kind} | {'<br>'.join(cells)} | {smallest} | {placed} |")
    return lines, summary


def _mark(dose: dict) -> str:
    if dose["detected"]:
        return " ✓"
    if dose["seeds_needed"] and dose["delta"] > 0:
        return f" (≈ {dose['seeds_needed']} seeds)"
    return ""


def _placed(mix: str, share: float | None, pairs: list[Comparison], name: str) -> str:
    c = next(p for p in pairs if p.b == mix and p.eval_set == name)
    where = f"≈ {share:.0%} of documents" if share is not None else "beyond the largest dose"
    return f"{mix}: |Δ| {abs(c.delta):.4f} {where}" + ("" if c.better else " (not itself detected)")


def rule_lines(rules: list[Comparison], arms: list) -> tuple[list[str], list[dict]]:
    if not rules:
        return [], []
    by_name = {a.name: a for a in arms}
    sets = list(dict.fromkeys(c.eval_set for c in rules))
    lines = ["", "## Per rule (the first mix plus what one rule alone removed)", ""]
    lines += [
        "removed first: documents the run records as removed by the rule (curate keeps the first rule that removes a document); "
        "removed by it: of the run's removed documents, those the rule removes, first or not (every rule of the recipe asked, "
        "trainer/rule_mixes.py); only by it: those no other rule removes and dedup does not find duplicated in the mix: what "
        "switching the rule off brings back, added to the mix with their tokens. Δ = loss(mix + only by it) − loss(first mix): "
        "negative when those documents would have helped on that set; ✓: the interval excludes 0 (jointly over the sets).",
        "",
        "| rule | removed first | removed by it | only by it | tokens only by it | also removed by | " + " | ".join(sets) + " |",
        "| --- | ---: | ---: | ---: | ---: | --- | " + " | ".join("---" for _ in sets) + " |",
    ]
    table = []
    for name in dict.fromkeys(c.b for c in rules):
        info = by_name[name].manifest["rule_mix"]
        cells = {c.eval_set: c for c in rules if c.b == name}
        shown = [f"{cells[s].delta:+.4f} {cells[s].interval()}{' ✓' if cells[s].better else ''}" for s in sets]
        counts = f"{info['removed_first']:,} | {info['removed_by']:,} | {info['removed_only']:,} | {info['tokens_only']:,}"
        also = ", ".join(f"{rule} {n:,}" for rule, n in list(info["also_removed_by"].items())[:3]) or "-"
        lines.append(f"| {info['rule']} | {counts} | {also} | " + " | ".join(shown) + " |")
        keys = ("rule", "removed_first", "removed_by", "removed_only", "tokens_only", "also_removed_by", "duplicates_of_mix")
        table.append({**{k: info[k] for k in keys}, **{s: cells[s].delta for s in sets}})
    return lines, table
