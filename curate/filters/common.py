"""What every heuristic rule set stage shares: run a per-document check over a batch and
mark the failures with ``"<stage name>.<rule>"`` and the value that crossed the threshold."""

from __future__ import annotations

from typing import Callable, Iterator

import numpy as np
import pyarrow as pa

from curate.schema import reject
from curate.stage import Stage


def threshold_or_none(value: float | None, name: str, low: float | None = None, high: float | None = None) -> None:
    """Raise ValueError (the recipe loader names the stage) for a threshold out of range."""
    if value is None:
        return
    if low is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")


class RuleStage(Stage):
    """A stage whose rules look at one document's text at a time."""

    # A verdict is None to keep the document, or (rule, value) to remove it.
    def text_verdict(self, text: str) -> tuple[str, float] | None:  # rule sets override
        raise NotImplementedError

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        return self.apply_verdicts(batch, self.text_verdict)

    # Every rule a text fails, in rule order, each judged as if the ones before it were off: the
    # first is the verdict ``__call__`` records. Rule sets with several rules yield them from
    # where their rules are written, so the verdict and this list cannot disagree; by default
    # it is the verdict's one rule.
    def failures(self, text: str, language: str | None = None) -> Iterator[tuple[str, float]]:
        verdict = self.text_verdict(text)
        if verdict is not None:
            yield verdict

    def every_failure(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[list[str]]]:
        """Per document, every rule (``"<stage name>.<rule>"``) it fails, not only the first that
        ``__call__`` records; and the batch as the stage leaves the documents it keeps (these
        rules edit nothing). What a per-rule ablation (trainer/rule_mixes.py) needs to know which
        documents switching one rule off would bring back."""
        self.ensure_setup()
        prefix = self.name + "."
        texts, languages = batch.column("text").to_pylist(), batch.column("language").to_pylist()
        return batch, [[prefix + rule for rule, _ in self.failures(t or "", lang)] for t, lang in zip(texts, languages)]

    def apply_verdicts(self, batch: pa.RecordBatch, verdict_of: Callable[[str], tuple[str, float] | None]) -> pa.RecordBatch:
        texts = batch.column("text").to_pylist()
        return self.mark_verdicts(batch, texts, verdict_of)

    def apply_language_verdicts(
        self, batch: pa.RecordBatch, verdict_of: Callable[[str, str | None], tuple[str, float] | None]
    ) -> pa.RecordBatch:
        """``apply_verdicts`` for rules that also look at each document's ``language``."""
        texts = batch.column("text").to_pylist()
        languages = iter(batch.column("language").to_pylist())
        return self.mark_verdicts(batch, texts, lambda text: verdict_of(text, next(languages)))

    def mark_verdicts(self, batch: pa.RecordBatch, texts: list, verdict_of: Callable[[str], tuple[str, float] | None]) -> pa.RecordBatch:
        """Judge each text in order and reject the documents that fail."""
        reasons: list[str | None] = [None] * len(texts)
        values: list[float | None] = [None] * len(texts)
        mask = np.zeros(len(texts), dtype=bool)
        prefix = self.name + "."
        for i, text in enumerate(texts):
            verdict = verdict_of(text or "")
            if verdict is not None:
                rule, value = verdict
                mask[i] = True
                reasons[i] = prefix + rule
                values[i] = value
        self.counters["documents_checked"] += len(texts)
        return reject(batch, mask, reasons, values)
