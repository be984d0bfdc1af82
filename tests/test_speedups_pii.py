"""The PII speed-ups (curate/speedups/pii.py): switches, the check that their targets exist,
and the plain path as the reference: identical output on the PII test data."""

from __future__ import annotations

import json
import logging

import pytest

from curate.pii import PiiParams, PiiStage
from curate.schema import documents_from_pylist
from curate.speedups import pii as speedups
from process_util import fresh_python


@pytest.fixture(scope="module")
def test_texts(data_dir) -> list[str]:
    """Labelled sentences, real pages, number-dense real pages and dotted-quad look-alikes."""
    folder = data_dir / "pii"
    texts = [json.loads(line)["text"] for line in open(folder / "labelled.jsonl", encoding="utf-8")][:400]
    texts += [json.loads(line)["text"] for line in open(folder / "pages.jsonl", encoding="utf-8")]
    texts += [json.loads(line)["text"] for line in open(folder / "number_pages.jsonl", encoding="utf-8")][:2]
    texts += [json.loads(line)["text"] for line in open(folder / "lookalikes.jsonl", encoding="utf-8")][:100]
    return texts


def scrub_all(texts: list[str]) -> tuple[PiiStage, list]:
    stage = PiiStage(PiiParams())
    out = stage(documents_from_pylist([{"id": f"d{i:04d}", "source": "t", "text": t} for i, t in enumerate(texts)]))
    return stage, out.select(["text", "scores", "flags"]).to_pylist()


@pytest.mark.slow
def test_plain_path_and_sped_up_path_give_identical_output(test_texts, monkeypatch):
    monkeypatch.delenv(speedups.SWITCH, raising=False)
    monkeypatch.delenv("CURATE_SPEEDUPS", raising=False)
    fast_stage, fast = scrub_all(test_texts)
    monkeypatch.setenv(speedups.SWITCH, "off")
    plain_stage, plain = scrub_all(test_texts)
    assert fast_stage._prechecks is not None and plain_stage._prechecks is None
    assert fast == plain
    assert sum(row["text"] != t for row, t in zip(plain, test_texts)) > 300  # it did scrub
    # the pre-check really skipped work
    assert fast_stage.counters["lines_analyzed"] < plain_stage.counters["lines_analyzed"] / 2


@pytest.mark.parametrize("variable", [speedups.SWITCH, "CURATE_SPEEDUPS"])
@pytest.mark.parametrize("value, on", [("off", False), (" OFF ", False), ("0", False), ("no", False), ("on", True), ("1", True)])
def test_each_switch_turns_the_pii_speedups_off(monkeypatch, variable, value, on):
    monkeypatch.delenv(speedups.SWITCH, raising=False)
    monkeypatch.delenv("CURATE_SPEEDUPS", raising=False)
    monkeypatch.setenv(variable, value)
    assert speedups.enabled() is on


def test_a_missing_target_falls_back_to_the_plain_path_with_a_warning(monkeypatch, caplog):
    monkeypatch.delenv(speedups.SWITCH, raising=False)
    monkeypatch.delenv("CURATE_SPEEDUPS", raising=False)
    assert speedups.missing_targets() == []
    gone = ("phonenumbers.phonenumbermatcher", "PhoneNumberMatcher._renamed_in_a_later_release")
    monkeypatch.setattr(speedups, "TARGETS", speedups.TARGETS + [gone])
    with caplog.at_level(logging.WARNING, logger="curate.speedups.pii"):
        stage = PiiStage(PiiParams(entities=["PHONE_NUMBER", "EMAIL_ADDRESS"]))
        stage.ensure_setup()
    assert stage._prechecks is None
    assert "phonenumbers.phonenumbermatcher.PhoneNumberMatcher._renamed_in_a_later_release" in caplog.text
    text = "Call +44 20 7946 0958 or write to ada@example.org."
    assert stage.scrub(text)[0] == "Call <PHONE_NUMBER> or write to <EMAIL_ADDRESS>."


def test_switched_off_spacy_comes_in_as_it_imports_itself():
    # thinc imports torch when it is installed; the speed-up stops that, the plain path does not
    code = (
        "import os, sys\n"
        "os.environ['CURATE_SPEEDUP_PII'] = 'off'\n"
        "from curate.pii import PiiParams, PiiStage\n"
        "stage = PiiStage(PiiParams(entities=['EMAIL_ADDRESS']))\n"
        "print(stage.scrub('write to ada@example.org')[0], sys.modules.get('torch') is not None)\n"
    )
    assert fresh_python(code).strip() == "write to <EMAIL_ADDRESS> True"
