"""``curate ablate`` on the two shipped recipes: real curation runs (Spark), training, report."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from trainer.ablate import AblationError, AblationOptions, Arm, load_recipes, main, prepare_arms, run_ablation, shared_prefix
from trainer.data import shards_from_texts
from trainer.evalsets import EvalSetSpec, wikitext_articles

ROOT = Path(__file__).resolve().parent.parent
RECIPES = [str(ROOT / "pipelines" / "recipes" / f"ablate_{side}.yaml") for side in ("filtered", "unfiltered")]


@pytest.fixture(scope="module")
def leaked_pages(tmp_path_factory, data_dir) -> Path:
    """An eval set made of two pages the shipped recipes train on: they must be kept out."""
    from curate.decontaminate import ProtectedSet, protected_documents

    pages = list(protected_documents(ProtectedSet("w", [str(data_dir / "warc" / "dolma-sample-0000.warc.gz")], kind="warc")))
    path = tmp_path_factory.mktemp("leak") / "leak.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        for text, url in pages[3:5]:
            fh.write(json.dumps({"text": text, "url": url}) + "\n")
    return path


def test_ablation_of_the_shipped_recipes(tmp_path, spark, wikitext_bpe, leaked_pages, monkeypatch):
    monkeypatch.chdir(ROOT)  # the recipes name their inputs relative to the repository
    options = AblationOptions(
        model="tiny", tokens=4096, seeds=2, seq_len=32, micro_batch=8, eval_points=2, eval_sequences=16, jobs=1, threads=1, control=True
    )
    options.eval_sets.append(EvalSetSpec("leak", str(leaked_pages), about="two pages of the training WARC"))
    summary = run_ablation(
        RECIPES, str(tmp_path / "report"), options, runs_dir=str(tmp_path / "runs"), tokenizer=str(wikitext_bpe), spark=spark
    )
    assert summary["arms"] == ["filtered", "unfiltered", "filtered~control"]

    # the shared stages (extract, the eval sets' decontamination, langid) ran once
    shared = [p.name for p in (tmp_path / "runs").iterdir() if p.name.startswith("shared-")]
    assert shared == [p for p in shared if p.startswith("shared-extract+decontaminate+langid-")] and len(shared) == 1
    manifests = {
        name: json.loads((tmp_path / "runs" / name / "manifest.json").read_text()) for name in ("filtered", "unfiltered", shared[0])
    }
    heldout = next(e for e in manifests[shared[0]]["funnel"] if e["stage"] == "heldout")
    assert heldout["rejected"] == {"heldout.leak": 2}
    # each mix ran its own stages on the shared documents: the filters saw them and removed some
    filters = {e["stage"]: e for e in manifests["filtered"]["funnel"]}
    assert filters["gopher_repetition"]["docs_in"] == manifests[shared[0]]["funnel"][-1]["docs_out"] > 0
    assert manifests["filtered"]["summary"]["documents_out"] < manifests["unfiltered"]["summary"]["documents_out"]

    results = pd.read_parquet(tmp_path / "report" / "results.parquet")
    assert list(results.columns) == ["recipe", "seed", "step", "tokens", "train_loss", "eval_wiki", "eval_web", "eval_leak"]
    assert len(results) == 3 * 2 * 2  # mixes x seeds x evaluations
    assert set(results["tokens"]) == {2048, 4096}
    comparisons = pd.read_parquet(tmp_path / "report" / "comparisons.parquet")
    assert list(comparisons["kind"]) == ["mixes"] * 3 + ["control"] * 3
    assert list(comparisons["eval_set"]) == ["wiki", "web", "leak"] * 2 and comparisons["paired"].all()
    ablation = json.loads((tmp_path / "report" / "ablation.json").read_text())
    assert ablation["arms"]["filtered"]["excluded"] == {"heldout.leak": 2}
    # 4,096 tokens teach a model nothing: the report says so and names no winner
    assert summary["verdict_status"] == ["refused"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "**WARNING**" in report and "ends no better than a unigram guess on wiki" in report
    assert "| filtered | " in report and "heldout.leak: 2" in report and "A/A control" in report
    assert all((tmp_path / "report" / f"eval_{s}.png").exists() for s in ("wiki", "web", "leak"))

    # a second ablation with the same eval sets reuses the finished runs instead of curating again
    from trainer.evalsets import prepare_eval_set

    prepared = [prepare_eval_set(s, str(wikitext_bpe), "<|endoftext|>", str(tmp_path / "report" / "eval")) for s in options.eval_sets]
    again = prepare_arms(RECIPES, runs_dir=str(tmp_path / "runs"), tokenizer=str(wikitext_bpe), spark=spark, protected=prepared)
    assert [a.manifest.get("resumed") for a in again] == ["complete", "complete"]

    # --calibrate and --per-rule on the finished runs: built from the filtered run, no curation again
    from trainer.rule_mixes import rules_removed

    before = sorted(p.name for p in (tmp_path / "runs").iterdir())
    rule = next(iter(rules_removed(str(tmp_path / "runs" / "filtered"))))
    known = dataclasses.replace(options, control=False, calibrate=True, degradations=["shuffled"], doses=[0.5], per_rule=1)
    runs = [str(tmp_path / "runs" / "filtered"), str(tmp_path / "runs" / "unfiltered")]
    summary = run_ablation(runs, str(tmp_path / "known"), known, tokenizer=str(wikitext_bpe))
    assert summary["arms"] == ["filtered", "unfiltered", "filtered~shuffled@0.5", f"filtered+{rule}"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == before
    dose = json.loads((tmp_path / "known" / "mixes" / "filtered~shuffled@0.5" / "manifest.json").read_text())
    assert dose["tokens"]["total"] == manifests["filtered"]["tokens"]["total"] and dose["control"]["share"] == 0.5
    comparisons = pd.read_parquet(tmp_path / "known" / "comparisons.parquet")
    assert list(comparisons["kind"]) == ["mixes"] * 3 + ["calibration"] * 3 + ["rule"] * 3
    report = (tmp_path / "known" / "report.md").read_text()
    assert "## Along the run: filtered vs unfiltered" in report and "- wiki: " in report
    assert "## Resolution" in report and "| wiki | shuffled | 50%: " in report
    assert "## Per rule" in report and f"| {rule} | " in report
    ablation = json.loads((tmp_path / "known" / "ablation.json").read_text())
    assert set(ablation["calibration"]) == {"wiki", "web", "leak"} and ablation["per_rule"][0]["rule"] == rule
    assert ablation["arms"][f"filtered+{rule}"]["role"] == "rule"


def test_repeated_data_and_unchecked_runs_are_warned_about():
    from trainer.report import mix_warnings

    results = pd.DataFrame(
        {"recipe": ["a", "b"], "seed": [0, 0], "step": [1, 1], "tokens": [1, 1], "train_loss": [5.0, 5.0], "eval_x": [4.0, 4.0]}
    )
    arms = [Arm("a", "/r/a", {"tokens": {"total": 1000}}), Arm("b", "/r/b", {"tokens": {"total": 100_000}}, checked=False)]
    warnings = mix_warnings(arms, AblationOptions(), {"a": {"x": 3.0}, "b": {"x": 6.0}}, results, tokens_trained=4096)
    assert warnings["a"] == [
        "a repeats its data: 4.10 epochs over its 1,000 tokens",
        "a ends no better than a unigram guess on x (4.000 >= 3.000)",
    ]
    assert warnings["b"] == ["b was not checked for overlap with the eval sets"]


def test_prefix_is_shared_only_while_recipes_agree():
    filtered, unfiltered = load_recipes(RECIPES, None)
    assert shared_prefix([filtered, unfiltered]) == 2  # extract, langid
    assert shared_prefix([filtered]) == 0
    import dataclasses

    other_input = dataclasses.replace(unfiltered, sources=[dataclasses.replace(unfiltered.sources[0], paths=["elsewhere.warc.gz"])])
    assert shared_prefix([filtered, other_input]) == 0


def test_tokenizer_override_keeps_the_other_tokenizer_keys(tmp_path, wikitext_bpe):
    recipe = Path(RECIPES[0]).read_text().replace('eos_token: "<|endoftext|>"', 'eos_token: "<|endoftext|>"\n  batch_size: 7')
    path = tmp_path / "r.yaml"
    path.write_text(recipe.replace("tests/data", str(ROOT / "tests" / "data")).replace("models/", str(ROOT / "models") + "/"))
    [loaded] = load_recipes([str(path)], str(wikitext_bpe))
    assert loaded.tokenizer.path == str(wikitext_bpe)
    assert loaded.tokenizer.batch_size == 7 and loaded.tokenizer.eos_token == "<|endoftext|>"


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
    assert main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "r"), "--seeds", "1"]) == 2


def test_ablation_file_options_are_checked(tmp_path, capsys):
    spec = tmp_path / "ab.yaml"
    spec.write_text("recipes: [a.yaml, b.yaml]\nseeds: many\n")
    assert main([str(spec)]) == 2
    assert "ab.yaml: seeds: expected an integer, got 'many'" in capsys.readouterr().err


def test_calibration_and_per_rule_options_are_checked(tmp_path, capsys):
    assert main(["a", "b", "--calibrate", "--degradations", "shuffled,nope", "--out", str(tmp_path)]) == 2
    assert "unknown degradation 'nope'" in capsys.readouterr().err
    assert main(["a", "b", "--calibrate", "--doses", "0.1,1.5", "--out", str(tmp_path)]) == 2
    assert "a dose is a share of documents in (0, 1], got 1.5" in capsys.readouterr().err
    assert main(["a", "b", "--per-rule", "-1", "--out", str(tmp_path)]) == 2
    assert "per_rule: expected a number of rules" in capsys.readouterr().err


def test_ablation_models_have_their_own_output_matrix(tmp_path, data_dir, wikitext_bpe):
    from trainer.ablate import train_config
    from trainer.train import build_model

    texts = wikitext_articles(str(data_dir / "text" / "wikitext-2-test.txt"))
    shards_from_texts(texts[:3], str(wikitext_bpe), str(tmp_path / "run"))
    arm = Arm("a", str(tmp_path / "run"), {"tokens": {"total": 1}})
    untied = build_model(train_config(arm, 0, AblationOptions(), {}, str(tmp_path / "out"), 1))
    assert untied.head.weight is not untied.tok_emb.weight
    tied = build_model(train_config(arm, 0, AblationOptions(tie_embeddings=True), {}, str(tmp_path / "out"), 1))
    assert tied.head.weight is tied.tok_emb.weight
    # same compute, one more vocab x width matrix
    assert untied.num_parameters(non_embedding=False) - tied.num_parameters(non_embedding=False) == tied.head.weight.numel()
