"""report.html: content computed from the run's files, safe HTML, and real rendering in Chromium."""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from curate.report import build_report, dedup_cluster_sizes, language_counts, removal_examples, write_report
from curate.schema import DOCUMENT_SCHEMA, TOKENS_SCHEMA, documents_from_pylist

from cluster_util import wikitext_paragraphs

SHORT = 400  # paragraphs below this many characters are "removed" by the run built here


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's chromium; installed with apt-get when missing (the CI machine allows it)."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    try:
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"chromium is not installed and `apt-get install -y chromium` failed ({e}); install it to run the browser test")
    found = shutil.which("chromium")
    if not found:
        pytest.skip("`apt-get install -y chromium` ran but no chromium binary is on PATH")
    return found


def render(chromium: str, page: Path) -> tuple[str, list[str]]:
    """(DOM after scripts ran, console lines) from headless Chromium."""
    proc = subprocess.run(
        [chromium, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    return proc.stdout, console


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> tuple[Path, dict]:
    """A run folder shaped like the job's output, built from real WikiText-2 paragraphs.

    Paragraphs shorter than SHORT characters are rejected as ``length.too_short``; every
    fifth one of the rest as ``toy_dedup.minhash`` (a cluster of 3 with its neighbours).
    """
    root = tmp_path_factory.mktemp("run")
    paragraphs = wikitext_paragraphs(100)[:300]
    first_short = next(i for i, p in enumerate(paragraphs) if len(p) < SHORT - 40)
    # shown as the first example snippet of length.too_short: it must come out escaped
    paragraphs[first_short] = "<script>alert('x')</script> & " + paragraphs[first_short]
    kept, rejected, clusters = [], [], []
    for i, text in enumerate(paragraphs):
        doc = {
            "id": f"d{i:04d}",
            "source": "wiki",
            "url": f"https://en.wikipedia.example/{i}",
            "text": text,
            "language": "en" if i % 10 else "fr",
        }
        if len(text) < SHORT:
            rejected.append({**doc, "rejected_by": "length.too_short", "rejected_value": float(len(text))})
        elif i % 5 == 0 and i > 0:
            rejected.append({**doc, "rejected_by": "toy_dedup.minhash", "rejected_value": 0.9, "duplicate_of": f"d{i - 1:04d}"})
            clusters.append({"id": f"d{i:04d}", "cluster_id": f"c{i}"})
        else:
            kept.append(doc)
    # cluster files list every member with its cluster's size: 3 members per minhash cluster
    cluster_rows = []
    for row in clusters:
        for member in range(3):
            cluster_rows.append({"id": f"{row['id']}-{member}", "cluster_id": row["cluster_id"], "cluster_size": 3})
    cluster_rows += [{"id": "solo", "cluster_id": "s", "cluster_size": 1}]
    for folder, docs in (("documents", kept), ("rejected", rejected)):
        (root / folder).mkdir()
        half = len(docs) // 2
        for n, part in enumerate((docs[:half], docs[half:])):
            pq.write_table(
                pa.Table.from_batches([documents_from_pylist(part)], schema=DOCUMENT_SCHEMA), root / folder / f"part-{n:05d}.parquet"
            )
    (root / "tokens").mkdir()
    token_rows = [
        {
            "id": d["id"],
            "source": "wiki",
            "n_tokens": len(d["text"].split()) + 1,
            "tokens": list(range(len(d["text"].split()) + 1)),
            "repeat": 0,
        }
        for d in kept
    ]
    pq.write_table(pa.Table.from_pylist(token_rows, schema=TOKENS_SCHEMA), root / "tokens" / "shard-00000.parquet")
    (root / "toy_dedup" / "clusters").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(cluster_rows), root / "toy_dedup" / "clusters" / "part-0.parquet")

    n_short = sum(1 for d in rejected if d["rejected_by"] == "length.too_short")
    n_dup = len(rejected) - n_short
    chars = lambda docs: sum(len(d["text"]) for d in docs)  # noqa: E731
    after_len = kept + [d for d in rejected if d["rejected_by"] != "length.too_short"]
    manifest = {
        "name": "report-test",
        "recipe_hash": "ab" * 32,
        "summary": {
            "documents_in": len(paragraphs),
            "documents_out": len(kept),
            "documents_rejected": len(rejected),
            "tokens": sum(r["n_tokens"] for r in token_rows),
            "token_shards": 1,
            "seconds": 12.5,
        },
        "funnel": [
            {
                "stage": "length",
                "kind": "toy",
                "docs_in": len(paragraphs),
                "docs_out": len(after_len),
                "chars_in": chars(kept) + chars(rejected),
                "chars_out": chars(after_len),
                "rejected": {"length.too_short": n_short},
                "rejected_chars": {},
                "counters": {},
                "seconds": 0.4,
            },
            {
                "stage": "toy_dedup",
                "kind": "dedup",
                "docs_in": len(after_len),
                "docs_out": len(kept),
                "chars_in": chars(after_len),
                "chars_out": chars(kept),
                "rejected": {"toy_dedup.minhash": n_dup},
                "rejected_chars": {},
                "counters": {"clusters": len(clusters)},
                "seconds": 2.0,
            },
            {
                "stage": "pii",
                "kind": "pii",
                "docs_in": len(kept),
                "docs_out": len(kept),
                "chars_in": chars(kept),
                "chars_out": chars(kept),
                "rejected": {},
                "rejected_chars": {},
                "counters": {"replaced:EMAIL_ADDRESS": 4, "replaced:PHONE_NUMBER": 2, "documents_scrubbed": 5},
                "seconds": 1.0,
            },
        ],
        "sources": {"wiki": {"files": 2, "documents": len(kept), "rejected": len(rejected), "tokens": 1}},
        "tokens": {"total": sum(r["n_tokens"] for r in token_rows)},
        "timings": {"segment0": 5.0, "write_documents": 1.0},
        "inputs": {"problems": ["x.jsonl: line 3: bad <json>"]},
    }
    return root, {"kept": kept, "rejected": rejected, "manifest": manifest, "clusters": len(clusters)}


def test_language_counts_cover_every_document(run_dir):
    root, built = run_dir
    counts = language_counts(str(root))
    assert counts["kept"] == Counter(d["language"] for d in built["kept"])
    assert counts["rejected"] == Counter(d["language"] for d in built["rejected"])


def test_examples_are_the_first_three_per_reason_in_shard_order(run_dir):
    root, built = run_dir
    examples = removal_examples(str(root), ["length.too_short", "toy_dedup.minhash", "never.seen"])
    for reason in ("length.too_short", "toy_dedup.minhash"):
        first = [d for d in built["rejected"] if d["rejected_by"] == reason][:3]
        assert [e["url"] for e in examples[reason]] == [d["url"] for d in first]
        assert [e["snippet"].rstrip("…") for e in examples[reason]] == [d["text"][:240] for d in first]
    assert examples["never.seen"] == []


def test_dedup_cluster_sizes_count_clusters_not_rows(run_dir):
    root, built = run_dir
    sizes = dedup_cluster_sizes(str(root), built["manifest"])
    assert sizes == Counter({3: built["clusters"], 1: 1})


def test_report_sections_and_escaping(run_dir):
    root, built = run_dir
    page = build_report(str(root), built["manifest"])
    for chart in (
        "funnel-docs",
        "funnel-chars",
        "funnel-tokens",
        "languages",
        "hist-chars",
        "hist-tokens",
        "dedup-clusters",
        "pii",
        "throughput",
    ):
        assert f'id="{chart}"' in page, chart
    assert "&lt;script&gt;alert(" in page
    assert "<script>alert" not in page
    assert "bad &lt;json&gt;" in page
    assert "EMAIL_ADDRESS: 4 replaced" in page and "PHONE_NUMBER: 2 replaced" in page
    n_short = built["manifest"]["funnel"][0]["rejected"]["length.too_short"]
    assert f"<b>length.too_short</b> — {n_short:,} documents" in page
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "url(" not in page


def test_write_report_never_fails_the_run(tmp_path, caplog):
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "part-00000.parquet").write_bytes(b"PAR1 this is not parquet")
    with caplog.at_level(logging.ERROR, logger="curate.report"):
        assert write_report(str(tmp_path), {"summary": {}, "funnel": []}) == ""
    assert "could not write" in caplog.text
    assert not (tmp_path / "report.html").exists()


