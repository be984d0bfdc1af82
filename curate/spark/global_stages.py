"""Global stages on Spark: stage kind -> the function that runs it over all live documents.

Each function takes ``(live, stage, output, live_docs)`` (the live documents as a DataFrame,
the run folder, their count when known) and returns the same documents with its rejections
marked. Entries are "module:function", imported on first use.
"""

from __future__ import annotations

import importlib

from pyspark.sql import DataFrame

from curate.stage import Stage

GLOBAL_STAGES: dict[str, str] = {
    "dedup": "curate.spark.dedup:dedup_documents",
}


def run_global_stage(stage: Stage, live: DataFrame, output: str, live_docs: int | None) -> DataFrame:
    target = GLOBAL_STAGES.get(stage.kind)
    if target is None:
        raise NotImplementedError(f"no Spark implementation for global stage {stage.kind!r}; known: {', '.join(GLOBAL_STAGES)}")
    module_name, _, function = target.partition(":")
    return getattr(importlib.import_module(module_name), function)(live, stage, output, live_docs)
