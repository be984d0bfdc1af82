"""Build a Common-Crawl-like WARC for the benchmarks from the real pages in ../shared/data.

    .venv/bin/python bench/make_warc.py --records 5000 --out bench/out/cc-1x [--files 4]

Every capture is a WARC/1.1 ``request`` + ``response`` pair (HTTP/1.1 status line and headers,
the HTML body), after a ``warcinfo`` record, like a Common Crawl segment file.

Where the pages come from
* templates: the 290 real pages of ``html/trafilatura-eval`` (news, blogs, shops, forums in many
  languages) and the HTML responses of the two Dolma sample WARCs: their markup, navigation and
  boilerplate are real;
* article text: every record gets three real Wikipedia paragraphs (WikiText-2 valid + test,
  detokenized) inserted before the page's first paragraph, chosen so that two records share at
  most one paragraph: records are distinct documents even when they reuse a template.
* near-duplicates: a known share (``--near-dup-share``, default 0.10) of records are light edits
  of an earlier record (one sentence dropped, a date line added, a few words changed) under a new
  URL. ``truth.json`` beside the WARC lists them: ``{"near_duplicates": {url: original url}}``.

The output is deterministic for given arguments (``--seed``).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import re
from datetime import datetime, timedelta, timezone

from warcio.statusandheaders import StatusAndHeaders
from warcio.archiveiterator import ArchiveIterator
from warcio.warcwriter import WARCWriter

from common import shared_data

from curate.wikitext import BENCH_WARC_PARAGRAPHS, detokenize_line


def load_paragraphs() -> list[str]:
    paragraphs = []
    for path in [shared_data() / "text" / "wikitext-2" / f"{s}.txt" for s in ("valid", "test")]:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                line = line.strip()
                if len(line) >= 300 and not line.startswith("="):
                    # the rules these records were first built with (pinned: the bench input stays the same)
                    paragraphs.append(detokenize_line(line, BENCH_WARC_PARAGRAPHS, unk="unknown"))
    return paragraphs


def decode_html(body: bytes) -> str:
    for enc in ("utf-8", "cp1252"):
        try:
            return body.decode(enc)
        except UnicodeDecodeError:
            continue
    return body.decode("latin-1")


def load_templates() -> list[tuple[str, str]]:
    """(original url or name, html) for every real page."""
    templates = []
    eval_pages = shared_data() / "html" / "trafilatura-eval" / "pages"
    for name in sorted(os.listdir(eval_pages)):
        with gzip.open(eval_pages / name, "rb") as fh:
            templates.append((name.split(".")[0], decode_html(fh.read())))
    for path in [shared_data() / "warc" / f"dolma-sample-000{i}.warc.gz" for i in (0, 1)]:
        with open(path, "rb") as fh:
            for record in ArchiveIterator(fh):
                if record.rec_type != "response" or not record.http_headers:
                    continue
                if "html" not in (record.http_headers.get_header("Content-Type") or ""):
                    continue
                body = record.content_stream().read()
                if len(body) > 500:
                    templates.append((record.rec_headers.get_header("WARC-Target-URI"), decode_html(body)))
    return templates


FIRST_P = re.compile(r"<p[\s>]", re.IGNORECASE)
BODY = re.compile(r"<body[^>]*>", re.IGNORECASE)


def with_article(html: str, title: str, paragraphs: list[str]) -> str:
    block = "<article><h2>" + title + "</h2>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</article>"
    m = FIRST_P.search(html) or BODY.search(html)
    if m is None:
        return "<html><body>" + block + html + "</body></html>"
    at = m.start() if m.re is FIRST_P else m.end()
    return html[:at] + block + html[at:]


def light_edit(html: str, paragraphs: list[str], rng: random.Random) -> str:
    """A near-duplicate: drop one sentence, change a few words, add an 'updated' line."""
    first = paragraphs[0]
    sentences = re.split(r"(?<=[.!?]) ", first)
    if len(sentences) > 2:
        drop = rng.randrange(1, len(sentences))
        edited = " ".join(s for k, s in enumerate(sentences) if k != drop)
        html = html.replace(first, edited, 1)
    words = paragraphs[1].split(" ")
    for _ in range(3):
        k = rng.randrange(len(words))
        words[k] = words[k].upper()
    html = html.replace(paragraphs[1], " ".join(words), 1)
    return html.replace("</article>", f"<p>Updated {rng.randrange(1, 28)} March 2024.</p></article>", 1)


def build(records: int, out_dir: str, files: int = 1, near_dup_share: float = 0.10, seed: int = 42) -> dict:
    rng = random.Random(seed)
    paragraphs = load_paragraphs()
    templates = load_templates()
    os.makedirs(out_dir, exist_ok=True)
    truth: dict = {"records": records, "near_dup_share": near_dup_share, "seed": seed, "templates": len(templates), "near_duplicates": {}}
    originals: list[tuple[str, str, list[str]]] = []
    per_file = -(-records // files)
    paths = []
    n = 0
    for f in range(files):
        path = os.path.join(out_dir, f"CC-BENCH-{f:05d}.warc.gz")
        paths.append(path)
        with open(path, "wb") as fh:
            writer = WARCWriter(fh, gzip=True, warc_version="WARC/1.1")
            writer.write_record(
                writer.create_warcinfo_record(
                    os.path.basename(path),
                    {"software": "curate bench/make_warc.py", "format": "WARC File Format 1.1", "isPartOf": "CC-BENCH"},
                )
            )
            for _ in range(min(per_file, records - n)):
                if originals and rng.random() < near_dup_share:
                    src_url, src_html, src_pars = originals[rng.randrange(len(originals))]
                    html = light_edit(src_html, src_pars, rng)
                    url = f"https://mirror{n % 97}.example.org/copy/{n}"
                    truth["near_duplicates"][url] = src_url
                else:
                    url, html, pars = original_page(n, templates, paragraphs)
                    originals.append((url, html, pars))
                write_capture(writer, n, url, html)
                n += 1
    truth["files"] = [os.path.abspath(p) for p in paths]
    truth["bytes"] = sum(os.path.getsize(p) for p in paths)
    with open(os.path.join(out_dir, "truth.json"), "w") as fh:
        json.dump(truth, fh, indent=1)
    return truth


def original_page(n: int, templates: list[tuple[str, str]], paragraphs: list[str]) -> tuple[str, str, list[str]]:
    """(URL, HTML, inserted paragraphs) of capture ``n`` when it is not a near-duplicate."""
    name, template = templates[n % len(templates)]
    n_par = len(paragraphs)
    # three paragraphs with strides that make two records share at most one
    pars = [paragraphs[n % n_par], paragraphs[(7 * n + 1) % n_par], paragraphs[(13 * n + 2) % n_par]]
    html = with_article(template, f"Article {n}", pars)
    host = hashlib.md5(name.encode()).hexdigest()[:10]
    return f"https://www.site-{host}.example.com/article/{n}", html, pars


def write_capture(writer: WARCWriter, n: int, url: str, html: str) -> None:
    """Capture ``n``: a request and its 200 response, 37 s after the one before."""
    date = (datetime(2024, 3, 1, tzinfo=timezone.utc) + timedelta(seconds=37 * n)).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = html.encode("utf-8")
    req = StatusAndHeaders(f"GET /article/{n} HTTP/1.1", [("Host", url.split("/")[2]), ("User-Agent", "CCBot/2.0")], is_http_request=True)
    writer.write_record(
        writer.create_warc_record(url, "request", payload=io.BytesIO(b""), http_headers=req, warc_headers_dict={"WARC-Date": date})
    )
    headers = StatusAndHeaders(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))], protocol="HTTP/1.1"
    )
    # Common Crawl labels every response with the payload type it identified; readers that lack
    # it fall back to guessing (datatrove: libmagic, which calls ~7% of these pages something
    # other than HTML and drops them).
    warc_headers = {"WARC-Date": date, "WARC-Identified-Payload-Type": "text/html"}
    writer.write_record(
        writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), length=len(body), http_headers=headers, warc_headers_dict=warc_headers
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000, help="response records (default 5000)")
    parser.add_argument("--files", type=int, default=1, help="WARC files to spread them over")
    parser.add_argument("--near-dup-share", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="bench/out/cc-1x", help="output folder")
    args = parser.parse_args()
    truth = build(args.records, args.out, args.files, args.near_dup_share, args.seed)
    print(
        f"{truth['records']} responses ({len(truth['near_duplicates'])} near-duplicates) from {truth['templates']} real templates, "
        f"{truth['bytes'] / 1e6:.1f} MB in {len(truth['files'])} file(s) under {args.out}"
    )


if __name__ == "__main__":
    main()
