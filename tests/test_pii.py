"""The pii stage: detection quality on the labelled set, the pre-check's exactness on real
pages, replacement operators, offsets, overlaps, huge documents, span files, no network, and
names and places found by a real spaCy pipeline loaded from a folder."""

from __future__ import annotations

import json
import os
import pickle
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.pii import (
    DEFAULT_ENTITIES,
    PiiParams,
    PiiStage,
    build_analyzer,
    build_prechecks,
    card_number_is_plausible,
    lines_to_analyse,
    phone_stretches,
    resolve_overlaps,
)
from curate.config import from_dict
from curate.recipe import RecipeError, load_recipe
from curate.schema import documents_from_pylist, scores_of
from curate.stage import StageContext, StageError, run_map_stages
from process_util import fresh_python
from recipe_util import one_stage_recipe

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pii_data(data_dir):
    return data_dir / "pii"


@pytest.fixture(scope="module")
def labelled(pii_data):
    return [json.loads(line) for line in open(pii_data / "labelled.jsonl", encoding="utf-8")]


@pytest.fixture(scope="module")
def pages(pii_data):
    return [json.loads(line)["text"] for line in open(pii_data / "pages.jsonl", encoding="utf-8")]


@pytest.fixture(scope="module")
def number_pages(pii_data):
    return [json.loads(line)["text"] for line in open(pii_data / "number_pages.jsonl", encoding="utf-8")]


@pytest.fixture(scope="module")
def stage():
    s = PiiStage(PiiParams())
    s.check()
    s.ensure_setup()
    return s


def run(stage: PiiStage, texts: list[str]):
    batch = documents_from_pylist([{"id": f"d{i}", "source": "test", "text": t} for i, t in enumerate(texts)])
    return stage(batch)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# --- recipe keys ------------------------------------------------------------------------------


def test_unknown_entity_is_rejected_with_the_valid_names():
    with pytest.raises(ValueError, match="unknown PASSPORT.*EMAIL_ADDRESS, PHONE_NUMBER"):
        PiiParams(entities=["EMAIL_ADDRESS", "PASSPORT"]).validate()


def test_recipe_loader_reports_the_stage_path():
    with pytest.raises(RecipeError, match=r"r.yaml: stages\[0\]: entities: unknown EMAIL"):
        from_dict(PiiParams, {"entities": ["EMAIL"]}, "stages[0]", "r.yaml")


def test_names_and_places_need_a_named_spacy_model():
    with pytest.raises(ValueError, match="PERSON need a spaCy NER model"):
        PiiParams(entities=["PERSON"]).validate()


def test_a_spacy_model_that_is_not_installed_fails_check():
    stage = PiiStage(PiiParams(entities=["PERSON"], spacy_model="xx_no_such_model_sm"))
    with pytest.raises(StageError, match="'xx_no_such_model_sm' is not installed"):
        stage.check()


def test_hash_operator_needs_the_salt_variable(monkeypatch):
    monkeypatch.delenv("CURATE_PII_SALT", raising=False)
    with pytest.raises(StageError, match="set the environment variable CURATE_PII_SALT"):
        PiiStage(PiiParams(operator="hash")).check()
    monkeypatch.setenv("CURATE_PII_SALT", "")
    with pytest.raises(StageError):
        PiiStage(PiiParams(operator="hash")).check()


# --- building offline ---------------------------------------------------------------------------


def test_analyzer_builds_and_validates_emails_without_network(no_network):
    analyzer = build_analyzer(PiiParams())
    results = analyzer.analyze("Write to Jane.Doe@Example.CO.UK today.", language="en", entities=["EMAIL_ADDRESS"])
    assert [(r.start, r.end) for r in results] == [(9, 31)]


# --- quality on the labelled set -------------------------------------------------------------------


def test_a_blank_pipeline_does_not_import_torch_and_a_later_import_still_works():
    # spaCy's thinc imports torch when installed: seconds of every worker's start-up. The
    # stage is unpickled and run the way a Spark worker runs it (setup also imports the
    # anonymizer, which imports spaCy too).
    code = (
        "import pickle, sys\n"
        "from curate.pii import PiiParams, PiiStage\n"
        "from curate.schema import documents_from_pylist\n"
        "stage = pickle.loads(pickle.dumps(PiiStage(PiiParams(entities=['EMAIL_ADDRESS']))))\n"
        "out = stage(documents_from_pylist([{'id': 'd0', 'source': 't', 'text': 'write to ada@example.org'}]))\n"
        "assert out.column('text').to_pylist() == ['write to <EMAIL_ADDRESS>'], out.column('text')\n"
        "assert 'torch' not in sys.modules\n"
        "import torch\n"
        "print(torch.tensor([2, 3]).sum().item())\n"
    )
    assert fresh_python(code).strip() == "5"


