"""curate's per-language filters against datatrove's FineWeb-2 filters, per stage and per language.

On the real pages of the shared data (the web corpus ``web/web-*.warc.gz`` and the trafilatura
evaluation pages), main text by trafilatura with ``favor: precision`` (FineWeb-2's extractor
setting), language by curate's ``langid`` (lid.176, as ISO 639-3 + script pairs), this runs
FineWeb-2's three filters with each document's language settings (FineWeb-2's
``fineweb-2-pipeline.py`` step 5: Gopher repetition, FineWeb quality, Gopher quality) twice over
the same texts:

* curate's ``gopher_repetition``, ``fineweb`` and ``gopher_quality`` stages with
  ``language_settings: fineweb2`` and the keys of ``pipelines/recipes/fineweb2.yaml``;
* datatrove 0.10.1's ``GopherRepetitionFilter``, ``FineWebQualityFilter`` and
  ``GopherQualityFilter`` built exactly as FineWeb-2's pipeline builds them from the same
  ``configs/<pair>.yml``, in the bench environment (``.venv-bench``) as a child process.

Each side runs in a fresh process of its own over the same file of documents (curate twice: as it
runs, and with its spaCy speed-up ``CURATE_SPEEDUP_SPACY_WORDS`` off). Printed per stage and per
language: documents, how often keep/remove agree, whether the two word tokenizers produced the
same words (compared document by document), documents/s of one process per core (CPU time of the
process, tokenizers loaded beforehand, word caches emptied before each timed pass) for each and
the ratios, and every disagreement with both sides' reasons and curate's measured value. Then the
words/s of each word tokenizer curate uses against the English regular-expression splitter.

    .venv/bin/python bench/languages.py [--languages deu_Latn,rus_Cyrl,...] [--min-docs 8] [--repeat 3]

datatrove's packages for the tokenizers it does not have itself (PyThaiNLP, indic-nlp, jieba,
SudachiPy, kiwipiepy, pyvi) are curate's, the same versions: the child process finds them
after its own site-packages.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH_PYTHON, ROOT, cached_jsonl, eval_pages, shared_data  # noqa: E402
from common import OUT as BENCH_OUT  # noqa: E402

OUT = BENCH_OUT / "languages"
CORPUS = OUT / "pages.jsonl"
STAGES = ("gopher_repetition", "fineweb", "gopher_quality")  # FineWeb-2's order


# --- corpus: trafilatura (precision) text of every real page, with curate's language -------------


def html_pages():
    """(source, url, html) of the web corpus's responses and the trafilatura evaluation pages."""
    from curate.warc import read_warc

    data = shared_data()
    for path in sorted((data / "web").glob("web-*.warc.gz")):
        for batch in read_warc(str(path), "web"):
            for record in batch.to_pylist():
                yield path.name, record["url"], record["html"] or ""
    for name, url, html in eval_pages(data):
        yield "trafilatura-eval", url or name, html


def build_corpus() -> list[dict]:
    from curate.extract import html_to_text
    from curate.langid import predict_languages
    from curate.language_settings import language_script

    rows = []
    for source, url, html in html_pages():
        text = html_to_text(html, url, favor="precision")
        if text:
            rows.append({"id": f"{len(rows):05d}", "source": source, "url": url, "text": text})
    codes, scores = predict_languages([r["text"] for r in rows])
    for row, code, score in zip(rows, codes, scores):
        row["language"] = language_script(code) or code
        row["language_score"] = score
    return rows


def load_corpus() -> list[dict]:
    """The extracted pages, built once into ``bench/out/languages/pages.jsonl``."""
    return cached_jsonl(CORPUS, build_corpus)


# --- datatrove's side: a child process in the bench environment --------------------------------

# A language without a FineWeb-2 file (English) is judged by curate's stages with their own
# (Gopher's and FineWeb's English) thresholds: datatrove's defaults are the same numbers.
ENGLISH_DEFAULTS = {
    "dup_line_frac": 0.3,
    "top_n_grams": ((2, 0.2), (3, 0.18), (4, 0.16)),
    "dup_n_grams": ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10)),
    "line_punct_thr": 0.12,
    "new_line_ratio": 0.3,
    "max_avg_word_length": 10,
    "min_avg_word_length": 3,
    "stopwords": ["the", "be", "to", "of", "and", "that", "have", "with"],
    "max_non_alpha_words_ratio": 0.8,
}


