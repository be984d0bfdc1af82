"""Faults: a killed Python worker, a killed or terminated driver, reruns of a finished run, a full disk,
unreadable input, a corrupt model file. ``docs/faults.md`` has the table: fault, what the run does, what is
kept, which test here proves it.

What the job promises (docs/cluster.md, "Faults and reruns"):

* a killed Python worker fails its task; Spark retries it (``spark.task.maxFailures``) and the
  output is byte-identical to a clean run; a reader of ``documents/``, ``rejected/`` or
  ``tokens/`` never sees a partial or duplicate shard, because shards appear by rename;
* a rerun into the folder of a finished run refuses (exit code 3) unless ``--overwrite`` or
  ``--resume`` is given; ``--resume`` on a finished run of the same recipe returns its
  manifest and writes nothing; ``--resume`` after a crash (SIGKILL or SIGTERM of the driver)
  reuses every stage segment whose ``_SUCCESS`` exists and produces the same files as a clean run;
* a shard write that fails (disk full) leaves no visible shard, only a temporary file the next
  finished run removes; a corrupt model file or an unreadable input is named in the error.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pyarrow.parquet as pq
import pytest

from cluster_util import PYTHON, ROOT, SHARD_FOLDERS, shard_digests, tokenizer_path, write_jsonl_corpus, write_smoke_recipe

# Big enough that tokenizing one partition takes a noticeable time on one core, so a worker can be
# caught busy; small enough that a run takes well under a minute.
FILES, PER_FILE, SHARDS = 4, 1000, 3


def curate_command(recipe: Path, output: Path, *flags: str, master: str = "local[2,4]") -> list[str]:
    # local[N,F]: N cores and F attempts per task (plain local[N] never retries a task)
    return [PYTHON, "-m", "curate.pipeline", str(recipe), "--output", str(output), "--master", master, *flags]


def run_curate(recipe: Path, output: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(curate_command(recipe, output, *flags), cwd=str(ROOT), capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def recipe(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("faults")
    write_jsonl_corpus(work / "in", files=FILES, per_file=PER_FILE)
    return write_smoke_recipe(work / "faults.yaml", str(work / "in" / "*.jsonl"), tokenizer_path(work), str(work / "unused"), shards=SHARDS)


@pytest.fixture(scope="module")
def clean_run(recipe, spark, tmp_path_factory) -> Path:
    """The reference: the recipe run without faults, on the test session's local Spark (no
    second JVM to start; the faulted runs below are `curate run` processes of their own)."""
    from curate.pipeline import run_recipe

    output = tmp_path_factory.mktemp("clean") / "run"
    run_recipe(str(recipe), output=str(output), spark=spark)
    return output


class ShardWatcher(threading.Thread):
    """Polls the output folders during a run; records any visible shard that does not open."""

    def __init__(self, run_dir: Path):
        super().__init__(daemon=True)
        self.run_dir = run_dir
        self.stop_event = threading.Event()
        self.bad: list[str] = []
        self.seen: set[str] = set()

    def run(self) -> None:
        while not self.stop_event.is_set():
            for folder in SHARD_FOLDERS:
                for path in (self.run_dir / folder).glob("*.parquet"):
                    try:
                        pq.ParquetFile(path).metadata  # footer present = the file is complete
                        self.seen.add(str(path.relative_to(self.run_dir)))
                    except FileNotFoundError:
                        pass  # only possible if something deleted a visible shard; caught below
                    except Exception as e:  # noqa: BLE001 - any other failure is a partial file
                        self.bad.append(f"{path}: {e}")
            time.sleep(0.05)


def busy_python_worker(root_pid: int) -> psutil.Process | None:
    """A forked ``pyspark.daemon`` child (a Python worker) of the run that is using CPU now."""
    try:
        tree = psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    daemons = [p for p in tree if _is_daemon(p)]
    for daemon in daemons:
        for worker in daemon.children():
            try:
                before = sum(worker.cpu_times()[:2])
                time.sleep(0.05)
                if sum(worker.cpu_times()[:2]) > before:
                    return worker
            except psutil.NoSuchProcess:
                continue
    return None


def _is_daemon(proc: psutil.Process) -> bool:
    try:
        return "pyspark.daemon" in " ".join(proc.cmdline())
    except psutil.Error:
        return False


def assert_clean_folders(run_dir: Path) -> None:
    for folder in SHARD_FOLDERS:
        names = sorted(p.name for p in (run_dir / folder).iterdir())
        prefix = "shard" if folder == "tokens" else "part"
        assert names == [f"{prefix}-{i:05d}.parquet" for i in range(SHARDS)], (folder, names)


def test_killed_python_worker_is_retried_and_output_is_identical(recipe, clean_run, tmp_path):
    output = tmp_path / "run"
    proc = subprocess.Popen(
        curate_command(recipe, output), cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    watcher = ShardWatcher(output)
    watcher.start()
    killed = None
    try:
        deadline = time.time() + 600
        while killed is None and proc.poll() is None and time.time() < deadline:
            worker = busy_python_worker(proc.pid)
            if worker is not None:
                worker.kill()
                killed = worker.pid
            time.sleep(0.02)
        stdout, stderr = proc.communicate(timeout=900)
    finally:
        watcher.stop_event.set()
        watcher.join()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert killed is not None, "no busy Python worker was found during the run"
    assert proc.returncode == 0, stderr[-3000:]
    assert "Lost task" in stderr or "Python worker exited unexpectedly" in stderr, "the kill did not fail a task"
    assert watcher.bad == []
    assert_clean_folders(output)
    assert shard_digests(output) == shard_digests(clean_run)


def stop_driver_after_segment_0(recipe: Path, output: Path, how: str) -> int:
    """Start a run, wait for segment 0's ``_SUCCESS``, then stop the driver; its exit status.

    ``kill``: SIGKILL to the driver and its JVM (a crash, no clean-up); ``term``: SIGTERM to the
    driver process alone, as a scheduler or ``kill`` sends it (its JVM is left to notice)."""
    proc = subprocess.Popen(
        curate_command(recipe, output), cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    success = output / "_work" / "seg0" / "_SUCCESS"
    try:
        deadline = time.time() + 600
        while not success.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert success.exists(), "segment 0 never finished"
    finally:
        if how == "term":
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            finally:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        gone = time.time() + 60  # the JVM of a terminated driver exits when its gateway's stdin closes
        while _group_alive(proc.pid) and time.time() < gone:
            time.sleep(0.2)
        assert not _group_alive(proc.pid), "processes of the stopped run are still alive"
    return proc.returncode


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def test_killed_driver_then_resume_reuses_finished_segments(recipe, clean_run, tmp_path):
    output = tmp_path / "run"
    assert stop_driver_after_segment_0(recipe, output, "kill") == -signal.SIGKILL
    assert not (output / "manifest.json").exists()
    seg0 = {p.name: p.stat().st_mtime_ns for p in (output / "_work" / "seg0").iterdir()}

    refused = run_curate(recipe, output)
    assert refused.returncode == 3
    assert "already holds an unfinished run" in refused.stderr

    resumed = run_curate(recipe, output, "--resume", "--keep-work")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert {p.name: p.stat().st_mtime_ns for p in (output / "_work" / "seg0").iterdir()} == seg0  # not recomputed
    assert_clean_folders(output)
    assert shard_digests(output) == shard_digests(clean_run)


def test_rerun_of_a_finished_run_refuses_or_resumes_without_writing(recipe, clean_run):
    before = {p: p.stat().st_mtime_ns for p in clean_run.rglob("*") if p.is_file()}
    refused = run_curate(recipe, clean_run)
    assert refused.returncode == 3
    assert "already holds a finished run; pass --resume to reuse completed work or --overwrite to start again" in refused.stderr

    resumed = run_curate(recipe, clean_run, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "documents out" in resumed.stdout
    assert {p: p.stat().st_mtime_ns for p in clean_run.rglob("*") if p.is_file()} == before


def test_sigterm_to_the_driver_leaves_an_unfinished_run_that_resumes_identical(recipe, clean_run, tmp_path):
    # curate installs no SIGTERM handler: Python's default ends the driver at once, like a crash, and the
    # folder says so; nothing half-written is visible and --resume finishes it
    output = tmp_path / "run"
    assert stop_driver_after_segment_0(recipe, output, "term") == -signal.SIGTERM
    assert not (output / "manifest.json").exists()
    assert [p for folder in SHARD_FOLDERS for p in (output / folder).glob("*.parquet")] == []
    assert run_curate(recipe, output).returncode == 3  # refuses: an unfinished run
    resumed = run_curate(recipe, output, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_clean_folders(output)
    assert shard_digests(output) == shard_digests(clean_run)


DISK_FULL_WRITER = """
import os, resource, signal, sys
import pyarrow as pa
from curate.schema import documents_from_pylist, DOCUMENT_SCHEMA
from curate.spark.shard_writers import ShardFiles