def test_warm_up_imports_what_setup_needs_and_keeps_nothing_on_the_stage():
    # What a Spark worker does in its background thread before its first PII task.
    code = (
        "import pickle, sys\n"
        "from curate.pii import PiiParams, PiiStage\n"
        "from curate.schema import documents_from_pylist\n"
        "params = PiiParams(entities=['EMAIL_ADDRESS'])\n"
        "PiiStage(params).warm_up()\n"
        "assert {'spacy', 'presidio_analyzer', 'presidio_anonymizer'} <= set(sys.modules)\n"
        "assert 'torch' not in sys.modules\n"
        "stage = pickle.loads(pickle.dumps(PiiStage(params)))\n"
        "assert not [k for k in vars(stage) if k.startswith('_') and k != '_ready']\n"
        "out = stage(documents_from_pylist([{'id': 'd0', 'source': 't', 'text': 'write to ada@example.org'}]))\n"
        "print(out.column('text').to_pylist()[0])\n"
    )
    assert fresh_python(code).strip() == "write to <EMAIL_ADDRESS>"


def test_recall_and_precision_meet_the_targets(stage, labelled):
    found = {e: 0 for e in DEFAULT_ENTITIES}
    total = {e: 0 for e in DEFAULT_ENTITIES}
    correct = wrong = 0
    for ex in labelled:
        predictions = stage.analyze(ex["text"])
        for gold in ex["spans"]:
            total[gold["entity_type"]] += 1
            found[gold["entity_type"]] += any(
                p.entity_type == gold["entity_type"] and p.start <= gold["start"] and p.end >= gold["end"] for p in predictions
            )
        for p in predictions:
            if any(p.entity_type == g["entity_type"] and p.start < g["end"] and p.end > g["start"] for g in ex["spans"]):
                correct += 1
            else:
                wrong += 1
    recall = {e: found[e] / total[e] for e in DEFAULT_ENTITIES}
    assert all(total[e] == 200 for e in DEFAULT_ENTITIES)
    assert min(recall.values()) >= 0.99, recall
    assert correct / (correct + wrong) >= 0.97


def test_decoys_survive_scrubbing(stage, labelled):
    sample = labelled[:300]
    out = run(stage, [ex["text"] for ex in sample]).column("text").to_pylist()
    kept = total = 0
    for ex, text in zip(sample, out):
        for decoy in ex["decoys"]:
            total += 1
            kept += ex["text"][decoy["start"] : decoy["end"]] in text
    assert total > 400
    assert kept / total >= 0.99


@pytest.mark.parametrize(
    "digits, plausible",
    [
        ("4111111111111111", True),
        ("378282246310005", True),
        ("5555555555554444", True),
        ("2221000000000009", True),
        ("30569309025904", True),
        ("4111111111111112", False),
        ("9111111111111119", False),
        ("1234567812345670", False),
    ],
)
def test_card_numbers_need_luhn_and_an_issuer(digits, plausible):
    assert card_number_is_plausible(digits) is plausible


# --- the pre-check ------------------------------------------------------------------------------------


def test_precheck_changes_nothing_on_real_pages(pages, labelled):
    texts = pages + [ex["text"] for ex in labelled[::8]]
    with_check = PiiStage(PiiParams())
    without = PiiStage(PiiParams(precheck=False))
    a = run(with_check, texts)
    b = run(without, texts)
    assert a.column("text").to_pylist() == b.column("text").to_pylist()
    assert a.column("scores").to_pylist() == b.column("scores").to_pylist()
    assert with_check.counters["docs_scrubbed"] == without.counters["docs_scrubbed"] > 40
    # ... while presidio saw far fewer lines
    assert with_check.counters["lines_analyzed"] * 4 < without.counters["lines_analyzed"]
    assert with_check.counters["docs_prechecked_clean"] >= 20


