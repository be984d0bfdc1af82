"""curate/speedups/fasttext_lid.py: bit for bit fastText's own top-1 prediction, or fastText's own path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import fasttext
import numpy as np
import pytest

from curate import langid, speedups
from curate.extract import html_to_text
from curate.speedups.fasttext_lid import BatchPredictor, dense_output_matrix, huffman_children
from curate.stage import Counters
from curate.warc import read_warc

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """Page texts in several languages and scripts, their paragraphs, and WikiText lines."""
    texts = []
    expectations = json.loads((DATA / "html" / "expectations.json").read_text())
    for url, entry in expectations.items():
        texts.append(html_to_text(gzip.open(DATA / "html" / "pages" / entry["file"]).read(), url))
    for path in sorted((DATA / "warc").glob("*.warc.gz")):
        for batch in read_warc(str(path), "test", Counters()):
            texts += [html_to_text(html, url) for html, url in zip(batch.column("html").to_pylist(), batch.column("url").to_pylist())]
    texts = [t for t in texts if t and t.strip()]
    paragraphs = [p for t in texts for p in t.split("\n") if p.strip()]
    wikitext = [line for line in (DATA / "text" / "wikitext-2-test.txt").read_text().splitlines() if line.strip()]
    return texts + paragraphs + wikitext


ODD_LINES = [
    "a\x00b c",  # fastText splits on NUL, str.split() does not
    "\x00",
    "__label__en hello world",  # a token with the label prefix is read as a label
    "__label__",
    "x",
    "😀😀😀 🙂",
    "Ω" * 5000,  # one very long token
    "word " * 3000,
    "日本語のテキストです。これは日本語の文です。",
    "",
]


def fasttext_top1(model, lines: list[str]) -> tuple[list[str | None], list[np.float32]]:
    labels, probs = model.predict(lines, k=1)
    return [label[0] if len(label) else None for label in labels], [np.float32(p[0]) if len(p) else np.float32(0) for p in probs]


def assert_bit_identical(model, predictor: BatchPredictor, lines: list[str]) -> None:
    want_labels, want_probs = fasttext_top1(model, lines)
    got_labels, got_probs = [], []
    for start in range(0, len(lines), 97):  # many batches: the word cache grows between them
        labels, probs = predictor.predict(lines[start : start + 97])
        got_labels += labels
        got_probs += list(probs)
    assert got_labels == want_labels
    assert [p.tobytes() for p in got_probs] == [p.tobytes() for p in want_probs]


def test_lid176_predictions_are_fasttexts_bit_for_bit(real_texts):
    path = langid.default_model_path()
    model = langid.load_model(path)
    predictor = BatchPredictor.for_model(model, path)
    lines = [" ".join(t.split()) for t in real_texts + ODD_LINES]
    assert len(lines) > 1500
    assert_bit_identical(model, predictor, lines)
    assert len(set(fasttext_top1(model, lines)[0])) >= 10  # many languages, not one


def test_a_model_trained_here_with_hierarchical_softmax_is_mirrored_dense_and_quantized(tmp_path, real_texts):
    train = tmp_path / "train.txt"
    labelled = [f"__label__{'long' if len(t) > 400 else 'short'} {' '.join(t.split())}" for t in real_texts[:400]]
    train.write_text("\n".join(labelled) + "\n", encoding="utf-8")
    model = fasttext.train_supervised(str(train), loss="hs", dim=8, minn=2, maxn=4, epoch=2, thread=1, seed=1, verbose=0)
    dense = tmp_path / "model.bin"
    model.save_model(str(dense))
    lines = [" ".join(t.split()) for t in real_texts[400:900] + ODD_LINES]
    assert_bit_identical(model, BatchPredictor.for_model(model, str(dense)), lines)
    model.quantize(input=str(train), qnorm=False, cutoff=2000, retrain=False, thread=1, verbose=0)
    quantized = tmp_path / "model.ftz"
    model.save_model(str(quantized))
    model = fasttext.load_model(str(quantized))
    assert_bit_identical(model, BatchPredictor.for_model(model, str(quantized)), lines)


def test_a_negative_sampling_model_goes_to_fasttexts_own_predict_with_a_warning(tmp_path, monkeypatch, real_texts):
    monkeypatch.setattr(speedups, "_warned", set())
    train = tmp_path / "train.txt"
    train.write_text("\n".join(f"__label__{i % 2} {' '.join(t.split())}" for i, t in enumerate(real_texts[:50])) + "\n")
    # negative sampling (this wheel's softmax training stops with "Encountered NaN" even on toy data)
    model = fasttext.train_supervised(str(train), loss="ns", dim=4, epoch=1, thread=1, seed=1, verbose=0)
    path = tmp_path / "ns.bin"
    model.save_model(str(path))
    with pytest.warns(speedups.SpeedupFallback, match="loss ns"):
        assert BatchPredictor.for_model(model, str(path)) is None
    monkeypatch.setattr(langid, "_PREDICTORS", {})
    codes, _ = langid.predict_languages(real_texts[:3], str(path))
    assert codes == [label.removeprefix("__label__") for label in fasttext_top1(model, [" ".join(t.split()) for t in real_texts[:3]])[0]]


def test_a_file_that_does_not_end_with_the_output_matrix_is_refused(tmp_path):
    path = tmp_path / "cut.ftz"
    path.write_bytes(Path(langid.default_model_path()).read_bytes()[:-4])
    assert dense_output_matrix(str(path), 176, 16) is None
    assert dense_output_matrix(langid.default_model_path(), 176, 16).shape == (176, 16)


def test_switched_off_langid_uses_fasttexts_predict(monkeypatch, real_texts):
    monkeypatch.setenv("CURATE_SPEEDUP_FASTTEXT_LID", "off")
    assert langid.batch_predictor(langid.default_model_path()) is None
    plain = langid.predict_languages(real_texts[:200])
    monkeypatch.delenv("CURATE_SPEEDUP_FASTTEXT_LID")
    assert langid.batch_predictor(langid.default_model_path()) is not None
    assert langid.predict_languages(real_texts[:200]) == plain


def test_huffman_tree_of_four_labels():
    # counts sorted as fastText sorts labels (most frequent first): leaves 3 and 2 pair first
    left, right = huffman_children([10, 6, 3, 1])
    assert (left[4], right[4]) == (3, 2)
    assert (left[5], right[5]) == (4, 1)
    assert (left[6], right[6]) == (5, 0)
    assert list(left[:4]) == [-1] * 4
