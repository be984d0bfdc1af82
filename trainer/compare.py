"""The statistics of an ablation: per-set differences between mixes, their errors, a verdict.

Every run is one (mix, seed). Seed ``k`` fixes the model's initialisation and the order in
which each mix's data is read, for every mix alike, so runs with the same seed are *paired*:
their difference cancels the part of the seed-to-seed spread that comes from the
initialisation. With paired seeds the standard error of the difference is
``std(d_k) / sqrt(n)`` over the per-seed differences ``d_k``; otherwise (different seeds, or
one mix with a seed the other lacks) it is ``sqrt(s_a^2/n_a + s_b^2/n_b)``.

``z = delta / se`` is the gap in standard errors, written "k σ" in the report. A mix is
called better on a set at ``z >= DECISIVE`` (3); a set *contradicts* a verdict when it favours
the other mix at ``z >= CONTRADICTS`` (2). Losses are "lower is better", so
``delta = mean(B) - mean(A)`` is positive when A is better.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

DECISIVE = 3.0
CONTRADICTS = 2.0


@dataclass(frozen=True)
class Comparison:
    """One eval set, mix A against mix B, over the final losses of their seeds."""

    eval_set: str
    a: str
    b: str
    n_a: int
    n_b: int
    mean_a: float
    std_a: float  # nan with one seed
    mean_b: float
    std_b: float
    delta: float  # mean_b - mean_a: > 0 when A has the lower loss
    se: float  # standard error of delta; nan when it cannot be estimated
    z: float  # delta / se
    paired: bool
    seed_std: float  # pooled seed-to-seed std of the two mixes
    gap_in_seed_std: float  # |delta| / seed_std

    @property
    def better(self) -> str | None:
        """The mix this set favours at DECISIVE or more, else None."""
        return self.favours(DECISIVE)

    def favours(self, threshold: float) -> str | None:
        """The mix this set favours at ``threshold`` σ or more, else None."""
        if math.isnan(self.z) or abs(self.z) < threshold:
            return None
        return self.a if self.z > 0 else self.b

    def sentence(self) -> str:
        if not math.isfinite(self.se):
            return f"{self.eval_set}: no error estimate (one seed per mix); {self.a} {self.mean_a:.4f} vs {self.b} {self.mean_b:.4f}"
        winner, loser = (self.a, self.b) if self.delta > 0 else (self.b, self.a)
        if self.better is None:
            return f"{self.eval_set}: no difference detectable at this budget (Δ {abs(self.delta):.4f}, {abs(self.z):.1f} σ)"
        return f"{winner} is better than {loser} on {self.eval_set} by Δ {abs(self.delta):.4f} ({abs(self.z):.1f} σ)"

    def as_row(self) -> dict:
        return {**asdict(self), "better": self.better, "sentence": self.sentence()}


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def compare(eval_set: str, a: str, losses_a: dict[int, float], b: str, losses_b: dict[int, float]) -> Comparison:
    """Compare two mixes' final losses on one set; ``losses_x`` maps seed -> loss."""
    if not losses_a or not losses_b:
        raise ValueError(f"{eval_set}: no runs for {a if not losses_a else b}")
    mean_a, std_a = _mean_std(list(losses_a.values()))
    mean_b, std_b = _mean_std(list(losses_b.values()))
    delta = mean_b - mean_a
    paired = set(losses_a) == set(losses_b) and len(losses_a) >= 2
    if paired:
        _, std_d = _mean_std([losses_b[s] - losses_a[s] for s in sorted(losses_a)])
        se = std_d / math.sqrt(len(losses_a))
    elif len(losses_a) >= 2 and len(losses_b) >= 2:
        se = math.sqrt(std_a**2 / len(losses_a) + std_b**2 / len(losses_b))
    else:
        se = float("nan")
    seed_std = math.sqrt((std_a**2 + std_b**2) / 2) if len(losses_a) >= 2 and len(losses_b) >= 2 else float("nan")
    z = delta / se if se > 0 else (math.copysign(math.inf, delta) if se == 0 and delta else float("nan"))
    gap = abs(delta) / seed_std if seed_std > 0 else float("nan")
    return Comparison(eval_set, a, b, len(losses_a), len(losses_b), mean_a, std_a, mean_b, std_b, delta, se, z, paired, seed_std, gap)


@dataclass(frozen=True)
class Verdict:
    status: str  # "winner" | "no difference" | "sets disagree" | "refused" | "no estimate"
    winner: str | None
    text: str


def verdict(comparisons: list[Comparison], warnings: list[str]) -> Verdict:
    """One plain sentence for A against B over all eval sets.

    A winner needs at least one set at DECISIVE σ for it and no set at CONTRADICTS σ against
    it; sets that favour different mixes at CONTRADICTS σ or more are reported as a
    disagreement, never as a win. Any warning (repeated data, a model no better than a
    unigram guess) refuses the verdict.
    """
    a, b = comparisons[0].a, comparisons[0].b
    if warnings:
        return Verdict("refused", None, f"No verdict for {a} vs {b}: " + "; ".join(warnings))
    if any(not math.isfinite(c.se) for c in comparisons):
        return Verdict("no estimate", None, f"No verdict for {a} vs {b}: one seed per mix gives no error estimate; use --seeds 2 or more")
    leaning = {c.eval_set: c.favours(CONTRADICTS) for c in comparisons}
    sides = {m for m in leaning.values() if m}
    if len(sides) > 1:
        detail = ", ".join(f"{s} favours {m}" for s, m in leaning.items() if m)
        return Verdict("sets disagree", None, f"The eval sets disagree about {a} vs {b} ({detail}): no winner at this budget")
    decisive = [c for c in comparisons if c.better]
    if not decisive:
        return Verdict(
            "no difference", None, f"No difference detectable between {a} and {b} at this budget (every set under {DECISIVE:.0f} σ)"
        )
    winner = decisive[0].better
    loser = b if winner == a else a
    sets = ", ".join(f"{c.eval_set} by Δ {abs(c.delta):.4f} ({abs(c.z):.1f} σ)" for c in decisive)
    return Verdict("winner", winner, f"{winner} is better than {loser} on {sets}; no set favours {loser}")
