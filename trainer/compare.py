"""The statistics of an ablation: per-set differences between mixes, intervals, a verdict.

Every run is one (mix, seed). Seed ``k`` fixes the model's initialisation and the order in
which each mix's data is read, for every mix alike, so runs with the same seed are *paired*:
their difference cancels the part of the seed-to-seed spread the two runs share.

Per eval set, over the per-seed differences ``d_k = loss_B(k) - loss_A(k)`` (n seeds):
``delta = mean(d)``, ``se = std(d) / sqrt(n)`` and ``t = delta / se`` (stored as ``z`` for
the files' sake), which follows Student's t with ``n - 1`` degrees of freedom when the mixes
are equal. With 3 seeds that is 2 df, whose tails are far heavier than a normal's: |t| >= 3
happens in 9.5% of equal-mix comparisons, |t| >= 4.30 in 5%. Unpaired seeds fall back to
Welch's t with Satterthwaite's df.

Several eval sets are tested at once, so the decision is made on *simultaneous* intervals
(Bonferroni): with m sets each interval has level ``1 - ALPHA/m`` and all m hold together
with probability at least ``1 - ALPHA``, whatever the correlation between sets. A set is
called for a mix when its interval excludes 0; the verdict names a winner only then, so when
two mixes are equal a winner is named in at most ``ALPHA`` (5%) of ablations.
tests/test_compare.py simulates that null and counts. Bonferroni over Holm: the interval
printed and the decision are the same statement, and at m = 3 Holm would gain little.

Losses are "lower is better", so ``delta`` is positive when A is better.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

from scipy import stats

ALPHA = 0.05  # the false-winner rate the verdict is allowed over all its eval sets


@dataclass(frozen=True)
class Comparison:
    """One eval set, mix A against mix B, over the final (or one point's) losses of their seeds."""

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
    z: float  # the t statistic delta / se (named z in the files since the first version)
    df: float  # degrees of freedom of t: n - 1 paired, Welch-Satterthwaite unpaired
    p: float  # two-sided p-value of this set alone
    sets: int  # eval sets tested together (the Bonferroni factor m)
    p_family: float  # min(1, m * p): the p-value once m sets are tested
    ci_low: float  # simultaneous interval for delta: level 1 - ALPHA/m
    ci_high: float
    paired: bool
    seed_std: float  # pooled seed-to-seed std of the two mixes
    gap_in_seed_std: float  # |delta| / seed_std

    @property
    def better(self) -> str | None:
        """The mix this set favours once every set of the family is accounted for, else None."""
        if math.isnan(self.p_family) or self.p_family >= ALPHA:
            return None
        return self.a if self.delta > 0 else self.b

    @property
    def leans(self) -> str | None:
        """The mix this set alone favours at ALPHA (two-sided), else None: what a contradiction is."""
        if math.isnan(self.p) or self.p >= ALPHA:
            return None
        return self.a if self.delta > 0 else self.b

    @property
    def level(self) -> float:
        return 1 - ALPHA / self.sets

    def interval(self) -> str:
        return f"[{self.ci_low:+.4f}, {self.ci_high:+.4f}]"

    def sentence(self) -> str:
        if not math.isfinite(self.se):
            return f"{self.eval_set}: no error estimate (one seed per mix); {self.a} {self.mean_a:.4f} vs {self.b} {self.mean_b:.4f}"
        stat = f"t = {self.z:+.1f}, {self.df:.0f} df, p = {self.p:.2g}" + (
            f", {self.p_family:.2g} over {self.sets} sets" if self.sets > 1 else ""
        )
        if self.better is None:
            return (
                f"{self.eval_set}: no difference detectable at this budget; Δ {self.delta:+.4f} nats, and any true Δ in "
                f"{self.interval()} fits these runs ({stat})"
            )
        winner, loser = (self.a, self.b) if self.delta > 0 else (self.b, self.a)
        return f"{winner} is better than {loser} on {self.eval_set}: Δ {self.delta:+.4f} nats, {self.interval()} ({stat})"

    def as_row(self) -> dict:
        return {**asdict(self), "better": self.better, "sentence": self.sentence()}


def _mean_std(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return mean, float("nan")
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


def _error(losses_a: dict[int, float], losses_b: dict[int, float], std_a: float, std_b: float) -> tuple[float, float, bool]:
    """(standard error of delta, its degrees of freedom, paired)."""
    n_a, n_b = len(losses_a), len(losses_b)
    if set(losses_a) == set(losses_b) and n_a >= 2:
        _, std_d = _mean_std([losses_b[s] - losses_a[s] for s in sorted(losses_a)])
        return std_d / math.sqrt(n_a), n_a - 1, True
    if n_a < 2 or n_b < 2:
        return float("nan"), float("nan"), False
    va, vb = std_a**2 / n_a, std_b**2 / n_b
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1)) if va + vb > 0 else float(n_a + n_b - 2)
    return se, df, False


