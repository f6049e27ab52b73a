"""Git sources: one bare mirror per repository, revision resolution, and read-only trees per commit.

Who calls this: :mod:`sync.render` (``render_application``), the reconciler and ``syncwarden app
manifests``. This is the only module that imports GitPython (``git``). GitPython creates and configures
each mirror (auto-gc and maintenance off, so git never leaves detached background processes) and the
``Repo`` is closed at once; the commands that touch the network or read objects (``ls-remote``, ``fetch``,
``cat-file --batch-check``, ``archive``) run here directly, because GitPython's runner inherits the whole
service environment: each gets a clean environment (:mod:`sync.gitenv`), an argv list, ``--`` before every
URL, a timeout after which its whole process group is killed, and only hex commit ids as revisions.

Layout under ``cache_dir``::

    mirrors/<key>.git        bare mirror; key = hash(normalised URL, credential identity)
    mirrors/<key>.lock       flock, so replicas sharing a cache dir fetch one at a time
    trees/<key>/<commit>/    read-only files of one commit (git archive, then chmod a-w)

Resolution (``argocd-sync-semantics.md`` §1.2): a 40-hex SHA is used as is; empty means ``HEAD``; a
semver constraint (``1.2.*``, ``^1``) picks the highest satisfying tag (:mod:`sync.semver`); names are
matched against one ``ls-remote`` listing of the repository, which is shared by every caller for
``ls_remote_interval`` seconds (the clock is injected); a full ref matches exactly, a short name prefers a
branch over a tag; annotated tags are peeled; 7+ hex characters that match nothing are a short SHA.

Error tree::

    GitError (Exception)
    ├── UnsafeRepoURL (sync.giturl; also a ValueError)   refused before git runs
    ├── RevisionNotFound                                 nothing matches the revision
    ├── GitTimeout                                       retryable
    └── GitCommandFailed                                 git said no (message redacted)
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import posixpath
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import git

from sync import gitenv, giturl, semver, treestore
from sync.gitenv import RepoCredential

__all__ = ["Checkout", "GitCommandFailed", "GitError", "GitTimeout", "RepoCache", "RevisionNotFound"]

log = logging.getLogger(__name__)

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_SHORT_SHA = re.compile(r"^[0-9a-f]{7,39}$")
_REF_NAME = re.compile(r"^[A-Za-z0-9._/+@-]+$")
#: remembered (mirror, commit, path) → tree id answers before the memo is reset
_TREE_ID_MEMO = 200_000
#: bound on git's stderr kept for an error message (it is redacted and truncated)
_STDERR_KEEP = 400


class GitError(Exception):
    """Base of the errors of this module; messages never contain credentials or cache paths."""


class RevisionNotFound(GitError):
    pass


class GitTimeout(GitError):
    """A git command exceeded its timeout and was killed (retryable)."""


class GitCommandFailed(GitError):
    pass


@dataclass(frozen=True)
class Checkout:
    """A commit's files, read-only. ``repo_url`` is redacted; ``credential_identity`` keys caches."""

    repo_url: str
    revision: str
    commit: str
    path: Path
    mirror_key: str
    credential_identity: str


@dataclass
class _Listing:
    at: float
    refs: dict[str, str]
    symrefs: dict[str, str] = field(default_factory=dict)
    error: GitError | None = None


