"""End to end: the demo recipe on the bundled real WARCs, run by the Spark job in local mode."""

from __future__ import annotations

import glob
import json
import os

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from conftest import ROOT
from curate.pipeline import run_recipe, summary_lines
from curate.recipe import load_recipe
from curate.run_output import RunExistsError
from curate.tokens import DocumentTokenizer

DEMO = str(ROOT / "pipelines" / "recipes" / "demo.yaml")

# Hand-checked on the bundled WARCs: 88 records, 38 HTML 200 responses; one page too short
# after extraction; Gopher/C4/FineWeb remove 13; allenai.org is archived three times.
# With the blocks extractor (the default since issue #19). trafilatura, the default before, gave 37
# texts (one page under 200 characters) and 22 documents.
EXPECTED = {
    "documents_in": 38,
    "documents_out": 25,
    "funnel": {
        "extract": (38, 38),
        "langid": (38, 38),
        "url_filter": (38, 38),
        "gopher_repetition": (38, 38),
        "gopher_quality": (38, 30),
        "c4": (30, 27),
        "fineweb": (27, 27),
        "classify": (27, 27),
        "dedup": (27, 25),
        "pii": (25, 25),
    },
}
KNOWN_PAGE = {
    "url": "https://commoncrawl.org/faq",
    "sentence": "Common Crawl is a 501(c)(3) non-profit organization dedicated to providing a copy of the Internet to Internet researchers",
    "boilerplate": ["Mailing List Archive", "Discord Server", "Terms of Use", "Privacy Policy"],
}


def read(folder) -> pa.Table:
    return pq.read_table(sorted(glob.glob(os.path.join(folder, "*.parquet"))))


def test_manifest_counts(demo_run):
    out, manifest = demo_run
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk["recipe_hash"] == manifest["recipe_hash"] == load_recipe(DEMO).fingerprint()
    s = manifest["summary"]
    reader = manifest["inputs"]["counters"]
    assert manifest["inputs"]["files"] == 3
    assert reader["warc.kept"] == s["documents_in"] == EXPECTED["documents_in"]
    assert s["documents_out"] == EXPECTED["documents_out"]
    assert s["documents_out"] + s["documents_rejected"] == s["documents_in"]
    funnel = {f["stage"]: f for f in manifest["funnel"]}
    assert [f["stage"] for f in manifest["funnel"]] == [st.name for st in load_recipe(DEMO).stages]
    for stage, expected in EXPECTED["funnel"].items():
        assert (funnel[stage]["docs_in"], funnel[stage]["docs_out"]) == expected, stage
    for before, after in zip(manifest["funnel"], manifest["funnel"][1:]):
        assert before["docs_out"] == after["docs_in"]
        assert before["docs_in"] - before["docs_out"] == sum(before["rejected"].values())
    assert manifest["sources"]["web"]["documents"] == s["documents_out"]
    assert sum(sh["tokens"] for sh in manifest["tokens"]["shards"]) == manifest["tokens"]["total"] == s["tokens"]
    assert len(manifest["tokens"]["shards"]) == 2


def test_outputs_open_in_pyarrow_and_duckdb(demo_run):
    out, manifest = demo_run
    docs = read(out / "documents")
    assert docs.num_rows == manifest["summary"]["documents_out"]
    assert docs.column("rejected_by").null_count == docs.num_rows
    rejected = read(out / "rejected")
    assert rejected.column("rejected_by").null_count == 0
    [(n, tokens)] = duckdb.sql(f"select count(*), sum(n_tokens) from '{out}/tokens/*.parquet'").fetchall()
    assert (n, tokens) == (manifest["summary"]["documents_out"], manifest["summary"]["tokens"])
    reasons = dict(duckdb.sql(f"select rejected_by, count(*) from '{out}/rejected/*.parquet' group by 1").fetchall())
    funnel_reasons = {r: c for f in manifest["funnel"] for r, c in f["rejected"].items()}
    assert reasons == funnel_reasons
    assert reasons["dedup.exact"] == 2
    dups = duckdb.sql(f"select distinct url from '{out}/rejected/*.parquet' where rejected_by = 'dedup.exact'").fetchall()
    assert dups == [("https://allenai.org/",)]
    assert not glob.glob(str(out / "**" / ".*tmp-*"), recursive=True)
    assert not (out / "_work").exists()


