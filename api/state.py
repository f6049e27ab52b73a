"""What a running API holds: the injectable :class:`Services`, the per-app :class:`AppState` built by the lifespan,
and the :class:`PolicyCache` that keeps the live Authorizer and the projects fresh.

Who builds it: :func:`api.app.create_app`'s lifespan, once per app; routes reach it through
:data:`api.deps.StateDep`. Nothing here is module-level: two apps in one process share nothing.

The Authorizer is the newest stored RBAC policy (``policy.store.LivePolicy``) plus each stored project's runtime
policy (its roles). Several replicas write the same database, so the cache re-reads both at most every
``policy_refresh_seconds`` (and at once after a write through this replica): a revoked role or a changed
policy takes effect on every replica within that interval. Verified project tokens are cached for the same
interval (:mod:`policy.store.token_cache`): a revocation, or a project or role deleted, through this replica takes
effect on the next request; through another replica, within the interval.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from api.routes.metrics import Metrics
from config.settings import Settings
from policy.accounts import PasswordHasher, ThrottleRules
from policy.errors import InvalidPolicy, InvalidProject
from policy.evaluate import AppTarget
from policy.project import AppProject
from policy.rbac import Authorizer
from policy.store import Store
from policy.store.accounts import AccountStore

if TYPE_CHECKING:
    from api.wiring import Services as System

__all__ = ["AppState", "PolicyCache", "PolicyView", "Services", "announce_stdout", "utc_now"]

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


def announce_stdout(text: str) -> None:
    """Print a one-time notice (the initial admin password) on stdout, never through logging."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class PolicyView(Protocol):
    """What the API needs of the live policy: :class:`PolicyCache` here, or a view shared with the reconciler."""

    def authorizer(self) -> Authorizer: ...

    def projects(self) -> Mapping[str, AppProject]: ...

    def invalidate(self) -> None: ...

    def broken(self) -> Mapping[str, str]: ...

    def is_fresh(self) -> bool: ...


#: (repo URL, revision hint) -> None: ask the reconciler to refresh the apps of that repository
Refresh = Callable[[str, str], None]
#: project name -> the apps that belong to it (for project updates and deletes, reference §1.12)
ProjectApps = Callable[[str], Sequence[AppTarget]]


@dataclass(frozen=True)
class Services:
    """Collaborators and tunables ``create_app`` uses instead of its defaults (``serve`` wires the real ones)."""

    clock: Callable[[], datetime] = utc_now
    #: the webhook's way to ask for a refresh; None means webhooks are accepted and only counted
    refresh: Refresh | None = None
    project_apps: ProjectApps | None = None
    #: an already open store (then the app does not close it); None opens one from the settings
    store: Store | None = None
    #: a live policy shared with the reconciler; None builds a :class:`PolicyCache` over the store
    policy: PolicyView | None = None
    hasher: PasswordHasher = field(default_factory=PasswordHasher)
    throttle: ThrottleRules = field(default_factory=ThrottleRules)
    session_ttl: timedelta = timedelta(hours=24)
    #: webhook shared secrets by provider: github, gitlab, bitbucket, gitea (unset: that provider is refused)
    webhook_secrets: Mapping[str, str] = field(default_factory=dict)
    #: pushes to the same repository within this many seconds cause one refresh
    webhook_coalesce_seconds: float = 3.0
    request_timeout: float = 30.0
    policy_refresh_seconds: float = 2.0
    announce: Callable[[str], None] = announce_stdout
    #: create the ``default`` project at startup when it is missing (Argo CD, reference §1.11)
    create_default_project: bool = True
    #: the running system built by :func:`api.wiring.build_services` (reconciler, apps, gate); the application
    #: routes answer 503 without it. ``api.serve`` passes it together with its store and live policy.
    system: System | None = None


