"""PII scrubbing: find e-mail addresses, phone numbers, IPs, card numbers, IBANs, SSNs
(and optionally names, places, URLs, crypto wallets) with presidio, and replace them.

How it works, per document:

1. The text is read line by line (split on ``"\\n"``); a line is presidio's unit of
   analysis. No enabled entity can span a newline (none of the recognizers' patterns
   accepts one), so this loses nothing but context words on a *previous* line.
2. The pre-check (a speed-up, in ``curate/speedups/pii.py``, switched off by
   ``CURATE_SPEEDUP_PII=off``): for each enabled entity a cheap regular expression that
   every match of that entity's recognizer must contain (``@`` for e-mail, 13 digits for
   cards, the phone gate for phones, ...). Lines where no pre-check fires are not analysed;
   a line where some fire is analysed for those entities only. Inside the phone recognizer,
   libphonenumber only sees the stretches of a line that the same gate allows, and its
   parse-and-verify step is memoised. All of it over-approximates the recognizers, so the
   result is the one presidio gives on every line with one phone matcher per whole line
   (``precheck: false`` or the switch off); ``tests/test_pii.py`` proves it on real pages,
   on whole pages of figures and on generated number soup.
3. presidio-analyzer runs on a blank spaCy pipeline (tokens and lower-cased "lemmas" for
   context words, no model download); a real spaCy NER pipeline (an installed package or a
   folder written by ``nlp.to_disk``) is loaded only when the recipe names one for
   PERSON/LOCATION, and its labels go through presidio's mapping (GPE and LOC -> LOCATION).
   The e-mail recognizer validates domains with tldextract's bundled public-suffix snapshot
   (never the network).
4. Overlapping detections are resolved to one (highest score, then longest span) and
   replaced with presidio-anonymizer: a typed tag ``<EMAIL_ADDRESS>``, a fixed mask, or a
   salted hash token ``<EMAIL_ADDRESS:1f3a...>`` (salt from an environment variable).

Documents longer than ``max_chars`` are rejected as ``<stage>.too_large`` rather than
passed through unscrubbed; a document whose analysis raises is rejected as
``<stage>.failed``. Neither crashes the Spark task.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa
import regex

from curate.pii_context import explaining_rule, load_context_rules
from curate.pii_phone import PHONE_MIN_NATIONAL_DIGITS
from curate.speedups import pii as speedups
from curate.speedups.pii import build_prechecks, phone_stretches
from curate.schema import add_flag, add_scores, reject, replace_column
from curate.stage import Stage, StageError

log = logging.getLogger(__name__)

DEFAULT_ENTITIES = ["EMAIL_ADDRESS", "PHONE_NUMBER", "IP_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "US_SSN"]
OPTIONAL_ENTITIES = ["PERSON", "LOCATION", "URL", "CRYPTO"]
KNOWN_ENTITIES = DEFAULT_ENTITIES + OPTIONAL_ENTITIES
NER_ENTITIES = frozenset({"PERSON", "LOCATION"})

# Countries whose *national* number formats are recognised ("030 1234567", "(212) 555-...").
# Numbers written with a country code ("+81 3-1234-5678", "0049 30 ...") are found for every
# country whatever this list says. Each region costs one libphonenumber pass over a line.
DEFAULT_PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "CA", "AU", "BR", "ES", "IT", "NL", "JP", "MX"]

SPANS_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("start", pa.int64(), nullable=False),
        pa.field("end", pa.int64(), nullable=False),
        pa.field("entity_type", pa.string(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),
    ]
)


@dataclass
class PiiParams:
    entities: list[str] = field(default_factory=lambda: list(DEFAULT_ENTITIES))
    operator: Literal["tag", "mask", "hash"] = "tag"
    mask: str = "[REDACTED]"  # what operator "mask" writes in place of every entity
    salt_env: str = "CURATE_PII_SALT"  # environment variable holding the salt for "hash"
    spacy_model: str | None = None  # an installed spaCy package or a pipeline folder, needed for PERSON / LOCATION
    score_threshold: float = 0.35
    language: str = "en"
    phone_regions: list[str] = field(default_factory=lambda: list(DEFAULT_PHONE_REGIONS))
    keep_spans: bool = False  # write found spans (never values) to <run>/pii_spans/
    max_chars: int = 1_000_000  # longer documents are rejected as "<stage>.too_large"
    precheck: bool = True  # off (every line, whole-line phone matching) only to measure or to prove it changes nothing
    # Detections their context explains are kept: curate/data/pii_context_rules.yaml (unless
    # shipped_context_rules is false), then the rules of each file listed here.
    shipped_context_rules: bool = True
    context_rules: list[str] = field(default_factory=list)

    def validate(self) -> None:
        unknown = [e for e in self.entities if e not in KNOWN_ENTITIES]
        if unknown:
            raise ValueError(f"entities: unknown {', '.join(unknown)}; expected some of: {', '.join(KNOWN_ENTITIES)}")
        if not self.entities:
            raise ValueError("entities: expected at least one entity")
        needs_ner = sorted(NER_ENTITIES.intersection(self.entities))
        if needs_ner and not self.spacy_model:
            raise ValueError(f"entities: {', '.join(needs_ner)} need a spaCy NER model; set spacy_model (e.g. en_core_web_sm)")
        if self.spacy_model and _names_a_folder(self.spacy_model):
            # Like the recipe's *_path keys: resolved on the driver, since executors run elsewhere.
            self.spacy_model = os.path.abspath(os.path.expanduser(self.spacy_model))
        if not 0.0 <= self.score_threshold <= 1.0:
            raise ValueError(f"score_threshold: expected a number between 0 and 1, got {self.score_threshold}")
        if self.max_chars < 1:
            raise ValueError(f"max_chars: expected a positive integer, got {self.max_chars}")
        if self.operator == "mask" and not self.mask:
            raise ValueError("mask: expected a non-empty string for operator 'mask'")
        if self.operator == "hash" and not self.salt_env:
            raise ValueError("salt_env: expected the name of an environment variable for operator 'hash'")
        import phonenumbers

        bad_regions = [r for r in self.phone_regions if r not in phonenumbers.SUPPORTED_REGIONS]
        if bad_regions:
            raise ValueError(f"phone_regions: unknown region codes {', '.join(bad_regions)} (ISO 3166 alpha-2, upper case)")
        # Like spacy_model: resolved on the driver; the rules are read there and travel with the stage.
        self.context_rules = [os.path.abspath(os.path.expanduser(p)) for p in self.context_rules]
        load_context_rules(self.context_rules, self.shipped_context_rules, KNOWN_ENTITIES)


def _names_a_folder(model: str) -> bool:
    """Whether ``spacy_model`` is a folder rather than a package name. spaCy itself tries an
    installed package first, so a bare name that is importable stays a package name."""
    import importlib.util

    if model.startswith(("~", ".")) or os.sep in model or (os.altsep and os.altsep in model):
        return True
    return os.path.isdir(model) and not (model.isidentifier() and importlib.util.find_spec(model) is not None)


# --- the pre-check ---------------------------------------------------------------------------------


def _line_starts(text: str) -> list[int]:
    starts = [0]
    pos = text.find("\n")
    while pos != -1:
        starts.append(pos + 1)
        pos = text.find("\n", pos + 1)
    return starts


def lines_to_analyse(text: str, entities: list[str], prechecks: dict | None) -> list[tuple[int, int, list[str]]]:
    """(start, end, entities) for each line presidio must look at.

    With ``prechecks`` None every non-blank line is analysed for every entity.
    """
    starts = _line_starts(text)
    ends = [s - 1 for s in starts[1:]] + [len(text)]
    if prechecks is None:
        return [(s, e, list(entities)) for s, e in zip(starts, ends) if text[s:e].strip()]
    wanted = speedups.lines_passing_prechecks(text, entities, prechecks, starts)
    out = []
    for line in sorted(wanted):
        s, e = starts[line], ends[line]
        if text[s:e].strip():
            out.append((s, e, wanted[line]))
    return out


# --- presidio, built offline -------------------------------------------------------------------------


def _spacy_pipeline(language: str, model: str | None):
    """The installed spaCy model (a package or a folder), or a blank pipeline; never a download."""
    import spacy

    if not model:
        return spacy.blank(language)
    is_package = spacy.util.is_package(model)
    if not (is_package or os.path.isdir(model)):
        raise StageError(
            f"spaCy model {model!r} is not installed (install its package, e.g. `pip install {model}` from a local wheel, or give a model folder)"
        )
    try:
        return spacy.load(model)
    except Exception as exc:  # spaCy raises OSError/ValueError/KeyError/catalogue errors
        what = "package" if is_package else "folder"
        hint = "" if is_package else " (a folder written by nlp.to_disk(), with config.cfg and meta.json)"
        raise StageError(f"spaCy model {what} {model!r} is not a loadable spaCy pipeline{hint}: {exc}") from exc


def _spacy_engine_class():
    from presidio_analyzer.nlp_engine import NlpArtifacts, SpacyNlpEngine

    class OfflineSpacyNlpEngine(SpacyNlpEngine):
        """A SpacyNlpEngine that never downloads: a blank pipeline, or an installed model.

        A blank pipeline has no lemmatizer; the lower-cased token stands in for the lemma so
        that presidio's context words ("phone", "ssn", "iban") still raise scores.
        """

        def __init__(self, language: str, model: str | None, max_length: int):
            super().__init__(models=[{"lang_code": language, "model_name": model or f"blank:{language}"}])
            self._language, self._model, self._max_length = language, model, max_length

        def load(self) -> None:
            nlp = _spacy_pipeline(self._language, self._model)
            nlp.max_length = max(self._max_length + 1, nlp.max_length)
            self.nlp = {self._language: nlp}

        def has_entity_recognizer(self) -> bool:
            nlp = self.nlp[self._language]
            return any("doc.ents" in nlp.get_pipe_meta(name).assigns for name in nlp.pipe_names)

        def _doc_to_nlp_artifact(self, doc, language: str) -> NlpArtifacts:
            # presidio's mapping (PER/PERSON -> PERSON; GPE, LOC -> LOCATION; ORG, DATE, ...)
            # renames labels; labels it does not know (en_core_web_*'s CARDINAL, FAC, MONEY...)
            # are dropped here, because presidio would log a warning for each one on every line.
            mapping = self.ner_model_configuration.model_to_presidio_entity_mapping
            known = [(e, s) for e, s in zip(self._get_entities(doc), self._get_scores_for_entities(doc)) if e.label_ in mapping]
            entities, scores = self._get_updated_entities([e for e, _ in known], [s for _, s in known])
            # keywords (what context words are compared with) are derived from the lemmas
            # when the artifacts are built, so the stand-in lemmas must go in here.
            return NlpArtifacts(
                entities=entities,
                tokens=doc,
                tokens_indices=[t.idx for t in doc],
                lemmas=[t.lemma_ or t.lower_ for t in doc],
                nlp_engine=self,
                language=language,
                scores=scores,
            )

    return OfflineSpacyNlpEngine


def _offline_email_recognizer(language: str):
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    # No URLs and no cache folder: tldextract uses the suffix-list snapshot in its package.
    extractor = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return extractor(pattern_text).fqdn != ""

    return OfflineEmailRecognizer(supported_language=language)


# A number chained to more digits by a separator ("1999-636648", "82/4615/1981",
# "7.0.10982.529") is an ID, a date or a version far more often than a phone number.
_CHAINED_BEFORE = regex.compile(r"[0-9][./-]$")
_CHAINED_AFTER = regex.compile(r"^[./-][0-9]")
_DATE_INSIDE = regex.compile(
    r"(?<![0-9])(?:[0-9]{1,2}[./-][0-9]{1,2}[./-](?:19|20)?[0-9]{2}|(?:19|20)[0-9]{2}[./-][0-9]{1,2}[./-][0-9]{1,2})(?![0-9])"
)
_YEAR_GROUP = regex.compile(r"^(?:19|20)[0-9]{2}[ /-]|[ /](?:19|20)[0-9]{2}$")
_VERSION_LIKE = regex.compile(r"^[1-9]\.[0-9]")


def is_chained(text: str, start: int, end: int) -> bool:
    return bool(_CHAINED_BEFORE.search(text[max(0, start - 2) : start]) or _CHAINED_AFTER.match(text[end : end + 2]))


_LEADING_PARENS = regex.compile(r"^\([0-9]+\)\s?")
_SEPARATORS = regex.compile(r"[^0-9]+")
_SSN_SHAPE = regex.compile(r"^[0-9]{3}-[0-9]{2}-[0-9]{4}$")


def phone_looks_like_other_number(raw: str) -> bool:
    """Dates, years, decimals, versions and SSNs that libphonenumber accepts as valid numbers.

    Numbers written with an international prefix ("+33-6-12-33-52-27", "00 81 90-...") are
    trusted. For the
    others: no date or year inside, one kind of separator between digit groups (after an
    optional leading "(area)"), at least three groups when the separator is a dot, and not
    the ddd-dd-dddd shape of a US SSN.
    """
    if raw.startswith(("+", "00")):
        return False
    if _DATE_INSIDE.search(raw) or _SSN_SHAPE.match(raw):
        return True
    rest = _LEADING_PARENS.sub("", raw, count=1)
    if _YEAR_GROUP.search(rest) or _VERSION_LIKE.match(rest):
        return True
    separators = set(_SEPARATORS.findall(rest))
    if len(separators) > 1 or not separators <= {" ", "-", ".", "/"}:
        return True
    return separators == {"."} and rest.count(".") < 2


def _phone_recognizer(language: str, regions: list[str], narrow: bool = True):
    import phonenumbers
    from presidio_analyzer import EntityRecognizer
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class FilteredPhoneRecognizer(PhoneRecognizer):
        """presidio's phone recognizer with three filters and a lower score for bare digits.

        Kept: numbers with >= 7 national digits that are not dates, year-prefixed IDs,
        versions or part of a longer digit chain. A number written as one bare digit run
        ("7243327294") scores 0.1 and needs a context word ("phone", "tel", "call"...) to
        reach the threshold: bare 10-digit runs are order and account numbers as often.
        """

        # narrow=False: one plain matcher over the whole text, the reference that the
        # narrowed run must equal (tests/test_pii.py).
        matcher_class = speedups.memo_matcher_class() if narrow else phonenumbers.PhoneNumberMatcher

        def analyze(self, text, entities, nlp_artifacts=None):
            matcher_class = self.matcher_class
            results = []
            # libphonenumber only on the stretches that could hold a number we keep; the
            # matches are the ones a matcher over the whole line keeps (see curate.speedups.pii.phone_gate).
            for window_start, window_end in phone_stretches(text) if narrow else [(0, len(text))]:
                window = text[window_start:window_end]
                for region in self.supported_regions:
                    for match in matcher_class(window, region, leniency=self.leniency):
                        start, end = window_start + match.start, window_start + match.end
                        nsn = phonenumbers.national_significant_number(match.number)
                        raw = match.raw_string
                        if len(nsn) < PHONE_MIN_NATIONAL_DIGITS or is_chained(text, start, end):
                            continue
                        if phone_looks_like_other_number(raw):
                            continue
                        found = phonenumbers.region_code_for_number(match.number) or region
                        result = self._get_recognizer_result(match, window, found, nlp_artifacts)
                        result.start, result.end = start, end
                        if raw.isdigit():
                            result.score = 0.1
                        results.append(result)
            return EntityRecognizer.remove_duplicates(results)

    return FilteredPhoneRecognizer(
        supported_language=language,
        supported_regions=tuple(regions),
        leniency=phonenumbers.Leniency.VALID,  # presidio's default; the gate's letter rule assumes it
        # presidio's list has "number", which turns "order number 7243327294" into a phone
        context=["phone", "telephone", "tel", "cell", "cellphone", "mobile", "call", "fax", "whatsapp", "contact"],
    )


def _ssn_recognizer(language: str):
    from presidio_analyzer.predefined_recognizers import UsSsnRecognizer

    class UnchainedSsnRecognizer(UsSsnRecognizer):
        """presidio's SSN recognizer, minus numbers inside longer digit chains (ISBNs such as
        978-3-16-148410-0 contain ddd-dd-dddd) and minus area numbers 900-999, which the
        SSA never issues for SSNs."""

        def invalidate_result(self, pattern_text: str) -> bool:
            digits = "".join(c for c in pattern_text if c.isdigit())
            return super().invalidate_result(pattern_text) or digits[:1] == "9"

        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
            results = super().analyze(text, entities, nlp_artifacts, regex_flags)
            return [r for r in results if not is_chained(text, r.start, r.end)]

    return UnchainedSsnRecognizer(supported_language=language)


def _ip_recognizer(language: str):
    from presidio_analyzer.predefined_recognizers import IpRecognizer

    class UnchainedIpRecognizer(IpRecognizer):
        """presidio's IP recognizer, minus dotted quads inside longer dotted chains
        ("+33.6.12.38.40.65" is a phone number, "1.2.3.4.5" a version)."""

        def analyze(self, text, entities, nlp_artifacts=None, regex_flags=None):
            results = super().analyze(text, entities, nlp_artifacts, regex_flags)
            kept = []
            for r in results:
                before, after = text[max(0, r.start - 2) : r.start], text[r.end : r.end + 2]
                if ":" not in text[r.start : r.end] and (regex.search(r"(?:[0-9]\.|\+)$", before) or regex.match(r"\.[0-9]", after)):
                    continue
                kept.append(r)
            return kept

    return UnchainedIpRecognizer(supported_language=language)


# Issuer prefixes (IIN ranges) and lengths of the card brands that print 13-19 digit numbers.
_CARD_BRANDS: list[tuple[tuple[int, int], int, tuple[int, ...]]] = [
    ((4, 4), 1, (13, 16, 19)),  # Visa
    ((51, 55), 2, (16,)),  # Mastercard
    ((2221, 2720), 4, (16,)),  # Mastercard 2-series
    ((34, 34), 2, (15,)),  # American Express
    ((37, 37), 2, (15,)),
    ((6011, 6011), 4, (16, 17, 18, 19)),  # Discover
    ((644, 649), 3, (16, 17, 18, 19)),
    ((65, 65), 2, (16, 17, 18, 19)),
    ((3528, 3589), 4, (16, 17, 18, 19)),  # JCB
    ((300, 305), 3, (14, 15, 16, 17, 18, 19)),  # Diners Club
    ((36, 36), 2, (14, 15, 16, 17, 18, 19)),
    ((38, 39), 2, (14, 15, 16, 17, 18, 19)),
    ((62, 62), 2, (16, 17, 18, 19)),  # UnionPay
    ((5018, 5018), 4, (13, 14, 15, 16, 17, 18, 19)),  # Maestro
    ((5020, 5020), 4, (13, 14, 15, 16, 17, 18, 19)),
    ((5038, 5038), 4, (13, 14, 15, 16, 17, 18, 19)),
    ((6304, 6304), 4, (13, 14, 15, 16, 17, 18, 19)),
    ((6759, 6763), 4, (13, 14, 15, 16, 17, 18, 19)),
]


def card_number_is_plausible(digits: str) -> bool:
    """Luhn checksum plus a known issuer prefix with a length that issuer uses."""
    if not 13 <= len(digits) <= 19 or not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = ord(ch) - 48
        if i % 2:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    if total % 10:
        return False
    for (low, high), width, lengths in _CARD_BRANDS:
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return True
    return False


def _card_recognizer(language: str):
    from presidio_analyzer import Pattern, PatternRecognizer

    # Printed groupings: 4-4-4-4(-3), Amex 4-6-5, Diners 4-6-4, or unbroken; one separator
    # kind per number. Not part of a longer chain of digit groups (order numbers, ISBNs).
    edge_before = r"(?<![0-9])(?<![0-9]-)"
    edge_after = r"(?![0-9])(?!-[0-9])"
    pattern = (
        edge_before
        + r"(?:[0-9]{4}(?P<s>[ -]?)[0-9]{4}(?P=s)[0-9]{4}(?P=s)[0-9]{4}(?:(?P=s)[0-9]{3})?"
        + r"|[0-9]{4}(?P<t>[ -]?)[0-9]{6}(?P=t)[0-9]{4,5}"
        + r"|[0-9]{13,19})"
        + edge_after
    )

    class IssuerCheckedCardRecognizer(PatternRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return card_number_is_plausible(pattern_text.replace(" ", "").replace("-", ""))

    return IssuerCheckedCardRecognizer(
        supported_entity="CREDIT_CARD",
        patterns=[Pattern("card number (validated)", pattern, 0.3)],
        context=["credit", "card", "visa", "mastercard", "amex", "discover", "jcb", "diners", "maestro"],
        supported_language=language,
        name="IssuerCheckedCardRecognizer",
    )


def build_recognizers(entities: list[str], language: str, phone_regions: list[str], narrow_phones: bool = True) -> list:
    from presidio_analyzer.predefined_recognizers import (
        CryptoRecognizer,
        IbanRecognizer,
        SpacyRecognizer,
        UrlRecognizer,
    )

    recognizers = []
    if "EMAIL_ADDRESS" in entities:
        recognizers.append(_offline_email_recognizer(language))
    if "PHONE_NUMBER" in entities:
        recognizers.append(_phone_recognizer(language, phone_regions, narrow_phones))
    if "IP_ADDRESS" in entities:
        recognizers.append(_ip_recognizer(language))
    if "CREDIT_CARD" in entities:
        recognizers.append(_card_recognizer(language))
    if "IBAN_CODE" in entities:
        recognizers.append(IbanRecognizer(supported_language=language))
    if "US_SSN" in entities:
        recognizers.append(_ssn_recognizer(language))
    if "URL" in entities:
        recognizers.append(UrlRecognizer(supported_language=language))
    if "CRYPTO" in entities:
        recognizers.append(CryptoRecognizer(supported_language=language))
    ner = sorted(NER_ENTITIES.intersection(entities))
    if ner:
        recognizers.append(SpacyRecognizer(supported_language=language, supported_entities=ner))
    return recognizers


def build_analyzer(params: PiiParams):
    """An AnalyzerEngine that needs no network and no model download."""
    with speedups.spacy_without_torch(needed=bool(params.spacy_model)):
        import spacy  # noqa: F401
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry

    engine = _spacy_engine_class()(params.language, params.spacy_model, params.max_chars)
    engine.load()
    ner = sorted(NER_ENTITIES.intersection(params.entities))
    if ner and not engine.has_entity_recognizer():
        # otherwise every name and place would pass through unscrubbed, silently
        raise StageError(
            f"spaCy model {params.spacy_model!r} has no component that finds entities (ner, entity_ruler, ...), needed for {', '.join(ner)}"
        )
    registry = RecognizerRegistry(
        recognizers=build_recognizers(
            params.entities, params.language, params.phone_regions, narrow_phones=params.precheck and speedups.enabled()
        ),
        supported_languages=[params.language],
    )
    return AnalyzerEngine(
        registry=registry,
        nlp_engine=engine,
        supported_languages=[params.language],
        default_score_threshold=params.score_threshold,
    )


def resolve_overlaps(results: list) -> list:
    """Keep one detection per overlapping group: higher score, then longer, then earlier."""
    ranked = sorted(results, key=lambda r: (-r.score, -(r.end - r.start), r.start, r.entity_type))
    kept: list = []
    for r in ranked:
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(r)
    return sorted(kept, key=lambda r: r.start)


def hash_token(entity_type: str, value: str, salt: str) -> str:
    digest = hashlib.blake2b(value.encode("utf-8"), key=salt.encode("utf-8")[:64], digest_size=8).hexdigest()
    return f"<{entity_type}:{digest}>"


# --- the stage ---------------------------------------------------------------------------------------


class PiiStage(Stage):
    kind = "pii"
    Params = PiiParams

    def __init__(self, params: PiiParams, context=None, name: str | None = None):
        super().__init__(params, context, name)
        # Read on the driver and pickled to workers (never part of Params or the manifest).
        self.salt: str | None = None
        run_dir = self.context.run_dir
        self.spans_dir: str | None = os.path.join(run_dir, "pii_spans") if (params.keep_spans and run_dir) else None
        self.context_rules = load_context_rules(params.context_rules, params.shipped_context_rules, KNOWN_ENTITIES)

    # driver, before Spark: prove the analyzer builds offline and the salt is there
    def check(self) -> None:
        self._read_salt()
        self._analyzer = build_analyzer(self.params)

    def _read_salt(self) -> None:
        if self.params.operator != "hash" or self.salt:
            return
        salt = os.environ.get(self.params.salt_env, "")
        if not salt:
            raise StageError(
                f"operator 'hash' needs a salt: set the environment variable {self.params.salt_env} (it is never read from the recipe)"
            )
        self.salt = salt

    def warm_up(self) -> None:
        # spaCy and presidio's imports are ~1 s of a worker's first PII task; a second
        # analyzer in the same process builds in ~0.07 s.
        build_analyzer(self.params)
        with speedups.spacy_without_torch(needed=bool(self.params.spacy_model)):
            import presidio_anonymizer  # noqa: F401

    def setup(self) -> None:
        self._read_salt()
        if getattr(self, "_analyzer", None) is None:
            self._analyzer = build_analyzer(self.params)
        # After the analyzer: presidio_anonymizer imports presidio_analyzer and so spaCy; were
        # it first, spaCy would come in with torch (5 s of each worker's first PII task).
        with speedups.spacy_without_torch(needed=bool(self.params.spacy_model)):
            from presidio_anonymizer import AnonymizerEngine
        self._anonymizer = AnonymizerEngine()
        self._operators = self._build_operators()
        self._prechecks = build_prechecks(self.params.entities) if self.params.precheck and speedups.enabled() else None
        self._lines_since_reload = 0

    def _build_operators(self) -> dict:
        from presidio_anonymizer.entities import OperatorConfig

        operators = {}
        for entity in self.params.entities:
            if self.params.operator == "tag":
                operators[entity] = OperatorConfig("replace", {"new_value": f"<{entity}>"})
            elif self.params.operator == "mask":
                operators[entity] = OperatorConfig("replace", {"new_value": self.params.mask})
            else:
                salt = self.salt or ""
                operators[entity] = OperatorConfig("custom", {"lambda": lambda value, e=entity: hash_token(e, value, salt)})
        return operators

    def analyze(self, text: str) -> list:
        """All detections in ``text`` (offsets into ``text``), overlaps resolved."""
        self.ensure_setup()
        found = []
        for start, end, entities in lines_to_analyse(text, self.params.entities, self._prechecks):
            self.counters["lines_analyzed"] += 1
            self._lines_since_reload += 1
            for r in self._analyzer.analyze(text[start:end], language=self.params.language, entities=entities):
                r.start += start
                r.end += start
                found.append(r)
        self._maybe_reload()
        return resolve_overlaps(self._unexplained(text, found))

    def _unexplained(self, text: str, found: list) -> list:
        """The detections no context rule explains; the others are counted per rule."""
        kept = []
        for r in found:
            rule = explaining_rule(self.context_rules, text, r.entity_type, r.start, r.end)
            if rule is None:
                kept.append(r)
            else:
                self.counters[f"kept_by_context:{rule}"] += 1
        return kept

    def _maybe_reload(self) -> None:
        # A spaCy vocabulary keeps every string it has seen; rebuilding the blank pipeline now
        # and then keeps a long-running worker's memory flat. Same tokens, same results.
        if self._lines_since_reload >= 200_000 and not self.params.spacy_model:
            self._analyzer = build_analyzer(self.params)
            self._lines_since_reload = 0

    def scrub(self, text: str) -> tuple[str, list]:
        results = self.analyze(text)
        if not results:
            return text, results
        anonymized = self._anonymizer.anonymize(text=text, analyzer_results=results, operators=self._operators)
        return anonymized.text, results

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        self.ensure_setup()
        texts = batch.column("text").to_pylist()
        ids = batch.column("id").to_pylist()
        found = _BatchFindings.empty(texts, self.params.entities)
        for i, text in enumerate(texts):
            self._scrub_document(i, text, ids[i], found)
        if found.scrubbed.any():
            batch = replace_column(batch, "text", found.texts)
            batch = add_scores(batch, {f"{self.name}.{e}": v for e, v in found.counts.items() if any(x is not None for x in v)})
            batch = add_flag(batch, found.scrubbed, f"{self.name}.scrubbed")
        batch = reject(batch, found.too_large, f"{self.name}.too_large", found.sizes)
        batch = reject(batch, found.failed, f"{self.name}.failed")
        if found.spans and self.spans_dir:
            write_spans(found.spans, self.spans_dir, ids)
        return batch

    def _scrub_document(self, i: int, text: str | None, doc_id: str, found: _BatchFindings) -> None:
        """Scrub document ``i`` of a batch, recording what happened to it in ``found``."""
        c = self.counters
        if not text:
            c["docs_prechecked_clean"] += 1
            return
        if len(text) > self.params.max_chars:
            found.too_large[i] = True
            found.sizes[i] = float(len(text))
            c["docs_too_large"] += 1
            return
        try:
            lines_before = c["lines_analyzed"]
            new_text, results = self.scrub(text)
        except Exception as exc:  # one bad document must not fail the Spark task
            log.warning("pii: document %s could not be analysed: %r", doc_id, exc)
            found.failed[i] = True
            c["docs_failed"] += 1
            return
        c["docs_prechecked_clean" if c["lines_analyzed"] == lines_before else "docs_analyzed"] += 1
        if not results:
            return
        found.texts[i] = new_text
        found.scrubbed[i] = True
        c["docs_scrubbed"] += 1
        for r in results:
            found.counts[r.entity_type][i] = (found.counts[r.entity_type][i] or 0) + 1
            c[f"replaced:{r.entity_type}"] += 1
            if self.params.keep_spans:
                found.spans.append({"id": doc_id, "start": r.start, "end": r.end, "entity_type": r.entity_type, "score": float(r.score)})


@dataclass
class _BatchFindings:
    """What scrubbing found in one batch, per document: new texts, rejections, counts per entity, spans."""

    texts: list[str | None]
    too_large: np.ndarray
    failed: np.ndarray
    sizes: list[float | None]
    scrubbed: np.ndarray
    counts: dict[str, list[float | None]]
    spans: list[dict] = field(default_factory=list)

    @classmethod
    def empty(cls, texts: list[str | None], entities: list[str]) -> _BatchFindings:
        n = len(texts)
        no = np.zeros(n, dtype=bool)
        return cls(list(texts), no.copy(), no.copy(), [None] * n, no.copy(), {e: [None] * n for e in entities})


def write_spans(rows: list[dict], folder: str, batch_ids: list[str]) -> str:
    """Write one batch's spans atomically; the name comes from the batch's ids, so a retried
    Spark task replaces its earlier file instead of adding a second copy."""
    import pyarrow.parquet as pq

    os.makedirs(folder, exist_ok=True)
    digest = hashlib.blake2b("\x1f".join(str(i) for i in batch_ids).encode("utf-8"), digest_size=12).hexdigest()
    path = os.path.join(folder, f"spans-{digest}.parquet")
    tmp = os.path.join(folder, f".spans-{digest}.{os.getpid()}.tmp")
    pq.write_table(pa.Table.from_pylist(rows, schema=SPANS_SCHEMA), tmp)
    os.replace(tmp, path)
    return path


__all__ = [
    "DEFAULT_ENTITIES",
    "KNOWN_ENTITIES",
    "PiiParams",
    "PiiStage",
    "build_analyzer",
    "build_prechecks",
    "card_number_is_plausible",
    "lines_to_analyse",
    "resolve_overlaps",
    "write_spans",
]
