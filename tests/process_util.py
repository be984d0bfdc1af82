"""Run a snippet in a fresh interpreter: for what a Spark worker process sees on its own
(which modules an import brings in, what a first call loads)."""

from __future__ import annotations

import subprocess
import sys


def fresh_python(code: str, timeout: float = 120) -> str:
    """stdout of ``code`` run by this interpreter in a new process; fails the test on a non-zero exit."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout
