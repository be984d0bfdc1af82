"""curate.warc on real archives, well-formed and broken, plus damage applied to a real file."""

from __future__ import annotations

import gzip
import os
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curate.schema import RECORD_SCHEMA, document_id
from curate.stage import Counters
from curate.warc import decode_html, read_warc

WARC = Path(__file__).parent / "data" / "warc"


def read(path: Path, batch_size: int = 256) -> tuple[list[dict], Counters, list[str]]:
    counters, problems = Counters(), []
    batches = list(read_warc(str(path), "web", counters, batch_size=batch_size, problems=problems))
    for batch in batches:
        assert batch.schema == RECORD_SCHEMA
    return [row for batch in batches for row in batch.to_pylist()], counters, problems


def test_dolma_sample_0000_keeps_every_html_response():
    rows, counters, problems = read(WARC / "dolma-sample-0000.warc.gz")
    assert problems == []
    assert len(rows) == 22
    assert counters["warc.records"] == 48
    assert counters["warc.responses"] == 22 and counters["warc.kept"] == 22
    assert counters["warc.charset:http"] == 21 and counters["warc.charset:meta"] == 1
    by_url = {row["url"]: row for row in rows}
    assert by_url["https://www.cs.cmu.edu/~anaik/"]["charset"] == "meta:utf-8"  # no charset in HTTP header
    assert by_url["https://maria-antoniak.github.io/"]["charset"] == "http:utf-8"
    wordpress = by_url["https://amyxzhang.wordpress.com/"]  # sent with chunked transfer encoding
    assert wordpress["html"].lstrip().lower().startswith("<!doctype html")
    assert wordpress["html"].rstrip().endswith("</html>")
    assert all(row["source"] == "web" and row["warc_file"] == "dolma-sample-0000.warc.gz" for row in rows)
    assert all(row["warc_date"].startswith("2024-") for row in rows)
    assert len({row["id"] for row in rows}) == 22


def test_dolma_sample_0001_small_batches_and_duplicates_kept():
    rows, counters, problems = read(WARC / "dolma-sample-0001.warc.gz", batch_size=4)
    assert problems == []
    assert len(rows) == 15 and counters["warc.records"] == 34
    urls = [row["url"] for row in rows]
    assert urls.count("https://allenai.org/") == 3  # three captures, three records, three ids
    assert "https://commoncrawl.org/faq" in urls
    assert counters["warc.charset:meta"] == 5  # commoncrawl.org sends no charset over HTTP


def test_warcio_example_skips_revisit_and_decodes_gzip_payload():
    rows, counters, problems = read(WARC / "warcio-example.warc.gz")
    assert problems == []
    assert [row["url"] for row in rows] == ["http://example.com/"]
    assert counters["warc.skipped:revisit"] == 1
    assert "<title>Example Domain</title>" in rows[0]["html"]  # Content-Encoding: gzip undone
    assert rows[0]["charset"] == "meta:utf-8"
    assert rows[0]["id"] == document_id("<urn:uuid:a9c51e3e-0221-11e7-bf66-0242ac120005>")


@pytest.mark.parametrize("name", ["LICENSE-dolma-samples", "malformed/LICENSE-warcio", "malformed/bad.arc"])
def test_not_a_warc_file_is_reported_by_name(name, caplog):
    rows, counters, problems = read(WARC / name)
    assert rows == []
    assert counters["warc.not_warc_files"] == 1
    assert len(problems) == 1 and str(WARC / name) in problems[0] and "not a WARC file" in problems[0]
    assert str(WARC / name) in caplog.text


def test_arc_file_is_named_as_arc():
    _, _, problems = read(WARC / "malformed/bad.arc")
    assert "ARC file" in problems[0]


@pytest.mark.parametrize("name", ["example-bad-non-chunked.warc.gz", "example-bad.warc.gz.bad"])
def test_single_gzip_stream_is_read_decompressed(name):
    rows, counters, problems = read(WARC / "malformed" / name)
    assert counters["warc.single_gzip_stream_files"] == 1
    assert counters["warc.records"] == 6  # each record counted once despite the re-read
    assert len(rows) == 1 and "Example Domain" in rows[0]["html"]
    assert "one gzip stream" in problems[0]


