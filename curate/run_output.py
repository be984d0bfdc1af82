"""Where a run's output goes, and how it is committed: a local folder or an object-store prefix.

A run writes its files into a local folder (``staging``) with the shard writers' temporary
name + rename; for a local output that folder *is* the output. For an object-store output
(``s3://bucket/runs/x``) staging is a work folder: each shard is uploaded to its
deterministic key by the task that wrote it (curate/spark/shard_writers.py), and
:meth:`RunOutput.publish` uploads the rest (an upload is invisible until it is complete),
then ``report.html``, then ``manifest.json`` last: the manifest is the commit marker, as on a
local disk. Either way:

* ``_lock.json`` at the output, created only if absent, names the run writing it; a second
  run is refused with that name. A lock whose holder is gone (same host, process dead; or
  not renewed for ten minutes) is broken by the next run.
* ``--resume`` reuses the finished stage segments in the work folder and returns a finished
  run's manifest; ``--overwrite`` deletes what is there (after taking the lock).
"""

from __future__ import annotations

import os
import shutil

from curate.shards import TMP_MARK
from curate.store import LockedError, Store, StoreLock, is_stale
from curate.storage import StorageOptions, display_url, is_remote, local_cache, local_path

LOCK_NAME = "_lock.json"
MANIFEST = "manifest.json"
WORK = "_work"
# Uploads at once from the driver when publishing an object-store output (CURATE_UPLOAD_THREADS).
UPLOAD_THREADS = 8


class RunExistsError(RuntimeError):
    pass


class RunLockedError(RunExistsError):
    """Another run is writing this output."""


class RunOutput:
    def __init__(self, destination: str, storage_options: StorageOptions | None = None, work_dir: str | None = None):
        self.remote = is_remote(destination)
        self.destination = destination.rstrip("/") if self.remote else local_path(destination)
        self.store = Store(self.destination, storage_options)
        if self.remote:
            self.staging = local_path(work_dir) if work_dir else local_cache("work", self.destination)
        else:
            self.staging = self.destination
        self.work = local_path(work_dir) if (work_dir and not self.remote) else os.path.join(self.staging, WORK)
        self.lock = StoreLock(self.store, LOCK_NAME, f"output {self.shown}")

    @property
    def shown(self) -> str:
        return display_url(self.destination)

    def join(self, *parts: str) -> str:
        """A path of the output as a user reads it (URL or local path)."""
        return self.store.path(*parts)

    # -- before the run ---------------------------------------------------------------------
    def prepare(self, fingerprint: str, overwrite: bool, resume: bool, holder: str) -> dict | None:
        """Refuse to clobber a run or to share one; take the lock. Returns a finished run's manifest on ``resume``."""
        self._refuse_if_held()
        finished = self.store.read_json(MANIFEST)
        existing = [name for name in self.store.listdir() if name != LOCK_NAME]
        if finished is not None and resume:
            if finished.get("recipe_hash") == fingerprint:
                return finished
            raise RunExistsError(
                f"{self.shown}: holds a finished run of a different recipe (hash {finished.get('recipe_hash', '?')[:12]}); "
                "choose another output folder or pass --overwrite"
            )
        if existing and not (overwrite or resume):
            what = "a finished run" if finished is not None else "an unfinished run"
            raise RunExistsError(f"{self.shown}: already holds {what}; pass --resume to reuse completed work or --overwrite to start again")
        marker = os.path.join(self.work, "recipe_hash")
        if resume and os.path.exists(marker) and open(marker).read().strip() != fingerprint:
            raise RunExistsError(f"{self.shown}: holds an unfinished run of a different recipe; pass --overwrite to start again")
        try:
            self.lock.acquire(holder)
        except LockedError as e:
            raise RunLockedError(str(e)) from None
        if overwrite or (self.remote and not resume):
            self.store.delete_all(keep=(LOCK_NAME,))
            self._clear_local()
        os.makedirs(self.work, exist_ok=True)
        with open(marker, "w") as fh:
            fh.write(fingerprint)
        return None

    def _refuse_if_held(self) -> None:
        holder = self.lock.current()
        if holder is not None and not is_stale(holder, self.lock.lease_s):
            raise RunLockedError(self.lock.message(holder))

    def _clear_local(self) -> None:
        if self.remote:
            shutil.rmtree(self.staging, ignore_errors=True)
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # -- after the run ----------------------------------------------------------------------
    def publish(self, manifest: dict, write_report, skip: set[str] = frozenset()) -> None:
        """Upload the staged files (object store) but those in ``skip`` (the shard writers uploaded
        them), then the report, then ``manifest.json`` last."""
        if self.remote:
            files = [rel for rel in Store(self.staging).files_under() if _is_output_file(rel) and rel not in skip]
            self.store.put_files(self.staging, files, threads=int(os.environ.get("CURATE_UPLOAD_THREADS", UPLOAD_THREADS)))
        report = write_report(self.staging, manifest)
        if report and self.remote:
            self.store.put_file(report, "report.html")
        self.store.write_json(manifest, MANIFEST)

    def finish(self, keep_work: bool) -> None:
        """Release the lock; drop the work folder (and, for an object store, the staged copy)."""
        if not keep_work:
            self._clear_local()
        self.lock.release()

    def abandon(self) -> None:
        """A failed run: release the lock, keep the work folder for ``--resume``."""
        self.lock.release()


def _is_output_file(rel: str) -> bool:
    first = rel.split(os.sep, 1)[0]
    name = os.path.basename(rel)
    return first not in (WORK, LOCK_NAME, MANIFEST, "report.html") and TMP_MARK not in name and not name.startswith(".")
