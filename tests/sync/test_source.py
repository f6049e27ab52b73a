"""Git sources (``sync.source``, ``sync.gitenv``, ``sync.giturl``, ``sync.treestore``) against real repos.

Covers: revision resolution (branch, tag, annotated tag, HEAD, empty, full and short SHA, unknown); at most
one ls-remote per repo per interval shared by every caller, threads included (injected clock); new commits
seen after the interval; one mirror per (normalised URL, credential identity); read-only trees, reused per
commit and cleaned up; a commit with an out-of-bounds symlink refused and not kept; REPO-08 URL and
revision injection refused before git runs; file URLs only when enabled; credentials redacted from errors
and logs and handed to git through askpass; a hung remote killed at the timeout with no process left.
"""

from __future__ import annotations

import logging
import os
import socket
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from sync import gitenv, giturl, paths
from sync.source import GitCommandFailed, GitTimeout, RepoCache, RevisionNotFound
from tests.sync.gitfixtures import PLAIN, GitRepo, make_repo


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def origin(tmp_path: Path) -> GitRepo:
    repo = make_repo(tmp_path / "origin", PLAIN)
    repo.git("tag", "v1.0.0")
    repo.git("tag", "-a", "v1.1.0", "-m", "annotated")
    repo.git("branch", "release")
    return repo


def cache(tmp_path: Path, clock: Clock | None = None, **kw: object) -> RepoCache:
    return RepoCache(tmp_path / "cache", allow_file_urls=True, clock=clock or Clock(), **kw)  # type: ignore[arg-type]


def test_resolves_branches_tags_head_and_shas(tmp_path: Path, origin: GitRepo) -> None:
    head = origin.git("rev-parse", "HEAD")
    repos = cache(tmp_path)
    for revision in (
        "main",
        "refs/heads/main",
        "HEAD",
        "",
        "v1.0.0",
        "v1.1.0",
        "refs/tags/v1.1.0",
        "release",
        head,
        head.upper(),
        head[:8],
    ):
        assert repos.resolve(origin.url, revision) == head, revision


def test_unknown_and_malformed_revisions(tmp_path: Path, origin: GitRepo) -> None:
    repos = cache(tmp_path)
    with pytest.raises(RevisionNotFound, match="unable to resolve 'nope'"):
        repos.resolve(origin.url, "nope")
    before = repos.git_processes
    for bad in ("--upload-pack=touch /tmp/x", "main..other", "-x", "a b", "ma\x00in"):
        with pytest.raises(RevisionNotFound, match="not a valid ref name"):
            repos.resolve(origin.url, bad)
    assert repos.git_processes == before


def test_one_ls_remote_per_interval_shared_by_callers(tmp_path: Path, origin: GitRepo) -> None:
    clock = Clock()
    repos = cache(tmp_path, clock, ls_remote_interval=60)
    first = repos.resolve(origin.url, "main")
    for _ in range(5):
        assert repos.resolve(origin.url, "main") == first
        assert repos.resolve(f"{origin.path}", "release") == first  # another spelling, same repo
    assert repos.git_processes == 1
    second = origin.write({"apps/plain/new.yaml": "x: 1\n"}) or origin.commit("second")
    clock.now += 59
    assert repos.resolve(origin.url, "main") == first
    clock.now += 2
    assert repos.resolve(origin.url, "main") == second
    assert repos.git_processes == 2