def test_report_renders_in_chromium_without_console_errors(run_dir, chromium):
    root, built = run_dir
    path = write_report(str(root), built["manifest"])
    assert path == str(root / "report.html")
    dom, console = render(chromium, Path(path))
    assert console == []
    n_charts = len(re.findall(r'<svg class="chart"', Path(path).read_text()))
    assert n_charts == 9
    assert f'data-charts-rendered="{n_charts}/{n_charts}"' in dom


def test_a_run_split_by_language_is_counted_from_its_folders(run_dir, tmp_path):
    root, built = run_dir
    split = tmp_path / "split"
    table = pa.Table.from_batches([documents_from_pylist(built["kept"])], schema=DOCUMENT_SCHEMA)
    for language in ("en", "fr"):
        folder = split / "documents" / f"language={language}"
        folder.mkdir(parents=True)
        part = table.filter(pc.equal(table.column("language"), language)).drop(["language"])
        pq.write_table(part, folder / "part-00000.parquet")
    counts = language_counts(str(split))
    assert counts["kept"] == language_counts(str(root))["kept"] == Counter(d["language"] for d in built["kept"])


def test_the_report_shows_what_was_written_per_language(run_dir):
    root, built = run_dir
    languages = {}
    for doc in built["kept"]:
        entry = languages.setdefault(doc["language"], {"documents": 0, "characters": 0, "tokens": 0})
        entry["documents"] += 1
        entry["characters"] += len(doc["text"])
        entry["tokens"] += len(doc["text"].split()) + 1
    page = build_report(str(root), {**built["manifest"], "languages": languages})
    table = page.split("<h3>Written per language</h3>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr><td>(\w+)</td>((?:<td[^>]*>[^<]*</td>)+)</tr>", table)
    cells = {lang: re.findall(r">([^<]*)<", body)[::2] for lang, body in rows}
    total = sum(v["documents"] for v in languages.values())
    for language, v in languages.items():
        assert cells[language][0] == f"{v['documents']:,}" and cells[language][2] == f"{v['characters']:,}"
        assert abs(float(cells[language][1]) - 100 * v["documents"] / total) < 0.01
    assert set(cells) == {"en", "fr"}