def t_test(delta: float, se: float, df: float, sets: int = 1) -> tuple[float, float, float, float, float]:
    """(t, p, p over ``sets``, interval low, high) with the interval at level 1 - ALPHA/sets."""
    if not (se >= 0 and df >= 1):
        nan = float("nan")
        return nan, nan, nan, nan, nan
    if se == 0:
        t = math.copysign(math.inf, delta) if delta else float("nan")
        p = 0.0 if delta else 1.0
        return t, p, min(1.0, sets * p), delta, delta
    t = delta / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1 - ALPHA / (2 * sets), df)) * se
    return t, p, min(1.0, sets * p), delta - half, delta + half


def compare(eval_set: str, a: str, losses_a: dict[int, float], b: str, losses_b: dict[int, float], sets: int = 1) -> Comparison:
    """Compare two mixes' losses on one set (``losses_x``: seed -> loss), one of ``sets`` tested together."""
    if not losses_a or not losses_b:
        raise ValueError(f"{eval_set}: no runs for {a if not losses_a else b}")
    mean_a, std_a = _mean_std(list(losses_a.values()))
    mean_b, std_b = _mean_std(list(losses_b.values()))
    delta = mean_b - mean_a
    se, df, paired = _error(losses_a, losses_b, std_a, std_b)
    t, p, p_family, low, high = t_test(delta, se, df, sets)
    seed_std = math.sqrt((std_a**2 + std_b**2) / 2) if len(losses_a) >= 2 and len(losses_b) >= 2 else float("nan")
    gap = abs(delta) / seed_std if seed_std > 0 else float("nan")
    return Comparison(
        eval_set,
        a,
        b,
        len(losses_a),
        len(losses_b),
        mean_a,
        std_a,
        mean_b,
        std_b,
        delta,
        se,
        t,
        df,
        p,
        sets,
        p_family,
        low,
        high,
        paired,
        seed_std,
        gap,
    )


def as_family(comparisons: list[Comparison]) -> list[Comparison]:
    """The same comparisons, each one's p-value and interval accounting for all of them (one pair of mixes)."""
    m = len(comparisons)
    out = []
    for c in comparisons:
        t, p, p_family, low, high = t_test(c.delta, c.se, c.df, m)
        out.append(replace(c, z=t, p=p, sets=m, p_family=p_family, ci_low=low, ci_high=high))
    return out


@dataclass(frozen=True)
class Verdict:
    status: str  # "winner" | "no difference" | "sets disagree" | "refused" | "no estimate"
    winner: str | None
    text: str


