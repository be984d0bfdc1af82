"""Build the labelled PII set: real sentences with injected identifiers and decoys.

Two steps, both deterministic:

* ``--refresh-sentences`` reads WikiText-2 from the shared data folder and writes a few
  hundred detokenised sentences to ``tests/data/pii/sentences.txt`` (committed, so the
  tests never read outside the repository).
* ``--number-pages N`` (alone) extracts (trafilatura) the N trafilatura-eval pages from
  the shared data folder with the most digit chains and writes their whole main text to
  ``tests/data/pii/number_pages.jsonl``: tables of figures, page ranges and catalogue
  numbers, where the phone gate and libphonenumber disagree most easily.
* the default step reads those sentences and writes ``tests/data/pii/labelled.jsonl``:
  one example per line, ``{"text", "spans": [{start, end, entity_type}], "decoys":
  [{start, end, kind}]}``. Offsets are character (code point) offsets into ``text``.

Identifiers are made in the formats people really write: phone numbers that
libphonenumber accepts as valid for 20 countries, printed in international, E.164,
national, dotted, ``00``-prefixed and ``tel:`` forms; IPv4 and IPv6 (full, compressed,
mixed-case, zone index, IPv4-mapped); Luhn-valid card numbers of six brands grouped the
way each brand prints them; IBANs with correct check digits for 11 countries, compact and
grouped; US SSNs with dashes, spaces or (with a context word) no separators; e-mail
addresses in mixed case, with plus-tags, sub-domains and country-code suffixes.
Decoys are what web text is full of and a scrubber must leave alone: dates, ISBNs,
version numbers, prices, years, order and invoice numbers, times, coordinates.

``--lookalikes N`` (alone) writes ``tests/data/pii/lookalikes.jsonl``: N dotted quads per
kind in version, OID and section contexts, and N real IPv4 addresses in sentences, some
next to the same words ("the build server at ...").

Usage: ``python bench/pii_set.py [--seed 0] [--per-type 200] [--out PATH] [--number-pages 6] [--lookalikes 100]``
"""

from __future__ import annotations

import argparse
import json
import random
import re
import string
import sys
from pathlib import Path

import phonenumbers

from common import ROOT, eval_page_texts, shared_data

from curate.wikitext import PII_SENTENCES, detokenize_line

DATA_DIR = ROOT / "tests" / "data" / "pii"
SENTENCES = DATA_DIR / "sentences.txt"
LABELLED = DATA_DIR / "labelled.jsonl"
NUMBER_PAGES = DATA_DIR / "number_pages.jsonl"

# --- sentences ---------------------------------------------------------------------------


def wikitext_sentences(limit: int, seed: int) -> list[str]:
    sentences = []
    for name in ("valid.txt", "test.txt"):
        for line in (shared_data() / "text" / "wikitext-2" / name).read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not line or line.startswith("=") or "<unk>" in line:
                continue
            line = detokenize_line(line, PII_SENTENCES)  # pinned: the committed sentences.txt
            for sentence in re.split(r"(?<=[.!?]) (?=[A-Z])", line):
                sentence = sentence.strip()
                if 60 <= len(sentence) <= 240 and sentence.endswith("."):
                    sentences.append(sentence)
    random.Random(seed).shuffle(sentences)
    return sentences[:limit]


# --- identifiers ---------------------------------------------------------------------------

PHONE_REGIONS_NATIONAL = ["US", "GB", "DE", "FR", "IN", "CA", "AU", "BR", "ES", "IT", "NL", "JP", "MX"]
PHONE_REGIONS_INTERNATIONAL_ONLY = ["CN", "ZA", "SE", "CH", "PL", "IE", "NG", "KR"]


