"""PII speed-ups: the line pre-check, the phone gate, memoised phone parsing, spaCy without torch.

Switch: ``CURATE_SPEEDUP_PII=off`` (or ``CURATE_SPEEDUPS=off``) runs the ``pii`` stage on the
plain path: presidio on every non-blank line for every entity, one libphonenumber matcher
over each whole line, spaCy imported as it imports itself. The same happens, with a
warning, when a private name of phonenumbers this module relies on is missing (a newer
release renamed it): ``TARGETS`` lists them. ``tests/test_pii.py`` proves both paths give
identical output on the PII test data; README.md has the measured gain.

1. The pre-check: for each enabled entity a cheap regular expression that every match of
   that entity's recognizer must contain (``@`` for e-mail, 13 digits for cards, the phone
   gate below for phones, ...). Lines where no pre-check fires are not analysed; a line
   where some fire is analysed for those entities only.
2. The phone gate (below): libphonenumber only sees the stretches of a line that could hold
   a number the stage keeps, and its parse-and-verify step is memoised.
3. spaCy without torch: a blank pipeline does not need torch, which thinc would import.
"""

from __future__ import annotations

import bisect
import contextlib
import importlib
import logging
import re
import sys
from typing import Callable, Iterator

import regex

from curate import speedups
from curate.pii_phone import PHONE_MIN_NATIONAL_DIGITS

log = logging.getLogger(__name__)

SWITCH = speedups.ITEMS["pii"]
# (module, attribute path) of every private name the phone gate and the memo rely on.
TARGETS = [
    ("phonenumbers.phonenumbermatcher", "_PATTERN"),
    ("phonenumbers.phonenumbermatcher", "_PUNCTUATION"),
    ("phonenumbers.phonenumbermatcher", "PhoneNumberMatcher._parse_and_verify"),
    ("phonenumbers.phonenumbermatcher", "PhoneNumberMatcher._is_latin_letter"),
    ("phonenumbers.phonenumbermatcher", "PhoneNumberMatcher._is_invalid_punctuation_symbol"),
]
_warned: set[str] = set()


def missing_targets() -> list[str]:
    """The TARGETS that the installed libraries do not have."""
    missing = []
    for module_name, path in TARGETS:
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            missing.append(f"{module_name} (not importable)")
            continue
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                missing.append(f"{module_name}.{path}")
                break
    return missing


def enabled() -> bool:
    """Whether the PII speed-ups apply: switched on and every target present (else a warning, once)."""
    if not speedups.enabled("pii"):
        return False
    missing = missing_targets()
    if missing:
        key = ",".join(missing)
        if key not in _warned:
            _warned.add(key)
            log.warning("PII speed-ups off (plain presidio and phonenumbers): missing %s", ", ".join(missing))
        return False
    return True


# --- the pre-check ---------------------------------------------------------------------------


def build_prechecks(entities: list[str]) -> dict[str, str | regex.Pattern | re.Pattern | None]:
    """For each entity: a test every text containing a match of its recognizer passes.

    A value is either a compiled pattern (searched) or a plain substring test. NER entities
    have no cheap necessary condition, so they are always analysed (``None``).
    """
    ignorecase = regex.IGNORECASE | regex.DOTALL | regex.MULTILINE  # presidio's PatternRecognizer flags
    plain = regex.DOTALL | regex.MULTILINE
    checks: dict = {}
    for entity in entities:
        if entity == "EMAIL_ADDRESS":
            checks[entity] = "@"  # the pattern has a literal [@]
        elif entity == "PHONE_NUMBER":
            checks[entity] = phone_gate()[0]  # the phone recognizer's own gate
        elif entity == "IP_ADDRESS":
            # every IPv6 alternative of presidio's patterns has "::" or 6 "h:" groups; IPv4 d.d.d.d.
            # Written to start at the ":" or "." (same lines), so the scan skips to those.
            checks[entity] = regex.compile(
                r":(?::|(?<=[0-9a-f]:)(?:[0-9a-f]{1,4}:){5})|\.(?<=[0-9]\.)[0-9]{1,3}\.[0-9]{1,3}\.[0-9]", ignorecase
            )
        elif entity == "CREDIT_CARD":
            checks[entity] = regex.compile(r"[0-9](?:[ -]?[0-9]){12}", plain)
        elif entity == "IBAN_CODE":
            checks[entity] = regex.compile(r"[A-Z]{2}[0-9]{2}(?:[ -]?[A-Z0-9]{4}){2}", plain)
        elif entity == "US_SSN":
            # presidio's five SSN patterns: 3-2-4 digits (separators "-", " ", "." or none),
            # 5-4 and 3-6 with "-"; \b weakened to "no digit" on either side
            checks[entity] = regex.compile(
                r"[0-9](?<![0-9]{2})(?:[0-9]{4}-[0-9]{4}|[0-9]{2}-[0-9]{6}|[0-9]{2}[- .]?[0-9]{2}[- .]?[0-9]{4})(?![0-9])", plain
            )
        elif entity == "URL":
            checks[entity] = regex.compile(r"[a-z0-9.\-][.][a-z]{2}", ignorecase)
        elif entity == "CRYPTO":
            checks[entity] = regex.compile(r"(?:bc1|[13])[a-zA-HJ-NP-Z0-9]{25}", ignorecase)
        else:
            checks[entity] = None
    return checks