def test_phone_gate_changes_nothing_on_number_dense_pages(number_pages):
    # Whole pages of figures: thousands of digit chains, all of which libphonenumber sees
    # (13 regions, one matcher over each whole line) when the pre-check is off.
    with_check = PiiStage(PiiParams())
    without = PiiStage(PiiParams(precheck=False))
    key = lambda results: [(r.start, r.end, r.entity_type, round(r.score, 9)) for r in results]  # noqa: E731
    found = [key(with_check.analyze(t)) for t in number_pages]
    assert found == [key(without.analyze(t)) for t in number_pages]
    # the one phone number and the one e-mail address those pages hold, found either way
    assert [(t[s:e], kind) for t, f in zip(number_pages, found) for s, e, kind, _ in f] == [
        ("service@iwr.de", "EMAIL_ADDRESS"),
        ("0201-2402-0", "PHONE_NUMBER"),
    ]
    # ... while libphonenumber saw under a twentieth of the characters it sees without the gate
    chars_in_stretches = sum(e - s for t in number_pages for s, e in phone_stretches(t))
    assert chars_in_stretches * 20 < sum(map(len, number_pages))


def test_a_matcher_per_stretch_finds_what_one_matcher_per_line_finds(pages, number_pages):
    # the independence at hard characters, without the gate: every stretch, not only gated ones
    import phonenumbers

    from curate.speedups.pii import phone_gate

    hard = phone_gate()[1]
    lines = [line for text in pages + number_pages for line in text.split("\n") if any(c.isdigit() for c in line)]
    assert len(lines) > 1000
    for region in ("US", "DE", "JP"):
        for line in lines:
            whole = [(m.start, m.end, m.raw_string) for m in phonenumbers.PhoneNumberMatcher(line, region)]
            cuts = [m.start() for m in hard.finditer(line)]
            pieces = []
            for start, end in zip([0] + cuts, cuts + [len(line) - 1]):
                piece = line[start : end + 1]
                pieces += [(start + m.start, start + m.end, m.raw_string) for m in phonenumbers.PhoneNumberMatcher(piece, region)]
            assert sorted(set(pieces)) == whole, line


# pieces of numbers as people write them, with the characters that change what the matcher
# accepts around them (letters, currency, "%", extensions, other scripts' digits)
_NUMBER_PIECES = st.lists(
    st.sampled_from(
        [
            "+",
            "00",
            "0",
            "1",
            "7",
            "9",
            "12",
            "345",
            "6789",
            "030",
            "212",
            "555",
            "0143",
            "44",
            "20",
            "7946",
            "0958",
            "89",
            "636648",
            "0011",
            "011",
            " ",
            " ",
            "-",
            ".",
            "/",
            "(",
            ")",
            " x ",
            " ext. ",
            "#",
            "A",
            "k",
            "tel ",
            "\u2013",
            "1911",
            "2020",
            ":45",
            "%",
            "$",
            "\n",
            ", ",
            "\u00a0",
            "12345678901",
            "\uff10\uff13",
            "\u0663\u0664",
            "[",
            "~",
            ";ext=",
            "int",
            "\u20ac",
            "\u017f",
            "\u00e9",
            "+1 ",
            "+49 30 ",
            "(0)",
        ]
    ),
    max_size=16,
).map("".join)


@settings(max_examples=1000, deadline=None)
@given(text=_NUMBER_PIECES)
def test_narrowed_phone_recognizer_equals_whole_line_matching(analyzer_at_zero, narrowed_at_zero, text):
    key = lambda results: sorted((r.start, r.end, r.score) for r in results)  # noqa: E731
    assert key(narrowed_at_zero.analyze(text, language="en", entities=["PHONE_NUMBER"])) == key(
        analyzer_at_zero.analyze(text, language="en", entities=["PHONE_NUMBER"])
    )


_TRICKY = st.text(alphabet="0123456789 -.:/+()@xX_abcdefABCDEFZ\u00a0\uff0d\u2010\n", max_size=60)


@pytest.fixture(scope="module")
def analyzer_at_zero():
    # the reference: no narrowing inside the phone recognizer either
    return build_analyzer(PiiParams(score_threshold=0.0, precheck=False))


@pytest.fixture(scope="module")
def narrowed_at_zero():
    return build_analyzer(PiiParams(score_threshold=0.0))


