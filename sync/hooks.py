"""Hook and wave annotations: which phases an object runs in, its wave, its delete policies, its sync options.

Pure (``argocd-sync-semantics.md`` §0, §4.4, §4.9). Argo CD's and Helm's annotations are both understood, with
Argo CD's taking precedence for typing; delete policies are the union of both.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any

__all__ = [
    "HOOK_ANNOTATION",
    "DeletePolicy",
    "Phase",
    "delete_policies",
    "deletion_hook_types",
    "hook_phases",
    "is_garbage_hook",
    "is_hook",
    "is_skipped",
    "sync_options",
    "wave_of",
]

HOOK_ANNOTATION = "argocd.argoproj.io/hook"
HELM_HOOK = "helm.sh/hook"
WAVE_ANNOTATION = "argocd.argoproj.io/sync-wave"
HELM_WEIGHT = "helm.sh/hook-weight"
DELETE_POLICY = "argocd.argoproj.io/hook-delete-policy"
HELM_DELETE_POLICY = "helm.sh/hook-delete-policy"
SYNC_OPTIONS = "argocd.argoproj.io/sync-options"


class Phase(str, Enum):
    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"

    @property
    def order(self) -> int:
        return _PHASE_ORDER[self]


_PHASE_ORDER = {Phase.PRE_SYNC: -1, Phase.SYNC: 0, Phase.POST_SYNC: 1, Phase.SYNC_FAIL: 2}


class DeletePolicy(str, Enum):
    BEFORE_HOOK_CREATION = "BeforeHookCreation"
    HOOK_SUCCEEDED = "HookSucceeded"
    HOOK_FAILED = "HookFailed"


_HELM_PHASES = {
    "pre-install": Phase.PRE_SYNC,
    "pre-upgrade": Phase.PRE_SYNC,
    "post-install": Phase.POST_SYNC,
    "post-upgrade": Phase.POST_SYNC,
}
_HELM_POLICIES = {
    "before-hook-creation": DeletePolicy.BEFORE_HOOK_CREATION,
    "hook-succeeded": DeletePolicy.HOOK_SUCCEEDED,
    "hook-failed": DeletePolicy.HOOK_FAILED,
}


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    annotations = meta.get("annotations") if isinstance(meta, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def _split(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    seen: list[str] = []
    for part in value.split(","):
        part = part.strip()
        if part and part not in seen:
            seen.append(part)
    return seen


def _argo_types(obj: Mapping[str, Any]) -> list[str] | None:
    annotations = _annotations(obj)
    if HOOK_ANNOTATION not in annotations:
        return None
    return _split(annotations[HOOK_ANNOTATION])


def hook_phases(obj: Mapping[str, Any]) -> tuple[Phase, ...]:
    """The sync phases a hook runs in, in phase order; empty for non-hooks and for garbage hooks."""
    argo = _argo_types(obj)
    phases: set[Phase] = set()
    if argo is not None:
        for value in argo:
            try:
                phases.add(Phase(value))
            except ValueError:
                continue
    else:
        for value in _split(_annotations(obj).get(HELM_HOOK)):
            if value in _HELM_PHASES:
                phases.add(_HELM_PHASES[value])
    return tuple(sorted(phases, key=lambda p: p.order))


def is_skipped(obj: Mapping[str, Any]) -> bool:
    """``argocd.argoproj.io/hook: Skip`` alone: never applied, never pruned."""
    argo = _argo_types(obj)
    return argo is not None and "Skip" in argo and not hook_phases(obj) and not deletion_hook_types(obj)


def is_hook(obj: Mapping[str, Any]) -> bool:
    """A hook: Argo annotation other than Skip alone, or a Helm hook other than crd-install."""
    argo = _argo_types(obj)
    if argo is not None:
        return not (argo == ["Skip"] or not argo)
    helm = _split(_annotations(obj).get(HELM_HOOK))
    return bool(helm) and helm != ["crd-install"]


def deletion_hook_types(obj: Mapping[str, Any]) -> tuple[str, ...]:
    """PreDelete / PostDelete types (Argo values or Helm pre-delete/post-delete)."""
    found: list[str] = []
    for value in _split(_annotations(obj).get(HOOK_ANNOTATION)):
        if value in ("PreDelete", "PostDelete") and value not in found:
            found.append(value)
    for value in _split(_annotations(obj).get(HELM_HOOK)):
        mapped = {"pre-delete": "PreDelete", "post-delete": "PostDelete"}.get(value)
        if mapped and mapped not in found:
            found.append(mapped)
    return tuple(found)


def is_garbage_hook(obj: Mapping[str, Any]) -> bool:
    """A hook with no recognised type at all: ignored entirely (not applied, compared or pruned)."""
    return is_hook(obj) and not hook_phases(obj) and not deletion_hook_types(obj)


def delete_policies(obj: Mapping[str, Any]) -> frozenset[DeletePolicy]:
    """Union of Argo and Helm delete policies; none given means BeforeHookCreation."""
    annotations = _annotations(obj)
    policies: set[DeletePolicy] = set()
    for value in _split(annotations.get(DELETE_POLICY)):
        try:
            policies.add(DeletePolicy(value))
        except ValueError:
            continue
    for value in _split(annotations.get(HELM_DELETE_POLICY)):
        if value in _HELM_POLICIES:
            policies.add(_HELM_POLICIES[value])
    return frozenset(policies or {DeletePolicy.BEFORE_HOOK_CREATION})


def _int(value: Any) -> int | None:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def wave_of(obj: Mapping[str, Any]) -> int:
    """``sync-wave``, else ``helm.sh/hook-weight``, else 0; unparsable values fall through."""
    annotations = _annotations(obj)
    for key in (WAVE_ANNOTATION, HELM_WEIGHT):
        wave = _int(annotations.get(key))
        if wave is not None:
            return wave
    return 0


def sync_options(obj: Mapping[str, Any] | None) -> dict[str, str]:
    """Per-resource ``argocd.argoproj.io/sync-options`` as a dict (``Prune=false`` → ``{"Prune": "false"}``)."""
    if obj is None:
        return {}
    out: dict[str, str] = {}
    for item in _split(_annotations(obj).get(SYNC_OPTIONS)):
        key, sep, value = item.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out
