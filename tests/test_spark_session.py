"""curate/spark/session.py: the options of the driver JVM that curate launches."""

from __future__ import annotations

import pytest

from curate.spark.session import QUICK_JIT, _driver_java_options


def test_a_launched_driver_gets_the_c1_only_jit_after_the_users_options(monkeypatch):
    monkeypatch.delenv("CURATE_JVM_QUICK_JIT", raising=False)
    assert _driver_java_options("", True) == QUICK_JIT == "-XX:TieredStopAtLevel=1"
    assert _driver_java_options("-Xss4m -Dx=1", True) == "-Xss4m -Dx=1 -XX:TieredStopAtLevel=1"


@pytest.mark.parametrize("options", ["-XX:TieredStopAtLevel=4", "-XX:-TieredCompilation", "-Xss4m -XX:+TieredCompilation"])
def test_a_jit_the_user_chose_is_kept(monkeypatch, options):
    monkeypatch.delenv("CURATE_JVM_QUICK_JIT", raising=False)
    assert _driver_java_options(options, True) == options


@pytest.mark.parametrize("value", ["off", "0", "false", "no", "OFF"])
def test_switched_off(monkeypatch, value):
    monkeypatch.setenv("CURATE_JVM_QUICK_JIT", value)
    assert _driver_java_options("-Xss4m", True) == "-Xss4m"


def test_a_jvm_started_elsewhere_is_not_touched(monkeypatch):
    # spark-submit (or an earlier session) started it: its options are already fixed
    monkeypatch.delenv("CURATE_JVM_QUICK_JIT", raising=False)
    assert _driver_java_options("-Xss4m", False) == "-Xss4m"


def test_the_test_session_runs_c1_only(spark):
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    assert QUICK_JIT in list(runtime.getInputArguments())