def verdict(comparisons: list[Comparison], warnings: list[str]) -> Verdict:
    """One plain sentence for A against B over all eval sets (one pair of mixes).

    A winner needs at least one set whose simultaneous interval excludes 0 in its favour and no
    set that, on its own, favours the other mix at ALPHA; otherwise the sets disagree or no
    difference is detectable. Any warning (repeated data, a model no better than a unigram
    guess) refuses the verdict.
    """
    a, b = comparisons[0].a, comparisons[0].b
    if warnings:
        return Verdict("refused", None, f"No verdict for {a} vs {b}: " + "; ".join(warnings))
    if any(not math.isfinite(c.se) for c in comparisons):
        return Verdict("no estimate", None, f"No verdict for {a} vs {b}: one seed per mix gives no error estimate; use --seeds 2 or more")
    family = as_family(comparisons)
    called = {c.better for c in family if c.better}
    leaning = {c.leans for c in family if c.leans}
    m = len(family)
    if len(called | leaning) > 1:
        detail = ", ".join(f"{c.eval_set} favours {c.leans} (p = {c.p:.2g})" for c in family if c.leans)
        return Verdict("sets disagree", None, f"The eval sets disagree about {a} vs {b} ({detail}): no winner at this budget")
    if not called:
        return Verdict(
            "no difference",
            None,
            f"No difference detectable between {a} and {b} at this budget: on every set the {1 - ALPHA / m:.1%} interval "
            f"({1 - ALPHA:.0%} jointly over {m} set{'s' if m > 1 else ''}) holds 0",
        )
    winner = called.pop()
    loser = b if winner == a else a
    sets = ", ".join(f"{c.eval_set} by Δ {abs(c.delta):.4f} nats {c.interval()}" for c in family if c.better)
    return Verdict(
        "winner",
        winner,
        f"{winner} is better than {loser} on {sets} ({1 - ALPHA:.0%} jointly over {m} set{'s' if m > 1 else ''}; "
        f"when two mixes are equal this names a winner in at most {ALPHA:.0%} of ablations); no set favours {loser}",
    )


def describe_curve(points: list[tuple[int, Comparison]]) -> str:
    """How one set's Δ moves along the run: ``points`` are (training tokens, comparison at that
    evaluation) in token order. A point "favours" a mix when its interval (same level as the
    final one) excludes 0; the sentence says when that changes sign or size."""
    if not points:
        return ""
    name = points[0][1].eval_set
    tokens, final = points[-1]
    earlier = [(t, c) for t, c in points[:-1] if c.better]
    path = ", ".join(f"{t / 1e3:,.0f}k {c.delta:+.4f}" for t, c in points)
    if not earlier and not final.better:
        return f"{name}: no evaluation along the run separates the mixes (Δ at {path})"
    if not earlier:
        return f"{name}: {final.better} pulls ahead only at the end ({tokens / 1e3:,.0f}k tokens; Δ at {path})"
    first_t, first = earlier[0]
    peak_t, peak = max(earlier, key=lambda tc: abs(tc[1].delta))
    if final.better and final.better != first.better:
        return f"{name}: the difference changes sign: {first.better} ahead at {first_t / 1e3:,.0f}k tokens, {final.better} by the end (Δ at {path})"
    if not final.better:
        return f"{name}: {first.better} ahead at {first_t / 1e3:,.0f}k tokens, gap closed by the end (Δ at {path})"
    if abs(final.delta) < 0.5 * abs(peak.delta):
        return f"{name}: {final.better} ahead throughout, the gap shrinking from {abs(peak.delta):.4f} at {peak_t / 1e3:,.0f}k tokens to {abs(final.delta):.4f} (Δ at {path})"
    return f"{name}: {final.better} ahead from {first_t / 1e3:,.0f}k tokens on (Δ at {path})"


def seeds_needed(c: Comparison, power: float = 0.8, most: int = 64) -> int | None:
    """Paired seeds that would detect ``c.delta`` with probability ``power`` if it and the
    spread of the per-seed differences were the truth (t approximation: sqrt(n) x |Δ| / sd
    must reach t(1 - ALPHA/2m) + t(power), both with n - 1 df); None beyond ``most`` or
    without a spread."""
    if not (c.paired and c.se > 0 and c.delta):
        return None
    sd = c.se * math.sqrt(c.n_a)
    for n in range(2, most + 1):
        needed = stats.t.ppf(1 - ALPHA / (2 * c.sets), n - 1) + stats.t.ppf(power, n - 1)
        if math.sqrt(n) * abs(c.delta) / sd >= needed:
            return n
    return None
