"""trainer/controls.py and trainer/rule_mixes.py on a real curation run of the sample WARC: doses
hold exactly the share asked and the mix's exact tokens; a per-rule mix holds exactly the kept
documents plus what that rule alone removed."""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from trainer.controls import (
    FILTER_KINDS,
    Dose,
    build_dose,
    choose,
    read_token_rows,
    rejected_rows,
    shuffle_words,
    word_starts,
)

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = ROOT / "models" / "tokenizer-4k" / "tokenizer.json"


@pytest.fixture(scope="module")
def run(spark, tmp_path_factory) -> Path:
    """pipelines/recipes/ablate_filtered.yaml (extract, langid, Gopher, C4, FineWeb, dedup) on
    the sample WARC: a small real run with documents, rejected/ and token shards."""
    from curate.pipeline import run_recipe

    out = tmp_path_factory.mktemp("controls") / "filtered"
    here = os.getcwd()
    os.chdir(ROOT)  # the recipe names its inputs relative to the repository
    try:
        run_recipe(str(ROOT / "pipelines" / "recipes" / "ablate_filtered.yaml"), output=str(out), spark=spark)
    finally:
        os.chdir(here)
    return out


def _rows(folder) -> dict[str, np.ndarray]:
    table = read_token_rows(str(folder))
    return dict(zip(table.column("id").to_pylist(), (np.asarray(t) for t in table.column("tokens").to_pylist())))


def _eos() -> int:
    from curate.tokens import DocumentTokenizer

    return DocumentTokenizer(str(TOKENIZER)).eos_id


def test_choose_takes_exactly_the_share_and_larger_doses_contain_smaller(run):
    ids = list(_rows(run))
    assert len(ids) == 15
    masks = {share: choose(ids, share, seed=31) for share in (0.1, 0.25, 0.5, 1.0)}
    assert {share: int(m.sum()) for share, m in masks.items()} == {0.1: 2, 0.25: 4, 0.5: 8, 1.0: 15}
    assert (masks[0.1] <= masks[0.25]).all() and (masks[0.25] <= masks[0.5]).all()
    assert (choose(ids, 0.25, seed=31) == masks[0.25]).all() and not (choose(ids, 0.25, seed=32) == masks[0.25]).all()


def test_shuffled_dose_moves_words_and_keeps_every_token(run, tmp_path):
    manifest = build_dose(str(run), str(tmp_path / "shuffled"), Dose("shuffled", 0.25))
    before, after = _rows(run), _rows(tmp_path / "shuffled")
    chosen = {i for i, c in zip(before, choose(list(before), 0.25, seed=31)) if c}
    assert len(chosen) == 4 and manifest["control"]["documents_changed"] == 4 and manifest["control"]["documents"] == 15
    assert set(after) == set(before)
    assert manifest["tokens"]["total"] == sum(len(t) for t in before.values()) == sum(len(t) for t in after.values())
    changed = {i for i in before if not np.array_equal(before[i], after[i])}
    assert changed == chosen  # every chosen document is shuffled, no other one is touched
    for i in chosen:
        assert sorted(before[i]) == sorted(after[i]) and after[i][-1] == before[i][-1] == _eos()
    assert manifest["control"]["tokens_changed"] == sum(len(before[i]) for i in chosen)


def test_word_groups_open_at_whitespace():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    ids = np.array(tokenizer.encode("The cat sat on the mat.\nIt slept.").ids + [_eos()])
    shuffled = shuffle_words(ids, word_starts(str(TOKENIZER)), np.random.default_rng(0))
    words = collections.Counter(tokenizer.decode(shuffled[:-1].tolist()).replace("\n", " \n").split(" "))
    assert shuffled[-1] == _eos() and len(shuffled) == len(ids)
    # the groups are "The", " cat", " sat", " on", " the", " mat.", "\nIt", " slept."
    assert sorted(tokenizer.decode([int(t)]) for t in shuffled[:-1]) == sorted(tokenizer.decode([int(t)]) for t in ids[:-1])
    assert not np.array_equal(shuffled, ids) and words["cat"] == 1