def datatrove_filters(pair: str) -> dict:
    """FineWeb-2's fineweb-2-pipeline.py, step 5, for one language (run in .venv-bench)."""
    import yaml
    from datatrove.pipeline.filters import FineWebQualityFilter, GopherQualityFilter, GopherRepetitionFilter

    path = ROOT / "curate" / "data" / "fineweb2" / "configs" / f"{pair}.yml"
    config = yaml.safe_load(path.read_text()) if path.exists() else ENGLISH_DEFAULTS
    return {
        "gopher_repetition": GopherRepetitionFilter(
            language=pair,
            dup_para_frac=0,
            dup_line_char_frac=0,
            dup_para_char_frac=0,
            dup_line_frac=config["dup_line_frac"],
            top_n_grams=config["top_n_grams"],
            dup_n_grams=config["dup_n_grams"],
        ),
        "fineweb": FineWebQualityFilter(
            language=pair,
            short_line_thr=999,
            char_duplicates_ratio=0.1,
            line_punct_thr=config["line_punct_thr"],
            new_line_ratio=config["new_line_ratio"],
        ),
        "gopher_quality": GopherQualityFilter(
            language=pair,
            max_avg_word_length=config["max_avg_word_length"],
            min_avg_word_length=config["min_avg_word_length"],
            stop_words=config["stopwords"],
            max_non_alpha_words_ratio=config["max_non_alpha_words_ratio"],
            min_stop_words=2,
        ),
    }


def datatrove_verdict(f, d: dict) -> tuple[bool, str]:
    from datatrove.data import Document

    try:
        v = f.filter(Document(text=d["text"], id=d["id"]))
    except ZeroDivisionError:  # e.g. FineWeb's list_ratio on a text without words
        return False, "ZeroDivisionError"
    return (True, "") if v is True else (False, v[1] if isinstance(v, tuple) else "removed")


def datatrove_words(by_language: dict[str, list[dict]], result: dict) -> dict:
    """Each language's tokenizer loaded (seconds into ``result``) and every document's words
    (count and hash); returns the filters per language."""
    import hashlib

    from datatrove.utils import word_tokenizers

    filters = {}
    for pair, group in by_language.items():
        start = time.perf_counter()
        tokenizer = word_tokenizers.load_word_tokenizer(pair)
        tokenizer.word_tokenize(group[0]["text"][:2000])  # loads the model / dictionary
        result["load_s"][pair] = time.perf_counter() - start
        filters[pair] = datatrove_filters(pair)
        for d in group:
            words = tokenizer.word_tokenize(d["text"])
            result["words"][d["id"]] = [len(words), hashlib.sha1("\x00".join(words).encode()).hexdigest()]
    return filters


def datatrove_timed(by_language: dict[str, list[dict]], filters: dict, repeat: int, result: dict) -> None:
    """Decisions and CPU seconds per stage and language, then of the three in a row."""
    from datatrove.utils import text as dt_text

    for stage in STAGES:
        for pair, group in by_language.items():
            f = filters[pair][stage]
            for d in group:
                result["decisions"][stage][d["id"]] = datatrove_verdict(f, d)
            dt_text.split_into_parts.cache_clear()
            start = time.process_time()
            for _ in range(repeat):
                for d in group:
                    datatrove_verdict(f, d)
                dt_text.split_into_parts.cache_clear()  # no words carried from one pass to the next
            result["cpu"][f"{stage}|{pair}"] = time.process_time() - start
    for pair, group in by_language.items():  # the three in a row, as FineWeb-2 runs them
        chain = [filters[pair][s] for s in STAGES]
        start = time.process_time()
        for _ in range(repeat):
            for d in group:
                all(datatrove_verdict(f, d)[0] for f in chain)
            dt_text.split_into_parts.cache_clear()
        result["cpu"][f"chain|{pair}"] = time.process_time() - start


