"""Document tokenization: EOS appended, exact round trip, clear errors for bad tokenizer files."""

from __future__ import annotations

import pytest

from curate.schema import TOKENS_SCHEMA, documents_from_pylist
from curate.tokens import DocumentTokenizer, TokenizerError

from conftest import ROOT

TOKENIZER = str(ROOT / "models" / "tokenizer" / "tokenizer.json")


@pytest.fixture(scope="module")
def texts(data_dir):
    lines = [l.strip() for l in (data_dir / "text" / "wikitext-2-test.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    return lines[:80] + ["", "Ünïcödé — 日本語のテキスト 🙂\n\ttabs and  double  spaces "]


def test_tokenize_documents_round_trip(texts):
    tok = DocumentTokenizer(TOKENIZER)
    batch = documents_from_pylist([{"id": f"d{i}", "source": "wiki", "text": t} for i, t in enumerate(texts)])
    out = tok.tokenize_documents(batch)
    assert out.schema == TOKENS_SCHEMA
    assert out.column("id").to_pylist() == batch.column("id").to_pylist()
    rows = out.to_pylist()
    for row, text in zip(rows, texts):
        assert row["tokens"][-1] == tok.eos_id
        assert row["n_tokens"] == len(row["tokens"])
        assert tok.decode(row["tokens"]) == text
    assert rows[-2]["tokens"] == [tok.eos_id]  # empty text: just the end-of-document token


def test_batching_does_not_change_ids(texts):
    big = DocumentTokenizer(TOKENIZER, batch_size=1000).encode(texts)
    small = DocumentTokenizer(TOKENIZER, batch_size=3).encode(texts)
    assert big == small


def test_missing_and_corrupt_tokenizer_files(tmp_path):
    with pytest.raises(TokenizerError, match="tokenizer file not found"):
        DocumentTokenizer(str(tmp_path / "nope.json")).check()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(TokenizerError, match="not a valid tokenizers JSON file"):
        DocumentTokenizer(str(bad)).check()


def test_unknown_eos_token_is_named():
    with pytest.raises(TokenizerError, match="has no token '<eos>'"):
        DocumentTokenizer(TOKENIZER, eos_token="<eos>").check()
