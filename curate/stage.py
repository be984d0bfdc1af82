"""What a pipeline stage is, and the loop that runs a list of them over Arrow batches.

A *map stage* is a callable ``RecordBatch -> RecordBatch`` over ``DOCUMENT_SCHEMA`` (the
``extract`` stage takes ``RECORD_SCHEMA``). It receives only live documents, may edit
them (text, language, scores, flags) and marks the ones it removes with
:func:`curate.schema.reject`. It must return the same number of rows it received.
It never imports Spark: the same object runs in a unit test, in :func:`run_map_stages`
and inside Spark's ``mapInArrow``.

A *global stage* (dedup) needs to see all documents at once. It offers ``run_local`` over
an Arrow table for tests and small runs; the Spark job has its own distributed
implementation (``curate/spark/``).

Every stage owns a :class:`Counters`; the runner adds the funnel counts (documents and
characters in/out, rejections by reason) so stages only count what is special to them.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from typing import Any, ClassVar, Iterable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.schema import DOCUMENT_SCHEMA, concat_batches


class Counters(Counter):
    """Named numbers a stage accumulates; they add up across batches and workers."""

    def merge(self, other: dict[str, float]) -> "Counters":
        for k, v in other.items():
            self[k] += v
        return self


class StageError(RuntimeError):
    """A stage cannot start: bad model file, missing resource. Raised before any work."""


@dataclasses.dataclass(frozen=True)
class StageContext:
    """Run-wide facts a stage may need."""

    recipe_dir: str = "."
    seed: int = 0
    run_dir: str | None = None
    # fsspec options per protocol, for a stage that reads or writes an object store (the dedup index)
    storage_options: dict = dataclasses.field(default_factory=dict, repr=False)


class Stage:
    kind: ClassVar[str] = ""
    Params: ClassVar[type] = type(None)
    is_global: ClassVar[bool] = False
    input_schema: ClassVar[pa.Schema] = DOCUMENT_SCHEMA

    def __init__(self, params: Any, context: StageContext | None = None, name: str | None = None):
        self.params = params
        self.context = context or StageContext()
        self.name = name or self.kind
        self.counters = Counters()
        self._ready = False

    # Called once on the driver before any work: check files, load models once to prove they
    # load. Raise StageError with a message naming the file/key.
    def check(self) -> None:
        pass

    # Load heavy resources. Called lazily, once per Python worker process.
    def setup(self) -> None:
        pass

    def ensure_setup(self) -> None:
        if not self._ready:
            self.setup()
            self._ready = True

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:  # map stages override
        raise NotImplementedError

    def __getstate__(self) -> dict:
        # Loaded models stay behind when a stage is pickled to Spark workers.
        state = {k: v for k, v in self.__dict__.items() if not k.startswith("_")}
        state["_ready"] = False
        state["counters"] = Counters()
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


class GlobalStage(Stage):
    is_global: ClassVar[bool] = True

    def run_local(self, table: pa.Table) -> pa.Table:
        """All live documents in, the same documents out with rejections marked."""
        raise NotImplementedError


def text_chars(batch: pa.RecordBatch | pa.Table) -> int:
    if "text" not in batch.schema.names or batch.num_rows == 0:
        return 0
    total = pc.sum(pc.utf8_length(batch.column("text").fill_null("")))
    return int(total.as_py() or 0)


def _count_funnel(stage: Stage, before: pa.RecordBatch, after: pa.RecordBatch, seconds: float) -> pa.RecordBatch:
    c = stage.counters
    c["docs_in"] += before.num_rows
    c["chars_in"] += text_chars(before) if "text" in before.schema.names else 0
    live = pc.is_null(after.column("rejected_by"))
    kept = after.filter(live)
    dropped = after.filter(pc.invert(live))
    c["docs_out"] += kept.num_rows
    c["chars_out"] += text_chars(kept)
    c["seconds"] += seconds
    tally_rejections(dropped, c)
    return dropped


def tally_rejections(rejected: pa.RecordBatch, counters: Counter) -> None:
    """Add ``rejected:<reason>`` (documents) and ``rejected_chars:<reason>`` (characters) counts."""
    if not rejected.num_rows:
        return
    reasons = rejected.column("rejected_by").to_pylist()
    chars = pc.utf8_length(rejected.column("text").fill_null("")).to_pylist()
    for r, n in zip(reasons, chars):
        counters[f"rejected:{r}"] += 1
        counters[f"rejected_chars:{r}"] += n or 0


def run_map_stages(stages: list[Stage], batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.RecordBatch]:
    """Run ``stages`` in order over one batch; returns (kept, rejected) document batches.

    Each stage sees only the documents no earlier stage rejected.
    """
    rejected: list[pa.RecordBatch] = []
    live = batch
    for stage in stages:
        if live.num_rows == 0:
            break
        stage.ensure_setup()
        start = time.perf_counter()
        out = stage(live)
        elapsed = time.perf_counter() - start
        if out.num_rows != live.num_rows:
            raise RuntimeError(f"stage {stage.name!r} returned {out.num_rows} rows for {live.num_rows}")
        rejected.append(_count_funnel(stage, live, out, elapsed))
        live = out.filter(pc.is_null(out.column("rejected_by")))
    if live.schema != DOCUMENT_SCHEMA:  # only extract-less record batches could get here
        from curate.schema import conform

        live = conform(live)
    return live, concat_batches(rejected)


def iter_map_stages(stages: list[Stage], batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Stream batches through the stages, yielding kept and rejected documents together."""
    for batch in batches:
        kept, rejected = run_map_stages(stages, batch)
        if kept.num_rows:
            yield kept
        if rejected.num_rows:
            yield rejected


def merged_counters(stages: list[Stage]) -> dict[str, dict[str, float]]:
    return {s.name: dict(s.counters) for s in stages}


def as_bool_array(mask: Any) -> np.ndarray:
    if isinstance(mask, (pa.Array, pa.ChunkedArray)):
        return np.asarray(mask.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    return np.asarray(mask, dtype=bool)