def datatrove_child(docs_file: str, out_file: str, repeat: int) -> None:
    """Run in .venv-bench: FineWeb-2's three filters per language over the documents; decisions,
    words and CPU seconds per stage and language to ``out_file`` (JSON)."""
    from datatrove.utils import word_tokenizers

    kiwi_note = sort_of_kiwi(word_tokenizers)
    by_language: dict[str, list[dict]] = defaultdict(list)
    for line in open(docs_file, encoding="utf-8"):
        d = json.loads(line)
        by_language[d["language"]].append(d)
    result = {"decisions": {s: {} for s in STAGES}, "cpu": {}, "words": {}, "load_s": {}, "note": kiwi_note}
    filters = datatrove_words(by_language, result)
    datatrove_timed(by_language, filters, repeat, result)
    Path(out_file).write_text(json.dumps(result))


def sort_of_kiwi(word_tokenizers) -> str:
    """datatrove asks kiwipiepy for its "sbg" model, which kiwipiepy's current wheel lacks: the
    default model then, as curate uses (said in the output)."""
    try:
        from kiwipiepy import Kiwi

        Kiwi(model_type="sbg")
        return ""
    except Exception as e:  # noqa: BLE001 - any failure to load means the same here
        word_tokenizers.KiwiTokenizer.__init__.__defaults__ = (None,)
        return f"kiwipiepy has no 'sbg' model ({type(e).__name__}): datatrove's KiwiTokenizer given the default model"


def write_docs(docs: list[dict]) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    docs_file = OUT / "docs.jsonl"
    with open(docs_file, "w", encoding="utf-8") as fh:
        for d in docs:
            fh.write(json.dumps({k: d[k] for k in ("id", "url", "text", "language")}, ensure_ascii=False) + "\n")
    return docs_file


def run_child(side: str, docs_file: Path, repeat: int, speedups: str = "on") -> dict:
    """One side in a fresh process: ``datatrove`` in the bench environment, ``curate`` in curate's
    (with ``CURATE_SPEEDUP_SPACY_WORDS`` = ``speedups``); the same documents, file in, JSON out."""
    out_file = OUT / f"{side}-{speedups}.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT), CURATE_SPEEDUP_SPACY_WORDS=speedups)
    python, path = sys.executable, ""
    if side == "datatrove":
        python = str(BENCH_PYTHON)
        path = f"sys.path.append({str(next((ROOT / '.venv' / 'lib').glob('python3*/site-packages')))!r});"
    code = (
        f"import sys; {path} import runpy; m = runpy.run_path({str(Path(__file__))!r});"
        f"m[{side + '_child'!r}]({str(docs_file)!r}, {str(out_file)!r}, {repeat})"
    )
    subprocess.run([python, "-c", code], env=env, check=True)
    return json.loads(out_file.read_text())


def curate_child(docs_file: str, out_file: str, repeat: int) -> None:
    by_language: dict[str, list[dict]] = defaultdict(list)
    for line in open(docs_file, encoding="utf-8"):
        d = json.loads(line)
        by_language[d["language"]].append(d)
    warm: dict[str, list[str]] = defaultdict(list)
    for line in open(Path(docs_file).with_name("warm.jsonl"), encoding="utf-8"):
        d = json.loads(line)
        warm[d["language"]].append(d["text"])
    Path(out_file).write_text(json.dumps(run_curate(by_language, repeat, warm)))


def write_warm_up(rows: list[dict], by_language: dict[str, list[dict]], limit: int = 300) -> None:
    """Up to ``limit`` other pages of each language (not timed), for the warmed chain figure."""
    timed = {d["id"] for group in by_language.values() for d in group}
    with open(OUT / "warm.jsonl", "w", encoding="utf-8") as fh:
        for pair in by_language:
            for r in [r for r in rows if r["language"] == pair and r["id"] not in timed][:limit]:
                fh.write(json.dumps({"language": pair, "text": r["text"]}, ensure_ascii=False) + "\n")


# --- curate's side ---------------------------------------------------------------


def curate_stages() -> dict:
    """The three filter stages of ``pipelines/recipes/fineweb2.yaml``, with its keys."""
    from curate.recipe import load_recipe

    recipe = load_recipe(str(ROOT / "pipelines" / "recipes" / "fineweb2.yaml"), check_files=False)
    stages = {s.kind: s for s in recipe.build_stages() if s.kind in STAGES}
    for stage in stages.values():
        stage.check()
        stage.ensure_setup()
    return stages


