"""The live progress of ``syncwarden app sync``: on a terminal a Rich table of every resource under the
operation's phase; otherwise one line per changed resource result and per phase change, never repeated; and
the ``--resource`` syntax."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest
import typer
from rich.console import Console

from api.cli.app_sync import Progress, parse_resource
from sync.engine_request import SelectedResource
from sync.hooks import Phase
from sync.models import ResourceKey
from sync.operation import OperationPhase, OperationState, ResourceResult, ResultCode, TaskPhase

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _state(*results: ResourceResult, phase: OperationPhase = OperationPhase.RUNNING, message: str = "") -> OperationState:
    state = OperationState.new("op1", started_at=T0)
    state.phase, state.message, state.results = phase, message, list(results)
    return state


def _result(name: str, task: TaskPhase, *, wave: int = 0, phase: Phase = Phase.SYNC) -> ResourceResult:
    return ResourceResult(ResourceKey("apps", "Deployment", "demo", name), phase, ResultCode.SYNCED, task,
                          message=f"{name} {task.value}", wave=wave)


def test_lines_show_each_change_once() -> None:
    lines: list[str] = []
    progress = Progress("lines", write=lines.append)
    with progress:
        progress.update(_state(_result("a", TaskPhase.RUNNING), message="waiting for healthy state"))
        progress.update(_state(_result("a", TaskPhase.RUNNING), message="waiting for healthy state"))
        progress.update(_state(_result("a", TaskPhase.SUCCEEDED), _result("b", TaskPhase.RUNNING, wave=2)))
    assert lines == [
        "  Sync     wave   0  apps/Deployment/demo/a  Synced  Running  a Running",
        "operation op1: Running: waiting for healthy state",
        "  Sync     wave   0  apps/Deployment/demo/a  Synced  Succeeded  a Succeeded",
        "  Sync     wave   2  apps/Deployment/demo/b  Synced  Running  b Running",
        "operation op1: Running",
    ]


def test_live_table_on_a_terminal() -> None:
    buffer = io.StringIO()
    out = Console(file=buffer, force_terminal=True, width=160, color_system=None)
    progress = Progress("live", out=out)
    with progress:
        progress.update(_state(_result("a", TaskPhase.RUNNING, phase=Phase.PRE_SYNC)))
        progress.update(_state(_result("a", TaskPhase.SUCCEEDED, phase=Phase.PRE_SYNC),
                               phase=OperationPhase.SUCCEEDED, message="successfully synced"))
    text = buffer.getvalue()
    assert "operation op1: Succeeded successfully synced" in text
    assert "PreSync" in text and "apps/Deployment/demo/a" in text and "a Succeeded" in text


def test_quiet_prints_nothing() -> None:
    lines: list[str] = []
    progress = Progress("quiet", write=lines.append)
    progress.update(_state(_result("a", TaskPhase.RUNNING)))
    assert lines == [] and progress.last is not None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("apps:Deployment:demo/web", SelectedResource("apps", "Deployment", "web", "demo")),
        (":ConfigMap:settings", SelectedResource("", "ConfigMap", "settings", "")),
    ],
)
def test_parse_resource(text: str, expected: SelectedResource) -> None:
    assert parse_resource(text) == expected


@pytest.mark.parametrize("text", ["Deployment", "apps::web", "apps:Deployment:", "apps:Deployment:demo/"])
def test_parse_resource_rejects(text: str) -> None:
    with pytest.raises(typer.Exit) as info:
        parse_resource(text)
    assert info.value.exit_code == 2
