"""curate/dedup.py without Spark: normalisation, MinHash identity with datasketch, LSH layout,
and the whole stage through ``run_local`` on real page texts."""

from __future__ import annotations

import hashlib
import json
import random

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curate.dedup import (
    DedupParams,
    DedupStage,
    MinHasher,
    MinHashParams,
    band_buckets,
    exact_keys,
    normalize_text,
    normalize_texts,
    normalize_url,
    optimal_bands,
    sha1_hash32_batch,
    word_shingle_hash32,
)
from curate.recipe import RecipeError, parse_recipe
from curate.schema import documents_from_pylist
from process_util import fresh_python

datasketch = pytest.importorskip("datasketch")


@pytest.fixture(scope="module")
def pages(data_dir) -> list[dict]:
    with (data_dir / "dedup" / "pages.jsonl").open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def edit(text: str, seed: int, every: int = 80) -> str:
    """Replace one word in ``every`` with a marker word: a light, deterministic edit."""
    rng = random.Random(seed)
    words = text.split()
    for i in range(rng.randrange(every), len(words), every):
        words[i] = f"edited{seed}x{i}"
    return " ".join(words)


def table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_batches([documents_from_pylist([{"source": "test", **r} for r in rows])])


def outcome(result: pa.Table) -> dict[str, tuple]:
    return {
        r["id"]: (r["rejected_by"], r["duplicate_of"], r["rejected_value"])
        for r in result.select(["id", "rejected_by", "duplicate_of", "rejected_value"]).to_pylist()
    }


# --- normalisation ---------------------------------------------------------------------------


def test_normalize_text_folds_case_punctuation_width_and_whitespace():
    assert normalize_text("  Hello,   WORLD!\n\tIt's  ﬁne…  ") == "hello world it s fine"
    assert normalize_text("Ｆｕｌｌ－ｗｉｄｔｈ ２０２４") == "full width 2024"
    assert normalize_text("Ça va? Très bien.") == "ça va très bien"
    assert normalize_text("") == ""
    assert normalize_text(None) == ""
    assert normalize_text("!!! ... ---") == ""


def test_exact_keys_equal_after_normalisation_and_none_without_words():
    keys = exact_keys(pa.array(["The cat sat.", "the   CAT sat", "The cat sat on", "", None, "?!"]))
    assert keys[0] == keys[1] and len(keys[0]) == 16
    assert keys[2] != keys[0]
    assert keys[3:] == [None, None, None]


@pytest.mark.parametrize(
    "url, key",
    [
        ("https://www.Example.com/a/b/?utm_source=x&id=3&fbclid=zz#top", "example.com/a/b?id=3"),
        ("http://example.com/a/b?id=3", "example.com/a/b?id=3"),
        ("https://example.com:443/", "example.com"),
        ("https://example.com:8080/x", "example.com:8080/x"),
        ("https://example.com/x?b=2&a=1&gclid=1", "example.com/x?a=1&b=2"),
        ("", None),
        (None, None),
        ("not a url", None),
        ("http://[::1/broken", None),
    ],
)
def test_normalize_url(url, key):
    assert normalize_url(url) == key


# --- MinHash ---------------------------------------------------------------------------------

EDGE_TEXTS = ["", "   ", "one", "Two words", "a b c d", "!!!", "a b c d e", "a b c d e f"]


@pytest.mark.parametrize("scheme", ["affine32", "legacy"])
def test_signatures_identical_to_datasketch_on_real_pages(pages, scheme):
    texts = [p["text"] for p in pages] + [edit(p["text"], 1) for p in pages[:4]] + EDGE_TEXTS
    hasher = MinHasher(num_perm=128, seed=7, ngram=5, scheme=scheme)
    ours = hasher.signatures(pa.array(texts))
    shingles = hasher.shingle_lists(texts)
    theirs = datasketch.MinHash.bulk(shingles, num_perm=128, seed=7, scheme=scheme)
    assert ours.shape == (len(texts), 128)
    for i, m in enumerate(theirs):
        assert np.array_equal(ours[i].astype(np.uint64), m.hashvalues.astype(np.uint64)), texts[i][:60]
    # empty documents have datasketch's empty signature
    assert (ours[len(texts) - len(EDGE_TEXTS)] == np.uint32(0xFFFFFFFF)).all()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=0, max_size=300), max_size=20))
