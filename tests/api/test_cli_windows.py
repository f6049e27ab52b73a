"""``syncwarden proj windows`` end to end through the real CLI (Typer's runner) on AppProject files.

Aspects covered: the Argo-style window table and its STATUS column; the app verdict (auto/manual), matched and
active windows, next change and transitions; JSON and YAML output; the iCalendar export (VEVENTs, UTC times,
stable UIDs, CRLF and folding); bad input exits 2 naming the file and field (a bad window, an unknown zone, a
YAML error, a missing file, ``--at`` without a zone, selectors without ``--app``, ``--days`` out of range).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli
from config import yamlsafe

PROJECT = """\
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: web
  namespace: argocd
spec:
  sourceRepos: ["*"]
  destinations:
  - server: https://kubernetes.default.svc
    namespace: "*"
  syncWindows:
  - kind: deny
    schedule: "0 22 * * *"
    duration: 1h
    namespaces: ["prod-*"]
    timeZone: Europe/Amsterdam
    manualSync: true
    description: "nightly freeze; backups run"
  - kind: allow
    schedule: "0 8 * * 1-5"
    duration: 10h
    applications: ["web", "api"]
    syncOverrun: true
"""

# Friday 2026-11-20 21:30Z = 22:30 in Amsterdam: the deny window is open, the allow window is shut
AT = "2026-11-20T21:30:00Z"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    path = tmp_path / "project.yaml"
    path.write_text(PROJECT, encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["proj", "windows", *args])
    return result.exit_code, result.stdout, result.stderr


def run_raw(*args: str) -> tuple[int, str]:
    """stdout exactly as written (Click's ``stdout`` turns CRLF into LF)."""
    result = CliRunner().invoke(cli, ["proj", "windows", *args])
    return result.exit_code, result.stdout_bytes.decode("utf-8")


def test_table_lists_windows_like_argo(project: Path) -> None:
    code, out, _ = run("--project", str(project), "--at", AT)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == [
        "ID", "STATUS", "KIND", "SCHEDULE", "DURATION", "APPLICATIONS", "NAMESPACES", "CLUSTERS",
        "MANUALSYNC", "SYNCOVERRUN", "TIMEZONE", "USEANDOPERATOR",
    ]  # fmt: skip
    assert lines[1].split() == [
        "0", "Active", "deny", "0", "22", "*", "*", "*", "1h", "-", "prod-*", "-",
        "Enabled", "Disabled", "Europe/Amsterdam", "Disabled",
    ]  # fmt: skip
    assert lines[2].split() == [
        "1", "Inactive", "allow", "0", "8", "*", "*", "1-5", "10h", "web,api", "-", "-",
        "Disabled", "Enabled", "UTC", "Disabled",
    ]  # fmt: skip
    assert "automatic sync" not in out  # no app, no verdict


def test_app_verdict_and_transitions(project: Path) -> None:
    code, out, _ = run("--project", str(project), "--at", AT, "--app", "web", "--namespace", "prod-eu", "--days", "3")
    assert code == 0
    assert "automatic sync: blocked" in out
    assert "manual sync:    allowed" in out  # the active deny window has manualSync
    assert "matched windows: 0,1" in out
    assert "active windows:  0" in out
    assert "next change:     2026-11-20T22:00:00Z" in out
    table = out[out.index("transitions in the next 3 days:") :].splitlines()[1:]
    assert table[0].split() == ["TIME", "AUTO", "MANUAL", "ACTIVE"]
    assert table[1].split() == ["2026-11-20T22:00:00Z", "blocked", "blocked", "-"]  # only the shut allow is left
    assert table[2].split() == ["2026-11-21T21:00:00Z", "blocked", "allowed", "0"]
    assert ["2026-11-23T08:00:00Z", "allowed", "allowed", "1"] in [row.split() for row in table]


def test_app_outside_every_window(project: Path) -> None:
    code, out, _ = run("--project", str(project), "--at", AT, "--app", "docs", "--namespace", "dev")
    assert code == 0
    assert "automatic sync: allowed" in out and "manual sync:    allowed" in out
    assert "matched windows: -" in out
    assert "no transitions in the next 7 days" in out


def test_json_output(project: Path) -> None:
    code, out, _ = run("--project", str(project), "--at", AT, "--app", "web", "--namespace", "prod-eu", "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert data["project"] == "web" and data["at"] == AT
    assert data["windows"][0] == {
        "id": 0,
        "status": "Active",
        "kind": "deny",
        "schedule": "0 22 * * *",
        "duration": "1h",
        "namespaces": ["prod-*"],
        "manualSync": True,
        "timeZone": "Europe/Amsterdam",
        "description": "nightly freeze; backups run",
    }
    app = data["app"]
    assert (app["canSyncAuto"], app["canSyncManual"], app["matched"], app["active"]) == (False, True, [0, 1], [0])
    assert app["nextChange"] == "2026-11-20T22:00:00Z"
    assert app["transitions"][0] == {
        "at": "2026-11-20T22:00:00Z",
        "canSyncAuto": False,
        "canSyncManual": False,
        "active": [],
    }


def test_yaml_output(project: Path) -> None:
    code, out, _ = run("--project", str(project), "--at", AT, "-o", "yaml")
    assert code == 0
    data = yamlsafe.load_one(out, source="stdout")
    assert [w["status"] for w in data["windows"]] == ["Active", "Inactive"]


def test_ics_export(project: Path) -> None:
    code, out = run_raw("--project", str(project), "--at", AT, "--days", "4", "--ics")
    assert code == 0
    assert out.startswith("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n")
    assert out.endswith("END:VCALENDAR\r\n")
    assert all(len(line.encode()) <= 75 for line in out.split("\r\n"))
    unfolded = out.replace("\r\n ", "")
    events = unfolded.split("BEGIN:VEVENT")[1:]
    starts = sorted(line for e in events for line in e.split("\r\n") if line.startswith("DTSTART:"))
    # the deny window every evening (the first one is open at --at), the allow window on Monday and Tuesday
    assert starts == [
        "DTSTART:20261120T210000Z",
        "DTSTART:20261121T210000Z",
        "DTSTART:20261122T210000Z",
        "DTSTART:20261123T080000Z",
        "DTSTART:20261123T210000Z",
        "DTSTART:20261124T080000Z",
        "DTSTART:20261124T210000Z",
    ]
    assert "SUMMARY:Sync freeze: web window 0 (0 22 * * *)" in unfolded
    assert "DESCRIPTION:nightly freeze\\; backups run\\ndeny window 0" in unfolded
    assert "DTEND:20261123T180000Z" in unfolded
    assert all("DTSTAMP:20261120T213000Z" in e for e in events)
    uids = [line for e in events for line in e.split("\r\n") if line.startswith("UID:")]
    assert len(set(uids)) == len(uids) == 7
    # stable: a later export that still covers an occurrence gives it the same UID
    _, again = run_raw("--project", str(project), "--at", "2026-11-21T00:00:00Z", "--days", "1", "--ics")
    assert next(u for u in uids if "20261121T210000Z" in u) in again.replace("\r\n ", "")


def test_ics_for_an_app_keeps_only_its_windows(project: Path) -> None:
    code, out, _ = run("--project", str(project), "--at", AT, "--days", "4", "--ics", "--app", "api")
    assert code == 0
    assert out.count("BEGIN:VEVENT") == 2  # the allow window only (api is not in a prod-* namespace)
    assert "Sync allowed: web window 1" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(PROJECT.replace("duration: 1h", "duration: 1d"), "spec.syncWindows[0].duration", id="duration"),
        pytest.param(PROJECT.replace("Europe/Amsterdam", "Europe/Atlantis"), "spec.syncWindows[0].timeZone", id="zone"),
        pytest.param(PROJECT.replace('"0 22 * * *"', '"0 0 30 2 *"'), "never fires", id="never-fires"),
        pytest.param(PROJECT.replace("kind: deny", "kind: Deny"), "spec.syncWindows[0].kind", id="kind"),
        pytest.param(PROJECT + "  syncWindows: []\n", "duplicate", id="duplicate-yaml-key"),
    ],
)
def test_bad_project_exits_2_naming_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    code, out, err = run("--project", str(path), "--at", AT)
    assert code == 2
    assert out == ""
    assert err.startswith(f"error: {path}")
    assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--at", "2026-11-20T21:30:00"], "no time zone offset", id="naive-at"),
        pytest.param(["--at", "yesterday"], "not an RFC 3339 time", id="bad-at"),
        pytest.param(["--at", "9999-12-30T00:00:00Z"], "outside the supported years", id="at-far-future"),
        pytest.param(["--namespace", "prod"], "give --app too", id="selector-without-app"),
        pytest.param(["--ics", "-o", "json"], "cannot be combined", id="ics-and-json"),
        pytest.param(["--days", "0"], "--days", id="days-zero"),
        pytest.param(["--days", "400"], "--days", id="days-too-many"),
    ],
)
def test_bad_options_exit_2(project: Path, args: list[str], message: str) -> None:
    code, _, err = run("--project", str(project), *args)
    assert code == 2
    assert message in err


def test_missing_file_exits_2(tmp_path: Path) -> None:
    code, _, err = run("--project", str(tmp_path / "nope.yaml"))
    assert code == 2
    assert "nope.yaml: cannot read the project file" in err
