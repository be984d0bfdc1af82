"""Decontamination benchmark: planted WikiText-2 test passages in real web pages, and real pages sharing boilerplate.

    .venv/bin/python bench/decontaminate.py [--data DIR] [--planted 450] [--heldout 150] [--peer]
    .venv/bin/python bench/decontaminate.py --build-common 3     # rebuild curate/data/common_ngrams_web.npz

Pages: the main text of the real pages of the shared web corpus (``shared/data/web``, fast
extractor, cached in ``bench/out/web_texts.jsonl``) outside ``REFERENCE_FILES`` (the files the
shipped common n-grams were counted on: no page scored here taught the stage its boilerplate), at
least 50 words each, near-duplicates removed among themselves
(``bench/dedup_incremental.distinct_pool``: the default dedup).

Two protected sets, read as the stage reads them:

* ``wikitext``: WikiText-2 ``test.txt`` (``shared/data/text/wikitext-2``). ``--planted`` pages get
  a test passage pasted at a random word position, detokenised as a page would print it
  (``@-@`` -> ``-``, `` , `` -> ``, `` ...) and never across an ``<unk>``: a third a whole paragraph
  (its first 40-120 tokens), a third a 40-word window of one, a third a 20-word window (what the
  default gives up; punctuation tokens are not words);
* ``heldout``: ``--heldout`` of the real pages, drawn at random and taken out of the pages (as
  ``curate ablate`` holds web pages out for evaluation). The other pages of their sites share
  their footers, licence lines, menus and cookie notices, and are not near-duplicates of them:
  a page removed for ``heldout`` shares boilerplate (or a quotation) with a protected page.

Reported, for the stage's rules side by side (``min_words=1`` without common n-grams is the old
rule: any one verified 13-gram removes a page; ``min_words`` from 1 to 40; common n-grams off,
shipped, or counted on >= 2 / >= 5 reference pages): recall per kind of plant, and **false
removals**: clean pages (no plant) removed, split by the set that removed them, beside precision;
then the clean pages the default removes, each with its covered words and first matched n-gram. Speed (documents per second of one process, CPU seconds) for

* curate's ``decontaminate`` stage at its defaults;
* ``--peer``: datatrove 0.10.1's ``NGramsDecontFilter`` in ``.venv-bench`` (``make
  bench-env``), its index built from the WikiText text with its own
  ``NGramsDecontIndexer.compute_hashes`` (its ``run`` needs lighteval and the Hub). NLTK's
  Punkt sentence model cannot be downloaded offline: the child then calls ``word_tokenize``
  with ``preserve_line=True`` (no sentence split, a faster datatrove than released) and says so;
* a plain Python baseline over the WikiText text: lower case, ``\\w+`` words, a set of Python
  hashes of 13-grams.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH_PYTHON, ROOT, emit, load_average, shared_data, web_texts
from common import OUT as BENCH_OUT

from curate.wikitext import PLANTED_PASSAGES, detokenize_line

OUT = BENCH_OUT / "decontaminate"
NGRAM = 13


def test_paragraphs(path: Path) -> list[str]:
    from curate.decontaminate import ProtectedSet, protected_documents

    return [text for text, _ in protected_documents(ProtectedSet(name="wikitext", paths=[str(path)]))]


def clean_spans(paragraph: str) -> list[list[str]]:
    """Runs of words of a paragraph without ``<unk>`` (what a page could have printed)."""
    runs, current = [], []
    for word in paragraph.split():
        if word == "<unk>":
            if current:
                runs.append(current)
            current = []
        else:
            current.append(word)
    if current:
        runs.append(current)
    return runs


_WORD = re.compile(r"\w+")


def _partial(run: list[str], words: int, rng: random.Random) -> list[str]:
    """A contiguous part of ``run`` holding ``words`` real words (punctuation tokens do not count)."""
    is_word = [bool(_WORD.search(token)) for token in run]
    if sum(is_word) <= words:
        return run
    starts = [i for i in range(len(run)) if is_word[i] and sum(is_word[i:]) >= words]
    start = rng.choice(starts)
    end, seen = start, 0
    while seen < words:
        seen += is_word[end]
        end += 1
    return run[start:end]


PLANT_KINDS = ("whole", "window40", "window20")


def plant(pages: list[dict], paragraphs: list[str], n: int, seed: int = 0) -> tuple[list[dict], dict[str, str]]:
    """Pages with ``n`` of them carrying a passage (whole, 40-word and 20-word windows in turn); planted id -> kind."""
    rng = random.Random(seed)
    runs = [run for p in paragraphs for run in clean_spans(p) if len(run) >= 40]
    chosen = set(rng.sample(range(len(pages)), n))
    out, planted = [], {}
    for i, page in enumerate(pages):
        text = page["text"]
        if i in chosen:
            run = rng.choice(runs)
            kind = PLANT_KINDS[len(planted) % len(PLANT_KINDS)]
            if kind == "whole":
                passage = run[: rng.randint(40, min(120, len(run)))]
            else:
                passage = _partial(run, int(kind[len("window") :]), rng)
            words = text.split(" ")
            at = rng.randrange(len(words) + 1)
            text = " ".join(words[:at] + [detokenize_line(" ".join(passage), PLANTED_PASSAGES)] + words[at:])
            planted[page["id"]] = kind
        out.append({**page, "text": text})
    return out, planted


def hold_out(pages: list[dict], n: int, seed: int = 1) -> tuple[list[dict], list[dict]]:
    """(pages left, ``n`` pages held out at random)."""
    chosen = set(random.Random(seed).sample(range(len(pages)), n))
    return [p for i, p in enumerate(pages) if i not in chosen], [p for i, p in enumerate(pages) if i in chosen]


# --- the three contenders --------------------------------------------------------------------


def run_curate(docs: list[dict], sets: list, **params) -> tuple[dict[str, dict], dict]:
    """{removed id: {reason, covered words, n-gram}}, timings, for the stage with ``params`` over ``sets``."""
    import pyarrow as pa

    from curate.decontaminate import DecontaminateParams, DecontaminateStage
    from curate.schema import documents_from_pylist

    stage = DecontaminateStage(DecontaminateParams(sets=sets, ngram=NGRAM, **params), name="decontaminate")
    t0, c0 = time.perf_counter(), time.process_time()
    stage.setup()
    build = (time.perf_counter() - t0, time.process_time() - c0)
    batches = [documents_from_pylist([{"source": "web", **d} for d in docs[i : i + 1024]]) for i in range(0, len(docs), 1024)]
    t0, c0 = time.perf_counter(), time.process_time()
    removed = {}
    for batch in batches:
        out = stage(batch)
        for row in pa.Table.from_batches([out]).select(["id", "rejected_by", "rejected_value", "flags"]).to_pylist():
            if row["rejected_by"]:
                ngram = next((f.split("=", 1)[1] for f in row["flags"] or [] if ".ngram=" in f), "")
                removed[row["id"]] = {"reason": row["rejected_by"], "covered_words": row["rejected_value"], "ngram": ngram}
    seconds = (time.perf_counter() - t0, time.process_time() - c0)
    return removed, {
        "index_seconds": round(build[0], 2),
        "seconds": round(seconds[0], 2),
        "cpu_seconds": round(seconds[1], 2),
        "protected_ngrams": stage.counters["protected_ngrams"],
    }


def run_plain(docs: list[dict], paragraphs: list[str]) -> tuple[set[str], dict]:
    """A plain Python baseline: lower case, \\w+ words, Python's hash of each 13-gram in a set."""
    word = re.compile(r"\w+")

    def grams(text: str):
        words = word.findall(text.lower())
        return (hash(" ".join(words[i : i + NGRAM])) for i in range(len(words) - NGRAM + 1))

    t0 = time.perf_counter()
    index = {h for p in paragraphs for h in grams(p)}
    build = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    removed = {d["id"] for d in docs if any(h in index for h in grams(d["text"]))}
    return removed, {
        "index_seconds": round(build, 2),
        "seconds": round(time.perf_counter() - t0, 2),
        "cpu_seconds": round(time.process_time() - c0, 2),
    }


