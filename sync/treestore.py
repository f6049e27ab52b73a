"""Read-only trees, one per commit of one mirror, and their clean-up.

Who calls this: :class:`sync.source.RepoCache` only (it holds the repository lock while calling). A tree is
written from ``git archive`` output into a temporary directory, checked for out-of-bounds symlinks
(:func:`sync.paths.check_symlinks`), made read-only (files ``a-w``, directories ``a-w``), and only then
renamed into place, so a tree that exists is complete and was checked. Renderers never write into it
(Kustomize overlays live in their own temp dirs). Old trees are removed: the ``keep`` most recently used
stay, and so does any tree used within ``lease`` seconds (a render may still be reading it).

Caps (``security-cases.md`` REPO-06): a commit with more than :data:`MAX_TREE_BYTES` of files or
:data:`MAX_TREE_FILES` entries is refused before it fills the disk.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from sync import paths

__all__ = ["MAX_TREE_BYTES", "MAX_TREE_FILES", "TreeError", "TreeStore"]

#: a checkout bigger than this is refused (Argo CD caps rendered manifests at 10 MB; repos may hold more)
MAX_TREE_BYTES = 512 * 1024 * 1024
#: entries (files, directories, links) per checkout
MAX_TREE_FILES = 200_000

#: when each tree was last handed out, per tree path, in the injected clock's units (process-wide)
_LAST_USED: dict[Path, float] = {}


class TreeError(paths.PathError):
    """A commit whose tree cannot be materialised safely."""


def _make_writable(path: Path) -> None:
    for dirpath, dirnames, _ in os.walk(path):
        os.chmod(dirpath, stat.S_IRWXU)
        for name in dirnames:
            full = Path(dirpath) / name
            if not full.is_symlink():
                os.chmod(full, stat.S_IRWXU)


def remove_tree(path: Path) -> None:
    if path.exists():
        _make_writable(path)
        shutil.rmtree(path, ignore_errors=True)
    _LAST_USED.pop(path, None)


def _make_read_only(path: Path) -> None:
    for dirpath, dirnames, filenames in os.walk(path, topdown=False):
        for name in filenames:
            full = Path(dirpath) / name
            if full.is_symlink():
                continue
            mode = full.stat().st_mode
            full.chmod(0o555 if mode & stat.S_IXUSR else 0o444)
        for name in dirnames:
            full = Path(dirpath) / name
            if not full.is_symlink():
                full.chmod(0o555)
    path.chmod(0o555)


def _extract(tar_path: Path, dest: Path) -> None:
    total = 0
    count = 0
    with tarfile.open(tar_path, mode="r:") as tar:
        members = []
        for member in tar:
            count += 1
            total += max(member.size, 0)
            if count > MAX_TREE_FILES:
                raise TreeError(f"repository has more than {MAX_TREE_FILES} files")
            if total > MAX_TREE_BYTES:
                raise TreeError(f"repository is larger than {MAX_TREE_BYTES} bytes")
            name = member.name
            if name.startswith("/") or ".." in Path(name).parts:
                raise TreeError("repository contains an unsafe file name")
            if not (member.isfile() or member.isdir() or member.issym()):
                continue  # no devices, fifos or hard links from a tree
            members.append(member)
        try:
            tar.extractall(dest, members=members, filter="tar")  # names checked above
        except tarfile.TarError as exc:  # e.g. a member that would land outside the tree
            raise TreeError(f"repository tree cannot be extracted safely ({type(exc).__name__})") from None


class TreeStore:
    """The trees of one mirror, under ``root`` (``trees/<mirror key>``)."""

    def __init__(self, root: Path, *, keep: int = 3, lease: float = 600.0) -> None:
        self.root = root
        self.keep = max(keep, 1)
        self.lease = lease

    def get(self, commit: str, *, now: float) -> Path | None:
        path = self.root / commit
        if path.is_dir():
            _LAST_USED[path] = now
            return path
        return None

    def materialise(self, commit: str, write_tar: Callable[[Path], object], *, now: float) -> Path:
        """Run ``write_tar(tar_path)`` (``git archive``), then extract, check and freeze the tree."""
        self.root.mkdir(parents=True, exist_ok=True)
        final = self.root / commit
        work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            tar_path = work / "tree.tar"
            write_tar(tar_path)
            tree = work / "tree"
            tree.mkdir()
            _extract(tar_path, tree)
            tar_path.unlink()
            paths.check_symlinks(tree)
            _make_read_only(tree)
            os.replace(tree, final)
        finally:
            remove_tree(work)
        _LAST_USED[final] = now
        self.prune(now=now, current=final)
        return final

    def prune(self, *, now: float, current: Path | None = None) -> list[Path]:
        """Remove trees beyond the ``keep`` most recently used, unless used within ``lease``."""
        if not self.root.is_dir():
            return []
        trees = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        trees.sort(key=lambda p: _LAST_USED.get(p, float("-inf")), reverse=True)
        removed = []
        for path in trees[self.keep:]:
            last = _LAST_USED.get(path)
            if path == current or (last is not None and now - last < self.lease):
                continue
            with contextlib.suppress(OSError):
                remove_tree(path)
                removed.append(path)
        return removed
