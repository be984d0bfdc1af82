"""curate/spark/worker_warm_up.py: later stages get ready in the background, once per worker."""

from __future__ import annotations

from curate.spark import worker_warm_up
from curate.stage import Stage


class _Recording(Stage):
    kind = "recording"

    def __init__(self, calls: list, fail: bool = False):
        super().__init__(None)
        self.calls, self.fail = calls, fail

    def warm_up(self) -> None:
        self.calls.append((self.name, worker_warm_up.WorkerState.files_tasks))
        if self.fail:
            raise RuntimeError("a broken model")


def test_later_stages_warm_up_once_per_worker_after_its_segment0_tasks(monkeypatch):
    monkeypatch.setattr(worker_warm_up.WorkerState, "files_tasks", 0)
    monkeypatch.setattr(worker_warm_up.WorkerState, "thread", None)
    calls: list = []
    first, second = _Recording(calls, fail=True), _Recording(calls)
    first.name, second.name = "first", "second"
    worker_warm_up.files_task_started()
    worker_warm_up.files_task_started()  # two tasks: the worker is still busy after the first ends
    worker_warm_up.files_task_ended([first, second])
    thread = worker_warm_up.WorkerState.thread
    assert thread is not None and thread.daemon
    thread.join(0.6)
    assert thread.is_alive() and calls == []  # waits while a segment-0 task runs
    worker_warm_up.files_task_ended([first, second])  # no second thread
    assert worker_warm_up.WorkerState.thread is thread
    thread.join(5)
    # every stage in order, with no task running; the first one's error is left to setup()
    assert not thread.is_alive() and calls == [("first", 0), ("second", 0)]
    worker_warm_up.files_task_started()
    worker_warm_up.files_task_ended([first, second])
    assert worker_warm_up.WorkerState.thread is thread and len(calls) == 2


def test_warm_up_runs_the_stages_own_and_skips_a_stage_without_one():
    calls: list = []
    worker_warm_up.warm_up(_Recording(calls))
    assert calls == [("recording", worker_warm_up.WorkerState.files_tasks)]

    class Plain(Stage):
        kind = "plain"

    worker_warm_up.warm_up(Plain(None))  # nothing to get ready: no error
    assert len(calls) == 1


def test_the_stage_contract_has_no_warm_up():
    assert not hasattr(Stage, "warm_up")
