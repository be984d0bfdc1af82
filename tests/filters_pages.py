"""Real extracted pages for the filter tests (tests/data/filters/pages.jsonl, see its README)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from curate.schema import documents_from_pylist

PAGES = Path(__file__).resolve().parent / "data" / "filters" / "pages.jsonl"


def load_pages() -> list[dict]:
    return [json.loads(line) for line in PAGES.read_text(encoding="utf-8").splitlines()]


def pages_batch(rows: list[dict] | None = None) -> pa.RecordBatch:
    rows = load_pages() if rows is None else rows
    return documents_from_pylist(
        [{"id": r["id"], "source": "test", "url": r.get("url"), "text": r["text"], "language": r.get("language")} for r in rows]
    )


def texts_batch(texts: list[str | None], language: str | None = "en", urls: list[str | None] | None = None) -> pa.RecordBatch:
    urls = urls or [None] * len(texts)
    return documents_from_pylist(
        [{"id": str(i), "source": "test", "url": u, "text": t, "language": language} for i, (t, u) in enumerate(zip(texts, urls))]
    )


def outcomes(stage, batch: pa.RecordBatch) -> dict[str, tuple[str | None, float | None]]:
    """id -> (rule without the stage prefix or None, rejected_value) after running ``stage``."""
    stage.ensure_setup()
    out = stage(batch)
    assert out.num_rows == batch.num_rows
    result = {}
    for doc_id, reason, value in zip(
        out.column("id").to_pylist(), out.column("rejected_by").to_pylist(), out.column("rejected_value").to_pylist()
    ):
        result[doc_id] = (reason.split(".", 1)[1] if reason else None, value)
    return result