def test_known_sentence_kept_and_boilerplate_gone(demo_run):
    out, _ = demo_run
    docs = read(out / "documents")
    by_url = dict(zip(docs.column("url").to_pylist(), docs.column("text").to_pylist()))
    text = by_url[KNOWN_PAGE["url"]]
    assert KNOWN_PAGE["sentence"] in text
    for boilerplate in KNOWN_PAGE["boilerplate"]:
        assert boilerplate not in text


def test_token_shards_decode_to_document_text(demo_run):
    out, manifest = demo_run
    tok = DocumentTokenizer(manifest["tokens"]["tokenizer"], manifest["tokens"]["eos_token"])
    docs = read(out / "documents")
    texts = dict(zip(docs.column("id").to_pylist(), docs.column("text").to_pylist()))
    tokens = read(out / "tokens")
    assert sorted(tokens.column("id").to_pylist()) == sorted(texts)
    for row in tokens.to_pylist():
        assert row["tokens"][-1] == tok.eos_id and row["n_tokens"] == len(row["tokens"])
        assert tok.decode(row["tokens"]) == texts[row["id"]]


def test_second_run_is_byte_identical_and_rerun_refuses(demo_run, spark, tmp_path):
    out, _ = demo_run
    again = tmp_path / "again"
    run_recipe(DEMO, output=str(again), spark=spark)
    for folder in ("documents", "rejected", "tokens"):
        a = sorted(os.listdir(out / folder))
        assert a == sorted(os.listdir(again / folder))
        for name in a:
            assert (out / folder / name).read_bytes() == (again / folder / name).read_bytes(), f"{folder}/{name}"
    with pytest.raises(RunExistsError, match="already holds a finished run"):
        run_recipe(DEMO, output=str(again), spark=spark)
    resumed = run_recipe(DEMO, output=str(again), spark=spark, resume=True)
    assert resumed["resumed"] == "complete"


def test_summary_names_output(demo_run):
    out, manifest = demo_run
    text = "\n".join(summary_lines(manifest))
    assert f"documents in      {manifest['summary']['documents_in']:>10,}" in text
    assert str(out) in text and "tokens/" in text


@pytest.mark.parametrize("mixed", [False, True])
def test_global_stage_plan_gets_the_true_live_count(spark, tmp_path, monkeypatch, mixed):
    """The count that picks dedup's plan comes from the map stages' counters when they saw
    every document (no Spark job), else from Spark; either way it is the true number."""
    from curate.spark import job

    seen: list[int | None] = []
    run_global = job.run_global_stage

    def spy(stage, live, output, live_docs):
        seen.append(live_docs)
        return run_global(stage, live, output, live_docs)

    monkeypatch.setattr(job, "run_global_stage", spy)
    overrides = {"output": str(tmp_path / "run")}
    if mixed:  # WARC pages and ready-made documents: the latter skip "extract", the last map stage
        overrides["sources"] = [
            {"name": "web", "kind": "warc", "paths": [str(ROOT / "tests" / "data" / "warc" / "*.warc.gz")]},
            {"name": "pages", "kind": "jsonl", "paths": [str(ROOT / "tests" / "data" / "dedup" / "pages.jsonl")]},
        ]
        overrides["stages"] = [{"stage": "extract"}, {"stage": "dedup"}]
    manifest = run_recipe(load_recipe(DEMO, overrides=overrides), spark=spark)
    dedup = next(entry for entry in manifest["funnel"] if entry["stage"] == "dedup")
    assert seen == [dedup["docs_in"]]
    assert dedup["docs_in"] == (EXPECTED["funnel"]["extract"][1] + 16 if mixed else EXPECTED["funnel"]["dedup"][0])
    # and from the output files: what dedup kept (nothing after it rejects) plus what it removed
    run = tmp_path / "run"
    [(kept,)] = duckdb.sql(f"select count(*) from '{run}/documents/*.parquet'").fetchall()
    [(removed,)] = duckdb.sql(f"select count(*) from '{run}/rejected/*.parquet' where rejected_by like 'dedup.%'").fetchall()
    assert kept + removed == dedup["docs_in"] and dedup["docs_out"] == kept
    assert sum(dedup["rejected"].values()) == removed