class PolicyCache:
    """The live Authorizer with every project's runtime policy, and the parsed projects — the ONE live policy of
    a running system: the API's routes and the sync gate (:func:`api.wiring.build_services`) share it.

    ``admin_subjects`` are bound to ``role:admin`` (the local operator of the database in the CLI's local mode);
    an explicit deny in the stored policy still wins over them. A stored RBAC policy that no longer compiles
    leaves the last good one live (logged). A stored project that cannot be parsed grants nothing, its apps are
    denied, and :meth:`broken` names it (the admission review denies in its namespaces: fail closed)."""

    def __init__(self, store: Store, *, interval: float, admin_subjects: Sequence[str] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._interval = interval
        self._grants = "".join(f"\ng, {subject}, role:admin" for subject in admin_subjects)
        self._clock = clock
        self._lock = threading.Lock()
        self._checked = float("-inf")
        self._rbac_version: int | None = None
        self._authorizer: Authorizer | None = None
        self._versions: dict[str, int] = {}
        self._projects: dict[str, AppProject] = {}
        self._broken: dict[str, str] = {}

    def authorizer(self) -> Authorizer:
        self._maybe_refresh()
        assert self._authorizer is not None
        return self._authorizer

    def projects(self) -> Mapping[str, AppProject]:
        self._maybe_refresh()
        return self._projects

    def project(self, name: str) -> AppProject | None:
        """One parsed project; None when it does not exist or cannot be loaded (callers deny)."""
        return self.projects().get(name)

    def broken(self) -> Mapping[str, str]:
        """Stored projects that cannot be loaded: name -> why."""
        self._maybe_refresh()
        return self._broken

    def invalidate(self) -> None:
        """Re-read at the next use (after a write through this replica)."""
        self._checked = float("-inf")

    def is_fresh(self) -> bool:
        """True when the next use will not read the store (so a coroutine may use it without blocking)."""
        return self._authorizer is not None and self._clock() - self._checked < self._interval

    def _maybe_refresh(self) -> None:
        if self._clock() - self._checked < self._interval and self._authorizer is not None:
            return
        with self._lock:
            if self._clock() - self._checked < self._interval and self._authorizer is not None:
                return
            self._refresh()
            self._checked = self._clock()

    def _compiled(self) -> tuple[Authorizer, bool]:
        """The authorizer of the newest stored RBAC policy; True when it is a new object."""
        current = self._store.rbac.current()
        version = current.version if current is not None else 0
        if self._authorizer is not None and version == self._rbac_version:
            return self._authorizer, False
        try:
            authorizer = Authorizer.from_csv(
                (current.policy_csv if current else "") + self._grants,
                default_role=current.default_role if current else None,
                match_mode=current.match_mode if current else "glob",
                source=f"stored RBAC policy v{version}" if current else "policy.csv",
            )
        except InvalidPolicy as exc:
            if self._authorizer is not None:
                log.error("RBAC policy version %d refused, version %s stays live: %s", version,
                          self._rbac_version, exc)
                self._rbac_version = version
                return self._authorizer, False
            log.error("stored RBAC policy cannot be compiled; only the built-in policy applies: %s", exc)
            authorizer = Authorizer.from_csv(self._grants, source="built-in")
        self._rbac_version = version
        return authorizer, True

    def _refresh(self) -> None:
        authorizer, fresh = self._compiled()
        stored = {p.name: p for p in self._store.projects.list()}
        projects = dict(self._projects)
        broken = {name: why for name, why in self._broken.items() if name in stored}
        for name in list(projects):
            if name not in stored:
                del projects[name]
                authorizer.remove_project_policy(name)
        for name, row in stored.items():
            if not fresh and self._versions.get(name) == row.version and (name in projects or name in broken):
                continue
            try:
                project = row.project()
                if project.roles:
                    authorizer.load_project_policy(name, project.runtime_policy_csv())
                else:
                    authorizer.remove_project_policy(name)
            except (InvalidProject, InvalidPolicy) as exc:  # written by another release or by hand: logged
                log.error("stored project %r cannot be loaded; its roles grant nothing, its apps are denied: %s",
                          name, exc)
                projects.pop(name, None)
                broken[name] = str(exc)
                authorizer.remove_project_policy(name)
                continue
            broken.pop(name, None)
            projects[name] = project
        self._versions = {name: row.version for name, row in stored.items()}
        self._projects = projects
        self._broken = broken
        self._authorizer = authorizer


@dataclass
class AppState:
    settings: Settings
    services: Services
    store: Store
    accounts: AccountStore
    policy: PolicyView
    metrics: Metrics
    #: checked for unknown users so that a login's timing does not reveal whether the user exists (AUTH-04)
    dummy_hash: str
    #: repo URL -> monotonic time of its last webhook refresh (coalescing)
    webhook_seen: dict[str, float] = field(default_factory=dict)
    webhook_lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> datetime:
        return self.services.clock()
