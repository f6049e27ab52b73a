"""The repo-error grace period: when a failure to load an app's desired state is reported.

Who calls this: :class:`sync.reconciler.Reconciler`, each time rendering an app fails during a comparison
and each time one succeeds. Pure apart from its own memory; time is the ``now`` parameter.

The rule (``argocd-sync-semantics.md`` §5.3, Argo CD ``--repo-error-grace-period-seconds``): the first
failure of an app starts its error clock and is not reported; further failures are not reported either while
less than ``seconds`` have passed since that first failure. Once the period is over every failure is reported
(the app gets a ``ComparisonError`` and sync status ``Unknown``) until a success clears the clock. A forced
comparison (a refresh request or a spec change, Argo CD's "level 3") reports at once and neither starts nor
clears the clock. ``seconds`` of 0 reports every failure.

The clock is kept in memory per reconciler, as Argo CD keeps it per controller: a replica that takes an app
over (or a restart) starts the app's clock afresh, so an outage is reported at most one period later.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import datetime, timedelta

__all__ = ["RepoErrorGrace"]

AppKey = tuple[str, str]


class RepoErrorGrace:
    def __init__(self, seconds: float) -> None:
        self.period = timedelta(seconds=seconds)
        self._first: dict[AppKey, datetime] = {}
        self._lock = threading.Lock()

    def report(self, app: AppKey, *, now: datetime, forced: bool) -> bool:
        """A render of ``app`` failed at ``now``: should its status show it? (See the module docstring.)"""
        if forced or self.period <= timedelta(0):
            return True
        with self._lock:
            first = self._first.setdefault(app, now)
        return now - first >= self.period

    def first_failure(self, app: AppKey) -> datetime | None:
        """When the app's current run of failures began (None: its last render succeeded)."""
        with self._lock:
            return self._first.get(app)

    def succeeded(self, app: AppKey) -> None:
        """A render of ``app`` succeeded: its error clock stops."""
        with self._lock:
            self._first.pop(app, None)

    def retain(self, apps: Iterable[AppKey]) -> None:
        """Forget the clocks of apps that are gone."""
        keep = set(apps)
        with self._lock:
            for app in [a for a in self._first if a not in keep]:
                del self._first[app]
