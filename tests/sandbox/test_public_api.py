"""The public API other packages and tests depend on (names may grow, not shrink): ``sandbox.__all__``,
``start``'s keywords, the ``Sandbox`` members, ``FaultInjector.add``'s parameters, ``RequestRecord``."""

from __future__ import annotations

import inspect
from dataclasses import fields
from pathlib import Path

import sandbox


def test_exported_names() -> None:
    assert set(sandbox.__all__) >= {"ControllerTiming", "FaultInjector", "RequestLog", "RequestRecord",
                                    "Sandbox", "start"}


def test_start_signature() -> None:
    params = inspect.signature(sandbox.start).parameters
    assert list(params)[:4] == ["host", "port", "state_file", "timing"]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert params["host"].default == "127.0.0.1" and params["port"].default == 0


def test_fault_and_record_shapes() -> None:
    params = list(inspect.signature(sandbox.FaultInjector.add).parameters)
    assert params == ["self", "verb", "resource", "name", "status", "retry_after", "latency", "drop", "times"]
    assert [f.name for f in fields(sandbox.RequestRecord)] == ["verb", "path", "body_summary", "time"]


def test_sandbox_members(tmp_path: Path) -> None:
    with sandbox.start() as sb:
        assert sb.url.startswith("http://127.0.0.1:")
        assert isinstance(sb.faults, sandbox.FaultInjector) and isinstance(sb.requests, sandbox.RequestLog)
        assert sb.write_kubeconfig(tmp_path / "k").exists()
        sb.tick()
    sb.stop()  # stopping twice is harmless
