"""`curate inspect`: a run folder built from real pages through the filter stages."""

from __future__ import annotations

import json
import os

import pyarrow as pa
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