def test_compiled_sha1_equals_hashlib(values):
    # Lengths around 55/56/64/119/120 bytes cross SHA-1's padding and block boundaries.
    expected = [int.from_bytes(hashlib.sha1(v).digest()[:4], "little") for v in values]
    assert sha1_hash32_batch(values).tolist() == expected


@pytest.mark.parametrize("length", [0, 1, 54, 55, 56, 57, 63, 64, 65, 119, 120, 1000])
def test_compiled_sha1_at_padding_boundaries(length):
    value = bytes(range(256)) * 4
    value = value[:length]
    assert sha1_hash32_batch([value]).tolist() == [int.from_bytes(hashlib.sha1(value).digest()[:4], "little")]


def test_batch_normalisation_mixing_ascii_and_other_rows_equals_one_by_one():
    texts = ["Plain ASCII, text.", "Ｆｕｌｌｗｉｄｔｈ ﬁ ligature", None, "", "Ünïcödé straße", "x"]
    batch = normalize_texts(pa.array(texts)).to_pylist()
    assert batch == [normalize_text(t) for t in texts]
    assert batch[1] == "fullwidth fi ligature"


def test_word_hash_signatures_identical_to_datasketch_with_that_hashfunc(pages):
    texts = [p["text"] for p in pages[:6]] + EDGE_TEXTS
    hasher = MinHasher(num_perm=64, seed=3, ngram=3, shingle_hash="words")
    ours = hasher.signatures(pa.array(texts))
    theirs = datasketch.MinHash.bulk(hasher.shingle_lists(texts), num_perm=64, seed=3, hashfunc=word_shingle_hash32)
    assert np.array_equal(ours, np.array([m.hashvalues for m in theirs]))


def test_shingles_of_short_and_empty_documents():
    hasher = MinHasher(ngram=3)
    assert hasher.shingle_lists(["", "!!", "Hello", "Hello, World", "a b c", "a b c d"]) == [
        [],
        [],
        [b"hello"],
        [b"hello world"],
        [b"a b c"],
        [b"a b c", b"b c d"],
    ]


@pytest.mark.parametrize("threshold, num_perm", [(0.5, 64), (0.7, 128), (0.8, 128), (0.8, 112), (0.9, 256), (0.6, 32)])
def test_optimal_bands_match_datasketch(threshold, num_perm):
    lsh = datasketch.MinHashLSH(threshold=threshold, num_perm=num_perm)
    assert optimal_bands(threshold, num_perm) == (lsh.b, lsh.r)


def test_params_validation():
    with pytest.raises(ValueError, match="exceeds num_perm"):
        MinHashParams(num_perm=64, bands=9, rows=8).check()
    with pytest.raises(ValueError, match="give both or neither"):
        MinHashParams(bands=4).check()
    with pytest.raises(ValueError, match="threshold"):
        DedupParams(minhash=MinHashParams(threshold=1.5)).validate()
    with pytest.raises(ValueError, match="every rule is off"):
        DedupParams(exact=False, url=False, minhash=None).validate()
    assert MinHashParams(num_perm=64, bands=8, rows=8).band_layout() == (8, 8)
    assert MinHashParams().band_layout() == (14, 8)