def as_batch(docs: list[dict]):
    from curate.schema import documents_from_pylist

    return documents_from_pylist(
        [{"id": d["id"], "source": "bench", "url": d["url"], "text": d["text"], "language": d["language"]} for d in docs]
    )


def forget_words(pairs) -> None:
    """Empty curate's per-language words cache and the spaCy chunks remembered
    (``curate/speedups/spacy_words.py``), so a timed pass splits every document itself, like the
    first pages of a run (a long run's later pages find more of their chunks known)."""
    from curate import words

    with words.WORDS_CACHE.lock:
        words.WORDS_CACHE.entries.clear()
        words.WORDS_CACHE.chars = 0
    for pair in pairs:
        getattr(words.splitter(words.tokenizer_choice(pair)), "chunks", {}).clear()


def run_curate(by_language: dict[str, list[dict]], repeat: int, warm: dict[str, list[str]]) -> dict:
    """Decisions (rule, value), words and CPU seconds per stage and language, like ``datatrove_child``."""
    import hashlib

    from curate import words
    from curate.stage import run_map_stages

    stages = curate_stages()
    result = {"decisions": {s: {} for s in STAGES}, "cpu": {}, "words": {}, "load_s": {}}
    batches = {pair: as_batch(group) for pair, group in by_language.items()}
    for pair, group in by_language.items():
        start = time.perf_counter()
        words.split_words(group[0]["text"][:2000], pair)  # builds the tokenizer
        result["load_s"][pair] = time.perf_counter() - start
        for d in group:
            found = words.split_words(d["text"], pair)
            result["words"][d["id"]] = [len(found), hashlib.sha1("\x00".join(found).encode()).hexdigest()]
    for stage_name in STAGES:
        stage = stages[stage_name]
        for pair, batch in batches.items():
            out = stage(batch)
            for d, rule, value in zip(by_language[pair], out.column("rejected_by").to_pylist(), out.column("rejected_value").to_pylist()):
                result["decisions"][stage_name][d["id"]] = (rule is None, rule or "", value)
            start = time.process_time()
            for _ in range(repeat):
                forget_words([pair])
                stage(batch)
            result["cpu"][f"{stage_name}|{pair}"] = time.process_time() - start
    chain = [stages[s] for s in STAGES]
    for pair, batch in batches.items():
        start = time.process_time()
        for _ in range(repeat):
            forget_words([pair])
            run_map_stages(chain, batch)
        result["cpu"][f"chain|{pair}"] = time.process_time() - start
        if warm.get(pair):  # a worker that has split other pages of the language before these
            spent = 0.0
            for _ in range(repeat):
                forget_words([pair])
                for text in warm[pair]:
                    words.split_words(text, pair)
                start = time.process_time()
                run_map_stages(chain, batch)
                spent += time.process_time() - start
            result["cpu"][f"chain_warmed|{pair}"] = spent
    return result


# --- the comparison -----------------------------------------------------------------------------


def choose_languages(rows: list[dict], min_docs: int) -> list[str]:
    """Every language with at least ``min_docs`` documents (English included, as a control), and the
    largest language of every other script with at least two."""
    counts = Counter(r["language"] for r in rows)
    chosen = [pair for pair, n in counts.most_common() if n >= min_docs]
    scripts = {pair.rsplit("_", 1)[-1] for pair in chosen}
    for pair, n in counts.most_common():
        script = pair.rsplit("_", 1)[-1]
        if n >= 2 and script not in scripts:
            chosen.append(pair)
            scripts.add(script)
    return chosen


def print_counts(rows: list[dict]) -> None:
    counts = Counter(r["language"] for r in rows)
    by_script: dict[str, list[str]] = defaultdict(list)
    for pair, n in counts.most_common():
        by_script[pair.rsplit("_", 1)[-1]].append(f"{pair} {n}")
    print(f"corpus: {len(rows)} pages with text, {len(counts)} languages (curate langid, lid.176)")
    for script, items in sorted(by_script.items(), key=lambda kv: -len(kv[1])):
        print(f"    {script}: {', '.join(items[:14])}{' ...' if len(items) > 14 else ''}")
    print()