def run_datatrove(docs_file: Path, paragraphs_file: Path) -> dict:
    if not BENCH_PYTHON.exists():
        return {"skipped": f"{BENCH_PYTHON} missing: run `make bench-env`"}
    result = subprocess.run(
        [str(BENCH_PYTHON), __file__, "datatrove-child", str(docs_file), str(paragraphs_file)], capture_output=True, text=True, timeout=3600
    )
    if result.returncode != 0:
        return {"failed": result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def datatrove_child(docs_file: str, paragraphs_file: str) -> None:
    from datatrove.data import Document
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter

    import numpy as np

    config = NGramsDecontConfig(n_grams=NGRAM)
    paragraphs = json.loads(Path(paragraphs_file).read_text())
    docs = [json.loads(line) for line in Path(docs_file).open(encoding="utf-8")]
    indexer, tools, as_is = datatrove_indexer(config, paragraphs[0])
    with tempfile.TemporaryDirectory() as index_dir:
        t0 = time.perf_counter()
        hashes = {h for p in paragraphs for h in indexer.compute_hashes(p)}
        np.array(sorted(hashes), dtype="<u8").tofile(os.path.join(index_dir, "wikitext.index.hashes"))
        build = time.perf_counter() - t0
        decont = NGramsDecontFilter(index_dir, config=config)
        decont.load_index_hashes()
        documents = [Document(text=d["text"], id=d["id"]) for d in docs]
        t0, c0 = time.perf_counter(), time.process_time()
        removed = [doc.id for doc in documents if decont.filter(doc) is not True]
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(
        json.dumps(
            {
                "datatrove": as_is,
                "word_tokenizer": type(tools.tokenizer).__name__,
                "removed": removed,
                "index_seconds": round(build, 2),
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu, 2),
                "protected_ngrams": len(hashes),
            }
        )
    )


