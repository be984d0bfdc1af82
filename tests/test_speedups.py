"""curate/speedups: the switches, and the fall-back to the plain library when a target is missing."""

from __future__ import annotations

import re
import warnings

import pytest

from curate import speedups
from curate.speedups import class_archive, compiled_xpaths


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(speedups, "_warned", set())
    for variable in [speedups.ALL_SWITCH, *speedups.ITEMS.values()]:
        monkeypatch.delenv(variable, raising=False)


def test_one_switch_for_all_and_one_per_item(monkeypatch):
    assert all(speedups.enabled(item) for item in speedups.ITEMS)
    monkeypatch.setenv("CURATE_SPEEDUP_COMPILED_XPATHS", "off")
    assert [item for item in speedups.ITEMS if not speedups.enabled(item)] == ["compiled_xpaths"]
    monkeypatch.setenv("CURATE_SPEEDUPS", " No ")
    assert not any(speedups.enabled(item) for item in speedups.ITEMS)
    with pytest.raises(KeyError, match="unknown speed-up 'xpath_guard'"):
        speedups.enabled("xpath_guard")


def test_version_tuple():
    assert speedups.version_tuple("2.3.1") == (2, 3, 1)
    assert speedups.version_tuple("2.4rc1") == (2,)


def test_switched_off_compiled_xpaths_leave_trafilatura_as_shipped(monkeypatch):
    import trafilatura.utils as utils

    compiled_xpaths.uninstall()
    monkeypatch.setenv("CURATE_SPEEDUPS", "off")
    assert compiled_xpaths.install() == 0 and not compiled_xpaths.installed()
    assert isinstance(utils.INVALID_XML_CHARS, re.Pattern)


def test_untested_trafilatura_version_falls_back_with_a_warning(monkeypatch):
    compiled_xpaths.uninstall()
    monkeypatch.setattr(compiled_xpaths, "TESTED_TRAFILATURA", ((1, 0), (1, 9)))
    with pytest.warns(speedups.SpeedupFallback, match=r"outside the tested range \(1, 0\)..\(1, 9\)"):
        assert compiled_xpaths.install() == 0
    assert not compiled_xpaths.installed()


def test_a_missing_target_is_left_alone_with_a_warning(monkeypatch):
    import trafilatura.utils as utils

    compiled_xpaths.uninstall()
    monkeypatch.setattr(utils, "INVALID_XML_CHARS", re.compile("[\x00]"))
    with pytest.warns(speedups.SpeedupFallback, match="INVALID_XML_CHARS"):
        assert compiled_xpaths.install() > 0  # the XPaths themselves are still there to compile
    assert utils.INVALID_XML_CHARS.pattern == "[\x00]"
    compiled_xpaths.uninstall()
    compiled_xpaths.install()


def test_a_warning_is_given_once_per_item():
    with pytest.warns(speedups.SpeedupFallback):
        speedups.fall_back("pii", "test")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        speedups.fall_back("pii", "test")


def test_a_run_never_builds_the_class_archive(monkeypatch, tmp_path):
    # The session asks for an existing archive only; building is `curate warm-cache`'s job.
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    assert class_archive.existing() is None
    assert list(tmp_path.iterdir()) == []
    path = class_archive.archive_path()
    open(path, "wb").close()
    assert class_archive.existing() == path
    monkeypatch.setenv("CURATE_JVM_CLASS_ARCHIVE", "off")
    assert class_archive.existing() is None


def test_warm_cache_builds_nothing_that_is_switched_off(monkeypatch, tmp_path, capsys):
    from curate.speedups import warm_cache

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CURATE_SPEEDUPS", "off")
    assert warm_cache.main([]) == 0
    assert capsys.readouterr().out == "JVM class archive: switched off\n"
    assert list(tmp_path.iterdir()) == []