def _valid_number(rng: random.Random, region: str) -> phonenumbers.PhoneNumber:
    kinds = [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
    for _ in range(200):
        example = phonenumbers.example_number_for_type(region, rng.choice(kinds))
        if example is None:
            continue
        nsn = str(example.national_number)
        # Keep the leading digits (area/mobile prefix), randomise the subscriber part.
        keep = max(2, len(nsn) - 5)
        candidate = nsn[:keep] + "".join(rng.choice(string.digits) for _ in range(len(nsn) - keep))
        number = phonenumbers.parse("+" + str(example.country_code) + candidate)
        if phonenumbers.is_valid_number(number):
            return number
    raise RuntimeError(f"no valid number found for {region}")


def make_phone(rng: random.Random) -> str:
    if rng.random() < 0.6:
        region = rng.choice(PHONE_REGIONS_NATIONAL)
    else:
        region = rng.choice(PHONE_REGIONS_INTERNATIONAL_ONLY)
    number = _valid_number(rng, region)
    intl = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    styles = ["international", "e164", "intl_dashes", "intl_dots", "idd00", "tel"]
    if region in PHONE_REGIONS_NATIONAL:
        styles += ["national", "national", "national"]
    if region in ("US", "CA"):
        styles += ["nanp_dots", "nanp_dashes", "nanp_plus1"]
    style = rng.choice(styles)
    if style == "international":
        return intl
    if style == "e164":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if style == "intl_dashes":
        return intl.replace(" ", "-")
    if style == "intl_dots":
        return intl.replace(" ", ".")
    if style == "idd00":
        return "00 " + intl[1:]
    if style == "tel":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966)[len("tel:") :]
    if style == "national":
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    nsn = str(number.national_number)
    if style == "nanp_dots":
        return f"{nsn[:3]}.{nsn[3:6]}.{nsn[6:]}"
    if style == "nanp_dashes":
        return f"{nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
    return f"+1 {nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"


def make_ipv4(rng: random.Random) -> str:
    first = rng.choice([10, 172, 192, 8, 41, 81, 95, 100, 141, 203, 213])
    return ".".join(str(x) for x in [first, rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254)])


def make_ipv6(rng: random.Random) -> str:
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(8)]
    groups[0] = rng.choice(["2001", "2a02", "2607", "fe80", "2400", "2a00"])
    style = rng.choice(["full", "compressed", "compressed", "upper", "loopback", "zone", "mapped", "leading_zeros"])
    if style == "full":
        return ":".join(groups)
    if style == "leading_zeros":
        return ":".join(g.zfill(4) for g in groups)
    if style in ("compressed", "upper"):
        cut = rng.randint(2, 5)
        text = ":".join(groups[:cut]) + "::" + ":".join(groups[cut + 2 :])
        return text.upper() if style == "upper" else text
    if style == "loopback":
        return "::1"
    if style == "zone":
        return f"fe80::{groups[5]}:{groups[6]}:{groups[7]}%eth0"
    return f"::ffff:{make_ipv4(rng)}"


def make_ip(rng: random.Random) -> str:
    return make_ipv4(rng) if rng.random() < 0.55 else make_ipv6(rng)


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, d in enumerate(reversed(body)):
        n = int(d)
        if i % 2 == 0:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return body + str((10 - total % 10) % 10)


CARD_BRANDS = [  # (IIN prefixes, length, print grouping)
    (["4"], 16, (4, 4, 4, 4)),
    (["51", "52", "53", "54", "55", "2221", "2300", "2720"], 16, (4, 4, 4, 4)),
    (["34", "37"], 15, (4, 6, 5)),
    (["6011", "65", "644"], 16, (4, 4, 4, 4)),
    (["3528", "3566", "3589"], 16, (4, 4, 4, 4)),
    (["36", "38", "300"], 14, (4, 6, 4)),
]


def make_card(rng: random.Random) -> str:
    prefixes, length, groups = rng.choice(CARD_BRANDS)
    digits = _luhn_complete(rng.choice(prefixes), length, rng)
    sep = rng.choice(["", " ", " ", "-"])
    parts, pos = [], 0
    for g in groups:
        parts.append(digits[pos : pos + g])
        pos += g
    return sep.join(parts)


IBAN_FORMATS = {  # BBAN layout: D digit, A letter
    "DE": "D" * 18,
    "GB": "AAAA" + "D" * 14,
    "NL": "AAAA" + "D" * 10,
    "ES": "D" * 20,
    "BE": "D" * 12,
    "AT": "D" * 16,
    "CH": "D" * 17,
    "PL": "D" * 24,
    "FR": "D" * 23,
    "IT": "A" + "D" * 22,
    "SE": "D" * 20,
}


