"""trainer/evalsets.py: held-out sets are sampled by hash, tokenized once, protected, baselined."""

from __future__ import annotations

import gzip
import json
import math
import random

import numpy as np
import pytest

from trainer.evalsets import (
    DEFAULT_EVAL_SETS,
    EvalSetError,
    EvalSetSpec,
    guess_kind,
    prepare_eval_set,
    read_documents,
    select_documents,
    token_counts,
    unigram_loss,
)


@pytest.fixture(scope="module")
def wikitext(data_dir):
    return str(data_dir / "text" / "wikitext-2-test.txt")


def test_wikitext_as_prose_and_as_its_format(wikitext):
    raw = read_documents(EvalSetSpec("w", wikitext, kind="wikitext"))
    prose = read_documents(EvalSetSpec("w", wikitext, kind="wikitext", detokenize=True))
    assert len(raw) == len(prose) >= 3
    assert raw[0][0].startswith("= Robert <unk> =") and "@-@" in "".join(t for t, _ in raw)
    assert prose[0][0].startswith("Robert \n") or prose[0][0].startswith("Robert\n")
    joined = "".join(t for t, _ in prose)
    assert "@-@" not in joined and "<unk>" not in joined and " = = " not in joined


def test_the_sample_depends_on_the_documents_not_their_order(wikitext):
    documents = [(f"paragraph {i} " * 5, f"https://example.org/{i}") for i in range(400)]
    spec = EvalSetSpec("s", wikitext, fraction=0.25)
    chosen = select_documents(spec, documents)
    shuffled = list(documents)
    random.Random(3).shuffle(shuffled)
    assert select_documents(spec, shuffled) == chosen
    assert 70 <= len(chosen) <= 130  # a quarter, give or take the hash
    # a larger fraction keeps every document of a smaller one: the sample only grows
    assert set(chosen) <= set(select_documents(EvalSetSpec("s", wikitext, fraction=0.5), documents))
    assert (
        select_documents(EvalSetSpec("s", wikitext, max_documents=7), documents)
        == select_documents(EvalSetSpec("s", wikitext), documents)[:7]
    )


def test_kinds_are_guessed_and_bad_sets_named(tmp_path, data_dir, wikitext):
    assert guess_kind(str(data_dir / "warc" / "dolma-sample-0000.warc.gz")) == "warc"
    assert guess_kind(wikitext) == "wikitext"
    assert guess_kind("x/pages.jsonl.gz") == "jsonl"
    with pytest.raises(EvalSetError, match="cannot tell what kind"):
        guess_kind("x/pages.csv")
    with pytest.raises(EvalSetError, match="eval set 'gone'"):
        read_documents(EvalSetSpec("gone", str(tmp_path / "missing.txt")))
    with pytest.raises(ValueError, match="fraction"):
        EvalSetSpec("x", wikitext, fraction=0).validate()


def test_prepared_sets_are_tokenized_once_and_protected(tmp_path, wikitext, wikitext_bpe):
    spec = EvalSetSpec("wiki", wikitext, kind="wikitext", detokenize=True)
    first = prepare_eval_set(spec, str(wikitext_bpe), "<|endoftext|>", str(tmp_path))
    again = prepare_eval_set(spec, str(wikitext_bpe), "<|endoftext|>", str(tmp_path))
    assert first.shards == again.shards and first.documents == again.documents >= 3
    with gzip.open(first.protected, "rt") as fh:
        rows = [json.loads(line) for line in fh]
    assert len(rows) == first.documents and all(r["url"] is None for r in rows)
    texts = {t for t, _ in read_documents(spec)}
    assert {r["text"] for r in rows} == texts


def test_unigram_loss_is_the_cross_entropy_of_smoothed_frequencies(tmp_path, wikitext_bpe):
    from trainer.data import shards_from_texts

    shards_from_texts(["the cat sat on the mat " * 40], str(wikitext_bpe), str(tmp_path / "train"))
    shards_from_texts(["the dog sat on the log " * 40], str(wikitext_bpe), str(tmp_path / "eval"))
    counts = token_counts(str(tmp_path / "train"), 512)
    assert counts.sum() > 0 and counts.shape == (512,)
    loss = unigram_loss(counts, str(tmp_path / "eval"), seq_len=16, max_sequences=4)
    from trainer.data import TokenStream

    targets = np.concatenate([TokenStream(str(tmp_path / "eval")).read(i * 16 + 1, 16) for i in range(4)])
    probabilities = (counts + 1) / (counts.sum() + 512)
    assert loss == pytest.approx(float(-np.log(probabilities[targets]).mean()))
    assert math.log(512) > loss > 0  # frequencies beat a uniform guess on similar text


def test_default_sets_are_shipped():
    import os

    assert [s.name for s in DEFAULT_EVAL_SETS] == ["wiki", "web"]
    assert all(os.path.exists(s.path) and s.about for s in DEFAULT_EVAL_SETS)


def test_where_keeps_the_rows_of_the_named_kinds(tmp_path, wikitext):
    path = tmp_path / "pages.jsonl.gz"
    rows = [
        {"main": "an article about rivers", "url": "https://a.org/1", "page_type": "article"},
        {"main": "buy this lamp now", "url": "https://a.org/2", "page_type": "product"},
        {"main": "how to install it", "url": "https://a.org/3", "page_type": "documentation"},
        {"main": None, "url": "https://a.org/4", "page_type": "article"},
    ]
    with gzip.open(path, "wt") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows))
    spec = EvalSetSpec("prose", str(path), text_field="main", where={"page_type": ["article", "documentation"]})
    assert read_documents(spec) == [("an article about rivers", "https://a.org/1"), ("how to install it", "https://a.org/3")]
    with pytest.raises(EvalSetError, match="no field 'kind'"):
        read_documents(EvalSetSpec("x", str(path), text_field="main", where={"kind": ["a"]}))
    with pytest.raises(EvalSetError, match="'where' applies to jsonl and parquet"):
        read_documents(EvalSetSpec("x", wikitext, where={"kind": ["a"]}))
