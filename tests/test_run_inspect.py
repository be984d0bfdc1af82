"""`curate inspect`: a run folder built from real pages through the filter stages."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.filters.c4 import C4Params, C4Stage
from curate.filters.fineweb import FineWebParams, FineWebStage
from curate.filters.gopher import GopherQualityParams, GopherQualityStage, GopherRepetitionParams, GopherRepetitionStage
from curate.run_inspect import funnel_entries, main
from curate.stage import run_map_stages
from filters_pages import load_pages, pages_batch


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    stages = [
        GopherRepetitionStage(GopherRepetitionParams()),
        GopherQualityStage(GopherQualityParams()),
        C4Stage(C4Params()),
        FineWebStage(FineWebParams()),
    ]
    kept, rejected = run_map_stages(stages, pages_batch())
    folder = tmp_path_factory.mktemp("run")
    os.makedirs(folder / "documents")
    os.makedirs(folder / "rejected")
    pq.write_table(pa.Table.from_batches([kept]), folder / "documents" / "part-0.parquet")
    pq.write_table(pa.Table.from_batches([rejected]), folder / "rejected" / "part-0.parquet")
    (folder / "manifest.json").write_text(json.dumps({"funnel": funnel_entries(stages)}), encoding="utf-8")
    return folder


def test_funnel_adds_up(run_dir):
    funnel = json.loads((run_dir / "manifest.json").read_text())["funnel"]
    assert [e["stage"] for e in funnel] == ["gopher_repetition", "gopher_quality", "c4", "fineweb"]
    assert funnel[0]["docs_in"] == len(load_pages())
    for before, after in zip(funnel, funnel[1:]):
        assert after["docs_in"] == before["docs_out"]
    for entry in funnel:
        assert entry["docs_in"] - entry["docs_out"] == sum(entry["rejected"].values())
        assert set(entry["rejected"]) == set(entry["rejected_chars"])
    # the repetition stage removed the four repetitive pages of the test set
    assert funnel[0]["rejected"] == {
        "gopher_repetition.dup_5_gram": 1,
        "gopher_repetition.dup_6_gram": 1,
        "gopher_repetition.dup_line_char_frac": 1,
        "gopher_repetition.dup_line_frac": 1,
        "gopher_repetition.top_4_gram": 1,
    }
    assert funnel[2]["counters"]["documents_edited"] >= 1


def test_inspect_prints_the_funnel_table(run_dir, capsys):
    assert main([str(run_dir)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["stage", "/", "reason", "docs"]
    row = next(l for l in lines if l.startswith("gopher_repetition "))
    assert row.split()[1:4] == ["19", "14", "5"]
    assert any(l.strip().startswith("gopher_quality.stop_words") for l in lines)
    assert "see removed documents with --reason" in out


def test_inspect_samples_removed_documents_for_a_reason(run_dir, capsys):
    assert main([str(run_dir), "--reason", "gopher_quality.ellipsis_lines", "--n", "3"]) == 0
    out = capsys.readouterr().out
    assert "1 removed documents for gopher_quality.ellipsis_lines" in out
    assert "uk.trustpilot.com.reviews.html.gz" in out and "removed by gopher_quality.ellipsis_lines = 0.3333" in out
    assert "Gousto has changed my life" in out  # the page's own text
    assert main([str(run_dir), "--reason", "gopher_quality", "--n", "2"]) == 0
    assert "2 removed documents for gopher_quality" in capsys.readouterr().out


def test_inspect_errors_name_the_problem(run_dir, tmp_path, capsys):
    assert main([str(run_dir), "--reason", "c4.nothing"]) == 1
    assert "no removed documents for 'c4.nothing'; reasons in this run:" in capsys.readouterr().err
    assert main([str(tmp_path)]) == 2
    assert "manifest.json: not found" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text('{"funnel": [{"stage": "x"}]}')
    assert main([str(tmp_path)]) == 2
    assert "funnel[0]: missing 'docs_in'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def multilingual_run(tmp_path_factory, data_dir):
    """A run split by language, written by the job's shard writer: the eight real pages of
    tests/data/multilingual (three copies each) through langid (ISO 639-3 + script pairs) and the
    English-tuned repetition and FineWeb rules, which remove Hindi, Thai and Korean whole; its
    manifest's ``languages`` as the job writes it."""
    from curate.langid import LangIdParams, LangIdStage
    from curate.schema import documents_from_pylist
    from curate.shards import shard_index
    from curate.spark.manifest import WrittenShards, per_language_counts
    from curate.spark.shard_writers import final_shard_writer
    from curate.tokens import DocumentTokenizer

    pages = [json.loads(line) for line in (data_dir / "multilingual" / "pages.jsonl").read_text(encoding="utf-8").splitlines()]
    rows = [{"id": f"{copy}-{i}", "source": "web", "url": p["url"], "text": p["text"]} for copy in range(3) for i, p in enumerate(pages)]
    stages = [
        LangIdStage(LangIdParams(languages=["all"], codes="iso639_3")),
        GopherRepetitionStage(GopherRepetitionParams()),
        FineWebStage(FineWebParams()),
    ]
    kept, rejected = run_map_stages(stages, documents_from_pylist(rows))
    table = pa.concat_tables([pa.Table.from_batches([kept]), pa.Table.from_batches([rejected])])
    table = table.append_column("_shard", pa.array(shard_index(table.column("id").to_pylist(), 2), pa.int64()))
    partition = pc.if_else(pc.is_null(table.column("rejected_by")), table.column("language"), pa.scalar(None, pa.string()))
    table = table.append_column("_partition", partition).sort_by(
        [("_shard", "ascending"), ("_partition", "ascending"), ("id", "ascending")]
    )
    folder = tmp_path_factory.mktemp("split")
    tokenizer = DocumentTokenizer(str(data_dir.parent.parent / "models" / "tokenizer" / "tokenizer.json"), "<|endoftext|>")
    infos = list(final_shard_writer(str(folder), "zstd", 64, tokenizer, partition_by="language")(iter(table.to_batches())))[0].to_pylist()
    written = WrittenShards(
        *[
            [{**i, "per_language": json.loads(i["per_language"])} for i in infos if i["folder"] == f]
            for f in ("documents", "rejected", "tokens")
        ]
    )
    manifest = {"funnel": funnel_entries(stages), "languages": per_language_counts(written)}
    (folder / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return folder, kept, rejected, manifest


def test_inspect_shows_one_languages_counts_and_removed_documents(multilingual_run, capsys):
    folder, kept, rejected, manifest = multilingual_run
    kept_languages = kept.column("language").to_pylist()
    removed = [(lang, by) for lang, by in zip(rejected.column("language").to_pylist(), rejected.column("rejected_by").to_pylist())]
    for language in sorted(set(kept_languages) | {lang for lang, _ in removed}):
        assert main([str(folder), "--language", language]) == 0
        out = capsys.readouterr().out
        n_kept = kept_languages.count(language)
        assert out.startswith(f"language {language}: {n_kept:,} documents kept")
        assert f"removed: {sum(1 for lang, _ in removed if lang == language):,} documents" in out
        for reason in {by for lang, by in removed if lang == language}:
            line = next(l for l in out.splitlines() if l.strip().startswith(reason + " "))
            assert int(line.split()[-1]) == removed.count((language, reason))
        if n_kept:
            entry = manifest["languages"][language]
            chars = sum(len(t) for t, lang in zip(kept.column("text").to_pylist(), kept_languages) if lang == language)
            assert entry["documents"] == n_kept and entry["characters"] == chars
            assert f"written: {n_kept:,} documents, {chars:,} characters, {entry['tokens']:,} tokens" in out
        assert "stage / reason" not in out  # the whole run's funnel is not shown
    assert 0 < len(set(kept_languages)) < 8  # some languages are kept, some are removed whole


def test_inspect_samples_only_the_languages_removed_documents(multilingual_run, capsys):
    folder, kept, rejected, manifest = multilingual_run
    languages = rejected.column("language").to_pylist()
    reasons = rejected.column("rejected_by").to_pylist()
    language = max(set(languages), key=languages.count)
    reason = reasons[languages.index(language)]
    stage = reason.split(".")[0]
    assert main([str(folder), "--language", language, "--reason", stage, "--n", "50"]) == 0
    out = capsys.readouterr().out
    n = sum(1 for lang, by in zip(languages, reasons) if lang == language and by.startswith(stage + "."))
    assert f"{n} removed documents of language {language} for {stage}:" in out
    assert out.count("\n--- ") == n
    shown = {line.split()[1] for line in out.splitlines() if line.startswith("--- ")}
    assert shown == {
        i for i, lang, by in zip(rejected.column("id").to_pylist(), languages, reasons) if lang == language and by.startswith(stage + ".")
    }


def test_inspect_names_the_languages_of_the_run_for_one_it_lacks(multilingual_run, capsys):
    folder, kept, rejected, manifest = multilingual_run
    assert main([str(folder), "--language", "fra_Latn"]) == 1
    err = capsys.readouterr().err
    assert "no documents of language 'fra_Latn' in this run; languages in this run: " in err
    named = err.split("languages in this run: ", 1)[1]
    everything = set(kept.column("language").to_pylist()) | set(rejected.column("language").to_pylist())
    assert (
        {part.split(" (")[0] for part in named.strip().split("), ")}
        == everything
        == {"deu_Latn", "rus_Cyrl", "arb_Arab", "hin_Deva", "tha_Thai", "cmn_Hani", "kor_Hang", "jpn_Jpan"}
    )
    assert main([str(folder), "--language", "de"]) == 1
    assert "did you mean deu_Latn?" in capsys.readouterr().err
