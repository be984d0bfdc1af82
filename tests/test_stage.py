"""The stage runner: rejected documents leave the stream, counters add up, pickling drops models."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import numpy as np
import pyarrow.compute as pc
import pytest

from curate.schema import DOCUMENT_SCHEMA, add_flag, add_scores, documents_from_pylist, reject, replace_column, scores_of
from curate.stage import Stage, run_map_stages


@dataclass
class MinWordsParams:
    min_words: int = 50


class MinWords(Stage):
    kind = "min_words"
    Params = MinWordsParams

    def setup(self):
        self._model = object()  # stands for a loaded model: must not travel in a pickle

    def __call__(self, batch):
        words = np.array([len((t or "").split()) for t in batch.column("text").to_pylist()])
        batch = add_scores(batch, {f"{self.name}.words": words.astype(float)})
        return reject(batch, words < self.params.min_words, f"{self.name}.too_short", words)


class Shout(Stage):
    kind = "shout"

    def __call__(self, batch):
        upper = pc.utf8_upper(batch.column("text"))
        return add_flag(replace_column(batch, "text", upper), np.ones(batch.num_rows, bool), "shout.upper")


@pytest.fixture(scope="module")
def docs(data_dir):
    lines = [l.strip() for l in (data_dir / "text" / "wikitext-2-test.txt").read_text(encoding="utf-8").splitlines() if l.strip()]
    return documents_from_pylist([{"id": f"w{i}", "source": "wiki", "text": t} for i, t in enumerate(lines[:60])])


def test_runner_routes_rejections_and_counts(docs):
    words = [len(t.split()) for t in docs.column("text").to_pylist()]
    expected_kept = sum(w >= 50 for w in words)
    stages = [MinWords(MinWordsParams(50)), Shout(None)]
    kept, rejected = run_map_stages(stages, docs)
    assert kept.schema == DOCUMENT_SCHEMA and rejected.schema == DOCUMENT_SCHEMA
    assert kept.num_rows == expected_kept and rejected.num_rows == len(words) - expected_kept
    assert set(rejected.column("rejected_by").to_pylist()) == {"min_words.too_short"}
    assert rejected.column("rejected_value").to_pylist() == [float(w) for w in words if w < 50]
    assert all(t == t.upper() for t in kept.column("text").to_pylist())
    assert all(f == ["shout.upper"] for f in kept.column("flags").to_pylist())
    assert scores_of(kept, "min_words.words") == [float(w) for w in words if w >= 50]
    c = stages[0].counters
    assert c["docs_in"] == len(words) and c["docs_out"] == expected_kept
    assert c["rejected:min_words.too_short"] == len(words) - expected_kept
    assert c["chars_in"] == sum(len(t) for t in docs.column("text").to_pylist())
    assert stages[1].counters["docs_in"] == expected_kept  # later stages see only survivors


def test_stage_must_not_drop_rows(docs):
    class Dropper(Stage):
        kind = "dropper"

        def __call__(self, batch):
            return batch.slice(1)

    with pytest.raises(RuntimeError, match="'dropper' returned 59 rows for 60"):
        run_map_stages([Dropper(None)], docs)


def test_pickled_stage_leaves_models_behind(docs):
    stage = MinWords(MinWordsParams(10))
    run_map_stages([stage], docs)
    assert stage._model is not None and stage.counters["docs_in"] == 60
    clone = pickle.loads(pickle.dumps(stage))
    assert not hasattr(clone, "_model") and clone._ready is False
    assert clone.counters == {} and clone.params.min_words == 10


def test_reject_keeps_first_reason(docs):
    batch = reject(docs, np.arange(60) < 10, "a.first", np.arange(60))
    batch = reject(batch, np.arange(60) < 20, "b.second")
    reasons = batch.column("rejected_by").to_pylist()
    assert reasons[:10] == ["a.first"] * 10 and reasons[10:20] == ["b.second"] * 10 and reasons[20:] == [None] * 40