def tokenizer_name(pair: str) -> str:
    from curate.words import tokenizer_choice

    return tokenizer_choice(pair).name


def print_stage_tables(by_language: dict[str, list[dict]], ours: dict, plain: dict, theirs: dict, repeat: int) -> list[tuple]:
    """One table per stage (and the three in a row); returns the disagreements."""
    disagreements = []
    for stage in (*STAGES, "chain"):
        title = "the three in a row (FineWeb-2's order), docs/s only" if stage == "chain" else stage
        print(
            f"{title}\n    {'language':<10} {'tokenizer':<14} {'docs':>5} {'same words':>10} {'agree':>7} "
            f"{'agree, same words':>17} {'datatrove/s':>11} {'curate/s':>9} {'x':>6} {'plain/s':>8} {'x':>6}"
        )
        total = Counter()
        for pair, group in by_language.items():
            n = len(group)
            same = {d["id"] for d in group if ours["words"][d["id"]] == theirs["words"][d["id"]]}
            cells = f"{'':7} {'':17}"
            if stage != "chain":
                decisions = ours["decisions"][stage]
                agree = {d["id"] for d in group if decisions[d["id"]][0] == theirs["decisions"][stage][d["id"]][0]}
                cells = f"{len(agree) / n:7.1%} {len(agree & same):>8}/{len(same):<8}"
                for d in group:
                    if d["id"] not in agree:
                        disagreements.append((stage, pair, d, decisions[d["id"]], theirs["decisions"][stage][d["id"]], d["id"] in same))
                if any(decisions[d["id"]] != plain["decisions"][stage][d["id"]] for d in group):
                    cells += " SPEED-UP CHANGED A DECISION"
                total.update(agree=len(agree), agree_same=len(agree & same))
            seconds = [side["cpu"][f"{stage}|{pair}"] for side in (theirs, ours, plain)]
            total.update(docs=n, same=len(same), dt_s=seconds[0], our_s=seconds[1], plain_s=seconds[2])
            print(f"    {pair:<10} {tokenizer_name(pair):<14} {n:>5} {len(same):>10} {cells} {rates(n * repeat, seconds)}")
        n = total["docs"]
        cells = f"{total['agree'] / n:7.1%} {total['agree_same']:>8}/{total['same']:<8}" if stage != "chain" else f"{'':7} {'':17}"
        seconds = [total["dt_s"], total["our_s"], total["plain_s"]]
        print(f"    {'all':<10} {'':<14} {n:>5} {total['same']:>10} {cells} {rates(n * repeat, seconds)}\n")
    return disagreements


def rates(docs: int, seconds: list[float]) -> str:
    """datatrove's, curate's and curate's plain documents/s, curate's two against datatrove's."""
    theirs, ours, plain = (docs / max(s, 1e-9) for s in seconds)
    return f"{theirs:>11.0f} {ours:>9.0f} {ours / theirs:>5.1f}x {plain:>8.0f} {plain / theirs:>5.1f}x"


def print_warmed_chain(by_language: dict[str, list[dict]], ours: dict, theirs: dict, repeat: int, warm_counts: Counter) -> None:
    """The three in a row again, curate's spaCy chunks first learnt from other pages of the language."""
    print("the three in a row, curate warmed first on up to 300 other pages of the language (untimed; chunks emptied before)")
    print(f"    {'language':<10} {'tokenizer':<14} {'docs':>5} {'warm-up':>7} {'datatrove/s':>11} {'curate/s':>9} {'x':>6}")
    total = Counter()
    for pair, group in by_language.items():
        key = f"chain_warmed|{pair}"
        if key not in ours["cpu"]:
            continue
        n, theirs_s, ours_s = len(group), theirs["cpu"][f"chain|{pair}"], ours["cpu"][key]
        total.update(docs=n, dt_s=theirs_s, our_s=ours_s)
        dt_rate, our_rate = n * repeat / theirs_s, n * repeat / ours_s
        print(
            f"    {pair:<10} {tokenizer_name(pair):<14} {n:>5} {warm_counts[pair]:>7} {dt_rate:>11.0f} {our_rate:>9.0f} {our_rate / dt_rate:>5.1f}x"
        )
    if total["docs"]:
        dt_rate, our_rate = total["docs"] * repeat / total["dt_s"], total["docs"] * repeat / total["our_s"]
        print(f"    {'these':<10} {'':<14} {total['docs']:>5} {'':>7} {dt_rate:>11.0f} {our_rate:>9.0f} {our_rate / dt_rate:>5.1f}x")
    print()


