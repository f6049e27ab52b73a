"""Build environment variables and their substitution into tool options (``argocd-sync-semantics.md`` §1.2).

Who calls this: :mod:`sync.render`, before a Helm or Kustomize source is rendered. As in Argo CD,
``$VAR`` and ``${VAR}`` are replaced in Helm parameter values and value-file paths and in Kustomize images
and common labels (common annotations only with ``commonAnnotationsEnvsubst: true``); unknown variables
become empty and ``$$`` is a literal ``$``. Only the ``ARGOCD_APP_*`` variables exist: nothing from the
service's own environment can leak into a render.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection

from sync.application import Application, ApplicationSource, HelmParameter

__all__ = ["build_env", "envsubst", "substitute", "uses_env"]

_VAR = re.compile(r"\$(?:\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


def build_env(app: Application, src: ApplicationSource, *, commit: str) -> dict[str, str]:
    return {
        "ARGOCD_APP_NAME": app.name,
        "ARGOCD_APP_NAMESPACE": app.destination.namespace,
        "ARGOCD_APP_PROJECT_NAME": app.project,
        "ARGOCD_APP_REVISION": commit,
        "ARGOCD_APP_REVISION_SHORT": commit[:7],
        "ARGOCD_APP_REVISION_SHORT_8": commit[:8],
        "ARGOCD_APP_SOURCE_REPO_URL": src.repo_url,
        "ARGOCD_APP_SOURCE_PATH": src.path,
        "ARGOCD_APP_SOURCE_TARGET_REVISION": src.target_revision,
    }


def envsubst(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1) or match.group(2), "")

    return _VAR.sub(replace, text)


def _annotations_envsubst(src: ApplicationSource) -> bool:
    return src.kustomize is not None and src.kustomize.extra.get("commonAnnotationsEnvsubst") is True


def uses_env(src: ApplicationSource) -> bool:
    """Whether any substituted field mentions ``$`` (then the render depends on the commit id itself)."""
    texts: list[str] = []
    if src.helm is not None:
        texts += [p.value for p in src.helm.parameters] + list(src.helm.value_files)
    if src.kustomize is not None:
        texts += list(src.kustomize.images) + list(src.kustomize.common_labels.values())
        if _annotations_envsubst(src):
            texts += list(src.kustomize.common_annotations.values())
    return any("$" in text for text in texts)


def _is_ref(value: str, refs: Collection[str]) -> bool:
    return value.startswith("$") and value[1:].partition("/")[0] in refs


def substitute(src: ApplicationSource, env: dict[str, str], *, refs: Collection[str] = ()) -> ApplicationSource:
    """A copy of ``src`` with the variables substituted where Argo CD substitutes them.

    A value file naming another source's ``ref`` (``$values/...``) is left for path resolution, as Argo CD
    checks for references before substituting."""
    helm, kustomize = src.helm, src.kustomize
    if helm is not None:
        helm = dataclasses.replace(
            helm,
            parameters=tuple(HelmParameter(p.name, envsubst(p.value, env), p.force_string) for p in helm.parameters),
            value_files=tuple(v if _is_ref(v, refs) else envsubst(v, env) for v in helm.value_files),
        )
    if kustomize is not None:
        annotations = kustomize.common_annotations
        if _annotations_envsubst(src):
            annotations = {k: envsubst(v, env) for k, v in annotations.items()}
        kustomize = dataclasses.replace(
            kustomize,
            images=tuple(envsubst(i, env) for i in kustomize.images),
            common_labels={k: envsubst(v, env) for k, v in kustomize.common_labels.items()},
            common_annotations=annotations,
        )
    return dataclasses.replace(src, helm=helm, kustomize=kustomize)