def test_redirect_is_skipped_with_its_status():
    _, counters, _ = read(WARC / "malformed" / "example-bad.warc.gz.bad")
    assert counters["warc.skipped:status_302"] == 1


def test_chunked_transfer_encoding_is_undone():
    rows, counters, problems = read(WARC / "malformed" / "example-iana.org-chunked.warc")
    assert problems == [] and len(rows) == 1
    html = rows[0]["html"]
    assert rows[0]["url"] == "http://www.iana.org/" and rows[0]["charset"] == "http:utf-8"
    assert html.rstrip().endswith("</html>")
    # a chunk-size line (hex digits alone on a line) must not leak into the HTML
    assert "\r\n1f" not in html.lower() and not html.startswith("1")


def test_members_split_across_records_are_read_as_one_stream():
    rows, counters, problems = read(WARC / "malformed" / "example-wrong-chunks.warc.gz")
    assert counters["warc.misaligned_gzip_files"] == 1
    assert len(rows) == 1 and rows[0]["html"].rstrip().endswith("</html>")
    assert len(rows[0]["html"]) == 1270


def test_truncated_record_keeps_what_is_readable():
    rows, counters, problems = read(WARC / "malformed" / "example-trunc.warc")
    assert len(rows) == 1 and rows[0]["url"] == "http://example.com/"
    assert counters["warc.warnings:bad_content_length"] == 1
    assert problems == [
        f"{WARC / 'malformed' / 'example-trunc.warc'}: offset 2560: record not followed by a blank line (wrong Content-Length?)"
    ]


def test_space_in_target_uri_is_a_warning_not_a_failure():
    rows, counters, problems = read(WARC / "malformed" / "example-space-in-target-uri.warc.gz")
    assert rows == [] and counters["warc.records"] == 2 and problems == []  # a warcinfo and a resource


def test_every_shipped_file_reads_without_raising():
    files = [p for p in sorted(WARC.rglob("*")) if p.is_file() and p.name != "README.md"]
    assert len(files) == 13
    total = sum(len(read(p)[0]) for p in files)
    assert total == 22 + 15 + 1 + 1 + 1 + 1 + 1 + 1 + 1


# --- damage applied to a real file: records before and after the broken one survive -----------


def _members(data: bytes) -> list[int]:
    offsets, position = [], 0
    while position < len(data):
        offsets.append(position)
        inflater = zlib.decompressobj(31)
        inflater.decompress(data[position:])
        position = len(data) - len(inflater.unused_data)
    return offsets


@pytest.fixture(scope="module")
def sample() -> tuple[bytes, list[int], int]:
    data = (WARC / "dolma-sample-0000.warc.gz").read_bytes()
    members = _members(data)
    broken = members.index(72194)  # the response for .../2023/07/04/notes-on-mastodon.html
    return data, members, broken


MASTODON = "https://maria-antoniak.github.io/2023/07/04/notes-on-mastodon.html"


def _urls(rows):
    return [row["url"] for row in rows]


def test_garbage_between_members_is_skipped(tmp_path, sample):
    data, members, k = sample
    path = tmp_path / "garbage.warc.gz"
    path.write_bytes(data[: members[k]] + b"not a gzip member\x00\x01" * 40 + data[members[k] :])
    rows, counters, problems = read(path)
    assert len(rows) == 22 and MASTODON in _urls(rows)
    assert counters["warc.errors:invalid_record"] == 1 and counters["warc.resyncs"] == 1
    assert problems[0].startswith(f"{path}: offset 72194: unreadable record (invalid_record")


def test_truncated_member_mid_file_loses_only_that_record(tmp_path, sample):
    data, members, k = sample
    path = tmp_path / "cut.warc.gz"
    path.write_bytes(data[: members[k]] + data[members[k] : members[k + 1]][:3000] + data[members[k + 1] :])
    rows, counters, _ = read(path)
    urls = _urls(rows)
    assert len(rows) == 21 and MASTODON not in urls
    assert "https://maria-antoniak.github.io/" in urls  # before the damage
    assert "https://amyxzhang.wordpress.com/" in urls  # after it
    assert counters["warc.resyncs"] == 1