def print_disagreements(disagreements: list[tuple], ours: dict, theirs: dict) -> None:
    print(f"disagreements ({len(disagreements)}): stage, language, page, curate's verdict | datatrove's, words")
    for stage, pair, d, (kept, rule, value), (dt_kept, dt_reason), same in disagreements:
        mine = "kept" if kept else f"{rule.split('.', 1)[-1]}={value:.3f}"
        words = "same words" if same else f"words {ours['words'][d['id']][0]} vs {theirs['words'][d['id']][0]}"
        print(f"    {stage:<17} {pair:<9} {d['id']} {d['url'][:60]:<60} {mine:<26} | {'kept' if dt_kept else dt_reason:<26} {words}")
    print()


def print_load(ours: dict, theirs: dict) -> None:
    print("tokenizer first load (s, wall): " + ", ".join(f"{p} {ours['load_s'][p]:.2f}/{theirs['load_s'][p]:.2f}" for p in ours["load_s"]))
    print("    (curate/datatrove; excluded from the docs/s above)\n")


def plain_splitter(pair: str):
    """curate's splitter of a language built with its speed-up off (the tokenizer library as it is)."""
    from curate import words

    choice = words.tokenizer_choice(pair)
    before = os.environ.get("CURATE_SPEEDUP_SPACY_WORDS")
    os.environ["CURATE_SPEEDUP_SPACY_WORDS"] = "off"
    try:
        return words.BUILDERS[choice.kind](choice.code)
    finally:
        os.environ.pop("CURATE_SPEEDUP_SPACY_WORDS")
        if before is not None:
            os.environ["CURATE_SPEEDUP_SPACY_WORDS"] = before


def words_per_second(split, texts: list[str], seconds: float, forget) -> tuple[float, float]:
    """(words/s, characters/s) of CPU time, passes repeated for at least ``seconds``."""
    split(texts[0])
    n_words, passes, spent = 0, 0, 0.0
    while passes == 0 or spent < seconds:
        forget()
        start = time.process_time()
        n_words = sum(len(split(t)) for t in texts)
        spent += time.process_time() - start
        passes += 1
    return n_words * passes / spent, sum(map(len, texts)) * passes / spent


def tokenizer_speed(by_language: dict[str, list[dict]], seconds: float) -> None:
    """Words/s of each tokenizer curate uses over its language's pages, against the English regex."""
    from curate import words
    from curate.filters.text import split_words as english_split

    print(
        "word tokenizers: words/s of one process (CPU time) over each language's pages, each set split "
        f"for >= {seconds:.0f} s. curate: as it runs, spaCy's chunks forgotten before each pass; warm: "
        "chunks kept from the pass before (every chunk known: the ceiling); plain: the tokenizer "
        "library alone (speed-up off); regex: the English stages' regular expression on the same pages"
    )
    print(
        f"    {'language':<10} {'tokenizer':<14} {'chars':>9} {'curate':>10} {'warm':>10} {'plain':>10} {'regex':>10} "
        f"{'plain chars/s':>13} {'regex/plain':>11}"
    )
    for pair, group in by_language.items():
        texts = [d["text"] for d in group]
        ours = words.splitter(words.tokenizer_choice(pair))
        w, _ = words_per_second(ours, texts, seconds, lambda: forget_words([pair]))
        warm, _ = words_per_second(ours, texts, seconds, lambda: None)
        pw, pc = words_per_second(plain_splitter(pair), texts, seconds, lambda: None)
        rw, rc = words_per_second(english_split, texts, seconds, lambda: None)
        print(
            f"    {pair:<10} {tokenizer_name(pair):<14} {sum(map(len, texts)):>9,} {w:>10,.0f} {warm:>10,.0f} "
            f"{pw:>10,.0f} {rw:>10,.0f} {pc:>13,.0f} {rc / pc:>10.0f}x"
        )
    print("    (words/s; regex/plain: how many times the tokenizer's characters/s the English regex splits)\n")


