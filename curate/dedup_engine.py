"""The dedup decision engine: which copy survives, how links become clusters, and how groups
become rejections. One implementation, used by every dedup path:

* :func:`curate.dedup.DedupStage.run_local` (one process: tests, small corpora);
* :func:`curate.spark.dedup.decide_in_one_task` (Spark, every document's keys in one task);
* the distributed Spark plan, whose window order :func:`curate.spark.dedup.survivor_window`
  is built from the same :data:`SURVIVOR_ORDER` table.

(Across runs, :mod:`curate.dedup_index` chooses among earlier documents by snapshot, then id.)

Every choice ends on the smallest document id, so no decision depends on input order,
partitioning or the order in which files are read.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

# Who survives a group, per ``keep`` policy: the columns compared, in order, each with
# "descending?"; missing values (None, NaN) always come last, and the smallest id breaks ties.
# Columns: ``n_chars`` (text length), ``warc_date`` (ISO string), ``score`` (float).
SURVIVOR_ORDER: dict[str, tuple[tuple[str, bool], ...]] = {
    "first_id": (),
    "longest": (("n_chars", True),),
    "newest": (("warc_date", True),),
    "oldest": (("warc_date", False),),
    "highest_score": (("score", True),),
}

# URL groups always keep the newest capture: a page's latest crawl is its current content.
URL_KEEP = "newest"


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def survivor_rank(ids: Sequence[str], keep: str, columns: Mapping[str, Sequence]) -> np.ndarray:
    """Rank of each row in "who survives" order (0 = keep first), by :data:`SURVIVOR_ORDER`.

    ``columns`` maps the column names the policy needs to one value per row.
    """
    if keep not in SURVIVOR_ORDER:
        raise ValueError(f"unknown keep policy {keep!r}; expected one of: {', '.join(SURVIVOR_ORDER)}")
    n = len(ids)
    # np.lexsort sorts by the last key first: id is the final tie-break, so it goes first.
    sort_keys = [_codes(list(ids))]
    for name, descending in reversed(SURVIVOR_ORDER[keep]):
        values = list(columns[name])
        missing = np.array([_missing(v) for v in values], dtype=bool)
        codes = _codes([None if m else v for v, m in zip(values, missing)])
        sort_keys += [-codes if descending else codes, missing]
    order = np.lexsort(sort_keys) if sort_keys else np.arange(n)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def _codes(values: list) -> np.ndarray:
    """Dense ascending codes of values (equal values, equal codes); missing values get 0."""
    present = sorted({v for v in values if v is not None})
    code = {v: i for i, v in enumerate(present)}
    return np.array([code[v] if v is not None else 0 for v in values], dtype=np.int64)


class Descending(str):
    """A string that sorts in reverse, so "newest first, then smallest id" is one tuple key."""

    def __lt__(self, other: str) -> bool:  # type: ignore[override]
        return str.__gt__(self, other)


class UnionFind:
    """Connected components over rows 0..n-1; the root of a component is its smallest row.

    Callers number rows in id order, so a root is also the component's smallest id.
    """

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            if rx < ry:
                self.parent[ry] = rx
            else:
                self.parent[rx] = ry


def components(n: int, links: Iterable[tuple[int, int]]) -> dict[int, int]:
    """Root (smallest row) of every row that appears in a link."""
    union = UnionFind(n)
    linked: set[int] = set()
    for a, b in links:
        union.union(a, b)
        linked.add(a)
        linked.add(b)
    return {row: union.find(row) for row in linked}


def shared_buckets(column: np.ndarray) -> Iterator[np.ndarray]:
    """Row numbers of the members of each bucket that two or more rows share (one band)."""
    order = np.argsort(column, kind="stable")
    sorted_keys = column[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts.tolist(), ends.tolist()):
        if end - start >= 2:
            yield order[start:end]


def minhash_links(
    buckets: np.ndarray, rows: np.ndarray, signatures_of: Callable[[np.ndarray], np.ndarray] | None, num_perm: int, threshold: float
) -> tuple[list[tuple[int, int]], dict[str, int]]:
    """The MinHash links among ``rows`` (ascending, so in id order) and their counters.

    ``buckets[i, band]`` is row ``rows[i]``'s LSH bucket in that band. Every bucket two or more
    rows share links each member to its smallest row (a star: enough for connectivity), the
    same links the distributed Spark plan builds. With ``signatures_of`` (``verify``: rows ->
    their signatures, one row each), a link is kept only when its two signatures agree on at
    least ``threshold`` of their ``num_perm`` values. Returns the sorted distinct links
    (member, root) and, when links were verified, ``minhash_candidate_edges`` and
    ``minhash_edges_failed_verify``.
    """
    links: set[tuple[int, int]] = set()
    for band in range(buckets.shape[1]):
        for shared in shared_buckets(buckets[:, band]):
            members = rows[shared]
            root = int(members.min())
            links.update((int(m), root) for m in members.tolist() if m != root)
    pairs = sorted(links)
    if signatures_of is None or not pairs:
        return pairs, {}
    agree = (signatures_of(np.array([a for a, _ in pairs])) == signatures_of(np.array([b for _, b in pairs]))).sum(axis=1)
    passed = (agree / float(num_perm) >= threshold).tolist()
    counters = {"minhash_candidate_edges": len(pairs), "minhash_edges_failed_verify": passed.count(False)}
    return [pair for pair, ok in zip(pairs, passed) if ok], counters


def best_of_groups(group_of: list, rank: np.ndarray, live: np.ndarray) -> tuple[dict, dict]:
    """(best-ranked row, size) of each group key, over the live rows that have a key."""
    best: dict = {}
    size: dict = {}
    for row, key in enumerate(group_of):
        if key is None or not live[row]:
            continue
        size[key] = size.get(key, 0) + 1
        if key not in best or rank[row] < rank[best[key]]:
            best[key] = row
    return best, size


def groups_to_rejections(group_of: list, rank: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, list, list]:
    """For live rows with a group key, keep the best-ranked row of each group of two or more.

    Returns (rejected mask, kept row per row or None, group size per row or None).
    """
    best, size = best_of_groups(group_of, rank, live)
    rejected = np.zeros(len(group_of), dtype=bool)
    kept_row: list = [None] * len(group_of)
    sizes: list = [None] * len(group_of)
    for row, key in enumerate(group_of):
        if key is None or not live[row] or size[key] < 2:
            continue
        kept_row[row] = best[key]
        sizes[row] = size[key]
        rejected[row] = best[key] != row
    return rejected, kept_row, sizes
