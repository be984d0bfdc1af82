"""Compiled boilerplate XPaths for trafilatura: the same nodes, faster (a speed-up, ``curate.speedups``).

trafilatura 2.x finds boilerplate with XPaths such as
``.//*[self::div or self::p or ...][re:test(@class, 'sidebar|banner|...') or ...]``.
libxml2 evaluates them in C, but each ``re:test`` is a call back into Python (lxml's EXSLT
regexp functions), made for every candidate element of every page, and the tag tests
(``self::div or self::p ...``) build a node-set per element. On our evaluation pages these
selections were over half of trafilatura's time (``bench/README.md``).

This module compiles the subset of XPath 1.0 those selections use into plain Python
predicates evaluated over ``iterdescendants``:

    selection  := part ("|" part)*
    part       := path | "(" path ")" "[1]"
    path       := ".//" ("*" | NAME) ("[" expr "]")* ("[1]")?
    expr       := and ("or" and)*          and := equality ("and" equality)*
    equality   := primary ("=" primary)?
    primary    := "(" expr ")" | "not(" expr ")" | "self::" NAME | "@" NAME ("|" "@" NAME)*
                | LITERAL | ".//" NAME | contains(a, b) | starts-with(a, b)
                | translate(a, LITERAL, LITERAL) | re:test(a, LITERAL [, LITERAL])

with XPath's own conversions (a node-set's string value is its first node in document order,
``@a = 'x'`` is true when any attribute node equals, ``re:test`` is ``re.search`` as lxml's
EXSLT implementation does it). Anything outside the subset (other positions, other axes, other
functions, other numbers) raises :class:`Unsupported` and that XPath is left as it is. Results are
in document order, the same nodes as libxml2 returns; ``tests/test_compiled_xpaths.py`` checks it
on every page of the evaluation set and on generated trees. Each ``re:test`` remembers its
answer per subject string (bounded), since class and id values repeat within a page and across
a site's pages; elements without attributes are passed over when the condition needs one.

:func:`install` swaps the compiled selections into the XPath lists of ``trafilatura.xpaths``
in place (the other trafilatura modules hold references to the same lists), and gives
trafilatura's invalid-character pattern a cheap "is any there at all" check first;
:func:`uninstall` puts the originals back. A compiled selection called with anything but an
element, or with XPath variables, defers to the original XPath.
"""

from __future__ import annotations

import re
import threading

from curate import speedups

REGEXP_NS = "http://exslt.org/regular-expressions"