def make_iban(rng: random.Random) -> str:
    country = rng.choice(sorted(IBAN_FORMATS))
    bban = "".join(rng.choice(string.digits) if c == "D" else rng.choice(string.ascii_uppercase) for c in IBAN_FORMATS[country])
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(numeric) % 97
    iban = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(iban[i : i + 4] for i in range(0, len(iban), 4))
    return iban


def make_ssn(rng: random.Random) -> tuple[str, str]:
    """Returns (value, context prefix). Compact SSNs only ever appear after a context word."""
    while True:
        area = rng.randint(1, 899)
        if area != 666:
            break
    group, serial = rng.randint(1, 99), rng.randint(1, 9999)
    style = rng.random()
    if style < 0.6:
        return f"{area:03d}-{group:02d}-{serial:04d}", rng.choice(["", "", "SSN: ", "social security number "])
    if style < 0.85:
        return f"{area:03d} {group:02d} {serial:04d}", rng.choice(["SSN ", "Social Security No. ", "ssn: "])
    return f"{area:03d}{group:02d}{serial:04d}", rng.choice(["SSN: ", "SSN ", "social security number "])


DOMAINS = [
    "gmail.com",
    "example.org",
    "uni-heidelberg.de",
    "mail.co.uk",
    "cs.stanford.edu",
    "orange.fr",
    "posteo.net",
    "company.io",
    "health.gov.au",
    "web.de",
    "outlook.com",
    "dept.univ.ac.jp",
    "my-firm.com.br",
    "yahoo.co.in",
    "proton.me",
]


def make_email(rng: random.Random, words: list[str]) -> str:
    first, last = rng.choice(words), rng.choice(words)
    style = rng.choice(["dot", "plain", "plus", "digits", "underscore", "initial"])
    local = {
        "dot": f"{first}.{last}",
        "plain": first,
        "plus": f"{first}+{rng.choice(['news', 'spam', 'work'])}",
        "digits": f"{first}{rng.randint(1, 2024)}",
        "underscore": f"{first}_{last}",
        "initial": f"{first[0]}.{last}",
    }[style]
    domain = rng.choice(DOMAINS)
    case = rng.random()
    if case < 0.25:
        local, domain = local.capitalize(), domain.capitalize()
    elif case < 0.4:
        local, domain = local.upper(), domain.upper()
    elif case < 0.55:
        local = "".join(c.upper() if i % 2 else c for i, c in enumerate(local))
    return f"{local}@{domain}"


# --- decoys ----------------------------------------------------------------------------------


def make_decoy(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["date", "isbn", "version", "price", "year", "order", "time", "coordinates", "population", "range"])
    y, m, d = rng.randint(1950, 2025), rng.randint(1, 12), rng.randint(1, 28)
    return kind, DECOYS[kind](rng, y, m, d)


def _date_decoy(rng: random.Random, y: int, m: int, d: int) -> str:
    return rng.choice(
        [
            f"{y}-{m:02d}-{d:02d}",
            f"{d:02d}/{m:02d}/{y}",
            f"{d:02d}.{m:02d}.{y}",
            f"{m}/{d}/{y}",
            f"{y}-{m:02d}-{d:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
            f"{y}{m:02d}{d:02d}",
        ]
    )


def _isbn_decoy(rng: random.Random, y: int, m: int, d: int) -> str:
    body = "978" + "".join(rng.choice(string.digits) for _ in range(9))
    check = (10 - sum(int(c) * (1 if i % 2 == 0 else 3) for i, c in enumerate(body)) % 10) % 10
    isbn = body + str(check)
    return rng.choice(
        [
            f"ISBN {isbn[:3]}-{isbn[3]}-{isbn[4:7]}-{isbn[7:12]}-{isbn[12]}",
            f"ISBN-13: {isbn}",
            f"ISBN {isbn[:3]}-{isbn[3:5]}-{isbn[5:9]}-{isbn[9:12]}-{isbn[12]}",
        ]
    )


