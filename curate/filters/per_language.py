"""What the Gopher and FineWeb rule stages share when they run per language (``language_settings``).

With ``language_settings`` set (``fineweb2`` for the shipped FineWeb-2 settings, or a folder of
``<pair>.yml`` files), a stage reads each document's ``language`` (from the ``langid`` stage),
splits its words with that language's tokenizer (:mod:`curate.words`) and judges it with that
language's thresholds (:mod:`curate.language_settings`) in place of its own. A language without
settings (English: FineWeb-2 has none; an unknown code; no language at all) falls back to
``language_fallback``'s settings, or to the stage's own thresholds when it is null, and is
counted as ``language_fallback:<language>``. Unset (the default), nothing here runs.
"""

from __future__ import annotations

import dataclasses
import os
from collections import Counter
from typing import Any, Callable

from curate.language_settings import SHIPPED, LanguageSettings, SettingsFolder, settings_folder
from curate.stage import Stage, StageError


def resolve_folder(folder: str, recipe_dir: str) -> str:
    """The shipped name as it is; a relative folder against the recipe's folder, like ``model_path``."""
    if folder == SHIPPED or os.path.isabs(folder) or os.path.isdir(folder):
        return folder
    return os.path.join(recipe_dir, folder)


class LanguageRules:
    """Each language's version of a stage's parameters, built once per language."""

    def __init__(self, folder: str, fallback: str | None, recipe_dir: str, overrides: Callable[[LanguageSettings], dict[str, Any]]):
        self.folder: SettingsFolder = settings_folder(resolve_folder(folder, recipe_dir))
        self.fallback = fallback
        self.overrides = overrides
        self._params: dict[str | None, tuple[Any, bool]] = {}

    def check(self) -> None:
        self.folder.check()
        if self.fallback is not None and self.folder.get(self.fallback) is None:
            raise ValueError(f"language_fallback {self.fallback!r} has no settings file in {self.folder.folder}")

    def params_for(self, language: str | None, params: Any, counters: Counter) -> Any:
        """``params`` with the thresholds of one document's language; counts a fallback."""
        found = self._params.get(language)
        if found is None:
            settings = self.folder.get(language)
            fell_back = settings is None
            if fell_back and self.fallback is not None:
                settings = self.folder.get(self.fallback)
            chosen = params if settings is None else dataclasses.replace(params, **self.overrides(settings))
            found = self._params[language] = (chosen, fell_back)
        if found[1]:
            counters[f"language_fallback:{language or 'none'}"] += 1
        return found[0]


def language_rules(stage: Stage, overrides: Callable[[LanguageSettings], dict[str, Any]]) -> LanguageRules | None:
    """The stage's per-language rules, or None when its ``language_settings`` is unset."""
    p = stage.params
    if p.language_settings is None:
        return None
    return LanguageRules(p.language_settings, p.language_fallback, stage.context.recipe_dir, overrides)


def check_language_rules(stage: Stage) -> None:
    """Raise StageError when the settings folder or the fallback language does not exist."""
    if stage.params.language_settings is None:
        return
    try:
        language_rules(stage, lambda settings: {}).check()
    except ValueError as e:
        raise StageError(f"{stage.name}: {e}") from None
