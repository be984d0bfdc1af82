"""The shipped tokenizer (models/tokenizer/tokenizer.json): exact round trip, special ids, rate."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "models"))

from train_tokenizer import detokenize_wikitext, read_documents  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.from_file(str(ROOT / "models" / "tokenizer" / "tokenizer.json"))


def roundtrip(tokenizer: Tokenizer, text: str) -> str:
    return tokenizer.decode(tokenizer.encode(text, add_special_tokens=False).ids)


def test_vocabulary_and_special_ids(tokenizer):
    assert tokenizer.get_vocab_size() == 16384
    assert tokenizer.token_to_id("<|endoftext|>") == 0
    assert tokenizer.token_to_id("<|pad|>") == 1


def test_document_cannot_inject_end_of_text(tokenizer):
    text = "before <|endoftext|> after <|pad|>"
    ids = tokenizer.encode(text, add_special_tokens=False).ids
    assert 0 not in ids and 1 not in ids
    assert roundtrip(tokenizer, text) == text


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_unicode_roundtrips_exactly(tokenizer, text):
    assert roundtrip(tokenizer, text) == text


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), min_size=1).map(lambda s: "  \n\t" + s + "\r\n\u00a0 "))
def test_whitespace_at_edges_survives(tokenizer, text):
    assert roundtrip(tokenizer, text) == text


def test_real_documents_roundtrip(tokenizer):
    held = read_documents(ROOT / "models" / "data" / "trafilatura-eval-heldout.txt.gz")
    held += read_documents(ROOT / "models" / "data" / "wikitext2-test.txt.gz")[:10]
    encodings = tokenizer.encode_batch(held, add_special_tokens=False)
    assert [tokenizer.decode(e.ids) for e in encodings] == held


def test_bytes_per_token_on_held_out_text(tokenizer):
    # Figures from MODEL_CARD.md; a retrained or corrupted file that compresses worse fails.
    for name, expected in (("wikitext2-test.txt.gz", 4.096), ("trafilatura-eval-heldout.txt.gz", 3.701)):
        docs = read_documents(ROOT / "models" / "data" / name)
        n_bytes = sum(len(d.encode()) for d in docs)
        n_tokens = sum(len(e.ids) for e in tokenizer.encode_batch(docs, add_special_tokens=False))
        assert round(n_bytes / n_tokens, 3) == expected


def test_wikitext_artefacts_are_undone():
    lines = [
        " = Title = ",
        " ",
        ' The well @-@ known 1 @,@ 000 km ( 620 mi ) road , it \'s " here " <unk> . ',
        " = = Part = = ",
        " Next ; ",
    ]
    assert detokenize_wikitext(lines) == ['Title\nThe well-known 1,000 km (620 mi) road, it\'s "here".\nPart\nNext;']