class Unsupported(ValueError):
    """The XPath uses something outside the compiled subset."""


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<literal>'[^']*'|"[^"]*")
    | (?P<descendants>\.//)
    | (?P<self>self::)
    | (?P<number>\d+)
    | (?P<punct>[\[\]()|,=*@])
    | (?P<name>[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?)
    )""",
    re.VERBOSE,
)


def _tokens(path: str) -> list[tuple[str, str]]:
    tokens, position, end = [], 0, len(path.rstrip())
    while position < end:
        match = _TOKEN.match(path, position)
        if not match or match.end() == position:
            raise Unsupported(f"cannot read XPath at {path[position : position + 20]!r}")
        kind = match.lastgroup
        value = match.group(kind)
        tokens.append((kind, value[1:-1] if kind == "literal" else value))
        position = match.end()
    return tokens


# The parser turns each sub-expression into (kind, Python source) over two locals of the
# generated loop: ``el`` (the candidate element) and ``tag`` (its tag). Kinds:
#   "bool"   a boolean expression
#   "str"    a string expression ("lit" when it is a literal, whose value is kept too)
#   "attrs"  a node-set of attributes, kept as their names: its string value is the first
#            present one in document order, its boolean is "any present"
#   "exists" a node-set of descendants, usable only as a boolean
# What each regex test remembers: subjects up to _MEMO_LONGEST characters, at most _MEMO_LIMIT
# of them (then it starts afresh). With trafilatura's 34 tests that bounds the memory at about
# 80 MB per process; 300 different pages fill 14 MB.
_MEMO_LIMIT = 1 << 13
_MEMO_LONGEST = 200


class _Node:
    __slots__ = ("kind", "code", "value", "names")

    def __init__(self, kind: str, code: str = "", value: str | None = None, names: tuple[str, ...] = ()):
        self.kind, self.code, self.value, self.names = kind, code, value, names


def _first_present(attributes: dict[str, str], names: frozenset[str]) -> str:
    """String value of ``@a|@b``: the first of the attributes in document order, or ""."""
    for name, value in attributes.items():  # items() keeps the element's attribute order
        if name in names:
            return value
    return ""


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.index = 0
        self.constants: dict[str, object] = {"_first_present": _first_present}

    def constant(self, value: object) -> str:
        name = f"_c{len(self.constants)}"
        self.constants[name] = value
        return name

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        position = self.index + offset
        return self.tokens[position] if position < len(self.tokens) else None

    def take(self, kind: str, value: str | None = None) -> str:
        token = self.peek()
        if token is None or token[0] != kind or (value is not None and token[1] != value):
            raise Unsupported(f"expected {value or kind}, found {token}")
        self.index += 1
        return token[1]

    def at(self, kind: str, value: str | None = None) -> bool:
        token = self.peek()
        return token is not None and token[0] == kind and (value is None or token[1] == value)

    def name(self) -> str:
        name = self.take("name")
        if ":" in name:
            raise Unsupported(f"prefixed name {name}")
        return name

    # conversions, as XPath 1.0 defines them
    def as_bool(self, node: _Node) -> str:
        if node.kind in ("bool", "exists"):
            return node.code
        if node.kind in ("str", "lit"):
            return f"bool({node.code})"
        tests = [f"{name!r} in a" for name in node.names]
        return "(" + " or ".join(tests) + ")"

    def as_str(self, node: _Node) -> str:
        if node.kind in ("str", "lit"):
            return node.code
        if node.kind == "attrs":
            if len(node.names) == 1:
                return f"a.get({node.names[0]!r}, '')"
            present = self.constant(frozenset(node.names))
            if len(node.names) == 2:
                # only an element that has both needs the attribute order
                first, second = map(repr, node.names)
                return f"(_first_present(a, {present}) if {first} in a and {second} in a else a.get({first}, a.get({second}, '')))"
            return f"_first_present(a, {present})"
        raise Unsupported(f"string value of a {node.kind} expression")

    def memoized_test(self, pattern: re.Pattern):
        """Code for "pattern matches <subject>", remembered per subject string.

        Attribute values repeat (the same ``class`` on every item of a menu, the same theme
        classes on every page of a site), and one dictionary lookup costs a fraction of a regex
        search over an alternation of a dozen words.
        """
        known: dict[str, bool] = {}
        search = pattern.search

        def learn(value: str) -> bool:
            found = search(value) is not None
            if len(value) <= _MEMO_LONGEST:
                if len(known) >= _MEMO_LIMIT:
                    known.clear()
                known[value] = found
            return found

        known_name, learn_name = self.constant(known), self.constant(learn)
        value = f"_v{len(self.constants)}"
        return lambda subject: f"({known_name}[{value}] if ({value} := {subject}) in {known_name} else {learn_name}({value}))"

    def literal_value(self, node: _Node) -> str:
        if node.kind != "lit":
            raise Unsupported("a literal is expected here")
        return node.value  # type: ignore[return-value]

    def path(self) -> tuple[str, list[str]]:
        self.take("descendants")
        if self.at("punct", "*"):
            self.take("punct")
            tag = "*"
        else:
            tag = self.name()
        predicates = []
        while self.at("punct", "["):
            self.take("punct")
            predicates.append(self.as_bool(self.expr()))
            self.take("punct", "]")
        if self.peek() is not None:
            raise Unsupported(f"unexpected {self.peek()} after the path")
        return tag, predicates

    def expr(self) -> _Node:
        return self._chain("or", self.conjunction)

    def conjunction(self) -> _Node:
        return self._chain("and", self.equality)

    def _chain(self, operator: str, operand) -> _Node:
        parts = [operand()]
        while self.at("name", operator):
            self.take("name")
            parts.append(operand())
        if len(parts) == 1:
            return parts[0]
        return _Node("bool", "(" + f" {operator} ".join(self.as_bool(part) for part in parts) + ")")

    def equality(self) -> _Node:
        left = self.primary()
        if not self.at("punct", "="):
            return left
        self.take("punct")
        right = self.primary()
        if left.kind == "attrs" and right.kind in ("str", "lit"):
            # a node-set equals a string when any of its nodes does
            tests = [f"a.get({name!r}) == {right.code}" for name in left.names]
            return _Node("bool", "(" + " or ".join(tests) + ")")
        if left.kind in ("str", "lit") and right.kind in ("str", "lit"):
            return _Node("bool", f"({left.code} == {right.code})")
        raise Unsupported(f"comparison of {left.kind} with {right.kind}")

    def primary(self) -> _Node:
        token = self.peek()
        if token is None:
            raise Unsupported("unexpected end")
        kind, value = token
        if kind == "literal":
            self.index += 1
            return _Node("lit", repr(value), value=value)
        if kind == "punct" and value == "(":
            self.index += 1
            inner = self.expr()
            self.take("punct", ")")
            return inner
        if kind == "self":
            self.index += 1
            return _Node("bool", f"(tag == {self.name()!r})")
        if kind == "punct" and value == "@":
            names = []
            while True:
                self.take("punct", "@")
                names.append(self.name())
                if not (self.at("punct", "|") and self.peek(1) == ("punct", "@")):
                    break
                self.take("punct", "|")
            return _Node("attrs", names=tuple(dict.fromkeys(names)))
        if kind == "descendants":
            self.index += 1
            name = self.name()
            if self.at("punct", "[") or self.at("punct", "|"):
                raise Unsupported("descendant path with predicates or unions")
            return _Node("exists", f"(next(el.iterdescendants({name!r}), None) is not None)")
        if kind == "name" and self.peek(1) == ("punct", "("):
            return self.function(value)
        raise Unsupported(f"unsupported token {token}")

    def arguments(self) -> list[_Node]:
        self.take("punct", "(")
        arguments = [self.expr()]
        while self.at("punct", ","):
            self.take("punct")
            arguments.append(self.expr())
        self.take("punct", ")")
        return arguments

    def function(self, name: str) -> _Node:
        self.index += 1
        arguments = self.arguments()
        if name == "not" and len(arguments) == 1:
            return _Node("bool", f"(not {self.as_bool(arguments[0])})")
        if name == "contains" and len(arguments) == 2:
            return _Node("bool", f"({self.as_str(arguments[1])} in {self.as_str(arguments[0])})")
        if name == "starts-with" and len(arguments) == 2:
            return _Node("bool", f"{self.as_str(arguments[0])}.startswith({self.as_str(arguments[1])})")
        if name == "translate" and len(arguments) == 3:
            table = _xpath_translate(self.literal_value(arguments[1]), self.literal_value(arguments[2]))
            return _Node("str", f"{self.as_str(arguments[0])}.translate({self.constant(table)})")
        if name == "re:test" and len(arguments) in (2, 3):
            flags = self.literal_value(arguments[2]) if len(arguments) == 3 else ""
            try:
                # as lxml's EXSLT regexp.test: re.UNICODE, re.IGNORECASE when flags hold "i"
                pattern = re.compile(self.literal_value(arguments[1]), re.UNICODE | (re.IGNORECASE if "i" in flags else 0))
            except re.error as error:
                raise Unsupported(f"regular expression: {error}") from error
            test = self.memoized_test(pattern)
            subject = arguments[0]
            if subject.kind == "attrs" and pattern.search("") is None:
                # an absent attribute is "", which this regex cannot match: skip the call
                if len(subject.names) == 1:
                    name = subject.names[0]
                    return _Node("bool", f"({name!r} in a and {test(f'a[{name!r}]')})")
                present = " or ".join(f"{name!r} in a" for name in subject.names)
                return _Node("bool", f"(({present}) and {test(self.as_str(subject))})")
            return _Node("bool", test(self.as_str(subject)))
        raise Unsupported(f"function {name} with {len(arguments)} arguments")


def _xpath_translate(source: str, target: str) -> dict[int, int | None]:
    table: dict[int, int | None] = {}
    for index, char in enumerate(source):
        if ord(char) not in table:  # the first occurrence in the source string decides
            table[ord(char)] = ord(target[index]) if index < len(target) else None
    return table


def _leading_tags(tokens: list[tuple[str, str]]) -> tuple[str, ...] | None:
    """The names of ``.//*[self::a or self::b ...]``, so lxml can filter by tag in C."""
    if len(tokens) < 6 or tokens[1] != ("punct", "*") or tokens[2] != ("punct", "["):
        return None
    names, index = [], 3
    while index + 2 < len(tokens):
        if tokens[index][0] != "self" or tokens[index + 1][0] != "name":
            return None
        names.append(tokens[index + 1][1])
        index += 2
        if tokens[index] == ("punct", "]"):
            return tuple(names)
        if tokens[index] != ("name", "or"):
            return None
        index += 1
    return None


def _split_union(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    """The operands of a top-level ``|`` (one inside brackets, like ``@id|@class``, is not)."""
    parts: list[list[tuple[str, str]]] = [[]]
    depth = 0
    for token in tokens:
        if token[0] == "punct" and token[1] in "[(":
            depth += 1
        elif token[0] == "punct" and token[1] in "])":
            depth -= 1
        elif token == ("punct", "|") and depth == 0:
            parts.append([])
            continue
        parts[-1].append(token)
    if any(not part for part in parts):
        raise Unsupported("empty operand of |")
    return parts


_FIRST = [("punct", "["), ("number", "1"), ("punct", "]")]


def _positional(tokens: list[tuple[str, str]]) -> tuple[str, list[tuple[str, str]]]:
    """("all" | "first" | "first_per_parent", the path's tokens without the position)."""
    if tokens[0] == ("punct", "(") and tokens[-4:] == [("punct", ")")] + _FIRST:
        inner = tokens[1:-4]
        if inner[-3:] == _FIRST:
            # the first in document order is also the first of its siblings
            inner = inner[:-3]
        return "first", inner
    if tokens[-3:] == _FIRST:
        return "first_per_parent", tokens[:-3]
    return "all", tokens


def _false_without_attributes(condition: str, constants: dict, tags: tuple[str, ...]) -> bool:
    """Whether ``condition`` is false for every element that has no attributes.

    Tried on the element's possible tags: the ``tags`` the loop is restricted to, or (for ``*``)
    every tag the condition names plus one it does not. A condition that looks at anything
    but the tag and the attributes (descendants, ``el``) is not decided here.
    """
    if not tags:
        tags = tuple(re.findall(r"tag == '([^']*)'", condition)) + ("\x00not-a-tag",)
    try:
        return not any(eval(condition, dict(constants), {"a": {}, "tag": tag}) for tag in tags)
    except NameError:
        return False


class CompiledSelection:
    """A compiled ``.//…`` selection, callable like the ``lxml.etree.XPath`` it replaces.

    Besides plain paths it takes the positional forms trafilatura's BODY_XPATH uses:
    ``(path)[1]`` (the first match in document order), ``.//*[P][1]`` (``[1]`` applies per
    parent: every match that no earlier sibling matches) and unions of such paths.
    """

    def __init__(self, original, path: str | None = None) -> None:
        self.original = original
        self.path = path if path is not None else original.path
        self.source = ""
        self._parts = [self._compile_part(part) for part in _split_union(_tokens(self.path))]

    def _compile_part(self, tokens: list[tuple[str, str]]):
        from lxml import etree

        mode, tokens = _positional(tokens)
        parser = _Parser(tokens)
        tag, predicates = parser.path()
        tags = _leading_tags(tokens)
        if tags:
            predicates = predicates[1:]
            source = ", ".join(map(repr, tags))
        elif tag == "*":
            source = "_Element"
            parser.constants["_Element"] = etree.Element
        else:
            source = repr(tag)
        condition = " and ".join(predicates) or "True"
        take = {
            "all": "            append(el)\n",
            "first": "            return [el]\n",
            # lxml returns the same proxy for a node while one is alive, so identity works
            "first_per_parent": (
                "            parent = el.getparent()\n"
                "            if parent not in parents:\n"
                "                parents.add(parent)\n"
                "                append(el)\n"
            ),
        }[mode]
        if _false_without_attributes(condition, parser.constants, tags or (() if tag == "*" else (tag,))):
            # most elements carry no attribute at all: those are passed over at once
            attributes = "        items = el.items()\n        if not items:\n            continue\n        a = dict(items)\n"
        else:
            attributes = "        a = dict(el.items())\n"
        source = (
            "def select(node):\n"
            "    selected = []\n"
            "    append = selected.append\n"
            + ("    parents = set()\n" if mode == "first_per_parent" else "")
            + f"    for el in node.iterdescendants({source}):\n"
            + attributes
            + ("        tag = el.tag\n" if re.search(r"\btag\b", condition) else "")
            + f"        if {condition}:\n"
            f"{take}"
            "    return selected\n"
        )
        self.source += source + "\n"
        namespace = dict(parser.constants)
        exec(compile(source, f"<xpath {self.path.strip()[:60]}>", "exec"), namespace)
        return namespace["select"]

    def _select(self, node) -> list:
        if len(self._parts) == 1:
            return self._parts[0](node)
        results = [found for found in (select(node) for select in self._parts) if found]
        if len(results) <= 1:
            return results[0] if results else []
        # a union is one node-set in document order, each node once
        wanted = {el for found in results for el in found}
        return [el for el in node.iterdescendants() if el in wanted]

    def __call__(self, node, **variables):
        from lxml import etree

        if variables or not isinstance(node, etree._Element) or not isinstance(node.tag, str):
            return self.original(node, **variables)
        return self._select(node)

    def __repr__(self) -> str:
        return f"CompiledSelection({self.path.strip()!r})"


def compile_selection(xpath) -> CompiledSelection:
    """The compiled form of an ``lxml.etree.XPath``; raises :class:`Unsupported` outside the subset."""
    return CompiledSelection(xpath)


_lock = threading.Lock()
_originals: list[tuple[list, int, object]] = []


# trafilatura releases these patches were checked against (tests/test_compiled_xpaths.py); a
# later minor release may change the XPaths' grammar or the patched names, so it runs plain.
TESTED_TRAFILATURA = ((2, 0), (2, 3))


def install() -> int:
    """Swap trafilatura's compilable XPaths for compiled ones; returns how many. Idempotent.

    Does nothing (returns 0) when switched off (``CURATE_SPEEDUP_COMPILED_XPATHS=off`` or
    ``CURATE_SPEEDUPS=off``), or, with a warning, when the installed trafilatura is outside
    :data:`TESTED_TRAFILATURA` or lacks what is patched.
    """
    if not speedups.enabled("compiled_xpaths") or not _trafilatura_is_tested():
        return 0
    from lxml.etree import XPath

    import trafilatura.xpaths as xpaths

    with _lock:
        if _originals:
            return len(_originals)
        for value in list(vars(xpaths).values()):
            if not isinstance(value, list):
                continue
            for index, expression in enumerate(value):
                if not isinstance(expression, XPath):
                    continue
                try:
                    compiled = CompiledSelection(expression)
                except Unsupported:
                    continue
                value[index] = compiled
                _originals.append((value, index, expression))
        if not _originals:
            speedups.fall_back("compiled_xpaths", "trafilatura.xpaths holds no XPath lists this module compiles")
        if _has_parser_lookup():
            _swap_element_lookup(_c_element_lookup())
        _swap_invalid_chars(True)
        return len(_originals)


def _trafilatura_is_tested() -> bool:
    from importlib.metadata import PackageNotFoundError, version

    try:
        installed = speedups.version_tuple(version("trafilatura"))[:2]
    except PackageNotFoundError:
        installed = ()
    low, high = TESTED_TRAFILATURA
    if not installed or not low <= installed <= high:
        speedups.fall_back("compiled_xpaths", f"trafilatura {installed} is outside the tested range {low}..{high}")
        return False
    return True


def _has_parser_lookup() -> bool:
    import trafilatura.utils as utils

    if callable(getattr(getattr(utils, "HTML_PARSER", None), "set_element_class_lookup", None)):
        return True
    speedups.fall_back("compiled_xpaths", "trafilatura.utils.HTML_PARSER is missing; its element lookup is left as it is")
    return False


def _c_element_lookup():
    """The classes of lxml.html's lookup, chosen in C instead of a Python ``lookup`` per node.

    ``HtmlElementClassLookup`` calls a Python method for every element proxy lxml creates
    (about a million per 300 pages here, and more once the selections above iterate in
    Python). This gives every node the same class: ``FormElement`` & co. for their
    lower-case tag names (the HTML parser lower-cases every tag), ``HtmlElement``,
    ``HtmlComment``, ``HtmlProcessingInstruction`` and ``HtmlEntity`` otherwise.
    """
    import lxml.html as html
    from lxml import etree

    fallback = etree.ElementDefaultClassLookup(
        element=html.HtmlElement,
        comment=html.HtmlComment,
        pi=html.HtmlProcessingInstruction,
        entity=html.HtmlEntity,
    )
    lookup = etree.ElementNamespaceClassLookup(fallback)
    by_tag = lookup.get_namespace(None)
    for tag, element_class in html.HtmlElementClassLookup._default_element_classes.items():
        by_tag[tag] = element_class
    return lookup


def _swap_element_lookup(lookup) -> None:
    import trafilatura.utils as utils

    utils.HTML_PARSER.set_element_class_lookup(lookup)


# trafilatura.utils.INVALID_XML_CHARS as shipped: control characters libxml2 refuses.
_INVALID_XML_CHARS = r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"


class _InvalidCharsFirstChecked:
    """trafilatura's ``INVALID_XML_CHARS`` pattern, with ``sub`` skipped when none occurs.

    trafilatura deletes these characters from every page before parsing (``repair_faulty_html``);
    almost no page has one, yet the regex walks all of it (0.42 ms for the 143 KB of an average
    page here, ~3% of segment 0). Looking for each of the 31 characters with ``in`` (memchr-like)
    takes 0.16 ms. Same result: the pattern's own ``sub`` runs whenever one is present.
    """

    def __init__(self, pattern: re.Pattern) -> None:
        self.pattern = pattern
        self.characters = [chr(code) for code in [*range(0x20), 0xFFFE, 0xFFFF] if pattern.match(chr(code))]

    def sub(self, repl, string, count=0):
        for character in self.characters:
            if character in string:
                return self.pattern.sub(repl, string, count)
        return string

    def __getattr__(self, name: str):
        return getattr(self.pattern, name)


def _swap_invalid_chars(install: bool) -> None:
    import trafilatura.utils as utils

    current = getattr(utils, "INVALID_XML_CHARS", None)
    if isinstance(current, _InvalidCharsFirstChecked):
        if not install:
            utils.INVALID_XML_CHARS = current.pattern
    elif install:
        if isinstance(current, re.Pattern) and current.pattern == _INVALID_XML_CHARS and not current.flags & ~re.UNICODE:
            utils.INVALID_XML_CHARS = _InvalidCharsFirstChecked(current)
        else:
            speedups.fall_back("compiled_xpaths", "trafilatura.utils.INVALID_XML_CHARS is not the pattern its pre-check was made for")


def uninstall() -> None:
    """Put trafilatura's original XPaths and element lookup back."""
    import lxml.html as html

    with _lock:
        for holder, index, original in _originals:
            holder[index] = original
        _originals.clear()
        if _has_parser_lookup():
            _swap_element_lookup(html.HtmlElementClassLookup())
        _swap_invalid_chars(False)


def installed() -> bool:
    return bool(_originals)
