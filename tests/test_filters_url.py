"""URL blocklist: shipped default list, recipe-named files, bad files."""

from __future__ import annotations

import pytest

from curate.filters.url import UrlFilterParams, UrlFilterStage, url_host
from curate.stage import StageError
from filters_pages import load_pages, outcomes, texts_batch


def test_real_page_urls_pass_the_default_list():
    pages = [r for r in load_pages() if r["url"]]
    batch = texts_batch([r["text"] for r in pages], urls=[r["url"] for r in pages])
    found = outcomes(UrlFilterStage(UrlFilterParams()), batch)
    assert set(found.values()) == {(None, None)}


def test_default_list_blocks_domains_subdomains_and_substrings():
    urls = [
        "https://www.pornhub.com/view?x=1",
        "http://de.xhamster.com/videos/abc",
        "https://example.org/free-porn-videos",
        "https://notpornhub.com.example.org/",  # "porn" substring, not the domain
        "https://www.bbc.co.uk/news",
        "https://essex.ac.uk/",
        None,
    ]
    stage = UrlFilterStage(UrlFilterParams())
    stage.check()
    found = outcomes(stage, texts_batch(["text"] * len(urls), urls=urls))
    assert [found[str(i)][0] for i in range(len(urls))] == ["domain", "domain", "substring", "substring", None, None, None]
    assert stage.counters["urls_missing"] == 1


def test_lists_named_in_the_recipe(tmp_path):
    domains = tmp_path / "domains.txt"
    domains.write_text("# news sites we do not want\nnytimes.com\nhttps://www.theatlantic.com/\n", encoding="utf-8")
    substrings = tmp_path / "substrings.txt"
    substrings.write_text("/slideshow\n", encoding="utf-8")
    pages = [r for r in load_pages() if r["url"]]
    batch = texts_batch([r["text"] for r in pages], urls=[r["url"] for r in pages])
    stage = UrlFilterStage(UrlFilterParams(domain_files=[str(domains)], substring_files=[str(substrings)], use_default_lists=False))
    stage.check()
    found = outcomes(stage, batch)
    blocked = {pages[int(i)]["url"]: rule for i, (rule, _) in found.items() if rule}
    assert {url_host(u) for u in blocked} == {"nytimes.com", "theatlantic.com", "economictimes.indiatimes.com"}
    assert sorted(set(blocked.values())) == ["domain", "substring"]


def test_missing_blocklist_file_fails_at_check(tmp_path):
    stage = UrlFilterStage(UrlFilterParams(domain_files=[str(tmp_path / "nope.txt")]))
    with pytest.raises(StageError, match="blocklist file not found: .*nope.txt"):
        stage.check()


def test_url_host():
    assert url_host("https://WWW.Example.COM:8080/a?b") == "example.com"
    assert url_host("example.com/path") == "example.com"
    assert url_host("http://[::1") == ""