@settings(max_examples=300, deadline=None)
@given(text=_TRICKY)
def test_precheck_never_misses_what_a_recognizer_finds(analyzer_at_zero, text):
    checks = build_prechecks(DEFAULT_ENTITIES)
    for entity in DEFAULT_ENTITIES:
        check = checks[entity]
        passes = (check in text) if isinstance(check, str) else bool(check.search(text))
        if not passes:
            assert analyzer_at_zero.analyze(text, language="en", entities=[entity]) == [], entity


def test_lines_to_analyse_keeps_offsets_and_entities():
    text = "nothing here\nmail a@b.de\n\ncall +44 20 7946 0958 now\nS. 101 – 102 32, 12-15 199 111 X, 98 x 78 1909 4A\nssn 536-22-8145"
    lines = lines_to_analyse(text, DEFAULT_ENTITIES, build_prechecks(DEFAULT_ENTITIES))
    # the page ranges and table cells on the fourth line cannot be a phone number we keep
    assert [(text[s:e], ents) for s, e, ents in lines] == [
        ("mail a@b.de", ["EMAIL_ADDRESS"]),
        ("call +44 20 7946 0958 now", ["PHONE_NUMBER"]),
        ("ssn 536-22-8145", ["PHONE_NUMBER", "US_SSN"]),
    ]


# --- replacement -------------------------------------------------------------------------------------


def test_tags_scores_flags_and_counters(stage):
    before = dict(stage.counters)
    out = run(stage, ["Mail Ann.Lee@Example.com or call +1 212-555-0143; IBAN DE89 3704 0044 0532 0130 00.", "No PII here."])
    assert out.column("text").to_pylist() == ["Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>; IBAN <IBAN_CODE>.", "No PII here."]
    assert scores_of(out, "pii.EMAIL_ADDRESS") == [1.0, None]
    assert scores_of(out, "pii.IBAN_CODE") == [1.0, None]
    assert out.column("flags").to_pylist() == [["pii.scrubbed"], []]
    assert out.column("rejected_by").to_pylist() == [None, None]
    assert stage.counters["replaced:PHONE_NUMBER"] - before.get("replaced:PHONE_NUMBER", 0) == 1
    assert stage.counters["docs_scrubbed"] - before.get("docs_scrubbed", 0) == 1


def test_mask_operator_writes_the_fixed_mask():
    out = run(PiiStage(PiiParams(operator="mask", mask="###")), ["ip 192.168.10.7 and 2001:db8::8a2e:370:7334."])
    assert out.column("text").to_pylist() == ["ip ### and ###."]


def test_salted_hash_is_stable_per_value_and_depends_on_the_salt(monkeypatch):
    texts = ["a Bob@example.org b", "c Bob@example.org d Eve@example.org"]
    monkeypatch.setenv("CURATE_PII_SALT", "pepper-1")
    stage = PiiStage(PiiParams(operator="hash"))
    stage.check()
    first = run(stage, texts).column("text").to_pylist()
    token = first[0].split()[1]
    assert token.startswith("<EMAIL_ADDRESS:") and "Bob" not in token
    assert first[1].split()[1] == token and first[1].split()[3] != token
    # the salt travels with the pickled stage, whatever the worker's environment says
    monkeypatch.setenv("CURATE_PII_SALT", "other")
    clone = pickle.loads(pickle.dumps(stage))
    assert not hasattr(clone, "_analyzer") and clone.salt == "pepper-1"
    assert run(clone, texts).column("text").to_pylist() == first
    salted_differently = PiiStage(PiiParams(operator="hash"))
    salted_differently.check()
    assert run(salted_differently, texts[:1]).column("text").to_pylist()[0] != first[0]


def test_offsets_stay_right_with_multibyte_text(tmp_path):
    prefix = "Grüße 👋🏽 から東京 — ṩ̃ "
    text = prefix + "mail: zoë@bücher.de, tel +49 30 901820.\n🎉 second line 🎉 ssn 536-22-8145"
    stage = PiiStage(PiiParams(keep_spans=True), StageContext(run_dir=str(tmp_path)))
    out = run(stage, [text])
    assert out.column("text").to_pylist() == [prefix + "mail: <EMAIL_ADDRESS>, tel <PHONE_NUMBER>.\n🎉 second line 🎉 ssn <US_SSN>"]
    (spans_file,) = (tmp_path / "pii_spans").iterdir()
    spans = pq.read_table(spans_file).to_pylist()
    assert [text[s["start"] : s["end"]] for s in spans] == ["zoë@bücher.de", "+49 30 901820", "536-22-8145"]
    assert [s["entity_type"] for s in spans] == ["EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN"]
    assert set(spans[0]) == {"id", "start", "end", "entity_type", "score"}  # never the value


