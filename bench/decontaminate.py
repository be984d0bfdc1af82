"""Decontamination benchmark: planted WikiText-2 test passages in real web pages.

    .venv/bin/python bench/decontaminate.py [--data DIR] [--planted 600] [--peer]

Protected text: WikiText-2 ``test.txt`` (``shared/data/text/wikitext-2``), read as the stage
reads a ``text`` set. Pages: the main text of the real pages of the shared web corpus
(``shared/data/web``, fast extractor, cached in ``bench/out/web_texts.jsonl``), at least 50
words each. ``--planted`` of them get a test passage pasted at a random word position,
detokenised as a page would print it (``@-@`` -> ``-``, `` , `` -> ``, `` ...) and never across
an ``<unk>``: half a whole paragraph (its first 40-120 tokens), half a part of one (15-30
consecutive words, punctuation tokens not counted). The other pages are left as they are ("clean").

Reported: recall on the planted pages, precision over everything removed, removals among the
clean pages (each with its matched n-gram: a verified 13-word overlap with the test set, so
a clean page removed is either a real overlap or a false positive to look at), and documents
per second of one process (CPU seconds too) for

* curate's ``decontaminate`` stage;
* ``--peer``: datatrove 0.10.1's ``NGramsDecontFilter`` in ``.venv-bench`` (``make
  bench-env``), its index built from the same protected text with its own
  ``NGramsDecontIndexer.compute_hashes`` (its ``run`` needs lighteval and the Hub). NLTK's
  Punkt sentence model cannot be downloaded offline: the child then calls ``word_tokenize``
  with ``preserve_line=True`` (no sentence split, a faster datatrove than released) and says so;
* a plain Python baseline: lower case, ``\\w+`` words, a set of Python hashes of 13-grams.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"
OUT = ROOT / "bench" / "out" / "decontaminate"
NGRAM = 13

from curate.wikitext import PLANTED_PASSAGES, detokenize_line  # noqa: E402


def emit(**figures) -> None:
    print(json.dumps(figures), flush=True)


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


def plant(pages: list[dict], paragraphs: list[str], n: int, seed: int = 0) -> tuple[list[dict], set[str]]:
    """Pages with ``n`` of them carrying a passage (half whole, half partial); the planted ids."""
    rng = random.Random(seed)
    runs = [run for p in paragraphs for run in clean_spans(p) if len(run) >= 40]
    chosen = set(rng.sample(range(len(pages)), n))
    out, planted = [], set()
    for i, page in enumerate(pages):
        text = page["text"]
        if i in chosen:
            run = rng.choice(runs)
            if len(planted) % 2 == 0:
                passage = run[: rng.randint(40, min(120, len(run)))]
            else:
                passage = _partial(run, rng.randint(15, 30), rng)
            words = text.split(" ")
            at = rng.randrange(len(words) + 1)
            text = " ".join(words[:at] + [detokenize_line(" ".join(passage), PLANTED_PASSAGES)] + words[at:])
            planted.add(page["id"])
        out.append({**page, "text": text})
    return out, planted


# --- the three contenders --------------------------------------------------------------------


def run_curate(docs: list[dict], protected: Path) -> tuple[set[str], dict, dict]:
    import pyarrow as pa

    from curate.decontaminate import DecontaminateParams, DecontaminateStage, ProtectedSet
    from curate.schema import documents_from_pylist

    stage = DecontaminateStage(
        DecontaminateParams(sets=[ProtectedSet(name="wikitext", paths=[str(protected)])], ngram=NGRAM), name="decontaminate"
    )
    t0, c0 = time.perf_counter(), time.process_time()
    stage.setup()
    build = (time.perf_counter() - t0, time.process_time() - c0)
    batches = [documents_from_pylist([{"source": "web", **d} for d in docs[i : i + 1024]]) for i in range(0, len(docs), 1024)]
    t0, c0 = time.perf_counter(), time.process_time()
    removed, ngrams = set(), {}
    for batch in batches:
        out = stage(batch)
        for row in pa.Table.from_batches([out]).select(["id", "rejected_by", "flags"]).to_pylist():
            if row["rejected_by"]:
                removed.add(row["id"])
                ngrams[row["id"]] = next((f.split("=", 1)[1] for f in row["flags"] or [] if ".ngram=" in f), row["rejected_by"])
    seconds = (time.perf_counter() - t0, time.process_time() - c0)
    return (
        removed,
        ngrams,
        {
            "index_seconds": round(build[0], 2),
            "seconds": round(seconds[0], 2),
            "cpu_seconds": round(seconds[1], 2),
            "protected_ngrams": stage.counters["protected_ngrams"],
        },
    )


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
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter, NGramsDecontIndexer

    import numpy as np

    config = NGramsDecontConfig(n_grams=NGRAM)
    paragraphs = json.loads(Path(paragraphs_file).read_text())
    docs = [json.loads(line) for line in Path(docs_file).open(encoding="utf-8")]
    # NGramsDecontIndexer's constructor insists on lighteval (its run() loads tasks from the
    # Hub); compute_hashes, the part that turns text into n-gram hashes, needs only nltk and
    # xxhash: call it on an instance built without the constructor.
    with tempfile.TemporaryDirectory() as empty:
        tools = NGramsDecontFilter(empty, config=config)  # its word tokenizer and hash function
    indexer = object.__new__(NGramsDecontIndexer)
    indexer.config, indexer.tokenizer, indexer.hash_func = config, tools.tokenizer, tools.hash_func
    as_is = "ran as released"
    try:
        indexer.compute_hashes(paragraphs[0])
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--planted", type=int, default=600)
    parser.add_argument("--peer", action="store_true", help="also run datatrove's NGramsDecontFilter (needs .venv-bench)")
    if len(sys.argv) > 1 and sys.argv[1] == "datatrove-child":
        datatrove_child(sys.argv[2], sys.argv[3])
        return
    args = parser.parse_args()
    from dedup_incremental import default_data, web_texts

    data = args.data or default_data()
    protected = data / "text" / "wikitext-2" / "test.txt"
    texts = web_texts(data)
    pages = [{"id": f"page-{i:05d}", "url": t["url"], "text": t["text"]} for i, t in enumerate(texts) if len(t["text"].split()) >= 50]
    paragraphs = test_paragraphs(protected)
    docs, planted = plant(pages, paragraphs, args.planted)
    emit(step="inputs", pages=len(docs), planted=len(planted), protected_paragraphs=len(paragraphs), load=os.getloadavg())

    removed, ngrams, timing = run_curate(docs, protected)
    emit(
        step="curate",
        **quality(removed, planted, len(docs)),
        docs_per_second=round(len(docs) / timing["seconds"], 1),
        **timing,
        load=os.getloadavg(),
    )
    for page in sorted(removed - planted):
        emit(step="curate clean page removed", id=page, url=next(d["url"] for d in docs if d["id"] == page), ngram=ngrams[page])

    plain_removed, timing = run_plain(docs, paragraphs)
    emit(
        step="plain python set of hashes",
        **quality(plain_removed, planted, len(docs)),
        docs_per_second=round(len(docs) / timing["seconds"], 1),
        **timing,
        load=os.getloadavg(),
    )

    if args.peer:
        OUT.mkdir(parents=True, exist_ok=True)
        docs_file, paragraphs_file = OUT / "docs.jsonl", OUT / "paragraphs.json"
        with docs_file.open("w", encoding="utf-8") as fh:
            for d in docs:
                fh.write(json.dumps({"id": d["id"], "text": d["text"]}) + "\n")
        paragraphs_file.write_text(json.dumps(paragraphs))
        peer = run_datatrove(docs_file, paragraphs_file)
        if "removed" in peer:
            peer_removed = set(peer.pop("removed"))
            peer.update(quality(peer_removed, planted, len(docs)), docs_per_second=round(len(docs) / peer["seconds"], 1))
        emit(step="datatrove NGramsDecontFilter", **peer, load=os.getloadavg())


if __name__ == "__main__":
    main()