def test_corrupt_bytes_inside_a_member(tmp_path, sample):
    data, members, k = sample
    middle = members[k] + 2000
    path = tmp_path / "zeros.warc.gz"
    path.write_bytes(data[:middle] + bytes(200) + data[middle + 200 :])
    rows, counters, _ = read(path)
    assert len(rows) == 21 and MASTODON not in _urls(rows) and counters["warc.resyncs"] == 1


def test_file_truncated_mid_record(tmp_path, sample):
    data, members, k = sample
    path = tmp_path / "short.warc.gz"
    path.write_bytes(data[: members[k] + 3000])
    rows, counters, problems = read(path)
    assert len(rows) == 9 and counters["warc.errors:incomplete_record"] == 1
    assert "offset 72194" in problems[0]


def test_uncompressed_file_with_garbage_in_a_header(tmp_path, sample):
    plain = gzip.decompress(sample[0])
    cut = plain.find(b"notes-on-mastodon")  # inside the WARC header of a request record
    path = tmp_path / "garbage.warc"
    path.write_bytes(plain[:cut] + b"\r\n\r\nGARBAGE\r\n" * 5 + plain[cut:])
    rows, counters, _ = read(path)
    assert len(rows) == 22 and counters["warc.errors:no_content_length"] == 1 and counters["warc.resyncs"] == 1


def test_uncompressed_file_truncated(tmp_path, sample):
    plain = gzip.decompress(sample[0])
    path = tmp_path / "short.warc"
    path.write_bytes(plain[: plain.find(b"notes-on-mastodon") + 500])
    rows, counters, _ = read(path)
    assert len(rows) == 9 and counters["warc.errors:incomplete_record"] == 1


@settings(max_examples=int(os.environ.get("CURATE_FUZZ_EXAMPLES", "25")), deadline=None)
@given(cut=st.integers(min_value=1, max_value=213_000), junk=st.binary(min_size=0, max_size=300))
def test_any_damage_never_raises(tmp_path_factory, cut, junk):
    data = (WARC / "dolma-sample-0000.warc.gz").read_bytes()
    path = tmp_path_factory.mktemp("fuzz") / "damaged.warc.gz"
    path.write_bytes(data[:cut] + junk + data[cut + len(junk) :])
    rows, _, _ = read(path)
    # at most 300 damaged bytes touch at most two gzip members, so at most two responses go
    assert 20 <= len(rows) <= 22
    if not junk:
        assert len(rows) == 22


# --- charset -----------------------------------------------------------------------------------


def test_charset_rules_in_order():
    latin = "<html><head><meta charset='windows-1252'></head><body>caf\u00e9 \u201cquoted\u201d</body></html>"
    body = latin.encode("windows-1252")
    assert decode_html(body, "text/html; charset=windows-1252") == (latin, "http:windows-1252")
    assert decode_html(body, "text/html") == (latin, "meta:windows-1252")
    # a wrong HTTP declaration (utf-8 on a cp1252 body) falls through to the page's own
    assert decode_html(body, "text/html; charset=utf-8") == (latin, "meta:windows-1252")
    # iso-8859-1 means windows-1252 in browsers: curly quotes survive
    assert decode_html(body, "text/html; charset=ISO-8859-1")[1] == "http:windows-1252"
    assert decode_html("\ufeffhi".encode("utf-8"), "text/html; charset=latin-1") == ("hi", "bom:utf-8")
    utf8 = "<p>\u65e5\u672c\u8a9e \u0440\u0443\u0441\u0441\u043a\u0438\u0439</p>"
    assert decode_html(utf8.encode(), None) == (utf8, "detected:utf-8")


def test_detection_of_undeclared_legacy_charset():
    text = (
        "<html><body><p>"
        + "\u042d\u0442\u043e \u0442\u0435\u043a\u0441\u0442 \u043d\u0430 \u0440\u0443\u0441\u0441\u043a\u043e\u043c \u044f\u0437\u044b\u043a\u0435. "
        * 20
        + "</p></body></html>"
    )
    html, how = decode_html(text.encode("cp1251"), "text/html")
    assert how.startswith("detected:") and html == text