def stream_speed(rows: list[dict], pair: str, block: int = 100) -> None:
    """Words/s of curate's splitter over every page of one language in corpus order, from an empty
    chunk dictionary, per block of pages: how a worker's speed grows as it learns the language's chunks."""
    from curate import words

    texts = [r["text"] for r in rows if r["language"] == pair]
    split = words.splitter(words.tokenizer_choice(pair))
    forget_words([pair])
    cells = []
    for i in range(0, len(texts) - block + 1, block):
        start = time.process_time()
        n = sum(len(split(t)) for t in texts[i : i + block])
        cells.append(f"{i + 1}-{i + block}: {n / (time.process_time() - start):,.0f}")
    print(f"{pair}, all {len(texts)} pages in one pass from no known chunk, words/s per {block} pages: " + "; ".join(cells) + "\n")


def speed_up_keeps_words(rows: list[dict]) -> None:
    """curate's words with and without its tokenizer speed-up on every non-English page of the corpus."""
    from curate import words

    differ, pages = Counter(), Counter()
    for pair in sorted({r["language"] for r in rows} - {"eng_Latn"}):
        choice = words.tokenizer_choice(pair)
        sped, plain = words.BUILDERS[choice.kind](choice.code), plain_splitter(pair)
        for r in rows:
            if r["language"] == pair:
                pages[pair] += 1
                differ[pair] += sped(r["text"]) != plain(r["text"])
    print(f"speed-up on and off: words differ on {sum(differ.values())} of {sum(pages.values())} pages in {len(pages)} languages\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", help="comma-separated pairs (default: every language with --min-docs pages)")
    parser.add_argument("--min-docs", type=int, default=8)
    parser.add_argument("--max-docs", type=int, default=150, help="at most this many pages of one language (the first ones)")
    parser.add_argument("--repeat", type=int, default=2, help="timed passes over each language's pages")
    parser.add_argument("--tokenizer-seconds", type=float, default=1.0)
    parser.add_argument("--check-words", action="store_true", help="also compare the speed-up's words with the plain path's on every page")
    args = parser.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rows = load_corpus()
    print_counts(rows)
    chosen = args.languages.split(",") if args.languages else choose_languages(rows, args.min_docs)
    by_language = {pair: [r for r in rows if r["language"] == pair][: args.max_docs] for pair in chosen}
    docs = [d for group in by_language.values() for d in group]
    print(f"compared: {len(docs)} pages in {len(chosen)} languages: " + ", ".join(f"{p} {len(g)}" for p, g in by_language.items()) + "\n")
    print(f"load before: {os.getloadavg()[0]:.1f} (1 min)")
    docs_file = write_docs(docs)
    write_warm_up(rows, by_language)
    theirs = run_child("datatrove", docs_file, args.repeat)
    plain = run_child("curate", docs_file, args.repeat, speedups="off")
    ours = run_child("curate", docs_file, args.repeat)
    print(
        f"load after: {os.getloadavg()[0]:.1f} (1 min); docs/s = documents per CPU second of one process, "
        f"{args.repeat} passes, tokenizers loaded before; curate: as it runs; plain: its spaCy chunk "
        "speed-up off (CURATE_SPEEDUP_SPACY_WORDS=off)\n"
    )
    if theirs.get("note"):
        print(f"note: {theirs['note']}\n")
    disagreements = print_stage_tables(by_language, ours, plain, theirs, args.repeat)
    warm_counts = Counter(json.loads(line)["language"] for line in open(OUT / "warm.jsonl", encoding="utf-8"))
    print_warmed_chain(by_language, ours, theirs, args.repeat, warm_counts)
    print_disagreements(disagreements, ours, theirs)
    print_load(ours, theirs)
    tokenizer_speed(by_language, args.tokenizer_seconds)
    if args.check_words:
        speed_up_keeps_words(rows)
    counts = Counter(r["language"] for r in rows)
    for pair in by_language:
        if counts[pair] >= 300 and tokenizer_name(pair).startswith("spacy"):
            stream_speed(rows, pair)
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--corpus-only"]:
        print(Counter(r["language"] for r in load_corpus()).most_common())
        sys.exit(0)
    sys.exit(main())
