"""WikiText-2's tokenization undone: the one detokenizer of the project.

WikiText writes ``well @-@ known``, ``1 @,@ 000``, a space around every punctuation mark and
``<unk>`` for rare words. :func:`detokenize_line` turns such a line back into prose with one
:class:`Detokenization`, an ordered list of substitutions:

* :data:`PROSE`, the full rules: the eval sets, the tokenizer's corpus and anything new.
* Pinned styles, each the exact rules an artefact was built with, so that artefact stays
  reproducible without being rebuilt: :data:`QUALITY_POSITIVES` (``models/quality.bin``),
  :data:`BENCH_WARC_PARAGRAPHS` (the records of ``bench/make_warc.py``),
  :data:`PLANTED_PASSAGES` (``bench/decontaminate.py``) and :data:`PII_SENTENCES`
  (``tests/data/pii/sentences.txt``). They differ from :data:`PROSE` on the text around a
  dropped ``<unk>``, quotes, `` n't`` and trailing spaces; ``tests/test_wikitext.py`` pins each.
  Change one only together with a rebuild of what it made.

``unk`` names a word to write in place of each ``<unk>``; left empty, the style drops it.
It imports nothing from the project, so curate, trainer, models and bench can all use it (it is in
curate/ because bench scripts put bench/ first on sys.path, where bench/trainer.py hides the
trainer package).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNK = "<unk>"


@dataclass(frozen=True)
class Detokenization:
    """Substitutions applied in order to one line, then (``strip``) surrounding white space removed."""

    rules: tuple[tuple[re.Pattern, str], ...]
    strip: bool = True


def _literal(old: str, new: str) -> tuple[re.Pattern, str]:
    return re.compile(re.escape(old)), new.replace("\\", "\\\\")


_NUMBER_SEPARATORS = tuple(_literal(f" @{c}@ ", c) for c in "-,.")  # well @-@ known, 1 @,@ 000, 0 @.@ 7

PROSE = Detokenization(
    (
        (re.compile(r" @(.)@ "), r"\1"),
        (re.compile(r" ?<unk> ?"), " "),
        (re.compile(r" ([.,;:!?%)\]}])"), r"\1"),
        (re.compile(r"([(\[{$]) "), r"\1"),
        (re.compile(r" (n't|'s|'re|'ve|'ll|'d|'m)\b"), r"\1"),
        (re.compile(r'" (.*?) "'), r'"\1"'),
        (re.compile(r" {2,}"), " "),
    )
)

# Pinned: the positives models/quality.bin was trained on (models/train_quality.py). A dropped
# <unk> leaves a space before the punctuation after it ("a large , with").
QUALITY_POSITIVES = Detokenization(
    (
        *_NUMBER_SEPARATORS,
        _literal(UNK, ""),
        (re.compile(r" ([.,;:!?)\]'])"), r"\1"),
        (re.compile(r"([(\[]) "), r"\1"),
        (re.compile(r'" ([^"]*?) "'), r'"\1"'),
        (re.compile(r"\s+"), " "),
    )
)

# Pinned: the article paragraphs in the records bench/make_warc.py builds (the 5,000-record bench
# input); quotes keep their inner spaces and the line is not stripped. Its caller passes unk="unknown".
BENCH_WARC_PARAGRAPHS = Detokenization(
    (
        *_NUMBER_SEPARATORS,
        (re.compile(r" ([,.;:!?)\]'])"), r"\1"),
        (re.compile(r"([(\[]) "), r"\1"),
        _literal(" n't", "n't"),
        _literal(" 's", "'s"),
    ),
    strip=False,
)

# Pinned: the passages bench/decontaminate.py plants in pages (runs of words without <unk>).
PLANTED_PASSAGES = Detokenization(
    (
        *_NUMBER_SEPARATORS,
        *(_literal(f" {mark} ", f"{mark} ") for mark in ",.;:"),
        _literal(" 's", "'s"),
        _literal(" ( ", " ("),
        _literal(" ) ", ") "),
    )
)

# Pinned: tests/data/pii/sentences.txt (bench/pii_set.py --refresh-sentences; lines with <unk> skipped).
PII_SENTENCES = Detokenization(
    (
        *_NUMBER_SEPARATORS,
        *(_literal(f" {mark} ", f"{mark} ") for mark in ",.;:"),
        _literal(" 's", "'s"),
        _literal("( ", "("),
        _literal(" )", ")"),
        _literal(" n't", "n't"),
        _literal(' " ', ' "'),
    ),
    strip=False,
)


def detokenize_line(line: str, style: Detokenization = PROSE, unk: str = "") -> str:
    """One WikiText line as prose; ``unk``: a word written in place of each ``<unk>`` (empty: the style drops it)."""
    if unk:
        line = line.replace(UNK, unk)
    for pattern, replacement in style.rules:
        line = pattern.sub(replacement, line)
    return line.strip() if style.strip else line


_HEADING = re.compile(r"^ ?(=(?: =)*) (.*?) \1 ?$")


def detokenize_wikitext(lines: list[str]) -> list[str]:
    """WikiText-2 lines -> plain documents (one per top-level ``= Title =`` article), :data:`PROSE` rules."""
    documents: list[list[str]] = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        heading = _HEADING.match(line)
        if heading:
            if heading.group(1) == "=":
                documents.append([])
            line = heading.group(2)
        line = detokenize_line(line)
        if not documents:
            documents.append([])
        if line:
            documents[-1].append(line)
    return ["\n".join(doc) for doc in documents if doc]