def test_recipe_keys_are_type_checked(tmp_path):
    base = {"name": "t", "output": str(tmp_path / "run"), "sources": [{"name": "s", "kind": "jsonl", "paths": ["x.jsonl"]}]}
    recipe = parse_recipe(
        {**base, "stages": [{"stage": "dedup", "keep": "longest", "minhash": {"num_perm": 64, "bands": 16, "rows": 4, "verify": True}}]},
        check_files=False,
    )
    params = recipe.stages[0].params
    assert params.keep == "longest" and params.minhash.bands == 16 and params.minhash.verify is True
    assert parse_recipe({**base, "stages": [{"stage": "dedup", "minhash": None}]}, check_files=False).stages[0].params.minhash is None
    with pytest.raises(RecipeError, match=r"stages\[0\]: minhash.bands x rows = 16 x 8 = 128 exceeds num_perm = 64"):
        parse_recipe({**base, "stages": [{"stage": "dedup", "minhash": {"num_perm": 64, "bands": 16, "rows": 8}}]}, check_files=False)
    with pytest.raises(RecipeError, match=r"stages\[0\].keep: expected one of"):
        parse_recipe({**base, "stages": [{"stage": "dedup", "keep": "first_read"}]}, check_files=False)


# --- the stage -------------------------------------------------------------------------------


def chain_texts(pages) -> tuple[str, str, str]:
    """A~B and B~C share LSH buckets, A and C do not: only transitivity joins A and C."""
    words = " ".join(p["text"] for p in pages[:3]).split()[:700]
    return " ".join(words[0:400]), " ".join(words[60:460]), " ".join(words[120:520])


CHAIN = MinHashParams(num_perm=128, threshold=0.7, bands=16, rows=8, seed=1)


def test_chain_precondition_only_neighbours_share_buckets(pages):
    a, b, c = chain_texts(pages)
    buckets = band_buckets(MinHasher.from_params(CHAIN).signatures(pa.array([a, b, c])), 16, 8)
    shared = lambda i, j: bool((buckets[i] == buckets[j]).any())  # noqa: E731
    assert shared(0, 1) and shared(1, 2) and not shared(0, 2)


@pytest.mark.parametrize("verify", [False, True])
def test_chain_merges_into_one_cluster(pages, verify):
    a, b, c = chain_texts(pages)
    params = DedupParams(minhash=MinHashParams(**{**CHAIN.__dict__, "verify": verify}))
    stage = DedupStage(params)
    result = stage.run_local(table([{"id": "doc-c", "text": c}, {"id": "doc-a", "text": a}, {"id": "doc-b", "text": b}]))
    assert outcome(result) == {
        "doc-c": ("dedup.minhash", "doc-a", 3.0),
        "doc-a": (None, None, None),
        "doc-b": ("dedup.minhash", "doc-a", 3.0),
    }
    assert result.column("id").to_pylist() == ["doc-c", "doc-a", "doc-b"]  # input order kept
    assert stage.counters["minhash_clusters"] == 1
    assert sorted(stage.last_clusters) == [("doc-a", "doc-a", 3, True), ("doc-b", "doc-a", 3, False), ("doc-c", "doc-a", 3, False)]


def test_identical_documents_with_different_ids_keep_one(pages):
    text = pages[0]["text"]
    rows = [{"id": "z", "text": text}, {"id": "m", "text": text.upper() + " !!"}, {"id": "k", "text": text}]
    assert outcome(DedupStage(DedupParams()).run_local(table(rows))) == {
        "z": ("dedup.exact", "k", 3.0),
        "m": ("dedup.exact", "k", 3.0),
        "k": (None, None, None),
    }
    # Without the exact rule MinHash catches them (Jaccard 1), as one cluster.
    only_minhash = DedupStage(DedupParams(exact=False, url=False)).run_local(table(rows))
    assert outcome(only_minhash) == {"z": ("dedup.minhash", "k", 3.0), "m": ("dedup.minhash", "k", 3.0), "k": (None, None, None)}


def test_empty_and_one_word_documents():
    rows = [
        {"id": "e1", "text": ""},
        {"id": "e2", "text": ""},
        {"id": "e3", "text": None},
        {"id": "p1", "text": "?!"},
        {"id": "w1", "text": "Hello"},
        {"id": "w2", "text": "hello."},
        {"id": "w3", "text": "world"},
    ]
    result = DedupStage(DedupParams(exact=False)).run_local(table(rows))
    # no words: never a duplicate; one word: one shingle, so only the same word matches
    assert outcome(result) == {
        "e1": (None, None, None),
        "e2": (None, None, None),
        "e3": (None, None, None),
        "p1": (None, None, None),
        "w1": (None, None, None),
        "w2": ("dedup.minhash", "w1", 2.0),
        "w3": (None, None, None),
    }
    assert outcome(DedupStage(DedupParams()).run_local(table(rows)))["w2"] == ("dedup.exact", "w1", 2.0)


