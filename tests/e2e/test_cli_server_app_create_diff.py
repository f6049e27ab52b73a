"""``app create``, ``app diff`` and ``app manifests`` in server mode against ``syncwarden serve --sandbox`` in a
subprocess, over real HTTP, compared with the same commands in local mode on the same sandbox cluster.

Covers: create prints what local mode prints (created, then unchanged; ``-o json`` is the stored manifest); a
different spec needs ``--upsert``; an invalid Application file names the file and the field (checked before
any request) and so does the server's refusal (unknown project: the request id and the field); a destination
outside the project is denied (exit 1, the violation); a project token without ``create`` gets the 403 (exit 1);
diff prints byte for byte what local mode prints for the same app and cluster (table and JSON), exit 1 while out
of sync and 0 once synced, with Secret values masked before and after a change in Git; ``app manifests NAME``
prints the server's rendering (Secret values masked) while a file still renders offline.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import cli
from config import yamlsafe
from tests.e2e.server_process import ServerProcess, running_server
from tests.sync.gitfixtures import GitRepo

runner = CliRunner()
FIRST, SECOND = "first-hunter2-value", "second-hunter2-value"
Env = dict[str, str | None]


def vault_files(password: str) -> dict[str, str]:
    return {
        "vault/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: vault-config\ndata:\n  MODE: strict\n",
        "vault/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: vault-creds\ntype: Opaque\n"
                             f"stringData:\n  password: {password}\n",
    }


@dataclass
class Served:
    proc: ServerProcess
    remote: Env  # logged in as admin (stored login)
    local: Env  # no login: local database, the server's sandbox cluster through its kubeconfig
    kubeconfig: str
    repo: GitRepo
    app_file: Path
    first_commit: str  # the vault with FIRST


def sw(env: Env, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(cli, list(args), env=env, input=stdin)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result.exit_code, result.stdout, result.stderr


def app_manifest(repo_url: str, name: str = "vault", **spec: object) -> dict[str, object]:
    body: dict[str, object] = {
        "project": "web",
        "source": {"repoURL": repo_url, "targetRevision": "main", "path": "vault"},
        "destination": {"server": "https://kubernetes.default.svc", "namespace": "web-guestbook"},
    }
    body.update(spec)
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name, "namespace": "syncwarden"}, "spec": body}


def write(path: Path, doc: object) -> Path:
    path.write_text(yamlsafe.dump(doc))
    return path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("serve")
    with running_server(tmp, serve_args=["--sandbox", "--interval", "0.2", "--lease-seconds", "2"]) as proc:
        remote: Env = {"XDG_CONFIG_HOME": str(tmp / "cfg"), "SYNCWARDEN_SERVER": None, "SYNCWARDEN_TOKEN": None,
                       "SYNCWARDEN_SIGNING_KEY": None, "SYNCWARDEN_CONFIG": None}
        code, _, err = sw(remote, "login", "--server", proc.url, "--password-stdin", stdin=proc.admin_password + "\n")
        assert code == 0, err
        data = Path(proc.env["SYNCWARDEN_DATA_DIR"])
        repo = GitRepo(data / "demo-repo")
        repo.write(vault_files(FIRST))
        first = repo.commit("vault")
        code, out, err = sw(remote, "proj", "get", "web", "-o", "json")
        assert code == 0, err
        project = json.loads(out)
        local: Env = {"XDG_CONFIG_HOME": str(tmp / "no-login"), "SYNCWARDEN_SERVER": None, "SYNCWARDEN_TOKEN": None,
                      "SYNCWARDEN_SIGNING_KEY": None, "SYNCWARDEN_CONFIG": None,
                      "SYNCWARDEN_DATA_DIR": str(tmp / "local-data"),
                      "SYNCWARDEN_DATABASE_URL": f"sqlite:///{tmp / 'local.db'}"}
        code, _, err = sw(local, "proj", "create", "-f", str(write(tmp / "web.yaml", project)))
        assert code == 0, err  # the same project in the local database
        app_file = write(tmp / "vault.yaml", app_manifest(repo.url))
        yield Served(proc, remote, local, str(data / "kubeconfig"), repo, app_file, first)


def cluster(s: Served) -> tuple[str, ...]:
    return ("--kubeconfig", s.kubeconfig, "--context", "sandbox")


def test_create_prints_what_local_mode_prints(served: Served) -> None:
    code, out, err = sw(served.remote, "app", "create", "-f", str(served.app_file))
    assert (code, out, err) == (0, "application syncwarden/vault created\n", "")
    assert sw(served.local, "app", "create", "-f", str(served.app_file), *cluster(served)) == (
        0, "application syncwarden/vault created\n", "")
    for env in (served.remote, served.local):  # the same spec again: unchanged, in both modes
        assert sw(env, "app", "create", "-f", str(served.app_file), *cluster(served)) == (
            0, "application syncwarden/vault unchanged\n", "")
    remote_json = sw(served.remote, "app", "create", "-f", str(served.app_file), "-o", "json")[1]
    local_json = sw(served.local, "app", "create", "-f", str(served.app_file), "-o", "json", *cluster(served))[1]
    assert json.loads(remote_json) == json.loads(local_json) == load(served.app_file)

    changed = write(served.app_file.with_name("vault-head.yaml"),
                    app_manifest(served.repo.url, source={"repoURL": served.repo.url, "targetRevision": "HEAD",
                                                          "path": "vault"}))
    code, _, err = sw(served.remote, "app", "create", "-f", str(changed))
    assert code == 2 and f"error: {changed}: " in err and "upsert" in err and "(request " in err
    code, _, err = sw(served.local, "app", "create", "-f", str(changed), *cluster(served))
    assert code == 2 and f"error: {changed}: " in err and "upsert" in err
    code, out, err = sw(served.remote, "app", "create", "-f", str(changed), "--upsert")
    assert (code, out) == (0, "application syncwarden/vault updated\n"), err
    assert sw(served.remote, "app", "create", "-f", str(served.app_file), "--upsert")[0] == 0  # back to main


def test_an_invalid_application_file_names_the_file_and_the_field(served: Served, tmp_path: Path) -> None:
    no_destination = app_manifest(served.repo.url, name="broken")
    del no_destination["spec"]["destination"]  # type: ignore[attr-defined]
    bad = write(tmp_path / "broken.yaml", no_destination)
    code, out, err = sw(served.remote, "app", "create", "-f", str(bad))
    assert code == 2 and out == ""
    assert f"error: {bad}" in err and "spec.destination" in err, err
    code, _, err = sw(served.remote, "app", "get", "broken")
    assert code == 2  # nothing was stored

    unknown = write(tmp_path / "unknown.yaml", app_manifest(served.repo.url, name="stray", project="nope"))
    code, _, err = sw(served.remote, "app", "create", "-f", str(unknown))  # only the server knows the projects
    assert code == 2
    assert f"error: {unknown}: spec.project: project 'nope' does not exist (request " in err, err
    assert "(at spec.project)" in err


def test_a_destination_outside_the_project_is_denied_with_the_violation(served: Served, tmp_path: Path) -> None:
    outside = write(tmp_path / "outside.yaml", app_manifest(served.repo.url, name="outside", destination={
        "server": "https://kubernetes.default.svc", "namespace": "kube-system"}))
    code, out, err = sw(served.remote, "app", "create", "-f", str(outside))
    assert code == 1 and out == ""
    assert f"error: {outside}: " in err and "kube-system" in err and "(request " in err, err
    code, out, _ = sw(served.remote, "audit", "query", "--action", "app.create", "--result", "denied", "-o", "json")
    assert code == 0 and "outside" in [r["target"].get("app") for r in json.loads(out)["records"]]


def test_a_project_token_without_create_is_denied(served: Served, tmp_path: Path) -> None:
    sw(served.remote, "app", "create", "-f", str(served.app_file), "--upsert")
    code, out, err = sw(served.remote, "proj", "role", "create-token", "web", "ci", "-o", "json")
    assert code == 0, err
    ci: Env = {**served.remote, "XDG_CONFIG_HOME": str(tmp_path / "ci"), "SYNCWARDEN_SERVER": served.proc.url,
               "SYNCWARDEN_TOKEN": json.loads(out)["token"]}
    other = write(tmp_path / "ci-app.yaml", app_manifest(served.repo.url, name="from-ci"))
    code, out, err = sw(ci, "app", "create", "-f", str(other))
    assert code == 1 and out == ""
    assert "permission denied: applications, create, web/from-ci" in err and "[rbac.denied]" in err, err
    assert sw(served.remote, "app", "get", "from-ci")[0] == 2  # not created
    code, _, err = sw(ci, "app", "diff", "vault")  # the ci role may get web's apps, so it may diff them
    assert code in (0, 1), err


def test_diff_prints_what_local_mode_prints_with_secrets_masked(served: Served) -> None:
    for env in (served.remote, served.local):
        sw(env, "app", "create", "-f", str(served.app_file), "--upsert", *cluster(served))
    remote = sw(served.remote, "app", "diff", "vault")
    local = sw(served.local, "app", "diff", "vault", *cluster(served))
    assert remote == local, (remote, local)
    code, out, _ = remote
    assert code == 1  # nothing of it is in the cluster yet
    assert "===== /Secret web-guestbook/vault-creds ======" in out and "===== /ConfigMap web-guestbook/vault-config" in out
    assert_clean(out, FIRST)
    remote_json = sw(served.remote, "app", "diff", "vault", "-o", "json")
    local_json = sw(served.local, "app", "diff", "vault", "-o", "json", *cluster(served))
    assert remote_json[0] == local_json[0] == 1
    assert json.loads(remote_json[1]) == json.loads(local_json[1])
    data = json.loads(remote_json[1])
    assert data["sync"]["status"] == "OutOfSync" and data["revisions"] and data["instance"]
    assert_clean(remote_json[1], FIRST)

    code, out, err = sw(served.remote, "app", "sync", "vault", "--timeout", "120")
    assert code == 0, err + out
    assert sw(served.remote, "app", "diff", "vault") == (0, "", "")
    assert sw(served.local, "app", "diff", "vault", *cluster(served)) == (0, "", "")

    served.repo.write(vault_files(SECOND))
    served.repo.commit("new password")
    remote = sw(served.remote, "app", "diff", "vault")
    local = sw(served.local, "app", "diff", "vault", *cluster(served))
    assert remote == local, (remote, local)
    code, out, _ = remote
    assert code == 1
    assert "===== /Secret web-guestbook/vault-creds ======" in out and "vault-config" not in out
    changed = [line for line in out.splitlines() if "password" in line and line[:1] in "+-"]
    assert len(changed) == 2 and changed[0] != changed[1], out  # the diff shows that it changed, not to what
    assert_clean(out, FIRST)
    assert_clean(out, SECOND)
    assert sw(served.remote, "app", "diff", "syncwarden/vault", "--revision", served.first_commit)[0] == 0

    code, _, err = sw(served.remote, "app", "diff", "nowhere")
    assert code == 2 and "not found" in err


def test_manifests_of_a_stored_app_come_from_the_server_masked(served: Served) -> None:
    sw(served.remote, "app", "create", "-f", str(served.app_file), "--upsert")
    code, out, err = sw(served.remote, "app", "manifests", "vault")
    assert code == 0, err
    kinds = {doc.data["kind"]: doc.data for doc in yamlsafe.load_all(out, source="stdout")}
    assert set(kinds) == {"ConfigMap", "Secret"}
    assert set(kinds["Secret"]["stringData"]) == {"password"}
    assert_clean(out, FIRST)
    assert_clean(out, SECOND)
    code, out, _ = sw(served.remote, "app", "manifests", "syncwarden/vault", "-o", "json", "--revision",
                      served.first_commit)
    assert code == 0 and {d["kind"] for d in json.loads(out)} == {"ConfigMap", "Secret"}
    assert_clean(out, FIRST)

    code, out, err = sw(served.remote, "app", "manifests", str(served.app_file))  # a file: offline, as before
    assert code == 0, err
    assert FIRST in out or SECOND in out  # the user's own repository, rendered here: nothing to mask from them
    code, _, err = sw(served.remote, "app", "manifests", str(served.app_file), "--server", served.proc.url)
    assert code == 2 and "is a local file" in err
    code, _, err = sw(served.remote, "app", "manifests", "nowhere")
    assert code == 2 and "not found" in err


def load(path: Path) -> object:
    return yamlsafe.load_one(path.read_bytes(), source=str(path))


def assert_clean(text: str, value: str) -> None:
    assert value not in text
    assert base64.b64encode(value.encode()).decode() not in text
