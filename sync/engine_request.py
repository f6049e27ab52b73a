"""What one sync operation is asked to do: the app, its rendered and live objects, and the operation's options.

Who builds it: the reconciler and the CLI/API (through ``api``), once per tick of an operation, from the
app, the manifests rendered at the operation's pinned revision and the app's managed live objects; the
engine (:mod:`sync.engine`) only reads it. Options come from the *operation's* copy of the sync options
(Argo CD copies ``spec.syncPolicy.syncOptions`` into the operation when it is created, §1.9), parsed by
:meth:`SyncOptions.parse` from the ``Key=value`` strings users already write (§1.10).

``app`` is the app as stored *now* (read again for every tick): its annotations carry the deletion approval
that ``Prune=confirm`` prunes wait for, and its ``ignoreDifferences`` are what ``RespectIgnoreDifferences``
keeps. Two callables bind the caller's knowledge without the engine importing it: ``prepare_target`` stamps the
tracking id on every object about to be written (hooks get their generated names first, so it runs after
planning), and ``may_prune`` says whether a live object may be deleted (bound to the project's
destinations and kind lists; the engine never prunes what it refuses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync import compare_ignore
from sync import diff as diff_mod
from sync.application import Application, Retry
from sync.cluster import Propagation
from sync.gate import SyncTrigger
from sync.models import ResourceKey
from sync.operation import OperationPhase

__all__ = ["InvalidSyncOption", "SelectedResource", "SyncOptions", "SyncRequest", "default_modified"]

Obj = Mapping[str, Any]

_PROPAGATION: dict[str, Propagation] = {"foreground": "Foreground", "background": "Background", "orphan": "Orphan"}


class InvalidSyncOption(ValueError):
    """A sync option the engine cannot honour; the message names the option."""


@dataclass(frozen=True, slots=True)
class SelectedResource:
    """One entry of a selective sync (``operation.sync.resources``); an empty namespace matches any."""

    group: str
    kind: str
    name: str
    namespace: str = ""

    def matches(self, key: ResourceKey) -> bool:
        return (
            self.group == key.group
            and self.kind == key.kind
            and self.name == key.name
            and (not self.namespace or self.namespace == key.namespace)
        )


@dataclass(frozen=True)
class SyncOptions:
    """The operation's knobs (``operation.sync`` plus its sync options), with Argo CD's defaults."""

    prune: bool = False
    dry_run: bool = False
    #: ``syncStrategy.apply``: hooks are skipped
    skip_hooks: bool = False
    #: selective sync; empty means every resource
    resources: tuple[SelectedResource, ...] = ()
    create_namespace: bool = False
    replace: bool = False
    server_side_apply: bool = True
    apply_out_of_sync_only: bool = False
    prune_propagation: Propagation = "Foreground"
    prune_last: bool = False
    #: app-level ``Prune=false``: prunes are skipped unless a resource says ``Prune=true``
    prune_disabled: bool = False
    #: app-level ``Prune=confirm``: prunes wait for the app's deletion approval unless a resource says otherwise
    prune_confirm: bool = False
    skip_dry_run_on_missing_resource: bool = False
    #: ``syncStrategy.*.force``
    force: bool = False
    #: permit a sync whose desired set is empty to prune every managed resource
    allow_empty: bool = False
    #: app-level ``Validate``: false writes without strict field validation (§4.7)
    validate: bool = True
    #: ``RespectIgnoreDifferences=true``: fields the app's ignoreDifferences ignore keep their live values
    respect_ignore_differences: bool = False
    #: ``FailOnSharedResource=true``: the operation fails when the app shares a resource with another app
    fail_on_shared_resource: bool = False

    @property
    def selective(self) -> bool:
        return bool(self.resources)

    @classmethod
    def parse(cls, options: Iterable[str], **overrides: Any) -> SyncOptions:
        """Options from ``Key=value`` strings (app or operation ``syncOptions``), then keyword overrides.

        Unknown keys are ignored, as Argo CD does; a value the engine cannot honour raises
        :class:`InvalidSyncOption` naming it.
        """
        values: dict[str, Any] = {}
        for raw in options:
            key, sep, value = raw.strip().partition("=")
            if not sep:
                continue
            key, value = key.strip(), value.strip()
            flag = value.lower() == "true"
            if key == "CreateNamespace":
                values["create_namespace"] = flag
            elif key == "Replace":
                values["replace"] = flag
            elif key == "ServerSideApply":
                values["server_side_apply"] = value.lower() != "false"
            elif key == "ApplyOutOfSyncOnly":
                values["apply_out_of_sync_only"] = flag
            elif key == "PruneLast":
                values["prune_last"] = flag
            elif key == "Prune":
                values["prune_disabled"] = value.lower() == "false"
                values["prune_confirm"] = value.lower() == "confirm"
            elif key == "Validate":
                values["validate"] = value.lower() != "false"
            elif key == "SkipDryRunOnMissingResource":
                values["skip_dry_run_on_missing_resource"] = flag
            elif key == "RespectIgnoreDifferences":
                values["respect_ignore_differences"] = flag
            elif key == "FailOnSharedResource":
                values["fail_on_shared_resource"] = flag
            elif key == "PrunePropagationPolicy":
                if value.lower() not in _PROPAGATION:
                    raise InvalidSyncOption(
                        f"sync option PrunePropagationPolicy={value}: expected foreground, background or orphan"
                    )
                values["prune_propagation"] = _PROPAGATION[value.lower()]
        values.update(overrides)
        return cls(**values)


def default_modified(target: Obj, live: Obj) -> bool:
    """Does ``live`` differ from ``target``? (:func:`sync.diff.diff`, our field manager, no ignore rules)."""
    return diff_mod.diff(target, live).modified


def _identity(obj: dict[str, Any]) -> dict[str, Any]:
    return obj


def _refuse(obj: Obj) -> bool:
    del obj
    return False  # fail closed: a caller that did not say what may be pruned gets no prunes


@dataclass(frozen=True)
class SyncRequest:
    """Everything one tick needs besides the operation state. Build it again for every tick."""

    app: Application
    #: rendered desired objects, hooks included (tracking is stamped by ``prepare_target``)
    targets: Sequence[Obj]
    #: the app's managed live objects (self-referencing: tracked by this app)
    live: Sequence[Obj]
    #: the resolved revision (a commit SHA) the operation syncs; also seeds generated hook names
    revision: str
    options: SyncOptions = field(default_factory=SyncOptions)
    trigger: SyncTrigger = "manual"
    subject: str | None = None
    groups: tuple[str, ...] = ()
    override_reason: str | None = None
    #: may this live object be deleted? (project destinations and kinds); default: never
    may_prune: Callable[[Obj], bool] = _refuse
    #: stamps tracking metadata on an object about to be written (receives and returns a copy)
    prepare_target: Callable[[dict[str, Any]], dict[str, Any]] = _identity
    #: the retry policy (``spec.syncPolicy.retry``, or the automated default); None: no retries
    retry: Retry | None = None
    #: is the live object out of date with the target? (for ApplyOutOfSyncOnly)
    modified: Callable[[Obj, Obj], bool] = default_modified
    #: the comparison's ``SharedResourceWarning`` messages (``FailOnSharedResource`` fails the operation on them)
    shared_resources: tuple[str, ...] = ()

    @property
    def destination_namespace(self) -> str:
        return self.app.destination.namespace

    def refusal(self) -> tuple[OperationPhase, str] | None:
        """Why the operation must not run at all (the engine asks every tick, before anything is written), or
        None: ``FailOnSharedResource`` while the app shares a resource with another app (Failed, §4.1 step
        4.4); ``RespectIgnoreDifferences`` with ignoreDifferences it cannot evaluate (Error; fail closed:
        writing the fields the user asked to keep is exactly what it must not do)."""
        if self.options.fail_on_shared_resource and self.shared_resources:
            return OperationPhase.FAILED, "Shared resource found: " + "; ".join(self.shared_resources)
        if self.options.respect_ignore_differences:
            errors = compare_ignore.validate(self.app.ignore_differences)
            if errors:
                return OperationPhase.ERROR, "; ".join(f"{c.type}: {c.message}" for c in errors)
        return None