def test_overlapping_detections_become_one_replacement():
    stage = PiiStage(PiiParams(entities=["EMAIL_ADDRESS", "URL"]))
    stage.ensure_setup()
    text = "write to bob.smith@example.com now"
    found = stage._analyzer.analyze(text, language="en", entities=["EMAIL_ADDRESS", "URL"])
    assert {r.entity_type for r in found} == {"EMAIL_ADDRESS", "URL"}  # both recognizers fire
    out = run(stage, [text])
    assert out.column("text").to_pylist() == ["write to <EMAIL_ADDRESS> now"]
    assert scores_of(out, "pii.EMAIL_ADDRESS") == [1.0] and scores_of(out, "pii.URL") == [None]


def test_resolve_overlaps_prefers_score_then_length():
    from presidio_analyzer import RecognizerResult

    results = [
        RecognizerResult("PHONE_NUMBER", 0, 10, 0.4),
        RecognizerResult("US_SSN", 2, 13, 0.85),
        RecognizerResult("IP_ADDRESS", 20, 27, 0.6),
        RecognizerResult("URL", 20, 30, 0.6),
    ]
    kept = resolve_overlaps(results)
    assert [(r.entity_type, r.start, r.end) for r in kept] == [("US_SSN", 2, 13), ("URL", 20, 30)]


# --- big documents and span files ---------------------------------------------------------------------