def _version_decoy(rng: random.Random, y: int, m: int, d: int) -> str:
    return rng.choice(
        [
            f"version {rng.randint(1, 12)}.{rng.randint(0, 30)}.{rng.randint(0, 400)}",
            f"v{rng.randint(0, 5)}.{rng.randint(0, 9)}.{rng.randint(0, 999)}",
            f"build {rng.randint(6, 10)}.0.{rng.randint(10000, 22999)}.{rng.randint(100, 3999)}",
            f"release {rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}-rc{rng.randint(1, 5)}",
        ]
    )


def _price_decoy(rng: random.Random, y: int, m: int, d: int) -> str:
    return rng.choice(
        [
            f"${rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
            f"€{rng.randint(1, 999)}.{rng.randint(0, 99):02d}",
            f"£{rng.randint(1, 99)},{rng.randint(100, 999)}",
            f"USD {rng.randint(1, 99)},{rng.randint(100, 999)},{rng.randint(100, 999)}",
        ]
    )


def _order_decoy(rng: random.Random, y: int, m: int, d: int) -> str:
    return rng.choice(
        [
            f"Order #{rng.randint(100, 999)}-{rng.randint(1000000, 9999999)}-{rng.randint(1000000, 9999999)}",
            f"Invoice no. {y}-{rng.randint(0, 999999):06d}",
            f"order number {rng.randint(10**9, 10**10 - 1)}",
            f"ticket {rng.randint(100000, 999999)}",
            f"tracking number 1Z{rng.randint(100, 999)}AA1{rng.randint(10**9, 10**10 - 1)}",
            f"ref. {rng.randint(10, 99)}/{rng.randint(1000, 9999)}/{y}",
        ]
    )


# Each draws exactly what the single function it replaces drew, in the same order: the committed
# sets (tests/data/pii) are rebuilt byte for byte from their seeds.
DECOYS = {
    "date": _date_decoy,
    "isbn": _isbn_decoy,
    "version": _version_decoy,
    "price": _price_decoy,
    "year": lambda rng, y, m, d: rng.choice([str(y), f"{y}–{y + rng.randint(1, 9)}", f"{y}/{(y + 1) % 100:02d}"]),
    "order": _order_decoy,
    "time": lambda rng, y, m, d: rng.choice(
        [f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}", f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm"]
    ),
    "coordinates": lambda rng, y, m, d: f"{rng.uniform(-80, 80):.4f}, {rng.uniform(-170, 170):.4f}",
    "population": lambda rng, y, m, d: f"{rng.randint(1, 999)},{rng.randint(0, 999):03d},{rng.randint(0, 999):03d}",
    "range": lambda rng, y, m, d: f"pp. {rng.randint(1, 400)}–{rng.randint(401, 900)}",
}


# --- assembling examples ------------------------------------------------------------------------

TEMPLATES = {
    "EMAIL_ADDRESS": ["Contact {v} for details.", "Write to <{v}>.", "(e-mail: {v})", "mailto:{v}", "Send it to {v}.", "Reach me at {v}"],
    "PHONE_NUMBER": ["Call {v} for details.", "Tel.: {v}", "Phone: {v}", "Reservations on {v}.", "Mobile {v}", "Fax: {v}."],
    "IP_ADDRESS": ["Requests came from {v}.", "IP: {v}", "the server at {v} answered", "Logged in from {v}"],
    "CREDIT_CARD": ["Card number {v} was charged.", "Paid with {v}.", "card: {v}", "The number {v} expires soon."],
    "IBAN_CODE": ["Please transfer to {v}.", "IBAN: {v}", "Account {v} (savings).", "Bank details: {v}"],
    "US_SSN": ["{c}{v} on file.", "Applicant {c}{v}.", "{c}{v}"],
}
DECOY_TEMPLATES = ["published {v}", "({v})", "see {v}.", "{v}", "as of {v}", "It cost {v}."]


