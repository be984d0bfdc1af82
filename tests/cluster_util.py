"""Helpers for the tests that run whole recipes: a Spark standalone cluster on 127.0.0.1,
a small real corpus and tokenizer, and byte-for-byte comparison of two run folders.

The cluster is started from the pyspark that is installed in the venv (``bin/spark-class``),
exactly like a user would start one on a single machine; every daemon runs in its own
process group so that :meth:`StandaloneCluster.stop` can always take all of it down.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WIKITEXT = ROOT / "tests" / "data" / "text" / "wikitext-2-test.txt"
EOS = "<|endoftext|>"


def spark_home() -> str:
    import pyspark

    return os.path.dirname(pyspark.__file__)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- inputs ------------------------------------------------------------------------------------


def wikitext_paragraphs(min_chars: int = 200) -> list[str]:
    lines = WIKITEXT.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if len(line.strip()) >= min_chars]


def write_jsonl_corpus(folder: Path, files: int = 4, per_file: int = 60) -> list[Path]:
    """Real Wikipedia paragraphs (WikiText-2) split over ``files`` JSONL files."""
    folder.mkdir(parents=True, exist_ok=True)
    paragraphs = wikitext_paragraphs()
    paths = []
    for f in range(files):
        path = folder / f"part-{f}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(per_file):
                text = paragraphs[(f * per_file + i) % len(paragraphs)]
                fh.write(json.dumps({"id": f"f{f}-{i}", "text": text, "url": f"https://wiki.example/{f}/{i}"}) + "\n")
        paths.append(path)
    return paths


def tokenizer_path(workdir: Path) -> str:
    """The shipped tokenizer when it exists, else a small BPE trained here on WikiText-2."""
    shipped = ROOT / "models" / "tokenizer" / "tokenizer.json"
    if shipped.exists():
        return str(shipped)
    path = workdir / "tokenizer.json"
    if not path.exists():
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=2000, special_tokens=[EOS], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tok.train_from_iterator(wikitext_paragraphs(50), trainer)
        workdir.mkdir(parents=True, exist_ok=True)
        tok.save(str(path))
    return str(path)


def write_smoke_recipe(
    path: Path, inputs: str, tokenizer: str, output: str, shards: int = 2, stages: str = "[]", master: str = "local[2]"
) -> Path:
    """A recipe that needs no model but the tokenizer: JSONL in, tokenized shards out."""
    stages_block = f"stages: {stages}\n" if stages != "[]" else ""
    path.write_text(
        f"""name: smoke
output: {output}
sources:
  - name: wiki
    kind: jsonl
    paths: ["{inputs}"]
{stages_block}tokenizer:
  path: {tokenizer}
  eos_token: "{EOS}"
shards:
  num_shards: {shards}
  row_group_size: 64
spark:
  master: {master}
  progress: false
""",
        encoding="utf-8",
    )
    return path


# --- outputs -----------------------------------------------------------------------------------

SHARD_FOLDERS = ("documents", "rejected", "tokens")


def shard_digests(run_dir: str | Path) -> dict[str, str]:
    """{relative path: sha256} of every shard file of a run."""
    out = {}
    for folder in SHARD_FOLDERS:
        for path in sorted(glob.glob(os.path.join(str(run_dir), folder, "*"))):
            with open(path, "rb") as fh:
                out[os.path.relpath(path, run_dir)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def package_zip(target: Path) -> Path:
    """``curate/`` as a zip for ``spark-submit --py-files`` (what a user ships to a cluster)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((ROOT / "curate").rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(ROOT).as_posix())
    return target


# --- the cluster -------------------------------------------------------------------------------


class StandaloneCluster:
    """A Spark standalone master and ``workers`` workers on 127.0.0.1, logs under ``workdir``."""

    def __init__(self, workdir: Path, workers: int = 2, cores: int = 1, memory: str = "1g"):
        self.workdir = Path(workdir)
        self.workers = workers
        self.cores = cores
        self.memory = memory
        self.port = free_port()
        self.ui_port = free_port()
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            SPARK_HOME=spark_home(),
            SPARK_LOCAL_IP="127.0.0.1",
            SPARK_LOG_DIR=str(self.workdir / "logs"),
            PYSPARK_PYTHON=PYTHON,
            PYSPARK_DRIVER_PYTHON=PYTHON,
        )
        return env

    def _daemon(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / "logs" / f"{name}.log", "wb")
        proc = subprocess.Popen(
            [os.path.join(spark_home(), "bin", "spark-class"), *args],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() kills the JVM and its children
        )
        self.processes.append(proc)
        return proc

    def start(self, timeout: float = 90.0) -> "StandaloneCluster":
        (self.workdir / "logs").mkdir(parents=True, exist_ok=True)
        try:
            self._daemon(
                "master",
                [
                    "org.apache.spark.deploy.master.Master",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--webui-port",
                    str(self.ui_port),
                ],
            )
            for w in range(self.workers):
                work = self.workdir / f"worker-{w}"
                work.mkdir(exist_ok=True)
                self._daemon(
                    f"worker-{w}",
                    [
                        "org.apache.spark.deploy.worker.Worker",
                        "--host",
                        "127.0.0.1",
                        "--cores",
                        str(self.cores),
                        "--memory",
                        self.memory,
                        "--webui-port",
                        str(free_port()),
                        "--work-dir",
                        str(work),
                        self.url,
                    ],
                )
            self._wait_for_workers(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def status(self) -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as resp:
            return json.load(resp)

    def _wait_for_workers(self, timeout: float) -> None:
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            for proc in self.processes:
                if proc.poll() is not None:
                    raise RuntimeError(f"a Spark daemon exited early (rc {proc.returncode}); logs in {self.workdir / 'logs'}")
            try:
                last = self.status()
                if last.get("aliveworkers", 0) >= self.workers:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"standalone cluster not up after {timeout}s (status: {last}); logs in {self.workdir / 'logs'}")

    def stop(self) -> None:
        for proc in reversed(self.processes):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for proc in reversed(self.processes):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=5)
        self.processes.clear()

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def submit(
        self, recipe: Path, output: Path, py_files: Path, extra_args: list[str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess:
        """``spark-submit --master spark://... --py-files curate.zip pipelines/run_recipe.py RECIPE``."""
        cmd = [
            os.path.join(spark_home(), "bin", "spark-submit"),
            "--master",
            self.url,
            "--py-files",
            str(py_files),
            "--executor-memory",
            self.memory,
            "--total-executor-cores",
            str(self.workers * self.cores),
            "--conf",
            f"spark.pyspark.python={PYTHON}",
            "--conf",
            f"spark.pyspark.driver.python={PYTHON}",
            "--conf",
            "spark.ui.enabled=false",
            str(ROOT / "pipelines" / "run_recipe.py"),
            str(recipe),
            "--output",
            str(output),
            *(extra_args or []),
        ]
        return subprocess.run(cmd, env=self.env(), cwd=str(ROOT), capture_output=True, text=True, timeout=timeout)
