"""curate/storage.py: which paths are remote, how URLs and options are shown, how patterns expand."""

from __future__ import annotations

import pytest

from curate.storage import (
    display_url,
    expand_pattern,
    file_name,
    is_remote,
    local_path,
    options_for,
    protocol_of,
    quiet_storage_options,
    redacted_options,
)
from servers import fault_server, moto_server, s3_client, s3_storage_options


@pytest.mark.parametrize(
    "path, protocol",
    [
        ("runs/x", "file"),
        ("/abs/x.warc.gz", "file"),
        ("file:///abs/x", "file"),
        ("s3://b/k", "s3"),
        ("HTTPS://h/p", "https"),
        ("gs://b", "gs"),
        ("C:/x", "file"),
    ],
)
def test_protocol_of(path, protocol):
    assert protocol_of(path) == protocol
    assert is_remote(path) == (protocol != "file")


def test_local_path_resolves_file_urls_and_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_path("file:///data/a.warc") == "/data/a.warc"
    assert local_path("runs/x") == str(tmp_path / "runs" / "x")


def test_display_url_drops_credentials_and_signatures():
    url = "https://user:pw@cdn.example:8443/crawl/a.warc.gz?X-Amz-Credential=AKIA1&X-Amz-Signature=deadbeef&partNumber=2"
    assert (
        display_url(url)
        == "https://cdn.example:8443/crawl/a.warc.gz?X-Amz-Credential=%3Credacted%3E&X-Amz-Signature=%3Credacted%3E&partNumber=2"
    )
    assert display_url("s3://bucket/key.warc.gz") == "s3://bucket/key.warc.gz"
    assert display_url("/local/path?x") == "/local/path?x"


def test_redacted_options_show_where_never_who():
    options = {
        "s3": {
            "endpoint_url": "http://u:p@127.0.0.1:9000",
            "anon": False,
            "key": "AKIA",
            "secret": "s",
            "client_kwargs": {"aws_session_token": "t"},
        }
    }
    assert redacted_options(options) == {
        "s3": {
            "anon": False,
            "client_kwargs": "<redacted>",
            "endpoint_url": "http://127.0.0.1:9000",
            "key": "<redacted>",
            "secret": "<redacted>",
        }
    }


def test_options_for_falls_back_between_http_and_https():
    options = {"http": {"client_kwargs": {"trust_env": True}}, "s3": {"anon": True}}
    assert options_for("https://h/x", options) == {"client_kwargs": {"trust_env": True}}
    assert options_for("s3a://b/k", options) == {"anon": True}
    assert options_for("gs://b/k", options) == {}


def test_quiet_storage_options_turn_off_botocore_retries_only_for_s3():
    assert quiet_storage_options("s3", {"anon": True}) == {
        "anon": True,
        "config_kwargs": {"retries": {"total_max_attempts": 1, "mode": "standard"}},
    }
    mine = {"config_kwargs": {"retries": {"max_attempts": 3}}}
    assert quiet_storage_options("s3", mine) == mine
    assert quiet_storage_options("https", {"x": 1}) == {"x": 1}


def test_file_name_of_paths_and_urls():
    assert file_name("https://h/crawl/CC-MAIN-1.warc.gz?X-Amz-Signature=s") == "CC-MAIN-1.warc.gz"
    assert file_name("/data/a.warc.gz") == "a.warc.gz"


def test_expand_pattern_lists_local_globs_and_s3_prefixes(tmp_path):
    for name in ("a.warc.gz", "b.warc.gz", "c.txt"):
        (tmp_path / "in" / "sub").mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / "sub" / name).write_bytes(b"x")
    assert expand_pattern(str(tmp_path / "in" / "**" / "*.warc.gz")) == [
        str(tmp_path / "in" / "sub" / n) for n in ("a.warc.gz", "b.warc.gz")
    ]
    with moto_server() as server:
        client = s3_client(server, "crawl")
        for key in ("seg/1/warc/a.warc.gz", "seg/2/warc/b.warc.gz", "seg/2/wat/b.wat.gz"):
            client.put_object(Bucket="crawl", Key=key, Body=b"x")
        options = {"s3": s3_storage_options(server)}
        assert expand_pattern("s3://crawl/seg/*/warc/*", options) == ["s3://crawl/seg/1/warc/a.warc.gz", "s3://crawl/seg/2/warc/b.warc.gz"]
        assert expand_pattern("s3://crawl/seg/1/warc/missing.warc.gz", options) == ["s3://crawl/seg/1/warc/missing.warc.gz"]


def test_an_http_glob_is_refused_with_a_reason(tmp_path):
    with fault_server(tmp_path) as server:
        with pytest.raises(ValueError, match="an HTTP server cannot be listed; name the files or give a listing"):
            expand_pattern(f"{server.url}/crawl/*.warc.gz")