def test_url_rule_keeps_newest_copy():
    rows = [
        {
            "id": "a",
            "text": "first version of the page",
            "url": "https://www.example.com/news/?utm_source=feed",
            "warc_date": "2024-01-01T00:00:00Z",
        },
        {"id": "b", "text": "second version, rewritten", "url": "http://example.com/news", "warc_date": "2024-03-01T00:00:00Z"},
        {"id": "c", "text": "an undated copy", "url": "https://example.com/news#comments", "warc_date": None},
        {"id": "d", "text": "another page entirely", "url": "https://example.com/other", "warc_date": "2024-05-01T00:00:00Z"},
        {"id": "e", "text": "no url at all", "url": None},
    ]
    assert outcome(DedupStage(DedupParams(minhash=None)).run_local(table(rows))) == {
        "a": ("dedup.url", "b", 3.0),
        "b": (None, None, None),
        "c": ("dedup.url", "b", 3.0),
        "d": (None, None, None),
        "e": (None, None, None),
    }


@pytest.mark.parametrize(
    "keep, survivor",
    [("first_id", "a"), ("longest", "c"), ("newest", "b"), ("oldest", "d"), ("highest_score", "d")],
)
def test_keep_policies(keep, survivor):
    text = "the same words in every copy of this short document"
    rows = [
        {"id": "a", "text": text, "warc_date": "2024-01-01", "scores": {"classify.quality": 0.2}},
        {"id": "b", "text": text + ".", "warc_date": "2024-06-01", "scores": {"classify.quality": 0.5}},
        {"id": "c", "text": text.upper() + "!!!", "warc_date": None, "scores": {}},
        {"id": "d", "text": text, "warc_date": "2023-01-01", "scores": {"classify.quality": 0.9}},
        {"id": "e", "text": text, "warc_date": "2024-06-01", "scores": {"classify.quality": 0.5}},
    ]
    result = outcome(DedupStage(DedupParams(keep=keep, url=False)).run_local(table(rows)))
    assert result[survivor] == (None, None, None)
    assert all(v == ("dedup.exact", survivor, 5.0) for k, v in result.items() if k != survivor)


def test_near_duplicates_of_real_pages_recover_known_clusters(pages):
    rows, truth = [], {}
    for c, page in enumerate(pages):
        for v in range(3):
            doc_id = f"p{c:02d}-{v}"
            rows.append({"id": doc_id, "text": page["text"] if v == 0 else edit(page["text"], seed=c * 10 + v, every=200)})
            truth[doc_id] = f"p{c:02d}-0"
    stage = DedupStage(DedupParams(exact=False, url=False))
    result = outcome(stage.run_local(table(rows)))
    for doc_id, kept in truth.items():
        expected = (None, None, None) if doc_id == kept else ("dedup.minhash", kept, 3.0)
        assert result[doc_id] == expected, doc_id
    assert stage.counters["minhash_clusters"] == len(pages)


def test_stage_name_prefixes_reasons_and_duplicate_ids_are_refused():
    rows = [{"id": "a", "text": "same text here"}, {"id": "b", "text": "same text here"}]
    result = DedupStage(DedupParams(), name="dedup_web").run_local(table(rows))
    assert outcome(result)["b"] == ("dedup_web.exact", "a", 2.0)
    with pytest.raises(ValueError, match="document id 'a' occurs more than once"):
        DedupStage(DedupParams()).run_local(table(rows + [{"id": "a", "text": "x"}]))


