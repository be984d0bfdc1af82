"""Per Python worker process: get the later segments' stages ready while the worker waits.

A worker would otherwise pay for a later stage's imports (spaCy's: ~1 s) at the start of its
first task after a global stage; here a background thread does it as soon as no segment-0
task runs in the process, while the worker waits for its last segment-0 peer and the driver.

What "getting ready" means is a speed concern, not part of the stage contract: a stage that
can get ready ahead carries a ``warm_up()`` method (``dedup``, ``pii``, ...); the others are
skipped. Errors are ignored here: ``setup()`` raises them in the task that needs the stage.

Only touched through the module-level functions below: the closures Spark pickles get a copy
of their module's globals, but module-level functions of an importable module run with the real ones.
"""

from __future__ import annotations

import threading
import time

from curate.stage import Stage


def warm_up(stage: Stage) -> None:
    """Run the stage's own ``warm_up()``, if it has one."""
    own = getattr(stage, "warm_up", None)
    if callable(own):
        own()


class WorkerState:
    files_tasks = 0
    thread: threading.Thread | None = None


def files_task_started() -> None:
    WorkerState.files_tasks += 1


def files_task_ended(later: list[Stage]) -> None:
    WorkerState.files_tasks -= 1
    warm_up_when_idle(later)


def warm_up_when_idle(stages: list[Stage]) -> None:
    """Once per worker process, in a background thread: warm up ``stages`` once no segment-0 task runs here."""
    if WorkerState.thread is not None or not stages:
        return

    def work() -> None:
        time.sleep(0.25)  # a worker with more files has its next task by then
        while WorkerState.files_tasks:
            time.sleep(0.1)
        for stage in stages:
            try:
                warm_up(stage)
            except Exception:  # setup() reports it, in the task that needs the stage
                pass

    WorkerState.thread = threading.Thread(target=work, name="curate-warm-up", daemon=True)
    WorkerState.thread.start()
