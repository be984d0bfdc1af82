"""Context rules for PII detections: keep a look-alike that its context explains.

A rule names entity types and a pattern for the text before and/or after a detection
(``curate/data/pii_context_rules.yaml`` is the shipped set and documents the format). The
``pii`` stage drops a detection when a rule matches: "version 1.2.3.4", "section 4.2.1.3"
and "OID 1.3.6.1" stay in the text; "from 10.0.0.1" is still replaced.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import regex
import yaml

SHIPPED_RULES = "shipped"  # how error messages name the packaged rules file
DEFAULT_WINDOW = 40


@dataclass(frozen=True)
class ContextRule:
    name: str
    entities: frozenset[str]
    before: regex.Pattern | None
    after: regex.Pattern | None
    window: int = DEFAULT_WINDOW

    def matches(self, text: str, entity_type: str, start: int, end: int) -> bool:
        if entity_type not in self.entities:
            return False
        # Slices, not pos/endpos: "^" and "$" would not match at pos/endpos.
        if self.before is not None and self.before.search(text[max(0, start - self.window) : start]):
            return True
        return self.after is not None and self.after.search(text[end : end + self.window]) is not None


def _compile(source: str, where: str) -> regex.Pattern:
    try:
        return regex.compile(source, regex.IGNORECASE)
    except regex.error as exc:
        raise ValueError(f"{where}: not a valid regular expression: {exc}") from exc


def parse_rules(data: object, origin: str, known_entities: list[str]) -> list[ContextRule]:
    """Rules from the parsed YAML of one file; errors name the file, the rule and the key."""
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
        raise ValueError(f"{origin}: expected a mapping with a list under 'rules'")
    rules = []
    for i, item in enumerate(data["rules"]):
        where = f"{origin}: rules[{i}]"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a mapping")
        unknown = sorted(set(item) - {"name", "entities", "before", "after", "window"})
        if unknown:
            raise ValueError(f"{where}: unknown keys {', '.join(unknown)}")
        entities = item.get("entities")
        if not isinstance(entities, list) or not entities or any(e not in known_entities for e in entities):
            raise ValueError(f"{where}.entities: expected a non-empty list of {', '.join(known_entities)}")
        if not item.get("before") and not item.get("after"):
            raise ValueError(f"{where}: give 'before', 'after' or both")
        window = item.get("window", DEFAULT_WINDOW)
        if not isinstance(window, int) or window < 1:
            raise ValueError(f"{where}.window: expected a positive integer, got {window!r}")
        rules.append(
            ContextRule(
                name=str(item.get("name") or f"{origin} rule {i}"),
                entities=frozenset(entities),
                before=_compile(item["before"], f"{where}.before") if item.get("before") else None,
                after=_compile(item["after"], f"{where}.after") if item.get("after") else None,
                window=window,
            )
        )
    return rules


def load_context_rules(paths: list[str], shipped: bool, known_entities: list[str]) -> list[ContextRule]:
    """The shipped rules (unless ``shipped`` is false) followed by the rules of each file."""
    sources: list[tuple[str, str]] = []
    if shipped:
        sources.append((SHIPPED_RULES, resources.files("curate").joinpath("data/pii_context_rules.yaml").read_text(encoding="utf-8")))
    for path in paths:
        try:
            with open(path, encoding="utf-8") as fh:
                sources.append((path, fh.read()))
        except OSError as exc:
            raise ValueError(f"context_rules: cannot read {path}: {exc.strerror}") from exc
    rules: list[ContextRule] = []
    for origin, text in sources:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{origin}: not valid YAML: {exc}") from exc
        rules.extend(parse_rules(data, origin, known_entities))
    return rules


def explaining_rule(rules: list[ContextRule], text: str, entity_type: str, start: int, end: int) -> str | None:
    """The name of the first rule whose context explains the detection, or None."""
    for rule in rules:
        if rule.matches(text, entity_type, start, end):
            return rule.name
    return None