# --- a run split by language (shards.partition_by) -----------------------------------------------


def _files_under(folder) -> dict[str, bytes]:
    return {
        os.path.relpath(os.path.join(d, f), folder): open(os.path.join(d, f), "rb").read()
        for d, _, names in os.walk(folder)
        for f in names
        if f.endswith(".parquet")
    }


def test_a_run_split_by_language_has_a_folder_per_language_with_its_documents(language_runs):
    flat_dir, flat = language_runs["flat"]
    split_dir, split = language_runs["split"]
    docs = read(flat_dir / "documents").sort_by("id")
    languages = pc.fill_null(docs.column("language"), "und").to_pylist()
    truth = {lang: languages.count(lang) for lang in set(languages)}
    assert {"deu_Latn", "rus_Cyrl", "arb_Arab", "hin_Deva", "tha_Thai", "jpn_Jpan", "eng_Latn"} <= set(truth)
    folders = sorted(os.listdir(split_dir / "documents"))
    assert folders == sorted(f"language={lang}" for lang in truth) == sorted(os.listdir(split_dir / "tokens"))
    flat_tokens = read(flat_dir / "tokens")
    for language, n in truth.items():
        folder = f"language={language}"
        assert sorted(os.listdir(split_dir / "documents" / folder)) == ["part-00000.parquet", "part-00001.parquet"]
        files = sorted(glob.glob(str(split_dir / "documents" / folder / "*.parquet")))
        assert all("language" not in pq.ParquetFile(f).schema_arrow.names for f in files)  # the folder holds it
        part = pa.concat_tables([pq.ParquetFile(f).read() for f in files]).sort_by("id")
        mine = docs.filter(pa.array([lang == language for lang in languages]))
        assert part.num_rows == n and part.to_pylist() == mine.drop(["language"]).to_pylist()
        tokens = pa.concat_tables([pq.ParquetFile(f).read() for f in sorted(glob.glob(str(split_dir / "tokens" / folder / "*")))]).sort_by(
            "id"
        )
        ids = pa.array(part.column("id").to_pylist())
        assert tokens.to_pylist() == flat_tokens.filter(pc.is_in(flat_tokens.column("id"), ids)).sort_by("id").to_pylist()
    # rejected/ is not split, and neither it nor the kept text depends on the split
    assert _files_under(split_dir / "rejected") == _files_under(flat_dir / "rejected")
    assert split["summary"]["documents_out"] == flat["summary"]["documents_out"] == docs.num_rows
    assert split["summary"]["documents_in"] == language_runs["documents"]
    listed = [e["path"] for e in split["documents"]["shards"]]
    assert sorted(listed) == sorted(f"documents/{p}" for p in _files_under(split_dir / "documents"))
    assert all(e["path"].startswith(f"documents/language={e['language']}/") for e in split["documents"]["shards"])