def build(seed: int, per_type: int, sentences: list[str]) -> list[dict]:
    rng = random.Random(seed)
    words = sorted({w.lower() for s in sentences for w in re.findall(r"[A-Za-z]{3,10}", s)})
    makers = {
        "EMAIL_ADDRESS": lambda: (make_email(rng, words), ""),
        "PHONE_NUMBER": lambda: (make_phone(rng), ""),
        "IP_ADDRESS": lambda: (make_ip(rng), ""),
        "CREDIT_CARD": lambda: (make_card(rng), ""),
        "IBAN_CODE": lambda: (make_iban(rng), ""),
        "US_SSN": lambda: make_ssn(rng),
    }
    jobs = [entity for entity in makers for _ in range(per_type)]
    jobs += [None] * (per_type * 2)  # examples with decoys only
    rng.shuffle(jobs)
    examples = []
    for entity in jobs:
        pieces: list[tuple[str, str | None, str | None]] = [(rng.choice(sentences), None, None)]
        if entity is not None:
            value, context = makers[entity]()
            template = rng.choice(TEMPLATES[entity])
            before, after = template.split("{v}")
            before = before.replace("{c}", context)
            if not after:  # never glue the next number onto the identifier
                after = rng.choice([".", ",", ";", " and"])
            pieces.append((before, None, None))
            pieces.append((value, entity, None))
            pieces.append((after, None, None))
        for _ in range(rng.choice([1, 1, 2, 3])):
            kind, value = make_decoy(rng)
            before, after = rng.choice(DECOY_TEMPLATES).split("{v}")
            pieces.append((" " + before, None, None))
            pieces.append((value, None, kind))
            pieces.append((after, None, None))
        if rng.random() < 0.5:
            pieces.append((" " + rng.choice(sentences), None, None))
        text, spans, decoys = "", [], []
        for i, (piece, ent, decoy) in enumerate(pieces):
            if i == 1 and entity is not None and not text.endswith(" "):
                piece_sep = " "
                text += piece_sep
            start = len(text)
            text += piece
            if ent:
                spans.append({"start": start, "end": len(text), "entity_type": ent})
            if decoy:
                decoys.append({"start": start, "end": len(text), "kind": decoy})
        examples.append({"text": text, "spans": spans, "decoys": decoys})
    return examples


# --- look-alikes: dotted quads that are not addresses ------------------------------------------

LOOKALIKES = DATA_DIR / "lookalikes.jsonl"
LOOKALIKE_TEMPLATES = {
    "version": [
        "Download version {v} of the tool.",
        "Firmware {v} fixes the boot loop.",
        "We upgraded to {v} last week.",
        "Release notes for build {v}:",
        "The driver (v{v}) is signed.",
        "The {v} release adds a dark mode.",
        "Kernel {v} was released on Tuesday.",
        "Python {v} ships today.",
        "Chrome {v} is rolling out.",
    ],
    "oid": ["OID {v} names the arc.", "the object identifier {v} is registered", "Use urn:oid:{v} here.", "(arc {v})"],
    "section": [
        "See section {v} of the standard.",
        "as required by clause {v}, the",
        "§ {v} applies.",
        "Figure {v} shows the loop.",
        "Step {v}: remove the cover.",
        "Table {v} lists the results.",
        "under paragraph {v} of the contract",
    ],
}
# Real addresses, some next to words the rules listen for ("build server", "update server").
ADDRESS_TEMPLATES = [
    "Requests came from {v}.",
    "IP: {v}",
    "the server at {v} answered",
    "Logged in from {v}",
    "the build server at {v} is down",
    "Set the gateway to {v}.",
    "ping {v}",
    "update server: {v}",
    "Our DNS resolver is {v}, the backup",
    "traffic to {v} was blocked",
]
FOUR_ARC_OIDS = ["1.3.6.1", "2.5.4.3", "2.5.4.6", "2.5.4.10", "2.5.4.11", "2.5.29.17", "2.5.29.19", "2.5.29.37", "1.3.6.2", "2.16.840.1"]


def make_lookalike(rng: random.Random, kind: str) -> str:
    if kind == "version":
        return f"{rng.randint(1, 20)}.{rng.randint(0, 30)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
    if kind == "oid":
        return rng.choice(FOUR_ARC_OIDS)
    return f"{rng.randint(1, 20)}.{rng.randint(1, 12)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}"