def lines_passing_prechecks(text: str, entities: list[str], prechecks: dict, starts: list[int]) -> dict[int, list[str]]:
    """{line index: the entities whose pre-check fires on that line}."""
    wanted: dict[int, list[str]] = {}
    for entity in entities:
        check = prechecks[entity]
        if check is None:
            lines = range(len(starts))
        elif isinstance(check, str):
            lines = lines_containing(text, check, starts)
        else:
            lines = sorted({bisect.bisect_right(starts, m.start()) - 1 for m in check.finditer(text)})
        for line in lines:
            wanted.setdefault(line, []).append(entity)
    return wanted


def lines_containing(text: str, needle: str, starts: list[int]) -> list[int]:
    lines = []
    pos = text.find(needle)
    while pos != -1:
        line = bisect.bisect_right(starts, pos) - 1
        lines.append(line)
        next_start = starts[line + 1] if line + 1 < len(starts) else len(text)
        pos = text.find(needle, next_start)
    return lines


# --- the phone gate ------------------------------------------------------------------------------
#
# libphonenumber's matcher costs one parse per candidate per region, and a page of figures has
# thousands of candidates that are all dropped afterwards (page ranges, table cells). Two exact
# reductions, both built from the library's own pattern and predicates:
#
# 1. Independence at "hard" characters: a character no match of the matcher's candidate
#    pattern can contain (most Latin letters, quotes, "!", "%"...). No candidate crosses one,
#    and the matcher looks at most one character beyond a candidate (the letter check) or
#    three (":ss" time-stamp suffix, which a hard character also ends). So running a fresh
#    matcher on each stretch between two hard characters, both included, yields exactly the
#    matches one matcher over the whole line yields. (One exception: a matcher gives up
#    after 65,535 failed candidates; on a line with more, the stretches find more.)
# 2. A necessary condition for a match we keep (``phone_gate``): a stretch without it only
#    holds matches that our filters drop, so it is not parsed at all.

_SEPARATOR_KINDS = (" ", "-", r"\.", "/")


def _code_point_class(keep: Callable[[str], bool], limit: int) -> str:
    ranges: list[tuple[int, int]] = []
    for cp in range(limit):
        if keep(chr(cp)):
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1] = (ranges[-1][0], cp)
            else:
                ranges.append((cp, cp))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


_gate_cache: dict = {}


def phone_gate() -> tuple[re.Pattern, re.Pattern]:
    """(gate, hard character) patterns, compiled once per process (~0.3 s).

    Python's ``re`` on purpose: it is what libphonenumber uses, so ``\\d`` means the same.
    """
    if not _gate_cache:
        _gate_cache["gate"] = re.compile("|".join(_gate_alternatives(_rejecting_class())))
        _gate_cache["hard"] = _hard_character()
    return _gate_cache["gate"], _gate_cache["hard"]


def _hard_character() -> re.Pattern:
    """A character no candidate of libphonenumber's matcher can hold."""
    from phonenumbers.phonenumbermatcher import _PATTERN, _PUNCTUATION

    # Every character a candidate can hold: a digit, one of the punctuation class's members,
    # or (case-insensitively, as the pattern is compiled) any character of the pattern's
    # source text. Over-counting here only makes stretches longer.
    soft = re.compile(
        r"\d|" + _PUNCTUATION.rsplit("{", 1)[0] + "|[" + "".join(re.escape(c) for c in set(_PATTERN.pattern)) + r"\t]",
        re.UNICODE | re.IGNORECASE,
    )
    return re.compile("[^" + _code_point_class(lambda c: bool(soft.fullmatch(c)), 0x110000) + "]")


def _rejecting_class() -> str:
    """Characters that make the matcher (leniency VALID) reject a number touching them: Latin
    letters, currency symbols, "%". Only the BMP is listed; a subset is still conservative."""
    from phonenumbers.phonenumbermatcher import PhoneNumberMatcher

    def rejects(c: str) -> bool:
        return PhoneNumberMatcher._is_latin_letter(c) or PhoneNumberMatcher._is_invalid_punctuation_symbol(c)

    return "[" + _code_point_class(rejects, 0x10000) + "]"


