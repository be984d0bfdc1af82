"""``curate ablate`` on the two shipped recipes: real curation runs (Spark), training, report."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from trainer.ablate import AblationError, AblationOptions, main, prepare_arms, run_ablation, wikitext_articles
from trainer.data import shards_from_texts

ROOT = Path(__file__).resolve().parent.parent
RECIPES = [str(ROOT / "pipelines" / "recipes" / f"ablate_{side}.yaml") for side in ("filtered", "unfiltered")]


def test_ablation_of_the_shipped_recipes(tmp_path, spark, wikitext_bpe, monkeypatch):
    monkeypatch.chdir(ROOT)  # the recipes name their inputs relative to the repository
    options = AblationOptions(model="tiny", tokens=4096, seeds=2, seq_len=32, micro_batch=8, eval_points=2, eval_sequences=16, threads=1)
    summary = run_ablation(RECIPES, str(tmp_path / "report"), options, runs_dir=str(tmp_path / "runs"), tokenizer=str(wikitext_bpe), spark=spark)
    assert summary["arms"] == ["filtered", "unfiltered"]

    manifests = {name: json.loads((tmp_path / "runs" / name / "manifest.json").read_text()) for name in summary["arms"]}
    # the recipes differ only in the quality filters, so the filtered run keeps fewer documents
    assert manifests["filtered"]["summary"]["documents_out"] < manifests["unfiltered"]["summary"]["documents_out"]

    results = pd.read_parquet(tmp_path / "report" / "results.parquet")
    assert list(results.columns) == ["recipe", "seed", "step", "tokens", "train_loss", "eval_wikitext", "eval_web"]
    assert len(results) == 2 * 2 * 2  # recipes x seeds x evaluations (every 8 steps of 16)
    assert set(results["tokens"]) == {2048, 4096}
    assert results[["eval_wikitext", "eval_web"]].notna().all().all()
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| filtered |" in report and "| unfiltered |" in report and " ± " in report
    assert (tmp_path / "report" / "eval_wikitext.png").exists() and (tmp_path / "report" / "eval_web.png").exists()

    # a second ablation reuses the finished runs instead of curating again
    again = prepare_arms(RECIPES, runs_dir=str(tmp_path / "runs"), tokenizer=str(wikitext_bpe), spark=spark)
    assert [a.manifest.get("resumed") for a in again] == ["complete", "complete"]


def test_runs_with_different_tokenizers_are_refused(tmp_path, data_dir, wikitext_bpe):
    from tokenizers import Tokenizer

    other = tmp_path / "other.json"
    tok = Tokenizer.from_file(str(wikitext_bpe))
    tok.add_tokens(["<extra>"])
    tok.save(str(other))
    texts = wikitext_articles(str(data_dir / "text" / "wikitext-2-test.txt"))
    assert len(texts) >= 3 and texts[0].startswith("= Robert <unk> =")
    shards_from_texts(texts, str(wikitext_bpe), str(tmp_path / "a"))
    shards_from_texts(texts, str(other), str(tmp_path / "b"))
    with pytest.raises(AblationError, match="different tokenizers"):
        prepare_arms([str(tmp_path / "a"), str(tmp_path / "b")])
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "r")]) == 2