def datatrove_indexer(config, probe: str) -> tuple:
    """(indexer, the filter whose word tokenizer and hash it uses, how datatrove ran), without lighteval or a download."""
    from datatrove.pipeline.decont.n_grams import NGramsDecontFilter, NGramsDecontIndexer

    # NGramsDecontIndexer's constructor insists on lighteval (its run() loads tasks from the
    # Hub); compute_hashes, the part that turns text into n-gram hashes, needs only nltk and
    # xxhash: call it on an instance built without the constructor.
    with tempfile.TemporaryDirectory() as empty:
        tools = NGramsDecontFilter(empty, config=config)  # its word tokenizer and hash function
    indexer = object.__new__(NGramsDecontIndexer)
    indexer.config, indexer.tokenizer, indexer.hash_func = config, tools.tokenizer, tools.hash_func
    as_is = "ran as released"
    try:
        indexer.compute_hashes(probe)
    except LookupError as e:
        # (Only for languages datatrove tokenizes with NLTK; English uses spaCy's.) NLTK's
        # word_tokenize first splits sentences with the Punkt model, which NLTK downloads
        # (nltk.download("punkt_tab")): no network here. preserve_line=True skips only that
        # split; the Treebank word tokenizer still runs. This makes datatrove faster than as
        # released, so the comparison favours it.
        import nltk.tokenize

        original = nltk.tokenize.word_tokenize
        nltk.tokenize.word_tokenize = lambda text, language="english", preserve_line=False: original(text, language, preserve_line=True)
        as_is = f"sentence split off (preserve_line=True): {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}"
    return indexer, tools, as_is


def quality(removed: set[str], planted: set[str], n_docs: int) -> dict:
    hits = removed & planted
    clean_removed = removed - planted
    return {
        "recall": round(len(hits) / len(planted), 4),
        "precision": round(len(hits) / len(removed), 4) if removed else None,
        "clean_pages": n_docs - len(planted),
        "clean_removed": len(clean_removed),
        "clean_false_positive_rate": round(len(clean_removed) / (n_docs - len(planted)), 5),
    }


