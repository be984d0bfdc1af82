"""The one place that starts Spark. Jobs, tests and benchmarks get their session here."""

from __future__ import annotations

import logging
import os
import sys

from pyspark.sql import SparkSession

from curate import speedups
from curate.speedups import class_archive

log = logging.getLogger(__name__)


def python_for_workers() -> str:
    # Workers must run the same interpreter (the venv) or they cannot import pyarrow/curate.
    return os.environ.get("PYSPARK_PYTHON") or sys.executable


def spark_session(
    app_name: str = "curate",
    master: str | None = None,
    conf: dict[str, str] | None = None,
    progress: bool = True,
    ui: bool = False,
    driver_memory: str = "2g",
) -> SparkSession:
    """Start (or reuse) a session. ``master=None`` keeps what spark-submit set, else ``local[*]``."""
    os.environ.setdefault("PYSPARK_PYTHON", python_for_workers())
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    launched_by_submit = "spark.master" in _submitted_conf()
    if not launched_by_submit and (master is None or master.startswith("local")):
        # A laptop/CI host name often resolves to a non-loopback address; local mode needs none.
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if master is not None:
        builder = builder.master(master)
    elif not launched_by_submit:
        builder = builder.master("local[*]")
    settings = _session_settings(progress, ui, None if launched_by_submit else driver_memory)
    settings.update(conf or {})
    session = _start_with_class_archive(builder, settings, _starts_the_jvm(launched_by_submit))
    session.sparkContext.setLogLevel("WARN")
    if not session.sparkContext.getConf().contains("spark.sql.shuffle.partitions"):  # set by user or spark-submit: kept
        # Two shuffle partitions per core: Spark's default of 200 costs seconds per shuffle on
        # a laptop (every dedup round has several), a fixed small number starves a cluster.
        # Outputs do not depend on it (shards are keyed by id hash; tests/test_cluster.py).
        session.conf.set("spark.sql.shuffle.partitions", str(max(2, 2 * session.sparkContext.defaultParallelism)))
    return session


def _session_settings(progress: bool, ui: bool, driver_memory: str | None) -> dict[str, str]:
    """curate's Spark settings (``driver_memory``: None when spark-submit already set it)."""
    settings = {
        "spark.ui.enabled": "true" if ui else "false",
        "spark.ui.showConsoleProgress": "true" if progress else "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.pythonUDF.arrow.enabled": "true",
        "spark.sql.adaptive.enabled": "false",  # fixed partitioning keeps outputs reproducible
        # Our joins are by document id between tables of the same size class; a broadcast
        # join runs its small side as a separate Spark job, which costs more than it saves
        # (dedup on 1,800 documents: 34 s with broadcasts, 12 s without).
        "spark.sql.autoBroadcastJoinThreshold": "-1",
        "spark.python.worker.reuse": "true",
        "spark.executorEnv.PYSPARK_PYTHON": python_for_workers(),
    }
    if driver_memory is not None:
        settings["spark.driver.memory"] = driver_memory
    return settings


def _start_with_class_archive(builder: SparkSession.Builder, settings: dict[str, str], starts_jvm: bool) -> SparkSession:
    """The session, its driver JVM mapping the class archive when one exists (a JVM curate starts).

    A JVM that dies mapping the archive (damaged on disk) must not cost the run: the archive is
    deleted and the session started without it.
    """
    base_options = _driver_java_options(settings.get("spark.driver.extraJavaOptions", ""), starts_jvm)
    if base_options:
        settings["spark.driver.extraJavaOptions"] = base_options
    archive = class_archive.existing() if starts_jvm else None
    if archive is not None:
        settings["spark.driver.extraJavaOptions"] = f"{base_options} {class_archive.java_options_for_use(archive)}".strip()
    for key, value in settings.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as e:
        if archive is None or "JAVA_GATEWAY_EXITED" not in str(e):
            raise
        log.warning("Spark's JVM did not start with the class archive %s; deleting it and starting without", archive)
        class_archive.discard(archive)
        return builder.config("spark.driver.extraJavaOptions", base_options).getOrCreate()


def _starts_the_jvm(launched_by_submit: bool) -> bool:
    """Whether this call launches the driver JVM (not spark-submit, no session yet)."""
    from pyspark import SparkContext

    return not launched_by_submit and SparkContext._active_spark_context is None


# C1 only: the driver JVM's work is planning queries and moving Arrow batches between the
# Python workers and Parquet; C2 spends more CPU compiling that than it saves in a run of
# minutes (5,000-record local[2] run: JVM 16-17 CPU-s with C2, 8.5-8.9 s without, first job
# ~1 s earlier, the part after segment 0 ~1.5 s shorter; bench/README.md).
QUICK_JIT = "-XX:TieredStopAtLevel=1"


def _driver_java_options(options: str, starts_jvm: bool) -> str:
    """The user's driver options, plus the C1-only JIT for a JVM curate launches.

    Left out when the user's options choose a JIT themselves, or with
    ``CURATE_JVM_QUICK_JIT=off`` (or ``CURATE_SPEEDUPS=off``). Executors (on a cluster) are never touched.
    """
    if not starts_jvm or not speedups.enabled("quick_jit"):
        return options
    if "TieredStopAtLevel" in options or "TieredCompilation" in options:
        return options
    return f"{options} {QUICK_JIT}".strip()


def _submitted_conf() -> dict[str, str]:
    # spark-submit passes its settings to the Python driver through this variable's JVM; the
    # simplest reliable signal is the PYSPARK_GATEWAY env var that spark-submit always sets.
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        return {"spark.master": "submitted"}
    return {}