def test_manifest_counts_documents_characters_and_tokens_per_language(language_runs):
    flat_dir, flat = language_runs["flat"]
    docs = read(flat_dir / "documents")
    tokens = dict(zip(read(flat_dir / "tokens").column("id").to_pylist(), read(flat_dir / "tokens").column("n_tokens").to_pylist()))
    truth: dict[str, dict] = {}
    for id_, language, text in zip(*(docs.column(c).to_pylist() for c in ("id", "language", "text"))):
        entry = truth.setdefault(language or "und", {"documents": 0, "characters": 0, "tokens": 0})
        entry["documents"] += 1
        entry["characters"] += len(text)
        entry["tokens"] += tokens[id_]
    assert flat["languages"] == truth
    assert list(flat["languages"]) == sorted(truth, key=lambda lang: (-truth[lang]["documents"], lang))
    assert language_runs["split"][1]["languages"] == truth
    assert sum(v["documents"] for v in truth.values()) == flat["summary"]["documents_out"]
    assert sum(v["tokens"] for v in truth.values()) == flat["summary"]["tokens"] == flat["tokens"]["total"]
    assert sum(v["characters"] for v in truth.values()) == flat["funnel"][-1]["chars_out"]
    assert "Written per language" in (flat_dir / "report.html").read_text(encoding="utf-8")
    printed = next(line for line in summary_lines(flat) if line.split()[0] == "languages")
    assert printed.split()[1] == str(len(truth)) and f"({next(iter(flat['languages']))} " in printed


def test_readers_get_the_language_back_from_the_folders(language_runs, spark, tmp_path):
    import pandas as pd
    import polars as pl

    split_dir, split = language_runs["split"]
    expected = {lang: v["documents"] for lang, v in split["languages"].items()}
    query = f"SELECT language, count(*) FROM read_parquet('{split_dir}/documents/*/*.parquet', hive_partitioning = true) GROUP BY 1"
    assert dict(duckdb.sql(query).fetchall()) == expected
    assert pd.read_parquet(split_dir / "documents")["language"].value_counts().to_dict() == expected
    assert dict(pl.scan_parquet(f"{split_dir}/documents/").group_by("language").len().collect().iter_rows()) == expected
    # an earlier run split by language, read as a `run` source: its documents have their language again
    data = dict(language_runs["recipe"], output=str(tmp_path / "again"), stages=[], shards={"num_shards": 2})
    data["sources"] = [{"name": "web", "kind": "run", "paths": [str(split_dir)]}]  # its documents keep their source name
    run_recipe(load_recipe_data(data, tmp_path), spark=spark)
    again = read(tmp_path / "again" / "documents").sort_by("id")
    flat = read(language_runs["flat"][0] / "documents").sort_by("id")
    assert again.column("language").to_pylist() == pc.fill_null(flat.column("language"), "und").to_pylist()
    assert again.column("text").to_pylist() == flat.column("text").to_pylist()


def load_recipe_data(data: dict, folder):
    from curate.recipe import parse_recipe

    return parse_recipe(data, file=str(folder / "recipe.yaml"))


def test_a_mixture_counts_its_tokens_per_language(language_runs, spark, tmp_path):
    flat_dir, flat = language_runs["flat"]
    budget = flat["summary"]["tokens"] * 2  # twice what there is: every row once, some twice
    data = dict(language_runs["recipe"], output=str(tmp_path / "mixed"), shards={"num_shards": 2}, mixture={"total_tokens": budget})
    mixed = run_recipe(load_recipe_data(data, tmp_path), spark=spark)
    docs = read(tmp_path / "mixed" / "documents")
    language_of = dict(zip(docs.column("id").to_pylist(), docs.column("language").to_pylist()))
    tokens = read(tmp_path / "mixed" / "tokens")
    truth: dict[str, int] = {}
    for id_, n in zip(tokens.column("id").to_pylist(), tokens.column("n_tokens").to_pylist()):
        truth[language_of[id_]] = truth.get(language_of[id_], 0) + n
    assert max(tokens.column("repeat").to_pylist()) >= 1  # rows repeated: they count again
    assert {lang: v["tokens"] for lang, v in mixed["languages"].items()} == truth
    assert sum(truth.values()) == mixed["summary"]["tokens"] > flat["summary"]["tokens"]
    assert {lang: v["documents"] for lang, v in mixed["languages"].items()} == {
        lang: v["documents"] for lang, v in flat["languages"].items()
    }
