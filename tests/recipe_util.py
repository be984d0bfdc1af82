"""A minimal recipe for tests that exercise one stage through the recipe loader."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_stage_recipe(tmp_path: Path, text: str, stage: dict) -> dict:
    """Recipe data: one JSONL source holding one document, the shipped tokenizer, one stage."""
    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"id": "1", "text": text}) + "\n", encoding="utf-8")
    return {
        "name": "t",
        "output": str(tmp_path / "run"),
        "sources": [{"name": "s", "kind": "jsonl", "paths": [str(source)]}],
        "tokenizer": {"path": str(ROOT / "models" / "tokenizer" / "tokenizer.json")},
        "stages": [stage],
    }