WORDS = ["alpha", "beta", "gamma", "delta", "omega", "Alpha!", ""]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(st.sampled_from(WORDS), max_size=12), min_size=1, max_size=14), st.randoms(use_true_random=False))
def test_run_local_invariants(word_lists, rng):
    rows = [{"id": f"d{i:02d}", "text": " ".join(ws), "url": f"https://x.org/{i % 3}"} for i, ws in enumerate(word_lists)]
    stage = DedupStage(DedupParams(minhash=MinHashParams(num_perm=32, bands=8, rows=4, ngram=2)))
    first = outcome(stage.run_local(table(rows)))
    shuffled = rows[:]
    rng.shuffle(shuffled)
    assert outcome(DedupStage(stage.params).run_local(table(shuffled))) == first
    order = {None: 3, "dedup.exact": 0, "dedup.url": 1, "dedup.minhash": 2}
    for doc_id, (reason, kept, value) in first.items():
        if reason is None:
            assert kept is None
            continue
        # A duplicate points at the survivor of its rule, which only a later rule can remove.
        assert order[first[kept][0]] > order[reason]
        assert value >= 2
    texts = {r["id"]: normalize_text(r["text"]) for r in rows}
    survivors = [d for d, (reason, _, _) in first.items() if reason is None and texts[d]]
    assert len({texts[d] for d in survivors}) == len(survivors)  # no exact duplicates survive


@pytest.mark.parametrize("shingle_hash", ["sha1", "words"])
def test_signatures_do_not_depend_on_batch_slicing(pages, monkeypatch, shingle_hash):
    import curate.dedup as dedup

    texts = pa.array([p["text"] for p in pages] + EDGE_TEXTS)
    hasher = MinHasher(num_perm=32, shingle_hash=shingle_hash)
    whole = hasher.signatures(texts)
    monkeypatch.setattr(dedup, "_WORDS_PER_PASS", 700)  # forces many passes over a few pages each
    assert np.array_equal(hasher.signatures(texts), whole)
    sliced_words = dedup.document_words(texts).slice(3, 9)
    assert np.array_equal(hasher.signatures(sliced_words), whole[3:12])


def test_warm_up_loads_the_minhash_kernels_only_when_minhash_is_on():
    code = (
        "import sys\n"
        "from curate.dedup import DedupParams, DedupStage\n"
        "DedupStage(DedupParams(minhash=None)).warm_up()\n"
        "print('numba' in sys.modules)\n"
        "DedupStage(DedupParams()).warm_up()\n"
        "print('numba' in sys.modules)\n"
    )
    assert fresh_python(code).split() == ["False", "True"]


# --- shipped defaults (issue #22) ------------------------------------------------------------


def edited_copies(pages: list[dict], every: int) -> list[dict]:
    """Each page and two copies with one word in ``every`` replaced and a footer line added."""
    rows = []
    for c, page in enumerate(pages):
        rows.append({"id": f"p{c:02d}-0", "text": page["text"]})
        for v in (1, 2):
            text = edit(page["text"], seed=c * 10 + v, every=every) + "\nShare this article on social media."
            rows.append({"id": f"p{c:02d}-{v}", "text": text})
    return rows


def copies_removed(rows: list[dict], minhash: MinHashParams) -> tuple[int, int]:
    """(copies removed in favour of their own page, documents removed in favour of another page)."""
    result = outcome(DedupStage(DedupParams(exact=False, url=False, minhash=minhash)).run_local(table(rows)))
    same = sum(1 for doc, (_, kept, _) in result.items() if kept and kept[:3] == doc[:3])
    other = sum(1 for doc, (_, kept, _) in result.items() if kept and kept[:3] != doc[:3])
    return same, other


def test_default_layout_is_finewebs_14_bands_of_8_rows():
    params = MinHashParams()
    assert (params.ngram, params.num_perm, params.threshold, params.band_layout()) == (5, 112, 0.65, (14, 8))
    assert DedupParams().minhash == params


@pytest.mark.parametrize(
    "every, old, new",
    [
        (100, 31, 32),  # 1% of words replaced, 5-gram Jaccard 0.87-0.90: both find (nearly) all
        (33, 5, 21),  # 3%, Jaccard about 0.73: the old 9 x 13 layout missed most copies
        (20, 0, 13),  # 5%, Jaccard about 0.60: the new default finds some, by design not all
        (10, 0, 0),  # 10%, Jaccard about 0.34: not near-duplicates for either
    ],
)
def test_default_removes_more_edited_copies_of_real_pages_than_the_old_one(pages, every, old, new):
    rows = edited_copies(pages, every)
    assert copies_removed(rows, MinHashParams(num_perm=128, threshold=0.8)) == (old, 0)
    assert copies_removed(rows, MinHashParams()) == (new, 0)


