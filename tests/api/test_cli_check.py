"""``syncwarden check`` end to end through the CLI: exit codes, each output format, windows, and bad input that
must exit 2 with a message naming the file and field (never a traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from typer.testing import CliRunner

from api.cli import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "config" / "examples"
PROJECT = str(EXAMPLES / "project.yaml")
APP = str(EXAMPLES / "app.yaml")
GOOD = str(EXAMPLES / "manifests" / "guestbook")
ESCAPE = str(EXAMPLES / "manifests" / "escape")
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(cli, ["check", *args])
    return result.exit_code, result.stdout, result.stderr


def test_example_is_allowed() -> None:
    code, out, _ = run("--project", PROJECT, "--app", APP, "--manifests", GOOD, "--at", "2026-11-18T12:00:00Z")
    assert code == 0, out
    assert out.startswith("ALLOWED  app 'guestbook'")
    assert "3 objects" in out


def test_escape_is_denied_naming_each_violation_and_rule() -> None:
    code, out, _ = run("--project", PROJECT, "--app", APP, "--manifests", ESCAPE, "--at", "2026-11-18T12:00:00Z")
    assert code == 1
    assert out.startswith("DENIED")
    assert "[namespace.not-permitted]" in out and "kube-system" in out
    assert "[resource.not-permitted]" in out and "ClusterRoleBinding" in out
    assert "escape.yaml[0].metadata.namespace" in out
    assert "rule:" in out


def test_year_end_freeze_blocks_auto_but_not_manual() -> None:
    args = ("--project", PROJECT, "--app", APP, "--manifests", GOOD, "--at", "2026-12-27T10:00:00Z")
    code, out, _ = run(*args)
    assert code == 1
    assert "[window.blocked]" in out
    code, out, _ = run(*args, "--sync", "manual")
    assert code == 0, out


def test_json_output_is_the_documented_shape() -> None:
    code, out, _ = run(
        "--project", PROJECT, "--app", APP, "--manifests", ESCAPE, "--at", "2026-11-18T13:00:00+01:00", "-o", "json"
    )
    assert code == 1
    doc = json.loads(out)
    assert doc["version"] == 1 and doc["allowed"] is False
    assert doc["at"] == "2026-11-18T12:00:00Z"
    assert doc["sync"] == "auto"
    (entry,) = doc["apps"]
    assert entry["app"] == "guestbook" and entry["project"] == "web" and entry["objects"] == 2
    assert {v["code"] for v in entry["violations"]} == {"namespace.not-permitted", "resource.not-permitted"}
    assert all(set(v) == {"code", "message", "field", "rule"} for v in entry["violations"])


def test_sarif_output_points_at_the_manifest_file() -> None:
    code, out, _ = run("--project", PROJECT, "--app", APP, "--manifests", ESCAPE, "--at", "2026-11-18T12:00:00Z", "-o", "sarif")
    assert code == 1
    doc = json.loads(out)
    assert doc["version"] == "2.1.0"
    results = doc["runs"][0]["results"]
    assert len(results) == 2
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {f"{ESCAPE}/escape.yaml"}
    rule_ids = [r["id"] for r in doc["runs"][0]["tool"]["driver"]["rules"]]
    assert all(r["ruleId"] == rule_ids[r["ruleIndex"]] for r in results)


def test_junit_output_has_one_failing_case_per_denied_app() -> None:
    code, out, _ = run("--project", PROJECT, "--app", APP, "--manifests", ESCAPE, "--at", "2026-11-18T12:00:00Z", "-o", "junit")
    assert code == 1
    suite = ET.fromstring(out.split("?>", 1)[1]).find("testsuite")
    assert suite is not None and suite.get("tests") == "1" and suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None and "kube-system" in (failure.text or "")


def test_unknown_kind_is_a_violation_and_api_resources_resolves_it(tmp_path: Path) -> None:
    manifest = tmp_path / "widget.yaml"
    manifest.write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n")
    code, out, _ = run("--project", PROJECT, "--app", APP, "--manifests", str(manifest), "--at", "2026-11-18T12:00:00Z")
    assert code == 1 and "[resource.unknown-kind]" in out
    resources = tmp_path / "api-resources.txt"
    resources.write_text(
        "NAME      SHORTNAMES   APIVERSION       NAMESPACED   KIND\nwidgets                example.com/v1   true         Widget\n"
    )
    code, out, _ = run(
        "--project", PROJECT, "--app", APP, "--manifests", str(manifest), "--api-resources", str(resources),
        "--at", "2026-11-18T12:00:00Z",
    )  # fmt: skip
    assert code == 0, out


def test_project_directory_picks_the_apps_project(tmp_path: Path) -> None:
    shutil.copy(PROJECT, tmp_path / "web.yaml")
    (tmp_path / "notes.yaml").write_text("just: notes\n")
    code, out, _ = run("--project", str(tmp_path), "--app", APP, "--manifests", GOOD, "--at", "2026-11-18T12:00:00Z")
    assert code == 0, out


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        pytest.param(lambda t: t + "  description: again\n", "duplicate key 'description'", id="duplicate-key"),
        pytest.param(lambda t: t.replace('schedule: "0 0 24 12 *"', 'schedule: "0 0 30 2 *"'), "spec.syncWindows[0]",
                     id="window-never-fires"),
        pytest.param(lambda t: t.replace("name: web\n", "name: Web,Admin\n", 1), "metadata.name", id="bad-name"),
    ],
)
def test_bad_project_exits_2_naming_file_and_field(tmp_path: Path, mutate: object, needle: str) -> None:
    bad = tmp_path / "project.yaml"
    bad.write_text(mutate(Path(PROJECT).read_text()))  # type: ignore[operator]
    code, out, err = run("--project", str(bad), "--app", APP, "--manifests", GOOD)
    assert code == 2
    assert out == ""
    assert str(bad) in err and needle in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        pytest.param(["--at", "2026-11-18T12:00:00"], "no time zone", id="naive-time"),
        pytest.param(["--at", "tomorrow"], "RFC 3339", id="bad-time"),
        pytest.param(["--api-resources", "/nonexistent/res.txt"], "no such file", id="missing-api-resources"),
    ],
)
def test_bad_options_exit_2(args: list[str], needle: str) -> None:
    code, _, err = run("--project", PROJECT, "--app", APP, "--manifests", GOOD, *args)
    assert code == 2
    assert needle in err


def test_missing_and_malformed_files_exit_2(tmp_path: Path) -> None:
    code, _, err = run("--project", str(tmp_path / "nope.yaml"), "--app", APP, "--manifests", GOOD)
    assert code == 2 and "no such file" in err
    bad_manifest = tmp_path / "bad.yaml"
    bad_manifest.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [not, a, string]\n")
    code, _, err = run("--project", PROJECT, "--app", APP, "--manifests", str(bad_manifest))
    assert code == 2 and "bad.yaml[0]" in err and "metadata.name" in err
    wrong_project = tmp_path / "app.yaml"
    wrong_project.write_text(Path(APP).read_text().replace("project: web", "project: other"))
    code, _, err = run("--project", PROJECT, "--app", str(wrong_project), "--manifests", GOOD)
    assert code == 2 and "spec.project" in err and "'other'" in err


def test_without_manifests_the_apps_own_git_source_is_rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``check --app`` alone renders the app's source from Git (here a file:// repository)."""
    from tests.sync.gitfixtures import GitRepo

    repo = GitRepo(tmp_path / "repo")
    repo.write({"guestbook/guestbook.yaml": (EXAMPLES / "manifests" / "guestbook" / "guestbook.yaml").read_text(),
                "escape/escape.yaml": (EXAMPLES / "manifests" / "escape" / "escape.yaml").read_text()})
    repo.commit()
    project = tmp_path / "project.yaml"
    project.write_text(Path(PROJECT).read_text().replace("https://git.example.com/web/*", f"file://{tmp_path}/*"))
    monkeypatch.setenv("SYNCWARDEN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SYNCWARDEN_SYNC__ALLOW_FILE_URLS", "true")
    for path, expected in (("guestbook", 0), ("escape", 1)):
        app = tmp_path / f"{path}-app.yaml"
        app.write_text(Path(APP).read_text().replace("https://git.example.com/web/guestbook.git", repo.url)
                       .replace("path: guestbook", f"path: {path}"))
        code, out, err = run("--project", str(project), "--app", str(app), "--at", "2026-11-18T12:00:00Z")
        assert code == expected, out + err
    unreachable = tmp_path / "missing-app.yaml"
    unreachable.write_text(Path(APP).read_text().replace("https://git.example.com/web/guestbook.git",
                                                         f"file://{tmp_path}/nothing-here"))
    code, _, err = run("--project", str(project), "--app", str(unreachable))
    assert code in (2, 3)
    assert "missing-app.yaml[0]" in err
