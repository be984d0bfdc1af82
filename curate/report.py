"""``report.html``: one self-contained page that explains a finished run.

The page is written after ``manifest.json`` and opens from disk with no network: every chart
is inline SVG drawn here, and the only script is a small inline one that adds hover values
and marks the page once the charts have laid out (the browser test reads that mark).

Contents: the document funnel per stage and rule (documents, characters and tokens), input
languages and what was written per language (documents, characters, tokens), document length histograms (characters, tokens), the top removal reasons with
three example snippets each, the dedup cluster size distribution, PII replacements, and
throughput per stage.

Everything that is not in the manifest is read from the run's Parquet files one column and
one batch at a time, so memory stays bounded however large the run is; example snippets stop
being collected as soon as every reason shown has its three.
"""

from __future__ import annotations

import glob
import html
import json
import logging
import math
import os
from collections import Counter
from typing import Iterable, Iterator, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate.shards import NO_LANGUAGE, list_shards, partition_value

log = logging.getLogger(__name__)

TOP_REASONS = 12
EXAMPLES_PER_REASON = 3
SNIPPET_CHARS = 240
TOP_LANGUAGES = 15
READ_BATCH_ROWS = 2048

PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]
KEPT_COLOR = "#4e79a7"


def write_report(run_dir: str, manifest: dict) -> str:
    """Write ``run_dir/report.html``; returns its path, or "" when it could not be written.

    A report is a convenience: a failure here is logged and never fails the run.
    """
    path = os.path.join(run_dir, "report.html")
    try:
        page = build_report(run_dir, manifest)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, path)
        return path
    except Exception:  # noqa: BLE001 - the run's data is already safely written
        log.exception("curate: could not write %s", path)
        return ""


# --- reading the run, bounded ------------------------------------------------------------------


def _parquet_files(run_dir: str, folder: str) -> list[str]:
    return list_shards(os.path.join(run_dir, folder))  # a run split by language: its language=*/ folders too


