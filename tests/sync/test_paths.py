"""Path safety inside a checkout (``sync.paths``).

Covers: REPO-01 app path traversal (``../``, ``/etc``, ``a/../../..``, URL-encoded, NUL), containment by real
path component-wise (``/repo2`` is not inside ``/repo``), REPO-03 out-of-bounds symlinks (absolute,
relative escaping, escaping-then-returning, chains, loops), REPO-04 value files (traversal, ``/proc``,
``file://``, symlinked value file, glob order and explicit positions), and that messages never contain
absolute server paths or file contents.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sync.paths import PathError, SymlinkError, check_symlinks, resolve_app_path, resolve_value_files

SECRET = "TOP-SECRET-CONTENT"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "apps" / "web").mkdir(parents=True)
    (root / "apps" / "web" / "values.yaml").write_text("a: 1\n")
    (root / "apps" / "web" / "values-prd.yaml").write_text("a: 2\n")
    (root / "apps" / "web" / "values-dev.yaml").write_text("a: 3\n")
    (root / "shared.yaml").write_text("b: 1\n")
    (tmp_path / "repo2").mkdir()
    (tmp_path / "outside.yaml").write_text(SECRET)
    return root


def test_app_path_resolves_inside(repo: Path) -> None:
    assert resolve_app_path(repo, "apps/web") == (repo / "apps" / "web").resolve()
    assert resolve_app_path(repo, ".") == repo.resolve()
    assert resolve_app_path(repo, "apps/../apps/web") == (repo / "apps" / "web").resolve()


@pytest.mark.parametrize(
    ("app_path", "words"),
    [
        pytest.param("../", "outside", id="dotdot"),
        pytest.param("../../etc", "outside", id="dotdot-etc"),
        pytest.param("/etc", "absolute", id="absolute"),
        pytest.param("/", "absolute", id="root"),
        pytest.param("a/../../..", "outside", id="nested-escape"),
        pytest.param("../repo2", "outside", id="sibling-prefix"),
        pytest.param("..%2f..%2fetc", "URL-encoded", id="url-encoded"),
        pytest.param("%2e%2e/x", "URL-encoded", id="url-encoded-dots"),
        pytest.param("apps/web\x00/x", "NUL", id="nul"),
        pytest.param("missing", "does not exist", id="missing"),
        pytest.param("apps/web/values.yaml", "not a directory", id="file"),
    ],
)
def test_repo_01_bad_app_paths(repo: Path, app_path: str, words: str) -> None:
    with pytest.raises(PathError) as info:
        resolve_app_path(repo, app_path)
    assert words in str(info.value)
    assert str(repo.parent) not in str(info.value)


def test_symlinked_app_dir_leaving_the_repo_is_refused(repo: Path) -> None:
    os.symlink(repo.parent / "repo2", repo / "escape")
    with pytest.raises(PathError, match="outside"):
        resolve_app_path(repo, "escape")


@pytest.mark.parametrize(
    ("link", "target"),
    [
        pytest.param("apps/web/x.yaml", "/etc/passwd", id="absolute"),
        pytest.param("apps/web/y.yaml", "../../../outside.yaml", id="relative-escape"),
        pytest.param("apps/web/z.yaml", "../../../repo/shared.yaml", id="escape-and-return"),
        pytest.param("dirlink", "..", id="dir-to-parent"),
    ],
)
def test_repo_03_out_of_bounds_symlinks_are_refused(repo: Path, link: str, target: str) -> None:
    os.symlink(target, repo / link)
    with pytest.raises(SymlinkError) as info:
        check_symlinks(repo)
    message = str(info.value)
    assert "out-of-bounds symlink" in message
    assert message.endswith(link)
    assert SECRET not in message and str(repo) not in message


def test_repo_03_chains_and_loops(repo: Path) -> None:
    os.symlink("values.yaml", repo / "apps" / "web" / "alias.yaml")
    os.symlink("alias.yaml", repo / "apps" / "web" / "alias2.yaml")
    os.symlink("loop-b", repo / "apps" / "loop-a")
    os.symlink("loop-a", repo / "apps" / "loop-b")
    check_symlinks(repo)  # in-bounds chains and loops are not out of bounds
    os.symlink("/etc/hosts", repo / "apps" / "hop")
    os.symlink("hop", repo / "apps" / "web" / "chained.yaml")
    with pytest.raises(SymlinkError, match="apps/hop"):
        check_symlinks(repo)


def test_git_directory_is_not_scanned(repo: Path) -> None:
    (repo / ".git").mkdir()
    os.symlink("/etc/passwd", repo / ".git" / "link")
    check_symlinks(repo)


def test_value_files_in_argo_order(repo: Path) -> None:
    app = repo / "apps" / "web"
    got = resolve_value_files(["values-prd.yaml", "values-*.yaml", "/shared.yaml"], root=repo, app_dir=app)
    names = [p.name for p in got]
    assert names == ["values-prd.yaml", "values-dev.yaml", "shared.yaml"]


def test_missing_value_files(repo: Path) -> None:
    app = repo / "apps" / "web"
    with pytest.raises(PathError, match="does not exist"):
        resolve_value_files(["nope.yaml"], root=repo, app_dir=app)
    assert resolve_value_files(["nope.yaml", "x-*.yaml"], root=repo, app_dir=app, ignore_missing=True) == []
    with pytest.raises(PathError, match="matched no files"):
        resolve_value_files(["x-*.yaml"], root=repo, app_dir=app)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        pytest.param("../../../outside.yaml", "outside", id="traversal"),
        pytest.param("../../../../../../etc/passwd", "outside", id="deep-traversal"),
        pytest.param("/proc/self/environ", "does not exist", id="proc-is-repo-relative"),
        pytest.param("/../../outside.yaml", "outside", id="rooted-traversal"),
        pytest.param("file:///etc/hosts", "scheme 'file'", id="file-url"),
        pytest.param("https://evil.example.com/values.yaml", "scheme 'https'", id="remote"),
        pytest.param("values\x00.yaml", "NUL", id="nul"),
        pytest.param("..%2F..%2Foutside.yaml", "URL-encoded", id="encoded"),
    ],
)
def test_repo_04_value_file_attacks(repo: Path, value: str, words: str) -> None:
    with pytest.raises(PathError) as info:
        resolve_value_files([value], root=repo, app_dir=repo / "apps" / "web")
    message = str(info.value)
    assert words in message
    assert SECRET not in message and str(repo.parent) not in message


def test_repo_04_symlinked_value_file_out_of_repo(repo: Path) -> None:
    os.symlink(repo.parent / "outside.yaml", repo / "apps" / "web" / "evil.yaml")
    with pytest.raises(PathError, match="outside"):
        resolve_value_files(["evil.yaml"], root=repo, app_dir=repo / "apps" / "web")
    with pytest.raises(PathError, match="outside"):
        resolve_value_files(["e*.yaml"], root=repo, app_dir=repo / "apps" / "web")


def test_dotdot_that_stays_inside_is_fine(repo: Path) -> None:
    got = resolve_value_files(["../web/values.yaml", "../../shared.yaml"], root=repo, app_dir=repo / "apps" / "web")
    assert [p.name for p in got] == ["values.yaml", "shared.yaml"]


def test_ref_value_files_resolve_in_the_other_checkout(repo: Path, tmp_path: Path) -> None:
    other = tmp_path / "values-repo"
    (other / "env").mkdir(parents=True)
    (other / "env" / "prd.yaml").write_text("x: 1\n")
    refs = {"values": other}
    got = resolve_value_files(
        ["$values/env/prd.yaml", "$values/env/*.yaml"], root=repo, app_dir=repo / "apps" / "web", refs=refs
    )
    assert got == [(other / "env" / "prd.yaml").resolve()]
    with pytest.raises(PathError, match="outside the repository"):
        resolve_value_files(["$values/../repo/shared.yaml"], root=repo, app_dir=repo, refs=refs)
    with pytest.raises(PathError, match=r"\$nope"):
        resolve_value_files(["$nope/x.yaml"], root=repo, app_dir=repo, refs=refs)


@pytest.mark.parametrize("value", ["/../../../etc/pass*", "../../../../etc/*", "../../../*.yaml"])
def test_globs_outside_cannot_probe_for_files(repo: Path, value: str) -> None:
    with pytest.raises(PathError) as info:
        resolve_value_files([value], root=repo, app_dir=repo / "apps" / "web")
    assert str(info.value) == f"value file glob {value!r} resolved to outside the repository"
