"""curate/speedups/class_archive.py: the per-machine JVM class archive for faster Spark start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from curate.speedups import class_archive

ROOT = Path(__file__).resolve().parent.parent

# Starts a local session the way `curate run` does and runs one job; prints the row count.
START_SESSION = """
import logging, sys
logging.basicConfig(level=logging.WARNING)
from curate.spark.session import spark_session
extra = sys.argv[1] if len(sys.argv) > 1 else ""
conf = {"spark.driver.extraJavaOptions": extra} if extra else {}
session = spark_session("archive-test", master="local[1]", progress=False, conf=conf)
print("rows", session.range(10).count())
arguments = list(session.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
print("c1-only", "-XX:TieredStopAtLevel=1" in arguments)
session.stop()
"""


def _start_session(tmp_path: Path, cache: Path, java_options: str = "") -> subprocess.CompletedProcess:
    cwd = tmp_path / "cwd"
    cwd.mkdir(exist_ok=True)
    env = dict(os.environ, CURATE_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    env.pop("CURATE_JVM_CLASS_ARCHIVE", None)
    env.pop("CURATE_JVM_QUICK_JIT", None)
    return subprocess.run(
        [sys.executable, "-c", START_SESSION, java_options], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_switched_off_or_unwritable_cache_means_no_archive(monkeypatch, tmp_path):
    monkeypatch.setenv("CURATE_JVM_CLASS_ARCHIVE", "off")
    assert class_archive.ensure() is None
    monkeypatch.setenv("CURATE_JVM_CLASS_ARCHIVE", "on")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("CURATE_CACHE_DIR", str(blocker / "cache"))
    assert class_archive.ensure() is None  # no error: Spark starts without it


def test_archive_name_follows_java_and_spark(monkeypatch, tmp_path):
    import pyspark

    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    first = class_archive.archive_path()
    assert first is not None and Path(first).parent == tmp_path and first.endswith(".jsa")
    assert class_archive.archive_path() == first  # stable for the same installation
    monkeypatch.setattr(pyspark, "__version__", pyspark.__version__ + ".other")
    other_spark = class_archive.archive_path()
    monkeypatch.undo()
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    other_java = tmp_path / "java"
    other_java.write_text("#!/bin/sh\n")
    monkeypatch.setattr(class_archive, "_java_binary", lambda: str(other_java))
    other_java_path = class_archive.archive_path()
    monkeypatch.undo()
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path))
    # another virtual environment: the same pyspark version, installed elsewhere
    monkeypatch.setattr(pyspark, "__file__", str(tmp_path / "other-venv" / "pyspark" / "__init__.py"))
    assert len({first, other_spark, other_java_path, class_archive.archive_path()}) == 4


def test_archive_name_follows_the_jar_files(monkeypatch, tmp_path):
    # A virtual environment re-created at the same path: same jar names, other files. The JVM
    # would silently ignore the old archive (and refuse it under -Xshare:on).
    import pyspark

    jars = tmp_path / "venv" / "pyspark" / "jars"
    jars.mkdir(parents=True)
    for name in ("spark-core.jar", "spark-sql.jar"):
        (jars / name).write_bytes(b"PK" + name.encode())
    monkeypatch.setattr(pyspark, "__file__", str(tmp_path / "venv" / "pyspark" / "__init__.py"))
    monkeypatch.setenv("CURATE_CACHE_DIR", str(tmp_path / "cache"))
    first = class_archive.archive_path()
    assert class_archive.archive_path() == first
    os.utime(jars / "spark-sql.jar", (1_000_000_000, 1_000_000_000))
    reinstalled = class_archive.archive_path()
    (jars / "spark-core.jar").write_bytes(b"PK a longer spark-core.jar")
    os.utime(jars / "spark-core.jar", (1_000_000_000, 1_000_000_000))
    assert len({first, reinstalled, class_archive.archive_path()}) == 3


def test_session_maps_the_archive_and_survives_a_damaged_one(tmp_path):
    built = class_archive.ensure()  # the machine's archive: built here if no run has built it yet
    assert built is not None and os.path.getsize(built) > 10_000_000

    cache = tmp_path / "cache"
    cache.mkdir()
    os.environ["CURATE_CACHE_DIR"] = str(cache)
    try:
        target = Path(class_archive.archive_path())
    finally:
        del os.environ["CURATE_CACHE_DIR"]

    # -Xshare:on makes a JVM that cannot map the archive exit instead of ignoring it: the run
    # only succeeds, archive kept, if the archive really is the JVM's class source.
    target.symlink_to(built)
    done = _start_session(tmp_path, cache, "-Xshare:on")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows 10" in done.stdout and "c1-only True" in done.stdout
    assert target.is_symlink() and "deleting it" not in done.stderr

    # A half-written archive crashes the JVM while mapping; the session retries without it.
    target.unlink()
    with open(built, "rb") as src, open(target, "wb") as dst:
        dst.write(src.read(os.path.getsize(built) // 2))
    done = _start_session(tmp_path, cache)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "rows 10" in done.stdout
    assert "c1-only True" in done.stdout  # the retry keeps the other driver options
    assert "deleting it and starting without" in done.stderr
    assert not target.exists()
    assert not list((tmp_path / "cwd").glob("hs_err_pid*.log"))  # the crash report went to the cache


@pytest.mark.parametrize("value", ["off", "0", "false", "no", "OFF"])
def test_switch_values(monkeypatch, value):
    monkeypatch.setenv("CURATE_JVM_CLASS_ARCHIVE", value)
    assert not class_archive.enabled()
