"""One configuration layer for recipes, trainer configs and ablations.

Three things, used by ``curate/recipe.py``, ``trainer/train.py`` and ``trainer/ablate.py``:

* :func:`from_dict` turns a mapping (from YAML) into a dataclass, checking every value
  against the field's type hint; the dataclass holds the defaults, written once.
* :class:`ConfigError` names the file and the key path of a mistake:
  ``demo.yaml: stages[2].min_score: expected a number, got 'high'``.
* :func:`deep_merge` applies overrides (``--set``-style flags, ablation arms) key by key, so
  overriding ``tokenizer.path`` keeps ``tokenizer.eos_token``.

Supported type hints: ``str``, ``bool``, ``int``, ``float`` (an integer is accepted), ``Literal``,
``list[X]`` (a single string stands for a one-item ``list[str]``), ``dict[K, V]``,
``X | None``, unions, nested dataclasses and ``Any``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Literal


class ConfigError(ValueError):
    """A configuration mistake, located as ``<file>: <key path>: <what was expected>``."""

    def __init__(self, file: str, path: str, message: str):
        self.file, self.path, self.message = file, path, message
        where = f"{file}: {path}: " if path else f"{file}: "
        super().__init__(where + message)


def deep_merge(base: dict, override: dict) -> dict:
    """A new mapping: ``base`` with ``override`` applied; mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if tp is str:
        return "a string"
    if tp is bool:
        return "true or false"
    if tp is int:
        return "an integer"
    if tp is float:
        return "a number"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, typing.List):
        return f"a list of {describe(typing.get_args(tp)[0])[2:] if describe(typing.get_args(tp)[0]).startswith('a ') else describe(typing.get_args(tp)[0])}"
    if origin in (dict, typing.Dict):
        return "a mapping"
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(tp) if a is not type(None))
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return str(tp)


def show(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


# scalar type -> (what the error says is expected, whether a YAML value fits)
_SCALARS: dict[type, tuple[str, Any]] = {
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    float: ("a number", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}


def convert(value: Any, tp: Any, file: str, path: str) -> Any:
    """Convert a YAML value to ``tp``; raise ConfigError naming ``path`` on mismatch."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, tp, file, path)
    if tp is Any:
        return value
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(file, path, f"expected {describe(tp)}, got {show(value)}")
        return value
    if tp in _SCALARS:
        expected, fits = _SCALARS[tp]
        if not fits(value):
            raise ConfigError(file, path, f"expected {expected}, got {show(value)}")
        return float(value) if tp is float else value
    if origin in (list, typing.List):
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, str) and item_tp is str:
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(file, path, f"expected a list, got {show(value)}")
        return [convert(v, item_tp, file, f"{path}[{i}]") for i, v in enumerate(value)]
    if origin in (dict, typing.Dict):
        key_tp, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            raise ConfigError(file, path, f"expected a mapping, got {show(value)}")
        return {convert(k, key_tp, file, f"{path}.{k}"): convert(v, val_tp, file, f"{path}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, path, file)
    raise TypeError(f"unsupported configuration type {tp!r} at {path}")


def _convert_union(value: Any, tp: Any, file: str, path: str) -> Any:
    args = typing.get_args(tp)
    if value is None and type(None) in args:
        return None
    real = [a for a in args if a is not type(None)]
    if len(real) == 1:  # Optional[X]: the inner error names the exact key
        return convert(value, real[0], file, path)
    for arg in real:
        try:
            return convert(value, arg, file, path)
        except ConfigError:
            continue
    raise ConfigError(file, path, f"expected {describe(tp)}, got {show(value)}")


def from_dict(cls: type, raw: Any, where: str = "", file: str = "<config>", skip: tuple[str, ...] = ()) -> Any:
    """``raw`` (a mapping from YAML or JSON) as dataclass ``cls``, converted field by field.

    Defaults are the dataclass's own (written once, there). An unknown key, a missing required
    key or a value of the wrong type raises :class:`ConfigError` naming ``file`` and the key path
    under ``where``; a ``validate()`` method on the result runs last and its ``ValueError``
    is reported the same way. Fields named in ``skip`` (and a field ``file``) are left to the caller.
    """
    value, path = raw, where
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ConfigError(file, path, f"expected a mapping, got {show(value)}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    allowed = [n for n in fields if n != "file"]
    for key in value:
        if key not in allowed:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(file, where, f"unknown key; expected one of: {', '.join(allowed)}")
    kwargs = {}
    for name, f in fields.items():
        if name in skip or name == "file":
            continue
        where = f"{path}.{name}" if path else name
        if name in value:
            kwargs[name] = convert(value[name], hints[name], file, where)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(file, where, f"missing required key; expected {describe(hints[name])}")
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ValueError as e:
            raise ConfigError(file, path or "(top level)", str(e)) from None
    return obj
