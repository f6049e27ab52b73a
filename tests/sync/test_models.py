"""Application model, ResourceKey and Manifest.

Covers: loading Argo CD Application YAML unchanged (single and multi-source, directory/helm/kustomize
options, destination, project default, syncPolicy, retry, ignoreDifferences, revisionHistoryLimit,
finalizers, fields we do not model kept), ``to_dict`` round trip, validation errors naming the field path,
YAML 1.1 surprises refused rather than coerced, hostile repo URLs refused at load (REPO-08).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from config import yamlsafe
from sync.models import Application, InvalidApplication, Manifest, ResourceKey

FULL = """
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: guestbook
  namespace: argocd
  labels: {team: web}
  annotations: {argocd.argoproj.io/manifest-generate-paths: .}
  finalizers:
  - resources-finalizer.argocd.argoproj.io
spec:
  project: web
  source:
    repoURL: https://github.com/argoproj/argocd-example-apps.git
    targetRevision: HEAD
    path: helm-guestbook
    helm:
      releaseName: gb
      valueFiles: [values.yaml, values-prd.yaml]
      parameters:
      - {name: image.tag, value: "1.2", forceString: true}
      valuesObject:
        replicas: 2
  destination:
    server: https://kubernetes.default.svc
    namespace: guestbook
  syncPolicy:
    automated: {prune: true, selfHeal: true, allowEmpty: true}
    syncOptions: [CreateNamespace=true, PruneLast=true]
    retry:
      limit: 5
      backoff: {duration: 5s, factor: 2, maxDuration: 3m}
  ignoreDifferences:
  - group: apps
    kind: Deployment
    jsonPointers: [/spec/replicas]
  revisionHistoryLimit: 3
  info:
  - {name: url, value: https://example.com}
"""


def load(text: str) -> dict[str, Any]:
    data = yamlsafe.load_one(text, source="app.yaml")
    assert isinstance(data, dict)
    return data


def base() -> dict[str, Any]:
    return load(FULL)


def test_full_application_loads_every_field() -> None:
    app = Application.from_dict(base(), source="app.yaml")
    assert (app.name, app.namespace, app.project) == ("guestbook", "argocd", "web")
    assert len(app.sources) == 1 and app.source is app.sources[0]
    src = app.source
    assert src.repo_url.endswith("argocd-example-apps.git") and src.path == "helm-guestbook"
    assert src.explicit_type == "Helm"
    assert src.helm is not None and src.helm.value_files == ("values.yaml", "values-prd.yaml")
    assert src.helm.parameters[0].force_string and src.helm.release_name == "gb"
    assert src.helm.values_object == {"replicas": 2}
    assert app.destination.server == "https://kubernetes.default.svc"
    assert app.destination.namespace == "guestbook"
    policy = app.sync_policy
    assert policy is not None and policy.automated is not None
    assert (policy.automated.prune, policy.automated.self_heal, policy.automated.allow_empty) == (True, True, True)
    assert app.automated
    assert policy.sync_options == ("CreateNamespace=true", "PruneLast=true")
    assert policy.retry is not None and policy.retry.limit == 5
    assert policy.retry.backoff is not None and policy.retry.backoff.max_duration_seconds == 180
    assert app.ignore_differences[0].json_pointers == ("/spec/replicas",)
    assert app.revision_history_limit == 3
    assert app.finalizers == ("resources-finalizer.argocd.argoproj.io",)
    assert app.source_file == "app.yaml"


def test_to_dict_round_trips_unchanged_including_unmodelled_fields() -> None:
    original = base()
    app = Application.from_dict(copy.deepcopy(original))
    assert app.to_dict() == original
    assert Application.from_dict(app.to_dict()) == app


def test_defaults_project_history_and_automated_enabled() -> None:
    data = base()
    data["spec"]["project"] = ""
    del data["spec"]["revisionHistoryLimit"]
    data["spec"]["syncPolicy"] = {"automated": None}
    app = Application.from_dict(data)
    assert app.project == "default"
    assert app.revision_history_limit == 10
    assert app.automated
    data["spec"]["syncPolicy"] = {"automated": {"enabled": False}}
    assert not Application.from_dict(data).automated


def test_multi_source_with_ref_and_kustomize_and_directory() -> None:
    data = base()
    del data["spec"]["source"]
    data["spec"]["sources"] = [
        {"repoURL": "https://git.example.com/values.git", "targetRevision": "main", "ref": "values"},
        {
            "repoURL": "git@github.com:org/app.git",
            "path": "k8s",
            "kustomize": {
                "namePrefix": "p-",
                "commonLabels": {"team": "web"},
                "images": ["nginx:1.27"],
                "namespace": "x",
            },
        },
        {
            "repoURL": "ssh://git@git.example.com/org/plain.git",
            "path": "plain",
            "directory": {"recurse": True, "include": "*.yaml", "exclude": "{test/*,ci/*}"},
        },
    ]
    app = Application.from_dict(data)
    assert app.multi_source and len(app.sources) == 3
    assert app.sources[0].ref == "values" and app.sources[0].path == ""
    kz = app.sources[1].kustomize
    assert kz is not None and kz.images == ("nginx:1.27",) and kz.common_labels == {"team": "web"}
    directory = app.sources[2].directory
    assert directory is not None and directory.recurse and directory.exclude == "{test/*,ci/*}"
    assert Application.from_dict(app.to_dict()) == app


def test_destination_trailing_slash_trimmed_and_name_form() -> None:
    data = base()
    data["spec"]["destination"] = {"server": "https://k8s.example.com/", "namespace": "n"}
    assert Application.from_dict(data).destination.server == "https://k8s.example.com"
    data["spec"]["destination"] = {"name": "in-cluster"}
    dest = Application.from_dict(data).destination
    assert (dest.name, dest.server, dest.namespace) == ("in-cluster", "", "")


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    node: Any = data
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is _DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("dotted", "value", "field", "words"),
    [
        pytest.param("apiVersion", "v1", "apiVersion", "argoproj.io/v1alpha1", id="api-version"),
        pytest.param("kind", "AppProject", "kind", "Application", id="kind"),
        pytest.param("metadata.name", _DELETE, "metadata.name", "required", id="no-name"),
        pytest.param("spec.source", _DELETE, "spec.source", "required", id="no-source"),
        pytest.param("spec.source.repoURL", _DELETE, "spec.source.repoURL", "required", id="no-repo"),
        pytest.param("spec.source.path", _DELETE, "spec.source", "'path' or 'chart'", id="no-path"),
        pytest.param("spec.source.path", 7, "spec.source.path", "string", id="path-int"),
        pytest.param("spec.source.directory", {"recurse": "yes"}, "spec.source", "multiple", id="two-tools"),
        pytest.param(
            "spec.source.helm.valueFiles",
            ["a.yaml", 3],
            "spec.source.helm.valueFiles[1]",
            "string",
            id="value-file-int",
        ),
        pytest.param(
            "spec.source.helm.parameters",
            [{"value": "x"}],
            "spec.source.helm.parameters[0].name",
            "required",
            id="param-no-name",
        ),
        pytest.param(
            "spec.destination", {"server": "https://a", "name": "b"}, "spec.destination", "both", id="dest-both"
        ),
        pytest.param("spec.destination", {"namespace": "x"}, "spec.destination", "server", id="dest-none"),
        pytest.param(
            "spec.syncPolicy.automated.prune",
            "yes",
            "spec.syncPolicy.automated.prune",
            "true or false",
            id="prune-string",
        ),
        pytest.param(
            "spec.syncPolicy.syncOptions",
            ["CreateNamespace"],
            "spec.syncPolicy.syncOptions[0]",
            "Key=value",
            id="option-form",
        ),
        pytest.param("spec.syncPolicy.retry.limit", -2, "spec.syncPolicy.retry.limit", "at least", id="limit"),
        pytest.param(
            "spec.syncPolicy.managedNamespaceMetadata",
            {"labels": {"team": 7}},
            "spec.syncPolicy.managedNamespaceMetadata.labels.team",
            "string",
            id="namespace-label-int",
        ),
        pytest.param(
            "spec.syncPolicy.managedNamespaceMetadata",
            {"label": {"team": "web"}},
            "spec.syncPolicy.managedNamespaceMetadata.label",
            "expected labels and annotations",
            id="namespace-metadata-typo",
        ),
        pytest.param(
            "spec.syncPolicy.managedNamespaceMetadata",
            ["team=web"],
            "spec.syncPolicy.managedNamespaceMetadata",
            "mapping",
            id="namespace-metadata-list",
        ),
        pytest.param(
            "spec.syncPolicy.retry.backoff.duration",
            "5 parsecs",
            "spec.syncPolicy.retry.backoff.duration",
            "duration",
            id="duration",
        ),
        pytest.param(
            "spec.ignoreDifferences",
            [{"group": "apps"}],
            "spec.ignoreDifferences[0].kind",
            "required",
            id="ignore-kind",
        ),
        pytest.param("spec.revisionHistoryLimit", True, "spec.revisionHistoryLimit", "integer", id="history"),
        pytest.param("metadata.finalizers", [1], "metadata.finalizers[0]", "string", id="finalizer"),
        pytest.param("metadata.labels", {"a": 1}, "metadata.labels.a", "string", id="label-int"),
    ],
)
def test_validation_errors_name_the_field(dotted: str, value: Any, field: str, words: str) -> None:
    data = base()
    _set(data, dotted, value)
    with pytest.raises(InvalidApplication) as info:
        Application.from_dict(data, source="apps/gb.yaml")
    assert info.value.field == field
    assert words in str(info.value)
    assert str(info.value).startswith("apps/gb.yaml: ")


def test_yaml_11_surprises_are_refused_not_coerced() -> None:
    text = FULL.replace("revisionHistoryLimit: 3", "revisionHistoryLimit: 3\n  project: no")
    data = load(text.replace("  project: web\n", ""))
    with pytest.raises(InvalidApplication) as info:
        Application.from_dict(data)
    assert info.value.field == "spec.project"


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("ext::sh -c touch% /tmp/pwned", id="ext"),
        pytest.param("--upload-pack=touch /tmp/x", id="upload-pack"),
        pytest.param("-cprotocol.ext.allow=always", id="leading-dash"),
        pytest.param("https://host/repo --config core.hooksPath=/x", id="option-smuggling"),
        pytest.param("http://plain.example.com/repo.git", id="http"),
        pytest.param("git://example.com/repo.git", id="git-protocol"),
        pytest.param("fd::17", id="fd"),
    ],
)
def test_hostile_repo_urls_are_invalid_apps(url: str) -> None:
    data = base()
    data["spec"]["source"]["repoURL"] = url
    with pytest.raises(InvalidApplication) as info:
        Application.from_dict(data)
    assert info.value.field == "spec.source.repoURL"


def test_chart_source_needs_target_revision() -> None:
    data = base()
    data["spec"]["source"] = {"repoURL": "https://charts.example.com", "chart": "web"}
    with pytest.raises(InvalidApplication) as info:
        Application.from_dict(data)
    assert info.value.field == "spec.source.targetRevision"


def test_resource_key_is_hashable_and_manifest_properties() -> None:
    m = Manifest(
        obj={"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"}},
        source="a/b.yaml",
        index=2,
    )
    assert (m.api_version, m.group, m.kind, m.name, m.namespace) == ("apps/v1", "apps", "Deployment", "web", "shop")
    assert m.key == ResourceKey(group="apps", kind="Deployment", namespace="shop", name="web")
    assert {m.key: 1}[ResourceKey("apps", "Deployment", "shop", "web")] == 1
    core = Manifest(obj={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}, source="x", index=0)
    assert core.group == "" and core.namespace == "" and str(core.key) == "/Namespace//shop"
    assert m.where == "a/b.yaml[2]"