def test_boilerplate_dose_is_the_runs_own_filtered_text(run, tmp_path):
    from curate.tokens import DocumentTokenizer

    manifest = build_dose(str(run), str(tmp_path / "boilerplate"), Dose("boilerplate", 0.5))
    before, after = _rows(run), _rows(tmp_path / "boilerplate")
    assert manifest["tokens"]["total"] == sum(len(t) for t in before.values())
    assert {i: len(t) for i, t in after.items()} == {i: len(t) for i, t in before.items()}  # every document keeps its length
    changed = [i for i in before if not np.array_equal(before[i], after[i])]
    assert len(changed) == manifest["control"]["documents_changed"] == 8
    removed = rejected_rows(str(run), FILTER_KINDS)
    assert removed.num_rows > 0 and all(r.split(".")[0] in FILTER_KINDS for r in removed.column("rejected_by").to_pylist())
    pool = "\n".join(removed.column("text").to_pylist())
    tokenizer = DocumentTokenizer(str(TOKENIZER))
    checked = 0
    for i in changed:
        # the replacement is cut from the filtered documents (end-of-document tokens between them)
        for piece in tokenizer.decode(after[i][:-1], strip_eos=False).split("<|endoftext|>"):
            if len(piece) > 60:
                assert piece[20:60] in pool
                checked += 1
    assert checked >= len(changed)


# What switches each rule off in a recipe: the oracle that "removed only by R" must agree with
# (the per-rule code asks the stages for every rule a document fails instead). hash_ratio and
# ellipsis_ratio share one threshold, so neither can be switched off alone and they are left out.
SWITCH_OFF = {
    "gopher_quality.word_count": {"min_doc_words": None, "max_doc_words": None},
    "gopher_quality.mean_word_length": {"min_avg_word_length": None, "max_avg_word_length": None},
    "gopher_quality.bullet_lines": {"max_bullet_lines_ratio": None},
    "gopher_quality.ellipsis_lines": {"max_ellipsis_lines_ratio": None},
    "gopher_quality.alpha_words": {"min_alpha_words_ratio": None},
    "gopher_quality.stop_words": {"min_stop_words": None},
    "gopher_repetition.dup_para_frac": {"max_dup_para_frac": None},
    "gopher_repetition.dup_para_char_frac": {"max_dup_para_char_frac": None},
    "gopher_repetition.dup_line_frac": {"max_dup_line_frac": None},
    "gopher_repetition.dup_line_char_frac": {"max_dup_line_char_frac": None},
    "c4.lorem_ipsum": {"reject_lorem_ipsum": False},
    "c4.curly_bracket": {"reject_curly_bracket": False},
    "c4.too_few_sentences": {"min_sentences": None},
    "c4.bad_words": {"bad_words": False},
    "fineweb.line_punct_ratio": {"min_line_punct_ratio": None},
    "fineweb.short_line_ratio": {"max_short_line_ratio": None},
    "fineweb.char_dup_ratio": {"max_char_dup_ratio": None},
    "fineweb.list_ratio": {"max_newline_word_ratio": None},
}


def _switched_off(stages: list, rule: str) -> list:
    stage_name, name = rule.split(".", 1)
    out = []
    for stage in stages:
        if stage.name == stage_name:
            if rule in SWITCH_OFF:
                change = SWITCH_OFF[rule]
            else:  # gopher_repetition.top_3_gram / dup_5_gram: one entry of a threshold table
                table = "max_top_ngram_char_frac" if name.startswith("top_") else "max_dup_ngram_char_frac"
                change = {table: {**getattr(stage.params, table), int(name.split("_")[1]): None}}
            stage = type(stage)(dataclasses.replace(stage.params, **change), stage.context, name=stage.name)
        out.append(stage)
    return out


def _brought_back(stages: list, removed, rule: str) -> dict[str, str]:
    """id -> text of the removed documents that every per-document stage keeps with ``rule``
    switched off in its settings, each run the ordinary way (the first rule that fails wins)
    from the stage that removed it on, as it reached that stage."""
    from curate.stage import run_map_stages

    from trainer.rule_mixes import cleared

    stages = [s for s in _switched_off(stages, rule) if not s.is_global]
    names = [s.name for s in stages]
    first = [r.split(".", 1)[0] for r in removed.column("rejected_by").to_pylist()]
    out = {}
    for at, name in enumerate(names):
        mine = cleared(removed.filter(pa.array([f == name for f in first])))
        if mine.num_rows:
            kept, _ = run_map_stages(stages[at:], mine.combine_chunks().to_batches()[0])
            out.update(zip(kept.column("id").to_pylist(), kept.column("text").to_pylist()))
    return out