class RepoCache:
    """Mirrors, resolved revisions and trees, shared by every app of the process (thread-safe)."""

    def __init__(
        self,
        cache_dir: Path,
        *,
        ls_remote_interval: float = 60.0,
        timeout: float = 90.0,
        allow_file_urls: bool = False,
        credentials: Sequence[RepoCredential] = (),
        clock: Callable[[], float] = time.monotonic,
        keep_trees: int = 3,
        tree_lease: float = 600.0,
    ) -> None:
        self.cache_dir = cache_dir
        self.ls_remote_interval = ls_remote_interval
        self.timeout = timeout
        self.allow_file_urls = allow_file_urls
        self.credentials = tuple(credentials)
        self.clock = clock
        self.keep_trees = keep_trees
        self.tree_lease = tree_lease
        #: git processes started by this cache (the benchmark reports it)
        self.git_processes = 0
        self._listings: dict[str, _Listing] = {}
        self._have: set[tuple[str, str]] = set()
        self._tree_ids: dict[tuple[str, str, str], str] = {}
        self._known_paths: dict[str, set[str]] = {}
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        (cache_dir / "mirrors").mkdir(parents=True, exist_ok=True)
        self._askpass = gitenv.ensure_askpass(cache_dir / "bin")

    # ------------------------------------------------------------------------------------ identity

    def _target(self, url: str) -> tuple[str, RepoCredential | None, str]:
        """(URL git sees, its credential, mirror key); refuses unsafe URLs before anything runs."""
        giturl.check_allowed(url, allow_file_urls=self.allow_file_urls)
        bare, embedded = gitenv.split_userinfo(url)
        credential = embedded or gitenv.match_credential(bare, self.credentials)
        identity = credential.identity if credential else gitenv.ANONYMOUS
        key = hashlib.sha256(f"{giturl.normalise_url(bare)}\0{identity}".encode()).hexdigest()[:24]
        return bare, credential, key

    def credential_identity(self, url: str) -> str:
        _, credential, _ = self._target(url)
        return credential.identity if credential else gitenv.ANONYMOUS

    @contextlib.contextmanager
    def _lock(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock, open(self.cache_dir / "mirrors" / f"{key}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # ------------------------------------------------------------------------------------ processes

    def _git(self, args: list[str], *, url: str, credential: RepoCredential | None,
             stdin: bytes | None = None) -> bytes:
        env = gitenv.git_environment(home=self.cache_dir / "home", askpass=self._askpass,
                                     credential=credential, allow_file=self.allow_file_urls)
        verb = args[2] if args[0] == "--git-dir" else args[0]
        self.git_processes += 1
        try:
            proc = subprocess.Popen(["git", *args], stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    start_new_session=True)
        except OSError as exc:
            raise GitCommandFailed(f"cannot run git ({exc.strerror or type(exc).__name__})") from None
        try:
            out, err = proc.communicate(input=stdin, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            raise GitTimeout(
                f"git {verb} of {giturl.redact_url(url)} timed out after {self.timeout:g}s"
            ) from None
        if proc.returncode != 0:
            text = err.decode("utf-8", "replace").replace(str(self.cache_dir), "<cache>")
            text = giturl.redact_url(text).strip()[-_STDERR_KEEP:]
            log.warning("git %s of %s failed: %s", verb, giturl.redact_url(url), text)
            raise GitCommandFailed(f"git {verb} of {giturl.redact_url(url)} failed: {text}")
        return out

    # ------------------------------------------------------------------------------------ resolution

    def _listing(self, url: str, credential: RepoCredential | None, key: str) -> _Listing:
        now = self.clock()
        cached = self._listings.get(key)
        if cached is not None and now - cached.at < self.ls_remote_interval:
            if cached.error is not None:
                # the repository failed moments ago: every app of it fails fast with the same error
                # instead of each waiting for its own timeout (REL-01); it is retried after the interval
                raise type(cached.error)(str(cached.error))
            return cached
        try:
            out = self._git(["ls-remote", "--symref", "--", url], url=url, credential=credential)
        except GitError as exc:
            self._listings[key] = _Listing(at=now, refs={}, error=exc)
            raise
        refs: dict[str, str] = {}
        symrefs: dict[str, str] = {}
        for line in out.decode("utf-8", "replace").splitlines():
            left, _, name = line.partition("\t")
            if left.startswith("ref: "):
                symrefs[name] = left[5:]
            elif _FULL_SHA.match(left):
                refs[name] = left
        listing = _Listing(at=now, refs=refs, symrefs=symrefs)
        self._listings[key] = listing
        return listing

    def expire_listing(self, url: str) -> None:
        """Forget the ls-remote listing of ``url``: the next resolve asks the remote (a refresh request)."""
        _, _, key = self._target(url)
        with self._guard:
            self._listings.pop(key, None)

    @staticmethod
    def _match(listing: _Listing, revision: str) -> str | None:
        refs = listing.refs
        name = listing.symrefs.get(revision, revision)
        if name in refs:
            return refs.get(f"{name}^{{}}", refs[name])
        for full in (f"refs/heads/{name}", f"refs/tags/{name}"):
            if full in refs:
                return refs.get(f"{full}^{{}}", refs[full])
        return None

    def resolve(self, url: str, revision: str) -> str:
        """The commit SHA ``revision`` names in ``url`` (at most one ls-remote per repo per interval)."""
        bare, credential, key = self._target(url)
        revision = revision.strip() or "HEAD"
        if _FULL_SHA.match(revision.lower()):
            return revision.lower()
        if semver.is_constraint(revision):
            with self._lock(key):
                listing = self._listing(bare, credential, key)
            tags = [name.removeprefix("refs/tags/") for name in listing.refs
                    if name.startswith("refs/tags/") and not name.endswith("^{}")]
            best = semver.highest_satisfying(revision, tags)
            if best is not None:
                return self._match(listing, f"refs/tags/{best}") or ""
            # no tag satisfies it: Argo CD goes on with the string as a ref name (a branch "1.x")
        if not _REF_NAME.match(revision) or revision.startswith(("-", "/")) or ".." in revision:
            raise RevisionNotFound(f"revision {revision!r} is not a valid ref name or commit SHA")
        with self._lock(key):
            listing = self._listing(bare, credential, key)
            found = self._match(listing, revision)
            if found is not None:
                return found
            if _SHORT_SHA.match(revision.lower()):
                full = self._expand_short(key, revision.lower(), url=bare)
                if full is None:
                    self._fetch(bare, credential, key)
                    full = self._expand_short(key, revision.lower(), url=bare)
                if full:
                    return full
        raise RevisionNotFound(
            f"unable to resolve {revision!r} to a commit SHA in {giturl.redact_url(url)}"
        )

    # ------------------------------------------------------------------------------------ mirror

    def _mirror(self, key: str) -> Path:
        return self.cache_dir / "mirrors" / f"{key}.git"

    def _init_mirror(self, mirror: Path) -> None:
        """Create the bare mirror with GitPython and pin its config: no hooks, and no automatic
        ``gc``/maintenance, which git would otherwise start as detached background processes."""
        self.git_processes += 1  # GitPython runs ``git init``
        try:
            with contextlib.closing(git.Repo.init(mirror, mkdir=True, bare=True)) as repo, \
                    repo.config_writer() as config:
                config.set_value("core", "hooksPath", os.devnull)
                config.set_value("gc", "auto", "0")
                config.set_value("maintenance", "auto", "false")
                config.set_value("fetch", "writeCommitGraph", "false")
        except (git.GitError, OSError) as exc:
            raise GitCommandFailed(f"cannot create a repository mirror ({type(exc).__name__})") from None

    def _fetch(self, url: str, credential: RepoCredential | None, key: str) -> None:
        mirror = self._mirror(key)
        if not (mirror / "HEAD").exists():
            self._init_mirror(mirror)
        self._git(
            ["--git-dir", str(mirror), "fetch", "--quiet", "--force", "--prune", "--no-recurse-submodules",
             "--no-auto-gc", "--", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
            url=url, credential=credential,
        )

    def _batch_check(self, key: str, specs: Sequence[str], *, url: str) -> list[tuple[str, str] | None]:
        """``git cat-file --batch-check`` for several object names in one process: (id, type) or None."""
        mirror = self._mirror(key)
        if not specs or not (mirror / "HEAD").exists():
            return [None] * len(specs)
        out = self._git(["--git-dir", str(mirror), "cat-file", "--batch-check"], url=url, credential=None,
                        stdin="".join(f"{spec}\n" for spec in specs).encode())
        results: list[tuple[str, str] | None] = []
        for line in out.decode("utf-8", "replace").splitlines():
            parts = line.split(" ")
            ok = len(parts) == 3 and _FULL_SHA.match(parts[0]) is not None
            results.append((parts[0], parts[1]) if ok else None)
        return results + [None] * (len(specs) - len(results))

    def _has_commit(self, key: str, sha: str, *, url: str) -> bool:
        if (key, sha) in self._have:
            return True
        found = self._batch_check(key, [f"{sha}^{{commit}}"], url=url)[0]
        if found is not None and found[0] == sha:
            self._have.add((key, sha))
            return True
        return False

    def _expand_short(self, key: str, short: str, *, url: str) -> str | None:
        found = self._batch_check(key, [f"{short}^{{commit}}"], url=url)[0]
        return found[0] if found is not None and found[1] == "commit" else None

    def _ensure_commit(self, url: str, credential: RepoCredential | None, key: str, commit: str) -> None:
        if not self._has_commit(key, commit, url=url):
            self._fetch(url, credential, key)
            if not self._has_commit(key, commit, url=url):
                raise RevisionNotFound(f"commit {commit} is not in {giturl.redact_url(url)} (after fetching)")

    def tree_ids(self, url: str, commit: str, paths: Sequence[str]) -> dict[str, str]:
        """The git tree (or blob) id of each repository-relative path at ``commit``; ``""`` for a path
        that does not exist. Fetches the commit if needed; answers are remembered (commits are immutable),
        so asking again costs no git process."""
        if not _FULL_SHA.match(commit):
            raise RevisionNotFound(f"{commit!r} is not a full commit SHA")
        bare, credential, key = self._target(url)
        cleaned = {p: (posixpath.normpath(p.strip("/")) if p.strip("/") else ".") for p in paths
                   if not any(ord(ch) < 32 for ch in p)}
        with self._lock(key):
            wanted = set(cleaned.values())
            if any((key, commit, c) not in self._tree_ids for c in wanted):
                # ask for every path any app of this repo asked for before: at a new commit the first
                # caller pays one cat-file for all of them, and the other apps find their ids remembered
                known = self._known_paths.setdefault(key, set())
                known |= wanted
                missing = sorted(c for c in known if (key, commit, c) not in self._tree_ids)
                self._ensure_commit(bare, credential, key, commit)
                if len(self._tree_ids) > _TREE_ID_MEMO:
                    self._tree_ids.clear()  # old commits' answers; recomputed on demand
                specs = [f"{commit}^{{tree}}" if c == "." else f"{commit}:{c}" for c in missing]
                for clean, found in zip(missing, self._batch_check(key, specs, url=bare), strict=True):
                    escapes = clean.startswith("..")
                    self._tree_ids[(key, commit, clean)] = "" if found is None or escapes else found[0]
            found_ids = {p: self._tree_ids[(key, commit, c)] for p, c in cleaned.items()}
        return {p: found_ids.get(p, "") for p in paths}

    # ------------------------------------------------------------------------------------ trees

    def checkout(self, url: str, revision: str) -> Checkout:
        """Resolve ``revision``, fetch if the commit is new, and return its read-only tree."""
        commit = self.resolve(url, revision)
        bare, credential, key = self._target(url)
        identity = credential.identity if credential else gitenv.ANONYMOUS
        with self._lock(key):
            store = treestore.TreeStore(self.cache_dir / "trees" / key, keep=self.keep_trees,
                                        lease=self.tree_lease)
            path = store.get(commit, now=self.clock())
            if path is None:
                self._ensure_commit(bare, credential, key, commit)
                path = store.materialise(
                    commit,
                    lambda tar: self._git(
                        ["--git-dir", str(self._mirror(key)), "archive", "--format=tar",
                         f"--output={tar}", commit],
                        url=bare, credential=credential,
                    ),
                    now=self.clock(),
                )
        return Checkout(repo_url=giturl.redact_url(url), revision=revision, commit=commit, path=path,
                        mirror_key=key, credential_identity=identity)
