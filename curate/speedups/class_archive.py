"""A per-machine JVM class archive (AppCDS) that halves Spark's start-up in local mode.

Starting the driver JVM and its first Spark job loads and verifies some 15,000 classes from
Spark's jars, about 8 s of a local run on a 2-core machine. Java 13+ can record the classes a
run loads into an archive (``-XX:ArchiveClassesAtExit``) and map it at the next start
(``-XX:SharedArchiveFile``): on the benchmark box the session started in 3.4-3.7 s instead of
5.6-7.8 s and the first job took 1.4-1.7 s instead of 2.5-3.2 s (``bench/README.md``).

How it is kept safe:

* The archive is built on request (``curate warm-cache``), once per (Java binary, pyspark
  install), by a separate, short training run (``curate.spark.class_archive_run``), never by a run: building it
  costs a fresh machine ~45 s and ~190 MB, more than it ever saves that first run. A run
  uses it when it exists (:func:`existing`). The training run is a Spark session that runs
  the kinds of jobs curate runs (Arrow maps, Parquet, shuffles, windows, joins), stopped and waited for, so the JVM has finished writing
  the archive before it is renamed into place. A half-written archive can crash the JVM, so
  nothing but a complete one ever carries the final name.
* It lives in ``$CURATE_CACHE_DIR`` (default ``~/.cache/curate``), ``jvm-classes-<key>.jsa``,
  where the key hashes the Java binary (path, size, mtime), the pyspark version, and where its
  jars are and which (name, size, modification time): another JDK, Spark or virtual
  environment, or one re-created at the same path, gets another archive (the JVM only uses an
  archive made with the same class path and the same jar files). A JVM that finds the archive does not
  match its class path ignores it (``-Xshare:auto``, the default).
* ``curate.spark.session`` retries without the archive, and deletes it, if a JVM started with
  it exits before Spark comes up.
* ``CURATE_JVM_CLASS_ARCHIVE=off`` or ``CURATE_SPEEDUPS=off`` turns it off; a cache folder that
  cannot be written does too.

Only JVMs that curate itself launches use it (``curate run``, local or with ``--master``); under
``spark-submit`` the JVM is already running when Python starts.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import time

from curate import speedups

log = logging.getLogger(__name__)

# The training run is a Spark program, so it lives with the session it starts
# (curate/spark/class_archive_run.py): a speed-up never imports the module it speeds up.
TRAINING_RUN = "curate.spark.class_archive_run"

# -Xlog: the archive step logs one warning per class it cannot store (signed jars, old class
# versions); at start-up a mismatched archive would warn too. Neither helps a user.
QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def enabled() -> bool:
    return speedups.enabled("class_archive")


def cache_dir() -> str:
    return os.environ.get("CURATE_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "curate")


def _java_binary() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    candidate = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    return os.path.realpath(candidate) if candidate and os.path.exists(candidate) else None


def archive_path() -> str | None:
    """Where this machine's archive for this Java and this pyspark lives (None: no Java found)."""
    import pyspark

    java = _java_binary()
    if java is None:
        return None
    stat = os.stat(java)
    jars_dir = os.path.join(os.path.dirname(pyspark.__file__), "jars")
    # The JVM checks each jar's size and modification time against the archive: a virtual
    # environment re-created at the same path must get a new archive, not one it ignores.
    jars = []
    for name in sorted(os.listdir(jars_dir)) if os.path.isdir(jars_dir) else []:
        jar = os.stat(os.path.join(jars_dir, name))
        jars.append(f"{name} {jar.st_size} {int(jar.st_mtime)}")
    spark_home = os.environ.get("SPARK_HOME", "")
    key = hashlib.sha1(
        "\n".join([java, str(stat.st_size), str(int(stat.st_mtime)), pyspark.__version__, spark_home, jars_dir, *jars]).encode()
    ).hexdigest()[:16]
    return os.path.join(cache_dir(), f"jvm-classes-{key}.jsa")


def java_options_for_use(path: str) -> str:
    # A JVM that crashes on a bad archive writes hs_err_pid*.log into the working folder by default.
    return f"-XX:SharedArchiveFile={path} {QUIET} -XX:ErrorFile={os.path.join(os.path.dirname(path), 'hs_err_pid%p.log')}"


def existing() -> str | None:
    """The archive's path when it is on and already built; never builds (a run's critical path calls this)."""
    if not enabled():
        return None
    try:
        path = archive_path()
    except OSError:
        return None
    return path if path is not None and os.path.exists(path) else None


def ensure(timeout_s: float = 600) -> str | None:
    """The archive's path, building it first if needed; None when off or it cannot be built."""
    if not enabled():
        return None
    try:
        path = archive_path()
        if path is None:
            return None
        if os.path.exists(path):
            return path
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as e:
        log.info("JVM class archive: cache folder not usable (%s); starting Spark without it", e)
        return None
    import fcntl

    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a second process waits here, then finds the archive
        if os.path.exists(path):
            return path
        print(
            f"curate: building the JVM class archive for faster Spark start-up (once per machine and Python environment; delete the file to reclaim its space): {path}",
            file=sys.stderr,
        )
        env = dict(os.environ, **{speedups.ITEMS["class_archive"]: "off"})
        started = time.time()
        try:
            done = subprocess.run(
                [sys.executable, "-m", TRAINING_RUN, path],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            log.warning("JVM class archive: training run took over %.0f s; starting Spark without it", timeout_s)
            return None
        if done.returncode != 0 or not os.path.exists(path):
            log.warning(
                "JVM class archive: training run failed (exit %s); starting Spark without it: %s", done.returncode, done.stderr[-2000:]
            )
            return None
        log.info("JVM class archive built in %.1f s: %s", time.time() - started, path)
        return path


def discard(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