def test_a_ten_megabyte_document_is_rejected_with_a_reason(pages):
    huge = ("\n".join(pages) + "\n") * (10_000_000 // (sum(map(len, pages)) + len(pages)) + 1)
    assert len(huge) > 10_000_000
    stage = PiiStage(PiiParams())
    out = run(stage, [huge, "mail x@example.com"])
    assert out.column("rejected_by").to_pylist() == ["pii.too_large", None]
    assert out.column("rejected_value").to_pylist()[0] == float(len(huge))
    assert out.column("text").to_pylist()[1] == "mail <EMAIL_ADDRESS>"
    assert stage.counters["docs_too_large"] == 1


def test_span_files_are_named_by_batch_so_a_retry_overwrites(tmp_path):
    stage = PiiStage(PiiParams(keep_spans=True), StageContext(run_dir=str(tmp_path)))
    texts = ["a 10.0.0.1 b", "nothing", "c 4111 1111 1111 1111"]
    run(stage, texts)
    run(stage, texts)
    files = sorted(os.listdir(tmp_path / "pii_spans"))
    assert len(files) == 1 and files[0].endswith(".parquet")
    rows = pq.read_table(tmp_path / "pii_spans" / files[0]).to_pylist()
    assert [(r["id"], r["entity_type"], r["start"], r["end"]) for r in rows] == [("d0", "IP_ADDRESS", 2, 10), ("d2", "CREDIT_CARD", 2, 21)]
    run(stage, texts[:2])
    assert len(os.listdir(tmp_path / "pii_spans")) == 2


# --- names and places: a real spaCy pipeline from a folder ----------------------------------------------
#
# No NER model package is installed here, so the tests build a real spaCy pipeline, save it with
# nlp.to_disk() and name the folder as spacy_model: spacy.blank("en") plus an entity_ruler whose
# patterns are names and places that occur in tests/data/pii. spaCy loads it through the same
# spacy.load() an installed en_core_web_sm goes through, and its doc.ents carry OntoNotes labels.

NER_ENTITIES = ["PERSON", "LOCATION", "EMAIL_ADDRESS"]
RULER_PATTERNS = [
    ("PERSON", "Parker"),
    ("PERSON", "Clinton"),
    ("PERSON", "Amos"),
    ("GPE", "Florida"),
    ("GPE", "Macclesfield"),
    ("GPE", "Cheshire"),
    ("LOC", "South Texas"),
    # mapped by presidio to ORGANIZATION, which the stage is not asked for
    ("ORG", "Manchester United"),
    ("ORG", "Crewe Alexandra"),
    ("ORG", "Air Rhodesia"),
    # a label presidio's mapping does not know
    ("FAC", "Salisbury Airport"),
]


def save_ruler_pipeline(folder: Path) -> Path:
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": label, "pattern": text} for label, text in RULER_PATTERNS])
    nlp.to_disk(folder)
    return folder


@pytest.fixture(scope="module")
def ner_folder(tmp_path_factory) -> Path:
    return save_ruler_pipeline(tmp_path_factory.mktemp("spacy") / "ner")


@pytest.fixture(scope="module")
def ner_stage(ner_folder):
    s = PiiStage(PiiParams(entities=NER_ENTITIES, spacy_model=str(ner_folder)))
    s.check()
    return s


@pytest.fixture(scope="module")
def ner_texts(pii_data, labelled):
    """Real sentences from tests/data/pii, keyed by what they hold."""
    sentences = (pii_data / "sentences.txt").read_text(encoding="utf-8").splitlines()

    def labelled_with(s):
        (text,) = [ex["text"] for ex in labelled if s in ex["text"]]
        return text

    def sentence(prefix):
        (text,) = [line for line in sentences if line.startswith(prefix)]
        return text

    return {
        "mail_and_names": labelled_with("Hoped1064@"),
        "places_name_orgs_mail": labelled_with("tive12@my-firm.com.br"),
        "gpe_and_loc": sentence("Unusually, the storm hit Florida"),
        "names_only": sentence("Admiral Parker and General Clinton"),
        "fac_and_org": sentence("Based at Salisbury Airport"),
        "nothing": sentence("The South Mole and a large ship"),
    }


NER_EXPECTED = {
    "mail_and_names": "The first purpose-built steam battleship was the 90-gun Napoléon in 1850. (e-mail: <EMAIL_ADDRESS>) "
    "tracking number 1Z653AA17287703643 published tracking number 1Z301AA11027294460 Although <PERSON> was "
    "not blamed by the government, popular opinion held him responsible, and <PERSON> was lauded for his "
    "personal bravery .",
    "places_name_orgs_mail": "Born in <LOCATION>, <LOCATION>, <PERSON> began his career with Crewe Alexandra's youth academy, "
    "but joined Manchester United at the age of 11. Contact <EMAIL_ADDRESS> for details. as of 18:47:06",
    "gpe_and_loc": "Unusually, the storm hit <LOCATION> less than 24 hours before another major hurricane bearing "
    "125-mile-per-hour (201 km / h) winds struck <LOCATION>; never have two major cyclones hit the United "
    "States in such close succession .",
    "names_only": "Admiral <PERSON> and General <PERSON> engaged in a war of words after the battle, each seeking to cast "
    "the blame on the other for the expedition's failures.",
    "fac_and_org": None,  # unchanged
    "nothing": None,
}


def test_a_spacy_pipeline_folder_replaces_names_and_places(ner_stage, ner_texts, caplog):
    keys = list(NER_EXPECTED)
    before = dict(ner_stage.counters)
    with caplog.at_level("WARNING"):
        out = run(ner_stage, [ner_texts[k] for k in keys])
    assert out.column("text").to_pylist() == [NER_EXPECTED[k] or ner_texts[k] for k in keys]
    # GPE (Florida, Macclesfield, Cheshire) and LOC (South Texas) both become LOCATION
    assert scores_of(out, "pii.PERSON") == [2.0, 1.0, None, 2.0, None, None]
    assert scores_of(out, "pii.LOCATION") == [None, 2.0, 2.0, None, None, None]
    assert scores_of(out, "pii.EMAIL_ADDRESS") == [1.0, 1.0, None, None, None, None]
    assert out.column("flags").to_pylist() == [["pii.scrubbed"]] * 4 + [[], []]
    assert out.column("rejected_by").to_pylist() == [None] * 6
    delta = {k: v - before.get(k, 0) for k, v in ner_stage.counters.items()}
    assert {k: v for k, v in delta.items() if v} == {
        "replaced:PERSON": 5,
        "replaced:LOCATION": 4,
        "replaced:EMAIL_ADDRESS": 2,
        "docs_scrubbed": 4,
        "docs_analyzed": 6,
        "lines_analyzed": 6,
    }
    # FAC is not in presidio's label mapping: dropped quietly, not one warning per line
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == []


def test_the_analyzer_maps_spacy_labels_to_presidio_entities(ner_stage, ner_texts):
    text = ner_texts["places_name_orgs_mail"]
    found = ner_stage._analyzer.analyze(text, language="en", entities=["PERSON", "LOCATION"])
    assert sorted((text[r.start : r.end], r.entity_type, r.score) for r in found) == [
        ("Amos", "PERSON", 0.85),
        ("Cheshire", "LOCATION", 0.85),
        ("Macclesfield", "LOCATION", 0.85),
    ]


def test_the_precheck_analyses_every_line_when_names_are_wanted(ner_folder, ner_texts):
    doc = "\n".join([ner_texts["names_only"], "", ner_texts["nothing"], ner_texts["places_name_orgs_mail"]])
    lines = lines_to_analyse(doc, NER_ENTITIES, build_prechecks(NER_ENTITIES))
    assert [(doc[s:e], ents) for s, e, ents in lines] == [
        (ner_texts["names_only"], ["PERSON", "LOCATION"]),
        (ner_texts["nothing"], ["PERSON", "LOCATION"]),
        (ner_texts["places_name_orgs_mail"], ["PERSON", "LOCATION", "EMAIL_ADDRESS"]),
    ]
    expected = "\n".join([NER_EXPECTED["names_only"], "", ner_texts["nothing"], NER_EXPECTED["places_name_orgs_mail"]])
    outputs = {}
    for precheck in (True, False):
        stage = PiiStage(PiiParams(entities=NER_ENTITIES, spacy_model=str(ner_folder), precheck=precheck))
        out = run(stage, [doc, ner_texts["names_only"]])
        outputs[precheck] = out.column("text").to_pylist()
        assert stage.counters["lines_analyzed"] == 4
    # a line with neither digits nor "@" still has its names replaced
    assert outputs[True] == outputs[False] == [expected, NER_EXPECTED["names_only"]]


def write_recipe(tmp_path: Path, spacy_model: str) -> Path:
    recipe = one_stage_recipe(tmp_path, "Admiral Parker", {"stage": "pii", "entities": NER_ENTITIES, "spacy_model": spacy_model})
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def test_a_recipe_naming_a_pipeline_folder_checks_and_runs_on_a_worker(tmp_path, monkeypatch, ner_texts):
    (tmp_path / "models").mkdir()
    save_ruler_pipeline(tmp_path / "models" / "ner")
    path = write_recipe(tmp_path, "models/ner")
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(str(path))  # check_files: runs the stage's check(), which loads the pipeline
    # resolved on the driver like the *_path keys, so a worker's working directory does not matter
    assert recipe.stages[0].params.spacy_model == str(tmp_path / "models" / "ner")
    assert recipe.to_dict()["stages"][0]["spacy_model"] == str(tmp_path / "models" / "ner")
    monkeypatch.chdir(ROOT)
    (stage,) = recipe.build_stages()
    worker_copy = pickle.loads(pickle.dumps(stage))  # what Spark ships to an executor
    assert not hasattr(worker_copy, "_analyzer")
    keys = ["mail_and_names", "names_only", "nothing"]
    batch = documents_from_pylist([{"id": k, "source": "s", "text": ner_texts[k]} for k in keys])
    kept, rejected = run_map_stages([worker_copy], batch)
    assert rejected.num_rows == 0
    assert kept.column("text").to_pylist() == [NER_EXPECTED["mail_and_names"], NER_EXPECTED["names_only"], ner_texts["nothing"]]
    assert scores_of(kept, "pii.PERSON") == [2.0, 2.0, None]
    assert worker_copy.counters["replaced:PERSON"] == 4 and worker_copy.counters["docs_scrubbed"] == 2


def test_a_folder_that_is_not_a_spacy_pipeline_fails_at_load_naming_it(tmp_path):
    folder = tmp_path / "not_a_pipeline"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"\x00" * 64)
    with pytest.raises(
        RecipeError, match=r"recipe.yaml: stages\[0\]: spaCy model folder '.*/not_a_pipeline' is not a loadable spaCy pipeline"
    ):
        load_recipe(str(write_recipe(tmp_path, str(folder))))