def rule_figures(removed: dict[str, dict], planted: dict[str, str], n_docs: int) -> dict:
    """Recall per kind of plant, false removals of clean pages per protected set, precision."""
    figures = quality(set(removed), set(planted), n_docs)
    for kind in PLANT_KINDS:
        ids = [i for i, k in planted.items() if k == kind]
        figures[f"recall_{kind}"] = round(sum(i in removed for i in ids) / len(ids), 4)
    for name in ("wikitext", "heldout"):
        figures[f"false_removals_{name}"] = sum(
            1 for i, r in removed.items() if i not in planted and r["reason"].startswith(f"decontaminate.{name}")
        )
    return figures


def protected_sets(data: Path, heldout: list[dict]) -> list:
    from curate.decontaminate import ProtectedSet

    OUT.mkdir(parents=True, exist_ok=True)
    heldout_file = OUT / "heldout.jsonl"
    with heldout_file.open("w", encoding="utf-8") as fh:
        for page in heldout:
            fh.write(json.dumps({"text": page["text"]}, ensure_ascii=False) + "\n")  # text only: the n-gram rule, not URLs
    wikitext = ProtectedSet(name="wikitext", paths=[str(data / "text" / "wikitext-2" / "test.txt")])
    return [wikitext, ProtectedSet(name="heldout", paths=[str(heldout_file)], kind="jsonl")]


REFERENCE_FILES = ("web-000.warc.gz", "web-001.warc.gz", "web-002.warc.gz", "web-003.warc.gz")  # the shipped sample's pages


