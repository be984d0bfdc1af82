"""Shared fixtures: paths to the bundled real data, and one local Spark session per test run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"

os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def spark():
    from curate.spark.session import spark_session

    session = spark_session("curate-tests", master="local[2]", progress=False, conf={"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()