def test_a_pipeline_that_finds_no_entities_is_refused_for_names(tmp_path):
    import spacy

    spacy.blank("en").to_disk(tmp_path / "blank")
    with pytest.raises(StageError, match=r"'.*/blank' has no component that finds entities .*needed for LOCATION, PERSON"):
        PiiStage(PiiParams(entities=NER_ENTITIES, spacy_model=str(tmp_path / "blank"))).check()


# --- context rules (issue #22) ---------------------------------------------------------------


@pytest.fixture(scope="module")
def lookalikes(pii_data):
    return [json.loads(line) for line in open(pii_data / "lookalikes.jsonl", encoding="utf-8")]


def lookalikes_kept(stage: PiiStage, examples: list[dict]) -> dict[str, int]:
    """Look-alikes left alone per kind, and real addresses found (as "address")."""
    kept: dict[str, int] = {}
    for ex in examples:
        found = stage.analyze(ex["text"])
        for la in ex["lookalikes"]:
            untouched = not any(p.start < la["end"] and p.end > la["start"] for p in found)
            kept[la["kind"]] = kept.get(la["kind"], 0) + untouched
        for gold in ex["spans"]:
            hit = any(p.entity_type == "IP_ADDRESS" and p.start <= gold["start"] and p.end >= gold["end"] for p in found)
            kept["address"] = kept.get("address", 0) + hit
    return kept


def test_dotted_quads_that_context_explains_are_kept_and_addresses_still_replaced(stage, lookalikes):
    # 100 of each kind; the 22 versions left are named only by a product ("Chrome 2.2.134.156")
    assert lookalikes_kept(stage, lookalikes) == {"oid": 100, "section": 100, "version": 78, "address": 100}
    plain = PiiStage(PiiParams(shipped_context_rules=False))
    plain.ensure_setup()
    assert lookalikes_kept(plain, lookalikes) == {"oid": 9, "section": 0, "version": 14, "address": 100}


def test_context_rules_count_what_they_keep(stage):
    before = stage.counters["kept_by_context:section number"]
    text = "As clause 4.2.1.3 says, requests from 10.20.30.40 are logged."
    out = run(stage, [text]).column("text").to_pylist()
    assert out == ["As clause 4.2.1.3 says, requests from <IP_ADDRESS> are logged."]
    assert stage.counters["kept_by_context:section number"] == before + 1


def test_a_recipe_adds_context_rules_from_a_file(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: browser\n    entities: [IP_ADDRESS, PHONE_NUMBER]\n    before: '\\bchrome\\s*$'\n")
    text = "Chrome 10.24.226.236 is rolling out; version 1.2.3.4 too."
    data = one_stage_recipe(tmp_path, text, {"stage": "pii", "context_rules": [str(rules)]})
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    params = load_recipe(str(tmp_path / "r.yaml")).stages[0].params
    # read on the driver, travelling with the pickled stage: a worker needs no access to the file
    extended = pickle.loads(pickle.dumps(PiiStage(params)))
    rules.unlink()
    assert [r.entity_type for r in extended.analyze(text)] == []
    rules.write_text("rules:\n  - name: browser\n    entities: [IP_ADDRESS, PHONE_NUMBER]\n    before: '\\bchrome\\s*$'\n")
    only_file = PiiStage(PiiParams(context_rules=[str(rules)], shipped_context_rules=False))
    assert [text[r.start : r.end] for r in only_file.analyze(text)] == ["1.2.3.4"]


@pytest.mark.parametrize(
    "content, message",
    [
        ("rules:\n  - {entities: [IP_ADDRESS], before: '(unclosed'}\n", r"rules\[0\]\.before: not a valid regular expression"),
        ("rules:\n  - {entities: [PASSPORT], before: 'x$'}\n", r"rules\[0\]\.entities: expected a non-empty list"),
        ("rules:\n  - {entities: [IP_ADDRESS]}\n", r"rules\[0\]: give 'before', 'after' or both"),
        ("rules:\n  - {entities: [IP_ADDRESS], before: 'x$', befor: 'y'}\n", r"rules\[0\]: unknown keys befor"),
        ("- just a list\n", r"expected a mapping with a list under 'rules'"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_file_and_the_key(tmp_path, content, message):
    rules = tmp_path / "bad.yaml"
    rules.write_text(content)
    with pytest.raises(ValueError, match=rf"bad.yaml: {message}"):
        PiiParams(context_rules=[str(rules)]).validate()


def test_a_missing_rules_file_is_refused_naming_it(tmp_path):
    with pytest.raises(ValueError, match=r"context_rules: cannot read .*nowhere.yaml"):
        PiiParams(context_rules=[str(tmp_path / "nowhere.yaml")]).validate()