folder = sys.argv[1]
rows = [{"id": f"d{i:05d}", "source": "web", "text": " ".join(str(i * k) for k in range(300))} for i in range(2000)]  # distinct: no dictionary
batch = documents_from_pylist(rows)
writer = ShardFiles(folder, "part", DOCUMENT_SCHEMA, "none", 256, None)
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with an error instead of a signal
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))  # the disk is full after 1 MiB
try:
    writer.add(0, batch)
    writer.close()
except OSError as e:
    print("write failed:", e.strerror)
    sys.exit(0)
sys.exit("the write did not fail")
"""


def test_disk_full_while_writing_a_shard_leaves_no_visible_partial_shard(tmp_path):
    # A file-size limit makes write() fail in the middle of a shard exactly as ENOSPC does (EFBIG); the
    # task would fail and be retried, and after the retries the run stops unfinished, for --resume.
    from curate.shards import list_shards, remove_temporaries

    folder = tmp_path / "documents"
    done = subprocess.run([PYTHON, "-c", DISK_FULL_WRITER, str(folder)], cwd=str(ROOT), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "write failed: Error writing bytes to file. Detail: [errno 27] File too large"  # EFBIG
    assert list_shards(str(folder)) == []  # readers see no shard at all, not a truncated one
    leftovers = os.listdir(folder)
    assert len(leftovers) == 1 and leftovers[0].startswith(".part-00000.parquet.tmp-")
    assert remove_temporaries(str(folder)) == 1  # what a finished run does with a failed attempt's file


def test_a_corrupt_extractor_model_is_named_before_any_work(tmp_path):
    from curate.recipe import RecipeError, parse_recipe
    from curate.extract_blocks import MODEL_PATH
    from recipe_util import one_stage_recipe

    corrupt = tmp_path / "model.npz"
    corrupt.write_bytes(Path(MODEL_PATH).read_bytes()[:50_000])  # a copy cut short
    recipe = one_stage_recipe(tmp_path, "hello", {"stage": "extract", "model_path": str(corrupt)})
    with pytest.raises(RecipeError, match=r"stages\[0\]: .*model\.npz: not a readable block extractor model \(BadZipFile"):
        parse_recipe(recipe, check_files=True)  # the recipe is read before a Spark session starts


def test_an_unreadable_local_input_is_named(tmp_path, data_dir):
    # A local input that cannot be read (a directory in place of a file, a file deleted after listing)
    # follows reading.on_error like a stored file: skipped and named (default), or the run stops naming it.
    from curate.recipe import SourceSpec
    from curate.sources import InputAccess, InputFailedError, read_source
    from curate.stage import Counters

    (tmp_path / "in.warc.gz").mkdir()
    source = SourceSpec(name="web", kind="warc", paths=[str(tmp_path / "*.warc.gz")])
    for path, reason in ((tmp_path / "in.warc.gz", "unreadable"), (tmp_path / "gone.warc.gz", "not_found")):
        counters, problems = Counters(), []
        assert list(read_source(source, str(path), counters, problems)) == []
        assert counters[f"storage.failed_files:{reason}"] == 1
        assert problems[0].startswith(f"{path}: unreadable after 1 attempt(s) ({reason}: ") and problems[0].endswith(
            "; skipped (reading.on_error: skip)"
        )
        with pytest.raises(InputFailedError, match=re.escape(str(path))):
            list(read_source(source, str(path), Counters(), [], access=InputAccess(on_error="fail")))
