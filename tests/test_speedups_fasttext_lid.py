"""curate/speedups/fasttext_lid.py: bit for bit fastText's own top-1 prediction, or fastText's own path."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import fasttext
import numpy as np
import pyarrow as pa
import pytest

from curate import langid, speedups
from curate.extract import html_to_text
from curate.speedups.fasttext_lid import BatchPredictor, huffman_children, read_model_file
from curate.stage import Counters
from curate.warc import read_warc

DATA = Path(__file__).parent / "data"


def bundled_texts() -> list[str]:
    """Texts of the bundled pages: trafilatura-eval pages in several languages and scripts, Dolma's sample WARCs."""
    texts = []
    expectations = json.loads((DATA / "html" / "expectations.json").read_text())
    for url, entry in expectations.items():
        texts.append(html_to_text(gzip.open(DATA / "html" / "pages" / entry["file"]).read(), url))
    for path in sorted((DATA / "warc").glob("*.warc.gz")):
        for batch in read_warc(str(path), "test", Counters()):
            texts += [html_to_text(html, url) for html, url in zip(batch.column("html").to_pylist(), batch.column("url").to_pylist())]
    return [t for t in texts if t and t.strip()]


@pytest.fixture(scope="module")
def real_texts() -> list[str]:
    """The bundled page texts, their paragraphs, and WikiText lines."""
    texts = bundled_texts()
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


@pytest.mark.parametrize("name", ["lid-hs.bin", "lid-hs.ftz"])
def test_other_hierarchical_softmax_models_dense_and_quantized_are_mirrored(name, real_texts):
    path = str(DATA / "fasttext" / name)  # tests/data/fasttext/make_models.py
    model = fasttext.load_model(path)
    assert model.is_quantized() == name.endswith(".ftz")
    predictor = BatchPredictor.for_model(model, path)
    assert predictor.file.prune_size == (-1 if name.endswith(".bin") else len(predictor.file.prune_keys))
    lines = [" ".join(t.split()) for t in real_texts + ODD_LINES]
    assert_bit_identical(model, predictor, lines)


def test_a_negative_sampling_model_goes_to_fasttexts_own_predict_with_a_warning(monkeypatch, real_texts):
    monkeypatch.setattr(speedups, "_warned", set())
    path = str(DATA / "fasttext" / "lid-ns.bin")
    model = fasttext.load_model(path)
    with pytest.warns(speedups.SpeedupFallback, match="loss ns"):
        assert BatchPredictor.for_model(model, path) is None
    monkeypatch.setattr(langid, "_PREDICTORS", {})
    codes, _ = langid.predict_languages(real_texts[:3], path)
    want = fasttext_top1(model, [" ".join(t.split()) for t in real_texts[:3]])[0]
    assert codes == [label.removeprefix("__label__") for label in want]


def test_a_file_that_is_not_a_whole_fasttext_model_is_refused(tmp_path):
    raw = Path(langid.default_model_path()).read_bytes()
    (tmp_path / "cut.ftz").write_bytes(raw[:-4])
    assert "does not end with a dense 176x16 output matrix" in read_model_file(str(tmp_path / "cut.ftz"), 176, 16)
    (tmp_path / "other.ftz").write_bytes(b"\x00" * 8 + raw[8:])
    assert "not a fastText model file of version 12" in read_model_file(str(tmp_path / "other.ftz"), 176, 16)
    whole = read_model_file(langid.default_model_path(), 176, 16)
    assert (whole.nwords, whole.bucket, whole.minn, whole.maxn, whole.prune_size) == (7235, 2_000_000, 2, 4, 42765)
    assert whole.output.shape == (176, 16)


def test_every_words_rows_are_fasttexts_subwords(real_texts):
    """The n-gram hashing and the pruned bucket table, word by word, against ``get_subwords``."""
    path = langid.default_model_path()
    model = langid.load_model(path)
    predictor = BatchPredictor.for_model(model, path)
    words = sorted({w for t in real_texts for w in t.split()} | {"</s>", "é", "ß" * 40, "😀", "a\udcff"[:1]})
    assert len(words) > 10_000
    indices = predictor.word_indices(pa.array(words, pa.large_string()))
    starts, ids = predictor.word_starts, predictor.word_ids
    got = [ids[starts[i] : starts[i + 1]].tolist() for i in indices]
    assert got == [[int(i) for i in model.get_subwords(w)[1]] for w in words]


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
