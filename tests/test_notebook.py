"""notebooks/compare_mixes.ipynb runs end to end on a tiny ablation report (nbclient)."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pandas as pd
from nbclient import NotebookClient

from trainer.ablate import AblationOptions, run_ablation
from trainer.data import shards_from_texts

ROOT = Path(__file__).resolve().parent.parent


def test_compare_mixes_notebook_executes(tmp_path, data_dir, wikitext_bpe):
    # two "runs" built directly from real text (no Spark): short vs long paragraphs
    paragraphs = [p.strip() for p in (data_dir / "text" / "wikitext-2-test.txt").read_text().splitlines() if len(p.strip()) > 20]
    short = [p for p in paragraphs if len(p) < 600]
    long = [p for p in paragraphs if len(p) >= 600]
    shards_from_texts(short, str(wikitext_bpe), str(tmp_path / "short"), source="wiki")
    shards_from_texts(long, str(wikitext_bpe), str(tmp_path / "long"), source="wiki")

    options = AblationOptions(model="tiny", tokens=4096, seeds=2, seq_len=32, micro_batch=8, eval_points=4, eval_sequences=16, threads=1,
                              eval_sets={"heldout": str(data_dir / "text" / "wikitext-2-test.txt")})
    report = tmp_path / "report"
    run_ablation([str(tmp_path / "short"), str(tmp_path / "long")], str(report), options)
    results = pd.read_parquet(report / "results.parquet")
    assert set(results["recipe"]) == {"short", "long"} and set(results["seed"]) == {0, 1}

    notebook = nbformat.read(ROOT / "notebooks" / "compare_mixes.ipynb", as_version=4)
    os.environ["CURATE_REPORT"] = str(report)
    try:
        NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        del os.environ["CURATE_REPORT"]
    outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs)
    assert "2 recipes, 2 seeds, held-out sets: ['heldout']" in outputs
    assert "lowest eval loss:" in outputs
    assert (report / "compare_mixes.png").stat().st_size > 10_000