def test_rule_mix_is_the_kept_documents_plus_what_that_rule_alone_removed(run, tmp_path):
    """Against an oracle that never asks for every rule: run the removed documents through the
    recipe's per-document stages again with the rule switched off in its settings; those it
    keeps (less duplicates of the mix) are exactly what the rule mix adds."""
    from trainer.rule_mixes import build_rule_mix, judge_removals, read_documents, recipe_stages, rules_removed

    manifest = json.loads((run / "manifest.json").read_text())
    stages = recipe_stages(manifest)
    judged = judge_removals(str(run))
    rules = judged.column("rules").to_pylist()
    assert [r[0] for r in rules] == judged.column("first").to_pylist()
    assert any(len(r) > 1 for r in rules)  # documents two rules object to: "only by it" can differ from "first"
    removed = read_documents(str(run / "rejected"))
    kept = _rows(run)
    counts = rules_removed(str(run))
    checked = 0
    for rule in [r for r in counts if not r.startswith(("langid.", "dedup.", "gopher_quality.hash_ratio", "gopher_quality.ellipsis"))]:
        manifest = build_rule_mix(str(run), str(tmp_path / rule), rule, judged)
        info, mixed = manifest["rule_mix"], _rows(tmp_path / rule)
        back = _brought_back(stages, removed, rule)
        added = set(mixed) - set(kept)
        # exactly the kept documents, untouched, plus what switching the rule off brings back, less duplicates of the mix
        assert set(kept) <= set(mixed) and all(np.array_equal(mixed[i], kept[i]) for i in kept)
        assert added <= set(back) and len(back) - len(added) == info["duplicates_of_mix"]
        assert info["removed_only"] == len(added) and info["removed_first"] == counts[rule] <= info["removed_by"]
        # as the later stages leave them (C4 drops lines)
        assert [mixed[i].tolist() for i in sorted(added)] == _encode([back[i] for i in sorted(added)])
        assert manifest["tokens"]["total"] == sum(len(t) for t in kept.values()) + info["tokens_only"]
        checked += 1
        if info["removed_by"] > info["removed_only"]:
            assert info["also_removed_by"]
    assert checked >= 2


def _encode(texts: list[str]) -> list[list[int]]:
    from curate.tokens import DocumentTokenizer

    return [list(ids) for ids in DocumentTokenizer(str(TOKENIZER)).encode(texts)]


def test_a_rule_mix_leaves_out_what_dedup_finds_in_the_mix(run, tmp_path):
    """A removed document that only alpha_words objects to, but whose text (once C4 drops its
    line of numbers) is a kept page's: switching alpha_words off would not add its text, dedup
    would remove it or the page; so the rule mix leaves it out and counts it."""
    import shutil

    import pyarrow.parquet as pq

    from curate.schema import DOCUMENT_SCHEMA
    from trainer.rule_mixes import build_rule_mix, judge_removals, read_documents

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    page = read_documents(str(copy / "documents")).slice(0, 1).to_pylist()[0]
    numbers = " ".join(str(1000 + i) for i in range(len(page["text"].split())))  # a line C4 drops, with no letters
    twin = {
        **page,
        "id": "twin-" + page["id"],
        "url": None,
        "text": page["text"] + "\n" + numbers,
        "rejected_by": "gopher_quality.alpha_words",
    }
    pq.write_table(pa.Table.from_pylist([twin], schema=DOCUMENT_SCHEMA), copy / "rejected" / "zz-twin.parquet")
    judged = judge_removals(str(copy))
    assert dict(zip(judged.column("id").to_pylist(), judged.column("rules").to_pylist()))[twin["id"]] == ["gopher_quality.alpha_words"]
    before = build_rule_mix(str(run), str(tmp_path / "before"), "gopher_quality.alpha_words")["rule_mix"]
    after = build_rule_mix(str(copy), str(tmp_path / "after"), "gopher_quality.alpha_words", judged)["rule_mix"]
    assert after["removed_by"] == before["removed_by"] + 1 and after["removed_only"] == before["removed_only"]
    assert after["duplicates_of_mix"] == before["duplicates_of_mix"] + 1
    assert twin["id"] not in _rows(tmp_path / "after") and set(_rows(tmp_path / "after")) == set(_rows(tmp_path / "before"))
