"""The plan of a run as plain data: which stages run in which segment, and which segment is fused.

A run is cut at each global stage (one that needs every document at once, e.g. dedup):

* segment 0 reads the input files and runs the map stages before the first global stage;
* segment K (K >= 1) runs global stage K on the live documents, then the map stages after it
  in the same pass over its marked documents.

Each segment is written to ``RUN/_work/seg<K>`` and read back by the next, except the last
global segment when there is no mixture: it is *fused*, i.e. runs inside the final write's
job (one Spark job and one Parquet round trip fewer; with a mixture its map stages would run
once per output folder).
"""

from __future__ import annotations

from dataclasses import dataclass

from curate.recipe import SourceSpec
from curate.sources import skips_stages, source_reader
from curate.spark.tasks import reads_records
from curate.stage import Stage


@dataclass(frozen=True)
class Segment:
    index: int
    global_stage: Stage | None  # None: segment 0, which reads the input files
    map_stages: list[Stage]
    fused: bool = False  # runs inside the final write's job; nothing written to _work

    @property
    def work_name(self) -> str:
        return f"seg{self.index}"


def plan_segments(stages: list[Stage], with_mixture: bool) -> list[Segment]:
    """[segment 0, one segment per global stage]; the last global one fused unless there is a mixture."""
    cuts: list[tuple[Stage | None, list[Stage]]] = [(None, [])]
    for stage in stages:
        if stage.is_global:
            cuts.append((stage, []))
        else:
            cuts[-1][1].append(stage)
    last = len(cuts) - 1
    return [
        Segment(k, global_stage, map_stages, fused=k > 0 and k == last and bool(map_stages) and not with_mixture)
        for k, (global_stage, map_stages) in enumerate(cuts)
    ]


def later_stages(segments: list[Segment]) -> list[Stage]:
    """Every stage after segment 0, in order: what a worker can warm up once its segment-0 tasks end."""
    return [stage for segment in segments[1:] for stage in [segment.global_stage, *segment.map_stages] if stage is not None]


def first_segment_counts_every_document(map_stages: list[Stage], sources: list[SourceSpec]) -> bool:
    """Whether segment 0's last map stage saw every live document, so its counters say what enters the next.

    Not when some documents skip it: an already-curated source skips every stage, and
    document sources skip the stages that read raw records (``extract``).
    """
    readers = [source_reader(source.kind) for source in sources]
    if not map_stages or any(skips_stages(source) for source in sources):
        return False
    return not reads_records(map_stages[-1]) or all(reader.yields_records for reader in readers)
