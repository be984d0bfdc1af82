"""A folder on a local disk or under an object-store prefix, with the few operations runs need.

The output of a run and the cross-run dedup index are written through a :class:`Store`, so
both commit the same way wherever they live:

* every object appears whole or not at all: locally a temporary name and a rename; on an
  object store a single PUT, or a multipart upload, which is invisible until completed (an
  upload that dies leaves nothing visible, unlike fsspec's writers, which commit what was
  written when an exception closes them);
* keys are written once, with deterministic names, and a commit marker (``manifest.json``,
  ``part.json``) is written last;
* a lock is an object created only if absent (``O_EXCL`` locally, ``If-None-Match: *`` on S3,
  ``ifGenerationMatch=0`` on GCS), naming its holder: :class:`StoreLock`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from curate.shards import TMP_MARK
from curate.storage import StorageOptions, display_url, filesystem, is_remote, local_path


class Store:
    def __init__(self, root: str, storage_options: StorageOptions | None = None):
        self.remote = is_remote(root)
        self.root = root.rstrip("/") if self.remote else local_path(root)
        self.storage_options = storage_options or {}

    @property
    def fs(self):
        return filesystem(self.root, self.storage_options)

    def path(self, *parts: str) -> str:
        if not parts:
            return self.root
        return "/".join([self.root, *parts]) if self.remote else os.path.join(self.root, *parts)

    def shown(self, *parts: str) -> str:
        return display_url(self.path(*parts))

    def child(self, *parts: str) -> "Store":
        return Store(self.path(*parts), self.storage_options)

    # -- reading ------------------------------------------------------------------------------
    def exists(self, *parts: str) -> bool:
        if not self.remote:
            return os.path.exists(self.path(*parts))
        return self.fs.exists(self.path(*parts))

    def read_bytes(self, *parts: str) -> bytes | None:
        """The object's bytes, or None when there is none."""
        try:
            if not self.remote:
                with open(self.path(*parts), "rb") as fh:
                    return fh.read()
            return self.fs.cat_file(self.path(*parts))
        except FileNotFoundError:
            return None

    def read_json(self, *parts: str) -> dict | None:
        data = self.read_bytes(*parts)
        return None if data is None else json.loads(data)

    def listdir(self, *parts: str) -> list[str]:
        """Names directly under a folder (empty when it does not exist), sorted."""
        target = self.path(*parts)
        if not self.remote:
            return sorted(os.listdir(target)) if os.path.isdir(target) else []
        try:
            self.fs.invalidate_cache(target)
            entries = self.fs.ls(target, detail=False)
        except FileNotFoundError:
            return []
        return sorted({e.rstrip("/").rsplit("/", 1)[-1] for e in entries} - {""})

    def files_under(self, *parts: str) -> list[str]:
        """Every file below a folder, as paths relative to it, sorted."""
        target = self.path(*parts)
        if not self.remote:
            out = []
            for folder, _, names in os.walk(target):
                out += [os.path.relpath(os.path.join(folder, n), target) for n in names]
            return sorted(out)
        try:
            self.fs.invalidate_cache(target)
            found = self.fs.find(target)
        except FileNotFoundError:
            return []
        prefix = self.fs._strip_protocol(target).rstrip("/") + "/"
        return sorted(f[len(prefix) :] for f in found if f.startswith(prefix))

    # -- writing ------------------------------------------------------------------------------
    def write_bytes(self, data: bytes, *parts: str) -> None:
        """Write an object whole: readers see the old one or the new one, never a part."""
        target = self.path(*parts)
        if self.remote:
            self.fs.pipe_file(target, data)
            return
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = os.path.join(os.path.dirname(target), f".{os.path.basename(target)}{TMP_MARK}{uuid.uuid4().hex[:12]}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def write_json(self, data: dict, *parts: str) -> None:
        self.write_bytes((json.dumps(data, indent=2, default=str) + "\n").encode("utf-8"), *parts)

    def create_exclusive(self, data: bytes, *parts: str) -> bool:
        """Create an object only if none exists; False when one does (atomic on every store)."""
        target = self.path(*parts)
        if not self.remote:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            try:
                fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            return True
        try:
            self.fs.pipe_file(target, data, mode="create")
        except FileExistsError:
            return False
        except OSError as e:  # stores that answer 412 Precondition Failed without mapping it
            if "precondition" in str(e).lower() or "412" in str(e):
                return False
            raise
        return True

    def put_file(self, source: str, *parts: str) -> None:
        """Publish a finished local file at a key (a no-op when it is already there)."""
        target = self.path(*parts)
        if not self.remote:
            if os.path.abspath(source) != target:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(source, target + TMP_MARK + "put")
                os.replace(target + TMP_MARK + "put", target)
            return
        self.fs.put_file(source, target)

    def put_files(self, folder: str, files: list[str], *prefix: str, threads: int = 1) -> None:
        """Publish finished local files (paths relative to ``folder``) under ``prefix``; in order when ``threads`` is 1."""

        def put(rel: str) -> None:
            self.put_file(os.path.join(folder, rel), *prefix, *rel.split(os.sep))

        if threads <= 1:
            for rel in files:
                put(rel)
            return
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(put, files))

    def delete(self, *parts: str) -> None:
        target = self.path(*parts)
        try:
            if not self.remote:
                shutil.rmtree(target) if os.path.isdir(target) else os.remove(target)
            else:
                self.fs.rm(target, recursive=True)
        except FileNotFoundError:
            pass

    def delete_all(self, keep: tuple[str, ...] = ()) -> None:
        """Everything under the root except the names in ``keep``."""
        for name in self.listdir():
            if name not in keep:
                self.delete(name)