def _iter_column_batches(files: Iterable[str], columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    for path in files:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
        wanted = [c for c in columns if c in names]
        if len(wanted) != len(columns) or pf.metadata.num_rows == 0:
            continue
        yield from pf.iter_batches(batch_size=READ_BATCH_ROWS, columns=wanted)


def language_counts(run_dir: str) -> dict[str, Counter]:
    """{"kept": Counter(language), "rejected": Counter(language)} over every document (``und``: none)."""
    out = {}
    for folder in ("documents", "rejected"):
        counts: Counter = Counter()
        for path in _parquet_files(run_dir, folder):
            # a run split by language: the folder names the language of its files, which lack the column
            language = partition_value(os.path.relpath(path, run_dir), "language")
            if language is not None:
                parquet = pq.ParquetFile(path)
                if "language" not in parquet.schema_arrow.names:
                    counts[language] += parquet.metadata.num_rows
                    continue
            for batch in _iter_column_batches([path], ["language"]):
                for row in pc.value_counts(batch.column(0).fill_null(NO_LANGUAGE)).to_pylist():
                    counts[row["values"]] += row["counts"]
        out[folder if folder == "rejected" else "kept"] = counts
    return out


def char_lengths(run_dir: str) -> list[int]:
    """Text length of every kept document (one int per document; text is read batch by batch)."""
    lengths: list[int] = []
    for batch in _iter_column_batches(_parquet_files(run_dir, "documents"), ["text"]):
        lengths.extend(pc.utf8_length(batch.column(0).fill_null("")).to_pylist())
    return lengths


def token_lengths(run_dir: str) -> list[int]:
    lengths: list[int] = []
    for batch in _iter_column_batches(_parquet_files(run_dir, "tokens"), ["n_tokens"]):
        lengths.extend(batch.column(0).to_pylist())
    return lengths


def removal_examples(run_dir: str, reasons: Sequence[str], per_reason: int = EXAMPLES_PER_REASON) -> dict[str, list[dict]]:
    """The first ``per_reason`` rejected documents (in shard order) for each reason."""
    wanted = set(reasons)
    out: dict[str, list[dict]] = {r: [] for r in reasons}
    if not wanted:
        return out
    for batch in _iter_column_batches(_parquet_files(run_dir, "rejected"), ["rejected_by", "rejected_value", "url", "text"]):
        by = batch.column(0).to_pylist()
        for i, reason in enumerate(by):
            if reason in wanted and len(out[reason]) < per_reason:
                text = batch.column(3)[i].as_py() or ""
                out[reason].append(
                    {
                        "url": batch.column(2)[i].as_py(),
                        "value": batch.column(1)[i].as_py(),
                        "snippet": text[:SNIPPET_CHARS] + ("…" if len(text) > SNIPPET_CHARS else ""),
                    }
                )
                if len(out[reason]) == per_reason:
                    wanted.discard(reason)
        if not wanted:
            break
    return out


def dedup_cluster_sizes(run_dir: str, manifest: dict) -> Counter:
    """{cluster size: number of clusters} from ``RUN/<dedup stage>/clusters/*.parquet``."""
    names = [e["stage"] for e in manifest.get("funnel", []) if e.get("kind") == "dedup"] or ["dedup"]
    rows_per_size: Counter = Counter()
    clusters_per_size: Counter = Counter()
    for name in dict.fromkeys(names + ["dedup"]):
        files = sorted(glob.glob(os.path.join(run_dir, name, "clusters", "**", "*.parquet"), recursive=True))
        for batch in _iter_column_batches(files, ["cluster_size"]):
            for row in pc.value_counts(batch.column(0)).to_pylist():
                rows_per_size[int(row["values"])] += row["counts"]
        if rows_per_size:
            break
    for size, rows in rows_per_size.items():
        # every member of a cluster carries its size, so rows / size = clusters of that size
        clusters_per_size[size] = rows // max(size, 1)
    return clusters_per_size


# --- SVG charts ----------------------------------------------------------------------------------


def _fmt(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{int(value):,}"


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def hbar_chart(
    chart_id: str, title: str, rows: Sequence[tuple[str, Sequence[tuple[float, str, str]]]], unit: str = "", label_width: int = 210
) -> str:
    """Horizontal (stacked) bars: rows of (label, [(value, colour, hover text), ...])."""
    bar_h, gap, width = 20, 6, 820
    plot_w = width - label_width - 110
    total_max = max((sum(v for v, _, _ in segs) for _, segs in rows), default=0) or 1
    height = len(rows) * (bar_h + gap) + 10
    parts = [
        f'<svg class="chart" id="{_esc(chart_id)}" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    for i, (label, segments) in enumerate(rows):
        y = 5 + i * (bar_h + gap)
        parts.append(f'<text x="{label_width - 8}" y="{y + bar_h * 0.72:.1f}" text-anchor="end" class="lbl">{_esc(label)}</text>')
        x = float(label_width)
        for value, colour, hover in segments:
            w = plot_w * value / total_max
            if w > 0:
                parts.append(
                    f'<rect x="{x:.2f}" y="{y}" width="{max(w, 0.5):.2f}" height="{bar_h}" fill="{colour}" data-value="{_esc(value)}"><title>{_esc(hover)}</title></rect>'
                )
            x += w
        total = sum(v for v, _, _ in segments)
        parts.append(f'<text x="{x + 6:.2f}" y="{y + bar_h * 0.72:.1f}" class="val">{_esc(_fmt(total))}{_esc(unit)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def histogram_chart(chart_id: str, title: str, values: Sequence[float], unit: str, bins: int = 24) -> str:
    """Histogram on log-spaced bins (document lengths span orders of magnitude)."""
    width, height, left, bottom = 820, 240, 60, 40
    plot_w, plot_h = width - left - 20, height - bottom - 20
    positive = [v for v in values if v > 0]
    parts = [
        f'<svg class="chart" id="{_esc(chart_id)}" role="img" aria-label="{_esc(title)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    if not positive:
        parts.append(f'<text x="{left}" y="40" class="lbl">no documents</text></svg>')
        return "".join(parts)
    lo, hi = math.log10(min(positive)), math.log10(max(positive))
    if hi - lo < 1e-9:
        hi = lo + 1
    edges = [10 ** (lo + (hi - lo) * k / bins) for k in range(bins + 1)]
    counts = [0] * bins
    for v in positive:
        k = min(int((math.log10(v) - lo) / (hi - lo) * bins), bins - 1)
        counts[k] += 1
    top = max(counts) or 1
    bw = plot_w / bins
    for k, c in enumerate(counts):
        h = plot_h * c / top
        parts.append(
            f'<rect x="{left + k * bw:.2f}" y="{20 + plot_h - h:.2f}" width="{bw - 1:.2f}" height="{h:.2f}" fill="{KEPT_COLOR}" data-value="{c}">'
            f"<title>{_fmt(edges[k])}–{_fmt(edges[k + 1])} {_esc(unit)}: {c:,} documents</title></rect>"
        )
    for k in range(0, bins + 1, 4):
        x = left + k * bw
        parts.append(f'<text x="{x:.1f}" y="{height - 20}" text-anchor="middle" class="axis">{_esc(_fmt(round(edges[k])))}</text>')
    parts.append(f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle" class="axis">{_esc(unit)} (log scale)</text>')
    parts.append(f'<text x="{left - 6}" y="28" text-anchor="end" class="axis">{top:,}</text>')
    parts.append(f'<line x1="{left}" y1="{20 + plot_h}" x2="{left + plot_w}" y2="{20 + plot_h}" stroke="#888"/>')
    parts.append("</svg>")
    return "".join(parts)


# --- the page ------------------------------------------------------------------------------------


def _table(header: Sequence[str], rows: Iterable[Sequence[object]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = []
    for row in rows:
        cells = []
        for i, cell in enumerate(row):
            cls = ' class="num"' if i >= numeric_from and isinstance(cell, (int, float)) else ""
            shown = _fmt(cell) if isinstance(cell, (int, float)) else _esc(cell)
            cells.append(f"<td{cls}>{shown}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _funnel_section(manifest: dict) -> str:
    summary = manifest.get("summary", {})
    funnel = manifest.get("funnel", [])
    tokens_total = int(manifest.get("tokens", {}).get("total", summary.get("tokens", 0)) or 0)
    final_chars = funnel[-1]["chars_out"] if funnel else 0
    tokens_per_char = tokens_total / final_chars if final_chars else 0.0
    docs_in = int(summary.get("documents_in", funnel[0]["docs_in"] if funnel else 0))
    doc_rows, char_rows, table_rows = _funnel_rows(funnel)
    doc_rows = [("input", [(docs_in, "#999", f"{docs_in:,} documents read")])] + doc_rows
    doc_rows.append(("output", [(int(summary.get("documents_out", 0)), "#59a14f", "documents written")]))

    parts = [
        "<h2>Funnel</h2>",
        "<p>Documents through each stage (blue: kept; other colours: removed, one per rule; hover a bar for the rule).</p>",
        hbar_chart("funnel-docs", "documents per stage", doc_rows),
    ]
    if char_rows:
        parts += ["<h3>Characters</h3>", hbar_chart("funnel-chars", "characters per stage", char_rows)]
    parts += [
        "<h3>Tokens</h3>",
        "<p>Only the final shards are tokenized; tokens after earlier stages are estimated from their characters at the run's "
        f"measured {tokens_per_char:.3f} tokens per character.</p>"
        if tokens_per_char
        else "",
        hbar_chart("funnel-tokens", "tokens", _token_rows(funnel, tokens_per_char, tokens_total)),
    ]
    if table_rows:
        parts += [
            "<h3>Removed per stage and rule</h3>",
            _table(["stage / rule", "documents", "characters", "% of stage input"], table_rows),
        ]
    return "".join(parts)


def _funnel_rows(funnel: list[dict]) -> tuple[list, list, list]:
    """Per stage: its documents bar (kept, then removed per rule), its characters bar, and the
    removal table's rows (the stage, then one per rule)."""
    doc_rows: list[tuple[str, list]] = []
    char_rows: list[tuple[str, list]] = []
    table_rows = []
    for entry in funnel:
        kept = entry["docs_out"]

        def share(n: int, docs_in: int = entry["docs_in"]) -> float:
            return round(n / docs_in * 100, 2) if docs_in else 0.0

        table_rows.append(
            (entry["stage"], entry["docs_in"] - kept, max(entry["chars_in"] - entry["chars_out"], 0), share(entry["docs_in"] - kept))
        )
        segments = [(kept, KEPT_COLOR, f"{entry['stage']}: {kept:,} kept")]
        for j, (reason, n) in enumerate(sorted(entry.get("rejected", {}).items(), key=lambda kv: -kv[1])):
            segments.append((n, PALETTE[1 + j % (len(PALETTE) - 1)], f"{reason}: {n:,} removed"))
            table_rows.append((f"↳ {reason}", n, entry.get("rejected_chars", {}).get(reason, 0), share(n)))
        doc_rows.append((entry["stage"], segments))
        if entry["chars_in"] or entry["chars_out"]:
            removed = max(entry["chars_in"] - entry["chars_out"], 0)
            char_rows.append(
                (
                    entry["stage"],
                    [
                        (entry["chars_out"], KEPT_COLOR, f"{entry['chars_out']:,} characters kept"),
                        (removed, "#e15759", "characters removed"),
                    ],
                )
            )
    return doc_rows, char_rows, table_rows


def _token_rows(funnel: list[dict], tokens_per_char: float, tokens_total: int) -> list:
    """Tokens after each stage, estimated from its characters, then the tokens really written."""
    token_rows = []
    if tokens_per_char:
        for entry in funnel:
            if entry["chars_out"]:
                est = round(entry["chars_out"] * tokens_per_char)
                token_rows.append(
                    (entry["stage"], [(est, "#76b7b2", f"≈{est:,} tokens after {entry['stage']} (estimated from characters)")])
                )
    token_rows.append(("tokens written", [(tokens_total, "#59a14f", f"{tokens_total:,} tokens in the shards")]))
    return token_rows


def _languages_section(langs: dict[str, Counter], manifest: dict) -> str:
    kept, rejected = langs["kept"], langs["rejected"]
    total = kept + rejected
    if not total:
        return ""
    rows = []
    for lang, _ in total.most_common(TOP_LANGUAGES):
        rows.append(
            (
                lang,
                [
                    (kept[lang], KEPT_COLOR, f"{lang}: {kept[lang]:,} kept"),
                    (rejected[lang], "#e15759", f"{lang}: {rejected[lang]:,} removed"),
                ],
            )
        )
    return (
        "<h2>Languages</h2><p>Language of every document (blue: kept, red: removed).</p>"
        + hbar_chart("languages", "languages", rows)
        + _kept_languages_table(manifest.get("languages", {}))
    )


def _kept_languages_table(languages: dict[str, dict]) -> str:
    """What the run wrote per language (the manifest's ``languages``), most documents first."""
    if not languages:
        return ""
    documents = sum(v["documents"] for v in languages.values())
    tokens = sum(v["tokens"] for v in languages.values())
    rows = [
        (
            language,
            v["documents"],
            round(100 * v["documents"] / documents, 2) if documents else 0.0,
            v["characters"],
            v["tokens"],
            round(100 * v["tokens"] / tokens, 2) if tokens else 0.0,
        )
        for language, v in list(languages.items())[:TOP_LANGUAGES]
    ]
    more = len(languages) - TOP_LANGUAGES
    note = f'<p class="muted">{more:,} more languages in manifest.json (<code>languages</code>).</p>' if more > 0 else ""
    header = ["language", "documents", "% documents", "characters", "tokens", "% tokens"]
    return f"<h3>Written per language</h3>{_table(header, rows)}{note}"


def _lengths_section(chars: list[int], tokens: list[int]) -> str:
    parts = ["<h2>Document lengths</h2>"]
    if chars:
        s = sorted(chars)
        parts.append(f"<p>Characters per kept document: median {s[len(s) // 2]:,}, max {s[-1]:,}.</p>")
        parts.append(histogram_chart("hist-chars", "characters per document", chars, "characters"))
    if tokens:
        s = sorted(tokens)
        parts.append(f"<p>Tokens per document (end-of-document token included): median {s[len(s) // 2]:,}, max {s[-1]:,}.</p>")
        parts.append(histogram_chart("hist-tokens", "tokens per document", tokens, "tokens"))
    return "".join(parts) if len(parts) > 1 else ""


def _reasons_section(manifest: dict, run_dir: str) -> str:
    totals: Counter = Counter()
    for entry in manifest.get("funnel", []):
        totals.update(entry.get("rejected", {}))
    if not totals:
        return "<h2>Removal reasons</h2><p>No document was removed.</p>"
    top = [r for r, _ in totals.most_common(TOP_REASONS)]
    examples = removal_examples(run_dir, top)
    parts = ["<h2>Top removal reasons</h2>"]
    for reason in top:
        parts.append(f'<details class="reason"><summary><b>{_esc(reason)}</b> — {totals[reason]:,} documents</summary><ol>')
        for ex in examples.get(reason, []):
            value = "" if ex["value"] is None else f' <span class="muted">(value {_esc(_fmt(ex["value"]))})</span>'
            url = f'<div class="muted">{_esc(ex["url"])}</div>' if ex["url"] else ""
            parts.append(f"<li>{url}<blockquote>{_esc(ex['snippet']) or '<i>(empty text)</i>'}</blockquote>{value}</li>")
        parts.append("</ol></details>")
    return "".join(parts)


def _dedup_section(sizes: Counter, manifest: dict) -> str:
    entries = [e for e in manifest.get("funnel", []) if e.get("kind") == "dedup"]
    if not sizes and not entries:
        return ""
    parts = ["<h2>Deduplication</h2>"]
    for e in entries:
        counters = {k: v for k, v in e.get("counters", {}).items() if isinstance(v, (int, float))}
        if counters:
            parts.append(_table(["counter", "value"], sorted(counters.items())))
    if sizes:
        rows = [
            (f"size {size}", [(n, PALETTE[(size - 1) % len(PALETTE)] if size > 1 else "#999", f"{n:,} clusters of {size} documents")])
            for size, n in sorted(sizes.items())[:30]
        ]
        parts.append("<p>Clusters of near-duplicate documents by size (one document of each is kept).</p>")
        parts.append(hbar_chart("dedup-clusters", "dedup cluster sizes", rows, " clusters"))
    return "".join(parts)


def _pii_section(manifest: dict) -> str:
    counts: Counter = Counter()
    for e in manifest.get("funnel", []):
        if e.get("kind") == "pii":
            for k, v in e.get("counters", {}).items():
                if k.startswith("replaced:"):
                    counts[k.split(":", 1)[1]] += v
    if not counts:
        return ""
    rows = [(entity, [(n, PALETTE[i % len(PALETTE)], f"{entity}: {n:,} replaced")]) for i, (entity, n) in enumerate(counts.most_common())]
    return "<h2>PII replaced</h2>" + hbar_chart("pii", "PII replacements", rows)


def _throughput_section(manifest: dict) -> str:
    funnel = manifest.get("funnel", [])
    rows, table = [], []
    for i, e in enumerate(funnel):
        seconds = float(e.get("seconds", 0.0))
        rows.append((e["stage"], [(round(seconds, 3), PALETTE[i % len(PALETTE)], f"{e['stage']}: {seconds:,.2f} task-seconds")]))
        rate = e["docs_in"] / seconds if seconds > 0 else 0.0
        table.append(
            (e["stage"], e["docs_in"], round(seconds, 2), round(rate, 1), round(e["chars_in"] / seconds / 1e6, 2) if seconds > 0 else 0.0)
        )
    parts = ["<h2>Throughput</h2>"]
    if rows:
        parts.append("<p>Time spent in each stage, summed over all tasks (core-seconds), and documents per core-second.</p>")
        parts.append(hbar_chart("throughput", "seconds per stage", rows, " s"))
        parts.append(_table(["stage", "documents in", "core-seconds", "documents / core-s", "M chars / core-s"], table))
    timings = manifest.get("timings", {})
    if timings:
        parts.append("<h3>Wall-clock phases of the job</h3>" + _table(["phase", "seconds"], sorted(timings.items(), key=lambda kv: -kv[1])))
    return "".join(parts)


def _summary_section(manifest: dict) -> str:
    s = manifest.get("summary", {})
    spark = manifest.get("spark", {})
    items = [
        ("documents in", s.get("documents_in", 0)),
        ("documents out", s.get("documents_out", 0)),
        ("documents removed", s.get("documents_rejected", 0)),
        ("tokens", s.get("tokens", 0)),
        ("token shards", s.get("token_shards", 0)),
        ("wall seconds", s.get("seconds", 0.0)),
    ]
    cards = "".join(f'<div class="card"><div class="big">{_fmt(v)}</div><div class="muted">{_esc(k)}</div></div>' for k, v in items)
    meta = f'<p class="muted">recipe hash {_esc(str(manifest.get("recipe_hash", ""))[:12])} · created {_esc(manifest.get("created", ""))} · Spark {_esc(spark.get("version", ""))} on {_esc(spark.get("master", ""))}</p>'
    problems = manifest.get("inputs", {}).get("problems", [])
    prob = ""
    if problems:
        prob = (
            f"<details><summary>{len(problems):,} input problems (first 20)</summary><ul>"
            + "".join(f"<li><code>{_esc(p)}</code></li>" for p in problems[:20])
            + "</ul></details>"
        )
    sources = manifest.get("sources", {})
    src = (
        _table(
            ["source", "files", "documents", "removed", "tokens"],
            [(k, v.get("files", 0), v.get("documents", 0), v.get("rejected", 0), v.get("tokens", 0)) for k, v in sources.items()],
        )
        if sources
        else ""
    )
    return f'<div class="cards">{cards}</div>{meta}{src}{prob}'


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:880px;color:#222}
h1{margin-bottom:4px} h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
.cards{display:flex;flex-wrap:wrap;gap:10px}.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:110px}
.big{font-size:20px;font-weight:600}.muted{color:#777;font-size:12px}
table{border-collapse:collapse;margin:8px 0}td,th{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
svg.chart{display:block;margin:6px 0;max-width:100%;height:auto}
svg .lbl{font-size:12px;fill:#333}svg .val{font-size:11px;fill:#555}svg .axis{font-size:10px;fill:#666}
svg rect:hover{opacity:.75} blockquote{margin:4px 0 8px 0;padding:4px 10px;border-left:3px solid #ccc;white-space:pre-wrap;font-size:12px}
details.reason{margin:6px 0}#hover{position:fixed;pointer-events:none;background:#222;color:#fff;padding:3px 7px;border-radius:4px;font-size:12px;display:none}
"""

# Hover values come from each bar's <title>; once every chart has a laid-out size the page is
# marked with data-charts-rendered (the browser test checks it).
SCRIPT = """
(function(){
  var tip=document.getElementById('hover');
  document.querySelectorAll('svg.chart rect').forEach(function(r){
    var t=r.querySelector('title'); if(!t) return;
    r.addEventListener('mousemove',function(e){tip.textContent=t.textContent;tip.style.display='block';tip.style.left=(e.clientX+12)+'px';tip.style.top=(e.clientY+12)+'px';});
    r.addEventListener('mouseleave',function(){tip.style.display='none';});
  });
  var charts=document.querySelectorAll('svg.chart'), drawn=0;
  charts.forEach(function(svg){var b=svg.getBBox(); if(b.width>0&&b.height>0&&svg.querySelector('rect,text')) drawn++;});
  document.body.setAttribute('data-charts-rendered', drawn+'/'+charts.length);
})();
"""


def build_report(run_dir: str, manifest: dict) -> str:
    langs = language_counts(run_dir)
    chars = char_lengths(run_dir)
    tokens = token_lengths(run_dir)
    sizes = dedup_cluster_sizes(run_dir, manifest)
    title = f"curate run: {manifest.get('name', os.path.basename(run_dir))}"
    body = "".join(
        [
            f"<h1>{_esc(title)}</h1>",
            _summary_section(manifest),
            _funnel_section(manifest),
            _languages_section(langs, manifest),
            _lengths_section(chars, tokens),
            _reasons_section(manifest, run_dir),
            _dedup_section(sizes, manifest),
            _pii_section(manifest),
            _throughput_section(manifest),
            f"<h2>Recipe</h2><details><summary>as run</summary><pre>{_esc(json.dumps(manifest.get('recipe', {}), indent=2))}</pre></details>",
        ]
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{STYLE}</style></head>"
        f'<body>{body}<div id="hover"></div><script>{SCRIPT}</script></body></html>\n'
    )