def _gate_alternatives(reject: str) -> list[str]:
    """The gate's alternatives: one of them matches wherever a phone number we keep starts."""
    from phonenumbers.phonenumbermatcher import _PUNCTUATION

    lead = r"[(\[（［+＋]"
    punct = _PUNCTUATION.rsplit("{", 1)[0]
    # Every alternative starts by consuming a digit, "(" or "+" (the conditions on what
    # precedes are lookbehinds over that first character), so ``re`` skips prose quickly.
    more = PHONE_MIN_NATIONAL_DIGITS - 1  # digits after the first one
    end = rf"(?<![ /](?:19|20)[0-9]{{2}})(?!{reject})(?![./-][0-9])"
    return [
        # No "+"/"00" prefix and no "(area)": ASCII digit groups joined by one kind of
        # single separator s, >= 7 digits (the national number's digits are among them), not
        # touching a rejecting character, not chained to more digits (curate.pii.is_chained), not
        # starting or ending with a year group (curate.pii.phone_looks_like_other_number), not right
        # after a digit (see "00" below). The number starts at this digit, or at an s before it.
        rf"[0-9](?:(?<!\d[0-9])(?<!{reject}[0-9])(?<![0-9][./-][0-9])(?!(?<=1)9[0-9]{{2}}[ /-])(?!(?<=2)0[0-9]{{2}}[ /-])"
        rf"|(?<={s}[0-9])(?<!\d{s}[0-9])(?<!{reject}{s}[0-9])(?<![0-9][./-]{s}[0-9]))(?:{s}?[0-9]){{{more},}}" + end
        for s in _SEPARATOR_KINDS
    ] + [
        # A leading "(area)" (its digits count): 7 digits chained by the matcher's punctuation.
        rf"\((?=[0-9]+\))[0-9](?:{_PUNCTUATION}[0-9]){{{more}}}",
        # "+": lead characters and punctuation, then >= 7 chained digits (as above).
        rf"\+(?:{punct}|{lead}){{0,9}}\d(?:{_PUNCTUATION}\d){{{more}}}",
        # "00". A match never starts right after a digit: inner matches start after a
        # separator, and a candidate starts inside a run of digits only where the previous
        # one was cut inside it, which takes a run of >= 10 digits (extension digits are
        # capped at 9 and 20, a digit block at 20): the last alternative.
        rf"0(?<!\d0)(?<!{reject}0)(?<![0-9][./-]0)0(?:{_PUNCTUATION}\d){{{more - 1}}}",
        r"\d{10}",
    ]


def phone_stretches(text: str) -> list[tuple[int, int]]:
    """The (start, end) stretches of ``text`` libphonenumber must see: each runs from a hard
    character to the next (both included, or the text's ends) and holds a match of the gate."""
    gate, hard = phone_gate()
    stretches: list[tuple[int, int]] = []
    pos = 0
    while True:
        m = gate.search(text, pos)
        if m is None:
            return stretches
        before = m.start() - 1
        while before >= 0 and not hard.match(text, before):
            before -= 1
        after = hard.search(text, m.end())
        start, end = max(before, 0), (after.end() if after else len(text))
        stretches.append((start, end))
        pos = end


def memo_matcher_class() -> type:
    """A PhoneNumberMatcher class whose parse-and-verify step is memoised (one cache per
    class; each phone recognizer makes its own).

    That step is a pure function of the candidate string, the region, the leniency and the
    character on either side of the candidate (the only text it reads besides the
    candidate); page numbers and table cells repeat, so the same key comes back often.
    """
    import copy

    from phonenumbers import PhoneNumberMatch, PhoneNumberMatcher

    cache: dict = {}
    missing = object()

    class MemoPhoneNumberMatcher(PhoneNumberMatcher):
        def _parse_and_verify(self, candidate, offset):
            end = offset + len(candidate)
            key = (
                candidate,
                self.preferred_region,
                self.leniency,
                self.text[offset - 1] if offset > 0 else None,
                self.text[end] if end < len(self.text) else None,
            )
            numobj = cache.get(key, missing)
            if numobj is missing:
                match = super()._parse_and_verify(candidate, offset)
                numobj = match.number if match is not None else None
                if len(cache) >= 200_000:  # bounded: a worker runs for hours
                    cache.clear()
                cache[key] = numobj
            return None if numobj is None else PhoneNumberMatch(offset, candidate, copy.copy(numobj))

    return MemoPhoneNumberMatcher


# --- spaCy without torch -------------------------------------------------------------------


@contextlib.contextmanager
def spacy_without_torch(needed: bool) -> Iterator[None]:
    """Import spaCy (through presidio) without importing torch, unless a model may need it.

    thinc, under spaCy, imports torch whenever it is installed (it is: the trainer needs it),
    which is ~1-3 s of every Python worker's start-up and ~0.5 GB of address space, for
    nothing when the pipeline is blank. Only the first import of spaCy in a process decides;
    a process that has already imported torch or spaCy imports normally. A named spaCy model
    (which may be torch-based) never takes this path. Limitation: thinc keeps "no torch" for
    the life of the process, so a torch-based model loaded later in the same worker (a second
    PII stage naming one, after a blank one) would not find torch.
    """
    if needed or not enabled() or "torch" in sys.modules or "thinc" in sys.modules:
        yield
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # makes `import torch` fail fast
    try:
        yield
    finally:
        if sys.modules.get("torch", 0) is None:
            del sys.modules["torch"]
