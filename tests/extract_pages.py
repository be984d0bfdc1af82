"""The trafilatura-eval development pages in tests/data/html, shared by the extraction tests."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

DATA = Path(__file__).parent / "data"
EXPECTATIONS = json.loads((DATA / "html" / "expectations.json").read_text())


def page(entry: dict) -> bytes:
    return gzip.open(DATA / "html" / "pages" / entry["file"]).read()


def normalize(text: str) -> str:
    return " ".join(text.split())