def split_by_file(data: Path, texts: list[dict]) -> tuple[list[dict], list[dict]]:
    """(pages of REFERENCE_FILES, the other pages): the common n-grams come from pages the benchmark never scores."""
    file_of = {}
    with (data / "web" / "manifest.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            file_of.setdefault(row["url"], row["file"])
    reference = [t for t in texts if file_of.get(t["url"]) in REFERENCE_FILES]
    return reference, [t for t in texts if file_of.get(t["url"]) not in REFERENCE_FILES]


def build_common(data: Path, min_docs: int, path: Path) -> int:
    """Write the common n-grams of the reference pages (fast extractor text) to ``path``; how many."""
    import pyarrow as pa

    from curate.decontaminate import build_common_ngrams, save_common_ngrams

    reference, _ = split_by_file(data, web_texts(data))
    hashes = build_common_ngrams(pa.array([t["text"] for t in reference], type=pa.large_string()), NGRAM, min_docs)
    source = f"shared/data/web {', '.join(REFERENCE_FILES)}: {len(reference)} pages, fast extractor, 13-grams on >= {min_docs} pages"
    save_common_ngrams(str(path), hashes, NGRAM, min_docs, source)
    return len(hashes)


def compare_rules(data: Path, docs: list[dict], planted: dict[str, str], sets: list) -> None:
    """The stage's rules side by side (min_words=1 without common n-grams is the old rule), then the clean pages
    the default removes."""
    from curate.decontaminate import COMMON_NGRAMS, DecontaminateParams

    default = DecontaminateParams.__dataclass_fields__["min_words"].default
    common = {}
    for min_docs in (2, 5):
        common[min_docs] = str(OUT / f"common_ngrams_{min_docs}.npz")
        emit(step=f"common n-grams on >= {min_docs} reference pages", ngrams=build_common(data, min_docs, Path(common[min_docs])))
    rules = [
        ("old rule: any verified 13-gram", {"min_words": 1, "common_ngrams": "off"}),
        ("shared words only", {"min_words": default, "common_ngrams": "off"}),
        ("common n-grams only (shipped)", {"min_words": 1}),
        *((f"min_words={w}, common n-grams (shipped)", {"min_words": w}) for w in (13, 30, 40)),
        *((f"min_words={default}, common n-grams on >= {k} pages", {"common_ngrams": path}) for k, path in common.items()),
        (f"default: min_words={default}, common n-grams (shipped)", {}),
    ]
    emit(step="shipped common n-grams", path=os.path.relpath(COMMON_NGRAMS, ROOT))
    for label, params in rules:
        removed, timing = run_curate(docs, sets, **params)
        emit(
            step=label,
            **rule_figures(removed, planted, len(docs)),
            docs_per_second=round(len(docs) / timing["seconds"], 1),
            **timing,
            load=load_average(),
        )
    for page in sorted(set(removed) - set(planted)):
        emit(step="default: clean page removed", id=page, url=next(d["url"] for d in docs if d["id"] == page), **removed[page])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--planted", type=int, default=450)
    parser.add_argument("--heldout", type=int, default=150, help="real pages held out as a second protected set")
    parser.add_argument("--peer", action="store_true", help="also run datatrove's NGramsDecontFilter (needs .venv-bench)")
    parser.add_argument(
        "--build-common",
        type=int,
        metavar="MIN_DOCS",
        help="write curate's shipped common n-grams (n-grams on MIN_DOCS reference pages) and stop",
    )
    if len(sys.argv) > 1 and sys.argv[1] == "datatrove-child":
        datatrove_child(sys.argv[2], sys.argv[3])
        return
    args = parser.parse_args()
    from curate.decontaminate import COMMON_NGRAMS

    data = args.data or shared_data()
    if args.build_common:
        emit(step="built", path=COMMON_NGRAMS, ngrams=build_common(data, args.build_common, Path(COMMON_NGRAMS)))
        return
    docs, planted, paragraphs, sets = inputs(data, args.planted, args.heldout)
    compare_rules(data, docs, planted, sets)
    plain_removed, timing = run_plain(docs, paragraphs)
    emit(
        step="plain python set of hashes (wikitext only, any 13-gram)",
        **quality(plain_removed, set(planted), len(docs)),
        docs_per_second=round(len(docs) / timing["seconds"], 1),
        **timing,
        load=load_average(),
    )
    if args.peer:
        emit(
            step="datatrove NGramsDecontFilter (wikitext only, any 13-gram)", **peer_figures(docs, paragraphs, planted), load=load_average()
        )


def inputs(data: Path, n_planted: int, n_heldout: int) -> tuple[list[dict], dict[str, str], list[str], list]:
    """(pages with their plants, planted page -> kind, WikiText-2 test paragraphs, protected sets)."""
    from dedup_incremental import distinct_pool

    from curate.dedup import DedupParams

    pool = distinct_pool(split_by_file(data, web_texts(data))[1], DedupParams())
    pages, heldout = hold_out([{"id": f"page-{i:05d}", "url": p["url"], "text": p["text"]} for i, p in enumerate(pool)], n_heldout)
    paragraphs = test_paragraphs(data / "text" / "wikitext-2" / "test.txt")
    docs, planted = plant(pages, paragraphs, n_planted)
    OUT.mkdir(parents=True, exist_ok=True)
    sets = protected_sets(data, heldout)
    emit(
        step="inputs",
        pages=len(docs),
        planted=len(planted),
        heldout_pages=len(heldout),
        protected_paragraphs=len(paragraphs),
        load=load_average(),
    )
    return docs, planted, paragraphs, sets


def peer_figures(docs: list[dict], paragraphs: list[str], planted: dict[str, str]) -> dict:
    """datatrove's decontamination of the same pages against WikiText alone, in .venv-bench."""
    docs_file, paragraphs_file = OUT / "docs.jsonl", OUT / "paragraphs.json"
    with docs_file.open("w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
    paragraphs_file.write_text(json.dumps(paragraphs))
    peer = run_datatrove(docs_file, paragraphs_file)
    if "removed" in peer:
        peer_removed = set(peer.pop("removed"))
        peer.update(quality(peer_removed, set(planted), len(docs)), docs_per_second=round(len(docs) / peer["seconds"], 1))
    return peer


if __name__ == "__main__":
    main()