class LockedError(RuntimeError):
    """Another process holds the lock; the message names it."""


def holder_info(holder: str) -> dict:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": now,
        "holder": holder,
        "token": uuid.uuid4().hex,
        "heartbeat": time.time(),
    }


def is_stale(info: dict, lease_s: float) -> bool:
    """Stale: its holder ran on this host and is gone, or it promised renewals (``renewed``) and
    has not been renewed for ``lease_s``. A lock that is never renewed (a local folder, maybe
    shared over NFS) is never judged by its age."""
    if info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int):
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    heartbeat = info.get("heartbeat")
    return bool(info.get("renewed")) and isinstance(heartbeat, (int, float)) and time.time() - heartbeat > lease_s


class StoreLock:
    """An exclusive lock object in a store, renewed while held so other hosts can tell a dead holder.

    ``lease_s``: a lock from another host not renewed for this long is stale. A lock from this
    host is stale as soon as its process is gone.
    """

    def __init__(self, store: Store, name: str, what: str, lease_s: float = 600.0, renew_s: float = 60.0):
        self.store, self.name, self.what = store, name, what
        self.lease_s, self.renew_s = lease_s, renew_s
        self.info: dict | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def __getstate__(self) -> dict:
        # Stages that hold a lock are pickled into Spark tasks; the renewing thread stays here.
        state = dict(self.__dict__)
        state["_stop"], state["_renewer"] = None, None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._stop = threading.Event()

    def current(self) -> dict | None:
        """The holder's record, or None when nobody holds it ({} when unreadable: held by someone)."""
        try:
            return self.store.read_json(self.name)
        except ValueError:
            return {}

    def message(self, info: dict) -> str:
        who = f"{info.get('holder', '?')} (pid {info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('started', '?')})"
        return (
            f"{self.what} is in use by {who}; two runs must not write it at once. If that run is gone, delete "
            f"{self.store.shown(self.name)} (a lock left by a dead process on this host, or not renewed for "
            f"{self.lease_s:.0f} s, is broken automatically)"
        )

    def acquire(self, holder: str) -> dict:
        info = dict(holder_info(holder), renewed=self.store.remote)
        for _ in range(3):
            if self.store.create_exclusive(json.dumps(info).encode(), self.name):
                self.info = info
                self._start_renewing()
                return info
            current = self.current()
            if current is None:
                continue  # released meanwhile
            if not is_stale(current, self.lease_s):
                raise LockedError(self.message(current))
            self._break(current)
        raise LockedError(self.message(self.current() or {}))

    def _break(self, stale: dict) -> None:
        # Delete only if it is still the stale record (another run may have broken it and
        # taken the lock since we read it); a small window remains on object stores.
        if self.current() == stale:
            self.store.delete(self.name)

    def _start_renewing(self) -> None:
        if not self.store.remote:
            return  # a local lock's holder is checked by pid, never by age
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, name=f"renew {self.name}", daemon=True)
        self._renewer.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.renew_s):
            if self.info is None or self.current() != self.info:
                return  # broken by someone who judged us dead: do not overwrite theirs
            self.info = dict(self.info, heartbeat=time.time())
            self.store.write_json(self.info, self.name)

    def release(self) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join(timeout=5)
            self._renewer = None
        if self.info is not None and self.current() == self.info:
            self.store.delete(self.name)
        self.info = None