def test_concurrent_callers_share_one_ls_remote(tmp_path: Path, origin: GitRepo) -> None:
    repos = cache(tmp_path)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(repos.resolve(origin.url, "main"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 8
    assert repos.git_processes == 1


def test_checkout_is_read_only_reused_and_old_trees_cleaned(tmp_path: Path, origin: GitRepo) -> None:
    clock = Clock()
    repos = cache(tmp_path, clock, keep_trees=1, tree_lease=10)
    first = repos.checkout(origin.url, "main")
    assert (first.path / "apps" / "plain" / "deployment.yaml").read_text().startswith("apiVersion: apps/v1")
    mode = (first.path / "apps" / "plain" / "deployment.yaml").stat().st_mode
    assert not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not (first.path / "apps").stat().st_mode & stat.S_IWUSR
    if os.geteuid() != 0:  # root ignores permission bits
        with pytest.raises(PermissionError):
            (first.path / "apps" / "plain" / "deployment.yaml").write_text("changed")
    used = repos.git_processes
    again = repos.checkout(origin.url, "main")
    assert again.path == first.path and repos.git_processes == used  # no git at all within the interval
    origin.write({"apps/plain/deployment.yaml": "changed: true\n"})
    origin.commit("second")
    clock.now += 100
    second = repos.checkout(origin.url, "main")
    assert second.commit != first.commit
    assert (second.path / "apps" / "plain" / "deployment.yaml").read_text() == "changed: true\n"
    assert not first.path.exists()  # older than the lease and beyond keep=1


def test_checkout_by_sha_after_branch_moved(tmp_path: Path, origin: GitRepo) -> None:
    old = origin.git("rev-parse", "HEAD")
    origin.write({"apps/plain/extra.yaml": "a: 1\n"})
    origin.commit("move")
    repos = cache(tmp_path)
    tree = repos.checkout(origin.url, old)
    assert tree.commit == old and not (tree.path / "apps" / "plain" / "extra.yaml").exists()


def test_commit_with_out_of_bounds_symlink_is_refused(tmp_path: Path, origin: GitRepo) -> None:
    (tmp_path / "secret.txt").write_text("TOP-SECRET")
    origin.symlink("apps/plain/leak.yaml", "/etc/passwd")
    origin.commit("evil")
    repos = cache(tmp_path)
    with pytest.raises(paths.SymlinkError) as info:
        repos.checkout(origin.url, "main")
    assert str(info.value) == "repository contains out-of-bounds symlink: apps/plain/leak.yaml"
    trees = list((tmp_path / "cache" / "trees").rglob("*"))
    assert not any(p.name == origin.git("rev-parse", "HEAD") for p in trees)


def test_same_repo_different_credentials_use_different_mirrors(tmp_path: Path, origin: GitRepo) -> None:
    creds = [gitenv.RepoCredential(url_prefix=f"file://{origin.path}", username="u", password="pw-9f3k")]
    plain = cache(tmp_path / "a")
    with_creds = cache(tmp_path / "b", credentials=creds)
    assert plain.checkout(origin.url, "main").mirror_key != with_creds.checkout(origin.url, "main").mirror_key
    assert with_creds.credential_identity(origin.url) == creds[0].identity != ""
    assert "pw-9f3k" not in repr(creds[0])


@pytest.mark.parametrize(
    "url",
    [
        "ext::sh -c touch% {marker}",
        "--upload-pack=touch {marker}",
        "-cprotocol.ext.allow=always",
        "https://host/repo --config core.hooksPath=/x",
        "ssh://-oProxyCommand=touch% {marker}/x",
        "git@-oProxyCommand=x:repo",
        "http://example.com/repo.git",
    ],
)
def test_repo_08_url_injection_never_runs_git(tmp_path: Path, url: str) -> None:
    marker = tmp_path / "pwned"
    repos = cache(tmp_path)
    with pytest.raises(giturl.UnsafeRepoURL):
        repos.resolve(url.replace("{marker}", str(marker)), "main")
    with pytest.raises(giturl.UnsafeRepoURL):
        repos.checkout(url.replace("{marker}", str(marker)), "a" * 40)
    assert repos.git_processes == 0
    assert not marker.exists()


def test_file_urls_need_the_setting(tmp_path: Path, origin: GitRepo) -> None:
    repos = RepoCache(tmp_path / "cache")
    for url in (origin.url, str(origin.path)):
        with pytest.raises(giturl.UnsafeRepoURL, match="allow_file_urls"):
            repos.resolve(url, "main")
    assert repos.git_processes == 0


def test_credentials_in_urls_never_reach_messages_or_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    repos = cache(tmp_path)
    # a password in the URL is refused before git runs (LEAK-02), without echoing it
    with caplog.at_level(logging.DEBUG), pytest.raises(giturl.UnsafeRepoURL) as refused:
        repos.resolve("https://alice:s3cr3t-token@127.0.0.1:1/org/repo.git", "main")
    assert "s3cr3t" not in str(refused.value) and "s3cr3t" not in caplog.text
    # a user name alone is allowed; a failing fetch names the host but never the user info
    with caplog.at_level(logging.DEBUG), pytest.raises(GitCommandFailed) as info:
        repos.resolve("https://alice-s3cr3t@127.0.0.1:1/org/repo.git", "main")
    assert "s3cr3t" not in str(info.value) and "s3cr3t" not in caplog.text
    assert "127.0.0.1:1/org/repo.git" in str(info.value)


def test_redact_url() -> None:
    text = "fatal: unable to access 'https://bob:tok@git.example.com/r.git/' and ssh://git@h/x"
    assert giturl.redact_url(text) == "fatal: unable to access 'https://***@git.example.com/r.git/' and ssh://***@h/x"
    assert giturl.normalise_url("git@GitHub.com:Org/Repo.git") == "ssh://github.com/Org/Repo"
    assert giturl.normalise_url("https://u:p@GitHub.com/Org/Repo.git/") == "https://github.com/Org/Repo"


def test_askpass_hands_credentials_to_git_from_the_environment(tmp_path: Path) -> None:
    askpass = gitenv.ensure_askpass(tmp_path / "bin")
    cred = gitenv.RepoCredential(url_prefix="https://git.example.com", username="ci", password="tok-123")
    env = gitenv.git_environment(home=tmp_path / "home", askpass=askpass, credential=cred, allow_file=False)
    assert env["GIT_TERMINAL_PROMPT"] == "0" and env["GIT_ALLOW_PROTOCOL"] == "https:ssh"
    assert "tok-123" not in env["GIT_SSH_COMMAND"]
    user = subprocess.run(
        [str(askpass), "Username for 'https://git.example.com': "], env=env, capture_output=True, text=True, check=True
    )
    password = subprocess.run(
        [str(askpass), "Password for 'https://ci@git.example.com': "],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert (user.stdout, password.stdout) == ("ci\n", "tok-123\n")
    ssh = gitenv.RepoCredential(
        url_prefix="git@github.com:org",
        ssh_private_key_file=Path("/keys/id"),
        known_hosts_file=Path("/keys/known_hosts"),
    )
    env = gitenv.git_environment(home=tmp_path / "home", askpass=askpass, credential=ssh, allow_file=False)
    assert "StrictHostKeyChecking=yes" in env["GIT_SSH_COMMAND"]
    assert "UserKnownHostsFile=/keys/known_hosts" in env["GIT_SSH_COMMAND"]
    assert gitenv.match_credential("git@github.com:org/app.git", [cred, ssh]) is ssh


def test_hung_remote_is_killed_at_the_timeout(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts TCP but never speaks TLS: git would wait forever
    port = server.getsockname()[1]
    repos = cache(tmp_path, timeout=1.0)
    try:
        with pytest.raises(GitTimeout, match="timed out after 1s"):
            repos.resolve(f"https://127.0.0.1:{port}/repo.git", "main")
    finally:
        server.close()
    leftovers = subprocess.run(["pgrep", "-f", f"127.0.0.1:{port}"], capture_output=True, text=True, check=False)
    assert leftovers.stdout.strip() == ""


def test_tree_ids_follow_content_not_commits(tmp_path: Path, origin: GitRepo) -> None:
    repos = cache(tmp_path)
    one = origin.git("rev-parse", "HEAD")
    origin.write({"README.md": "unrelated\n"})
    two = origin.commit("docs")
    a = repos.tree_ids(origin.url, one, ["apps/plain", "README.md", "missing", "."])
    b = repos.tree_ids(origin.url, two, ["apps/plain", "README.md", "missing", "."])
    assert a["apps/plain"] == b["apps/plain"] != ""
    assert a["missing"] == b["missing"] == ""
    assert a["."] != b["."]


def test_missing_git_binary_is_a_clear_error(tmp_path: Path, origin: GitRepo, monkeypatch: pytest.MonkeyPatch) -> None:
    repos = cache(tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    with pytest.raises(GitCommandFailed, match="cannot run git"):
        repos.resolve(origin.url, "main")


def test_unreachable_repo_fails_fast_for_every_app_until_the_interval_ends(tmp_path: Path, origin: GitRepo) -> None:
    clock = Clock()
    repos = cache(tmp_path, clock, ls_remote_interval=60)
    missing = f"file://{tmp_path / 'gone'}"
    with pytest.raises(GitCommandFailed) as first:
        repos.resolve(missing, "main")
    for _ in range(10):
        with pytest.raises(GitCommandFailed) as again:
            repos.resolve(missing, "main")
        assert str(again.value) == str(first.value)
    assert repos.git_processes == 1
    repos.resolve(origin.url, "main")  # other repositories are unaffected
    clock.now += 61
    with pytest.raises(GitCommandFailed):
        repos.resolve(missing, "main")
    assert repos.git_processes == 3
