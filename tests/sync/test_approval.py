"""sync.approval, pure: the ``deletion-approved`` annotation (RFC3339 only, compared at second precision with
the moment it must follow), the value ``app confirm-deletion`` writes, sync options resolved resource first then
app-wide, and ``requiresDeletionConfirmation`` (reference §0, §1.10, §2.4)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from sync import approval

KEY = approval.DELETION_APPROVED
START = datetime(2026, 3, 1, 12, 0, 0, 400_000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "approved"),
    [
        pytest.param("2026-03-01T12:00:00Z", True, id="same-second"),
        pytest.param("2026-03-01T13:00:01+01:00", True, id="offset"),
        pytest.param("2026-03-01t12:00:05.5z", True, id="lowercase-fraction"),
        pytest.param("2026-03-01T11:59:59Z", False, id="before"),
        pytest.param("2026-03-01T12:00:05", False, id="no-offset"),
        pytest.param("2026-03-01 12:00:05Z", False, id="space"),
        pytest.param("2026-13-01T12:00:05Z", False, id="no-such-month"),
        pytest.param("now", False, id="words"),
        pytest.param(None, False, id="absent"),
    ],
)
def test_an_approval_counts_only_from_the_moment_it_must_follow(value: str | None, approved: bool) -> None:
    annotations: dict[str, Any] = {} if value is None else {KEY: value}
    assert approval.approved_since(annotations, START) is approved


def test_the_written_value_is_utc_seconds_and_approves_its_own_moment() -> None:
    now = datetime(2026, 3, 1, 13, 0, 0, 900_000, tzinfo=timezone(timedelta(hours=1)))
    value = approval.approval_value(now)
    assert value == "2026-03-01T12:00:00Z"
    assert approval.approved_since({KEY: value}, now)


def _obj(options: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x"}
    if options is not None:
        meta["annotations"] = {"argocd.argoproj.io/sync-options": options}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta}


def test_an_option_comes_from_the_resource_first_then_the_app() -> None:
    assert approval.option([_obj("Prune=true"), _obj("Prune=confirm")], ["Prune=false"], "Prune") == "true"
    assert approval.option([_obj(), _obj("Delete=confirm")], [], "Delete") == "confirm"
    assert approval.option([_obj()], ["Delete=false", "Delete=confirm"], "Delete") == "confirm"
    assert approval.option([_obj()], [], "Delete") is None


@pytest.mark.parametrize(
    ("target", "live", "app", "expected"),
    [
        pytest.param(_obj("Prune=confirm"), None, [], True, id="target-prune"),
        pytest.param(None, _obj("Delete=confirm"), [], True, id="live-delete"),
        pytest.param(_obj(), _obj(), ["Prune=confirm"], True, id="app-prune"),
        pytest.param(_obj("Prune=true"), None, ["Prune=confirm"], False, id="resource-overrides-app"),
        pytest.param(_obj("Prune=false"), _obj(), ["Delete=confirm"], True, id="app-delete"),
        pytest.param(_obj(), _obj(), ["Prune=false"], False, id="nothing"),
    ],
)
def test_requires_deletion_confirmation(
    target: dict[str, Any] | None, live: dict[str, Any] | None, app: list[str], expected: bool
) -> None:
    assert approval.requires_confirmation(target, live, app) is expected
