"""curate/run_output.py: how a run's output is claimed, refused, resumed, overwritten and committed,
on a local folder and on moto's S3 server (no Spark: the job calls exactly these)."""

from __future__ import annotations

import os

import pytest

from curate.run_output import RunExistsError, RunLockedError, RunOutput
from servers import moto_server, s3_client, s3_storage_options


@pytest.fixture(scope="module")
def s3_options():
    with moto_server() as server:
        s3_client(server, "runs")
        yield {"s3": s3_storage_options(server)}


@pytest.fixture(params=["local", "s3"])
def where(request, tmp_path, s3_options, monkeypatch) -> tuple[str, dict]:
    monkeypatch.setenv("CURATE_WORK_DIR", str(tmp_path / "cache"))
    if request.param == "local":
        return str(tmp_path / "out"), {}
    return f"s3://runs/{tmp_path.name}", s3_options


def finished_run(destination: str, options: dict, fingerprint: str = "hash-a") -> RunOutput:
    """A run that wrote one shard and committed (what CurationJob does around Spark)."""
    out = RunOutput(destination, options)
    assert out.prepare(fingerprint, overwrite=False, resume=False, holder=f"curate run {destination}") is None
    os.makedirs(os.path.join(out.staging, "documents"), exist_ok=True)
    with open(os.path.join(out.staging, "documents", "part-00000.parquet"), "wb") as fh:
        fh.write(b"PAR1 shard PAR1")
    out.publish({"recipe_hash": fingerprint, "output": out.shown}, lambda folder, manifest: "")
    out.finish(keep_work=False)
    return out


def test_a_second_run_is_refused_naming_the_first(where):
    destination, options = where
    first = RunOutput(destination, options)
    first.prepare("hash-a", overwrite=False, resume=False, holder=f"curate run {destination}")
    try:
        with pytest.raises(RunLockedError, match=rf"output {destination} is in use by curate run {destination} \(pid {os.getpid()} on "):
            RunOutput(destination, options).prepare("hash-a", overwrite=True, resume=False, holder="curate run second")
    finally:
        first.abandon()
    assert first.store.read_bytes("_lock.json") is None


def test_a_finished_run_is_committed_by_its_manifest_and_protected(where):
    destination, options = where
    out = finished_run(destination, options)
    assert out.store.files_under() == ["documents/part-00000.parquet", "manifest.json"]
    again = RunOutput(destination, options)
    with pytest.raises(RunExistsError, match="already holds a finished run; pass --resume"):
        again.prepare("hash-a", overwrite=False, resume=False, holder="x")
    assert again.prepare("hash-a", overwrite=False, resume=True, holder="x") == {"recipe_hash": "hash-a", "output": out.shown}
    with pytest.raises(RunExistsError, match=r"holds a finished run of a different recipe \(hash hash-a\)"):
        again.prepare("hash-b", overwrite=False, resume=True, holder="x")
    assert again.prepare("hash-b", overwrite=True, resume=False, holder="x") is None
    assert [f for f in again.store.files_under() if not f.startswith("_work/")] == ["_lock.json"]  # a local run's _work is inside
    again.finish(keep_work=False)
    assert again.store.files_under() == []


def test_an_unfinished_run_needs_resume_or_overwrite(where):
    destination, options = where
    out = RunOutput(destination, options)
    out.prepare("hash-a", overwrite=False, resume=False, holder="a run that dies")
    os.makedirs(os.path.join(out.staging, "documents"), exist_ok=True)
    out.store.write_bytes(b"an upload that finished before the run died", "documents", "part-00000.parquet")
    out.abandon()  # the run died: its work folder stays for --resume
    with pytest.raises(RunExistsError, match="already holds an unfinished run"):
        RunOutput(destination, options).prepare("hash-a", overwrite=False, resume=False, holder="x")
    with pytest.raises(RunExistsError, match="holds an unfinished run of a different recipe"):
        RunOutput(destination, options).prepare("hash-b", overwrite=False, resume=True, holder="x")
    resumed = RunOutput(destination, options)
    assert resumed.prepare("hash-a", overwrite=False, resume=True, holder="x") is None
    assert os.path.isdir(os.path.join(resumed.staging, "documents"))  # the finished work is still there
    resumed.abandon()