def build_lookalikes(seed: int, per_kind: int, sentences: list[str]) -> list[dict]:
    """Examples ``{"text", "spans", "lookalikes"}``: a real sentence, then either a dotted
    quad in a version, OID or section context (``lookalikes``), or a real IPv4 address
    (``spans``, entity IP_ADDRESS). Every quad is a syntactically valid IPv4 address."""
    rng = random.Random(seed)
    jobs = [kind for kind in LOOKALIKE_TEMPLATES for _ in range(per_kind)] + ["address"] * per_kind
    rng.shuffle(jobs)
    examples = []
    for kind in jobs:
        if kind == "address":
            value, template = make_ipv4(rng), rng.choice(ADDRESS_TEMPLATES)
        else:
            value, template = make_lookalike(rng, kind), rng.choice(LOOKALIKE_TEMPLATES[kind])
        before, after = template.split("{v}")
        text = rng.choice(sentences) + " " + before
        start = len(text)
        text += value + after
        span = {"start": start, "end": start + len(value)}
        if kind == "address":
            examples.append({"text": text, "spans": [{**span, "entity_type": "IP_ADDRESS"}], "lookalikes": []})
        else:
            examples.append({"text": text, "spans": [], "lookalikes": [{**span, "kind": kind}]})
    return examples


def number_dense_pages(n: int) -> list[dict]:
    """The n extracted pages with the most chains of 7 digits joined by libphonenumber's
    punctuation (ties broken by file name)."""
    from phonenumbers.phonenumbermatcher import _PUNCTUATION

    chain = re.compile(r"\d(?:" + _PUNCTUATION + r"\d){6}")
    pages = [{**row, "chains": len(chain.findall(row["text"]))} for row in eval_page_texts()]
    pages.sort(key=lambda p: (-p["chains"], p["file"]))
    return [{"file": p["file"], "text": p["text"]} for p in pages[:n]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--per-type", type=int, default=200, help="identifiers per entity type")
    parser.add_argument("--out", type=Path, default=LABELLED)
    parser.add_argument("--refresh-sentences", action="store_true", help="re-extract sentences.txt from WikiText-2")
    parser.add_argument("--sentences", type=int, default=600, help="how many sentences --refresh-sentences keeps")
    parser.add_argument("--number-pages", type=int, default=0, help="write the N most number-dense real pages")
    parser.add_argument("--lookalikes", type=int, default=0, help="write tests/data/pii/lookalikes.jsonl with N quads per kind")
    args = parser.parse_args(argv)
    if args.lookalikes:
        sentences = [s for s in SENTENCES.read_text(encoding="utf-8").splitlines() if s]
        with open(LOOKALIKES, "w", encoding="utf-8") as fh:
            for ex in build_lookalikes(args.seed, args.lookalikes, sentences):
                fh.write(json.dumps(ex, ensure_ascii=False) + "\n")
        print(f"wrote {LOOKALIKES}")
        return 0  # only that file
    if args.number_pages:
        with open(NUMBER_PAGES, "w", encoding="utf-8") as fh:
            for page in number_dense_pages(args.number_pages):
                fh.write(json.dumps(page, ensure_ascii=False) + "\n")
        print(f"wrote {NUMBER_PAGES}")
        return 0  # only that file: labelled.jsonl stays as it is
    if args.refresh_sentences:
        SENTENCES.parent.mkdir(parents=True, exist_ok=True)
        SENTENCES.write_text("\n".join(wikitext_sentences(args.sentences, args.seed)) + "\n", encoding="utf-8")
        print(f"wrote {SENTENCES}")
    sentences = [s for s in SENTENCES.read_text(encoding="utf-8").splitlines() if s]
    examples = build(args.seed, args.per_type, sentences)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as fh:
        for ex in examples:
            fh.write(json.dumps(ex, ensure_ascii=False) + "\n")
    n_spans = sum(len(e["spans"]) for e in examples)
    n_decoys = sum(len(e["decoys"]) for e in examples)
    print(f"wrote {args.out}: {len(examples)} examples, {n_spans} identifiers, {n_decoys} decoys", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