def test_default_never_merges_distinct_real_pages(pages):
    rows = [{"id": f"p{c:02d}-0", "text": page["text"]} for c, page in enumerate(pages)]
    rows += [{"id": f"q{c:02d}-0", "text": page["text"] + "\nComments are closed."} for c, page in enumerate(pages[:4])]
    result = outcome(DedupStage(DedupParams(exact=False, url=False)).run_local(table(rows)))
    assert {doc for doc, (_, kept, _) in result.items() if kept} == {f"q{c:02d}-0" for c in range(4)}


# --- shingles of each language's words (minhash.words: by_language) ---------------------------


def swap_letters(text: str, every: int) -> str:
    """Two neighbouring letters swapped once in ``every`` characters: a light edit that needs no spaces."""
    chars = list(text)
    for i in range(every // 2, len(chars) - 1, every):
        if chars[i].isalpha() and chars[i + 1].isalpha():
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def spaceless_corpus(data_dir) -> pa.Table:
    """The Thai, Chinese, Japanese and Korean pages of tests/data/multilingual, each with a copy edited every 150 characters."""
    lines = (data_dir / "multilingual" / "pages.jsonl").read_text(encoding="utf-8").splitlines()
    pages = {page["language"]: page for page in map(json.loads, lines)}
    rows = []
    for language in ("th", "zh", "ja", "ko"):
        text = pages[language]["text"]
        rows.append({"id": f"{language}-0", "text": text, "language": language})
        rows.append({"id": f"{language}-1", "text": swap_letters(text, 150), "language": language})
    return table(rows)


def test_words_by_language_find_near_duplicates_that_whitespace_shingles_miss(data_dir):
    corpus = spaceless_corpus(data_dir)

    def removed(words: str) -> dict[str, tuple]:
        result = outcome(DedupStage(DedupParams(exact=False, url=False, minhash=MinHashParams(words=words))).run_local(corpus))
        return {doc: decision for doc, decision in result.items() if decision[0]}

    # Thai, Chinese and Japanese put no spaces between words: whitespace shingles are clauses
    # (Jaccard 0.60, 0.32, 0.44 here), their tokenizers' words give 0.83, 0.85, 0.89. Korean
    # has spaces between phrases: both find its copy.
    assert removed("whitespace") == {"ko-1": ("dedup.minhash", "ko-0", 2.0)}
    assert removed("by_language") == {f"{lang}-1": ("dedup.minhash", f"{lang}-0", 2.0) for lang in ("th", "zh", "ja", "ko")}


def test_words_by_language_are_each_languages_tokens_normalised(data_dir):
    from curate.dedup import document_words, shingle_words
    from curate.words import split_words

    corpus = spaceless_corpus(data_dir).to_batches()[0]
    by_language = shingle_words(corpus, "by_language").to_pylist()
    assert shingle_words(corpus, "whitespace").to_pylist() == document_words(corpus.column("text")).to_pylist()
    chinese = corpus.column("text")[2].as_py()
    assert by_language[2] == document_words(pa.array([" ".join(split_words(chinese, "zh"))])).to_pylist()[0]
    assert len(by_language[2]) == 363 and len(document_words(pa.array([chinese]))[0]) == 51  # jieba's words vs clauses


def test_words_by_language_is_named_in_the_cross_run_index_settings():
    from curate.dedup_index import index_settings

    assert "words" not in index_settings(DedupParams())["minhash"]  # indexes made before the key still match
    assert index_settings(DedupParams(minhash=MinHashParams(words="by_language")))["minhash"]["words"] == "by_language"
    with pytest.raises(ValueError, match="minhash.words"):
        MinHashParams(words="spaces").check()
