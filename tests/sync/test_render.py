"""Rendering Applications from real Git repositories (``sync.render`` and the three renderers).

Covers: a plain directory (recurse, include/exclude with Argo CD's glob dialect, non-manifest files skipped,
``List`` in JSON), a Kustomize base with dev and prd overlays plus the Application's overrides (checkout
untouched), a Helm chart with values-dev.yaml/values-prd.yaml, parameters, valuesObject, releaseName and
namespace, hooks and sync waves kept, multi-source apps, the render cache (a commit that touches nothing
under the app path reuses the render without a new tree; a change under the path or a Kustomize base
re-renders), and the failure rows: REPO-01 (app path), REPO-03 (symlink), REPO-04 (value files),
REPO-06 (size cap), REPO-10 (remote base), and the missing ``[helm]`` extra.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

from config.settings import SyncSettings
from sync.models import Application, Manifest
from sync.render import Renderer, RenderError
from tests.sync.gitfixtures import HELM, HOOKS, KUSTOMIZE, PLAIN, GitRepo, application, make_repo

SETTINGS = SyncSettings(allow_file_urls=True)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return make_repo(tmp_path / "origin", PLAIN, KUSTOMIZE, HELM, HOOKS)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def renderer(tmp_path: Path, clock: Clock) -> Renderer:
    return Renderer.create(settings=SETTINGS, cache_dir=tmp_path / "cache", clock=clock)


def app(repo: GitRepo, path: str, *, source: dict[str, Any] | None = None, **kw: Any) -> Application:
    data = application(repo.url, path, **kw)
    data["spec"]["source"].update(source or {})  # type: ignore[index]
    return Application.from_dict(data)


def names(found: list[Manifest]) -> list[str]:
    return sorted(f"{m.kind}/{m.name or m.obj['metadata'].get('generateName', '')}" for m in found)


def by_kind(found: list[Manifest], kind: str) -> Manifest:
    return next(m for m in found if m.kind == kind)


def test_plain_directory_top_level_only(renderer: Renderer, repo: GitRepo) -> None:
    found = renderer.render(app(repo, "apps/plain")).manifests
    assert names(found) == ["Deployment/web", "Service/web"]
    assert by_kind(found, "Deployment").source == "apps/plain/deployment.yaml"


@pytest.mark.parametrize(
    ("directory", "expected"),
    [
        pytest.param(
            {"recurse": True},
            ["ConfigMap/from-list", "ConfigMap/web-config", "Deployment/web", "Service/web"],
            id="recurse",
        ),
        pytest.param(
            {"recurse": True, "include": "*.yaml"}, ["Deployment/web", "Service/web"], id="include-star-spans-dirs"
        ),
        pytest.param({"recurse": True, "include": "**/*.y*ml"}, ["ConfigMap/web-config"], id="doublestar-needs-a-dir"),
        pytest.param(
            {"recurse": True, "exclude": "{nested/*,service.yaml}"}, ["Deployment/web"], id="exclude-alternation"
        ),
        pytest.param({"recurse": True, "include": "*.json"}, ["ConfigMap/from-list"], id="json-list"),
    ],
)
def test_directory_options(renderer: Renderer, repo: GitRepo, directory: dict[str, Any], expected: list[str]) -> None:
    found = renderer.render(app(repo, "apps/plain", source={"directory": directory})).manifests
    assert names(found) == expected


def test_broken_file_that_looks_like_a_manifest_is_an_error(renderer: Renderer, repo: GitRepo) -> None:
    repo.write({"apps/plain/broken.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: [\n"})
    repo.commit("broken")
    with pytest.raises(RenderError) as info:
        renderer.render(app(repo, "apps/plain"))
    assert info.value.reason == "InvalidManifest" and "apps/plain/broken.yaml[0]" in str(info.value)


def test_hooks_and_waves_are_kept(renderer: Renderer, repo: GitRepo) -> None:
    found = renderer.render(app(repo, "apps/hooks")).manifests
    assert names(found) == ["Deployment/shop", "Job/db-migrate-", "Job/smoke-test", "Namespace/shop"]
    annotations = {f"{m.kind}/{m.name or 'db-migrate'}": m.obj["metadata"].get("annotations", {}) for m in found}
    assert annotations["Namespace/shop"]["argocd.argoproj.io/sync-wave"] == "-1"
    assert annotations["Deployment/shop"]["argocd.argoproj.io/sync-wave"] == "2"
    assert annotations["Job/db-migrate"]["argocd.argoproj.io/hook"] == "PreSync"
    assert annotations["Job/smoke-test"]["argocd.argoproj.io/hook"] == "PostSync"


@pytest.mark.parametrize(("overlay", "replicas"), [("dev", 1), ("prd", 5)])
def test_kustomize_overlays(renderer: Renderer, repo: GitRepo, overlay: str, replicas: int) -> None:
    found = renderer.render(app(repo, f"kustomize/overlays/{overlay}")).manifests
    assert names(found) == [f"Deployment/{overlay}-guestbook", f"Service/{overlay}-guestbook"]
    assert by_kind(found, "Deployment").obj["spec"]["replicas"] == replicas
    assert by_kind(found, "Deployment").source == f"kustomize/overlays/{overlay} (kustomize)"


def test_kustomize_application_overrides_leave_the_checkout_alone(renderer: Renderer, repo: GitRepo) -> None:
    overrides = {
        "kustomize": {
            "namePrefix": "x-",
            "nameSuffix": "-v2",
            "namespace": "team-a",
            "commonLabels": {"team": "a"},
            "commonAnnotations": {"owner": "ops"},
            "images": ["nginx=registry.example.com/nginx:1.27"],
        }
    }
    found = renderer.render(app(repo, "kustomize/overlays/dev", source=overrides)).manifests
    deploy = by_kind(found, "Deployment")
    assert deploy.name == "x-dev-guestbook-v2" and deploy.namespace == "team-a"
    assert deploy.obj["metadata"]["labels"]["team"] == "a"
    assert deploy.obj["metadata"]["annotations"]["owner"] == "ops"
    assert deploy.obj["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/nginx:1.27"
    trees = list((renderer.repos.cache_dir / "trees").glob("*/*"))
    assert len(trees) == 1
    kfile = trees[0] / "kustomize" / "overlays" / "dev" / "kustomization.yaml"
    assert kfile.read_text() == KUSTOMIZE["kustomize/overlays/dev/kustomization.yaml"]


@pytest.mark.parametrize("tag", ["123456e7", "12345678", "1.10", "0755"])
def test_kustomize_image_tags_that_look_like_numbers_stay_strings(renderer: Renderer, repo: GitRepo, tag: str) -> None:
    """Short commits such as ``123456e7`` are numbers to kustomize's YAML 1.2 reader unless quoted."""
    found = renderer.render(app(repo, "kustomize/overlays/dev", source={"kustomize": {"images": [f"nginx:{tag}"]}}))
    image = by_kind(found.manifests, "Deployment").obj["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"nginx:{tag}"


def test_remote_kustomize_base_is_refused(renderer: Renderer, repo: GitRepo) -> None:
    repo.write({"kustomize/remote/kustomization.yaml": "resources:\n- github.com/evil/x//base?ref=main\n"})
    repo.commit("remote")
    with pytest.raises(RenderError, match="remote kustomize base"):
        renderer.render(app(repo, "kustomize/remote"))


@pytest.mark.parametrize(("env", "replicas"), [("dev", 1), ("prd", 4)])
def test_helm_value_files_per_environment(renderer: Renderer, repo: GitRepo, env: str, replicas: int) -> None:
    found = renderer.render(
        app(repo, "charts/web", source={"helm": {"valueFiles": [f"values-{env}.yaml"]}}, namespace=f"web-{env}")
    ).manifests
    deploy = by_kind(found, "Deployment")
    assert deploy.name == "demo-web" and deploy.namespace == f"web-{env}"
    assert deploy.obj["metadata"]["labels"]["env"] == env
    assert deploy.obj["spec"]["replicas"] == replicas
    hook = by_kind(found, "Job")
    assert hook.obj["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    assert {m.source for m in found} == {"web/templates/deployment.yaml", "web/templates/migrate-hook.yaml"}


def test_helm_precedence_release_name_and_namespace(renderer: Renderer, repo: GitRepo) -> None:
    helm = {
        "valueFiles": ["values-prd.yaml"],
        "values": "env: from-values\nreplicas: 2\n",
        "valuesObject": {"env": "from-object"},
        "parameters": [{"name": "replicas", "value": "7"}, {"name": "image.tag", "value": "1.27", "forceString": True}],
        "releaseName": "shop",
        "namespace": "helm-ns",
    }
    found = renderer.render(app(repo, "charts/web", source={"helm": helm})).manifests
    deploy = by_kind(found, "Deployment")
    assert deploy.name == "shop-web" and deploy.namespace == "helm-ns"
    assert deploy.obj["metadata"]["labels"]["env"] == "from-object"  # valuesObject wins over values
    assert deploy.obj["spec"]["replicas"] == 7  # parameters win over everything
    assert deploy.obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"


def test_helm_missing_extra_says_how_to_install(
    renderer: Renderer, repo: GitRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "helm_python", None)
    with pytest.raises(RenderError) as info:
        renderer.render(app(repo, "charts/web"))
    assert "pip install 'syncwarden[helm]'" in str(info.value)


@pytest.mark.parametrize(
    "value",
    ["../../../etc/passwd", "/proc/self/environ", "file:///etc/hosts", "../../../../outside.yaml"],
)
def test_repo_04_value_files_through_render(renderer: Renderer, repo: GitRepo, value: str) -> None:
    with pytest.raises(RenderError) as info:
        renderer.render(app(repo, "charts/web", source={"helm": {"valueFiles": [value]}}))
    assert info.value.reason == "InvalidPath"
    assert str(renderer.repos.cache_dir) not in str(info.value)


@pytest.mark.parametrize("path", ["../", "/etc", "apps/../../..", "..%2fapps", "nope"])
def test_repo_01_app_paths_through_render(renderer: Renderer, repo: GitRepo, path: str) -> None:
    with pytest.raises(RenderError) as info:
        renderer.render(app(repo, path))
    assert info.value.reason == "InvalidPath" and str(renderer.repos.cache_dir) not in str(info.value)


def test_repo_03_symlink_to_a_secret_is_refused(renderer: Renderer, repo: GitRepo, tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: TOP-SECRET}\n")
    repo.symlink("apps/plain/secret.yaml", str(secret))
    repo.commit("evil")
    with pytest.raises(RenderError) as info:
        renderer.render(app(repo, "apps/plain"))
    assert "out-of-bounds symlink: apps/plain/secret.yaml" in str(info.value)
    assert "TOP-SECRET" not in str(info.value)


def test_repo_06_size_cap(tmp_path: Path, repo: GitRepo) -> None:
    repo.write(
        {
            "apps/big/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: big}\ndata:\n  x: "
            + "y" * 50_000
            + "\n"
        }
    )
    repo.commit("big")
    small = Renderer.create(
        settings=SyncSettings(allow_file_urls=True, max_manifest_bytes=10_000), cache_dir=tmp_path / "small"
    )
    with pytest.raises(RenderError, match="limit of 10000"):
        small.render(app(repo, "apps/big"))


def test_multi_source_ref_and_duplicates_keep_the_last(renderer: Renderer, repo: GitRepo) -> None:
    data = application(repo.url, "apps/plain")
    spec: dict[str, Any] = data["spec"]  # type: ignore[assignment]
    first = spec.pop("source")
    spec["sources"] = [
        first,
        {"repoURL": repo.url, "targetRevision": "main", "ref": "values"},
        {
            "repoURL": repo.url,
            "path": "apps/plain",
            "targetRevision": "main",
            "directory": {"include": "deployment.yaml"},
        },
    ]
    result = renderer.render(Application.from_dict(data))
    assert names(result.manifests) == ["Deployment/web", "Service/web"]
    assert len(result.revisions) == 3 and len(set(result.revisions)) == 1


def test_render_cache_reuses_unchanged_paths_and_rerenders_changed_ones(
    renderer: Renderer, repo: GitRepo, clock: Clock
) -> None:
    plain = app(repo, "apps/plain")
    dev = app(repo, "kustomize/overlays/dev", name="dev")
    first = renderer.render(plain).manifests
    renderer.render(dev)
    trees = renderer.repos.cache_dir / "trees"
    assert len(list(trees.glob("*/*"))) == 1

    repo.write({"README.md": "docs only\n"})
    repo.commit("docs")
    clock.now += 120  # past the ls-remote interval: the new commit is seen
    hits = renderer.cache.hits
    again = renderer.render(plain)
    assert [m.obj for m in again.manifests] == [m.obj for m in first]
    renderer.render(dev)
    assert renderer.cache.hits == hits + 2
    assert len(list(trees.glob("*/*"))) == 1  # reused without checking the new commit out

    repo.write(
        {
            "kustomize/base/deployment.yaml": KUSTOMIZE["kustomize/base/deployment.yaml"].replace(
                "nginx:1.25", "nginx:1.26"
            )
        }
    )
    repo.commit("base change")
    clock.now += 120
    plain_hits = renderer.cache.hits
    renderer.render(plain)
    assert renderer.cache.hits == plain_hits + 1
    changed = by_kind(renderer.render(dev).manifests, "Deployment")
    assert changed.obj["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.26"


def test_cached_results_are_private_copies(renderer: Renderer, repo: GitRepo) -> None:
    plain = app(repo, "apps/plain")
    renderer.render(plain).manifests[0].obj["metadata"]["name"] = "mutated"
    assert "Deployment/mutated" not in names(renderer.render(plain).manifests)


def test_revision_override_and_unknown_revision(renderer: Renderer, repo: GitRepo) -> None:
    old = repo.git("rev-parse", "HEAD")
    repo.write({"apps/plain/extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n"})
    repo.commit("extra")
    plain = app(repo, "apps/plain")
    assert "ConfigMap/extra" in names(renderer.render(plain).manifests)
    assert "ConfigMap/extra" not in names(renderer.render(plain, revision=old[:10]).manifests)
    with pytest.raises(RenderError, match="unable to resolve 'nope'"):
        renderer.render(plain, revision="nope")


def test_credentials_come_from_settings(tmp_path: Path, repo: GitRepo) -> None:
    settings = SyncSettings.model_validate(
        {
            "allow_file_urls": True,
            "repo_credentials": [{"url_prefix": repo.url, "username": "ci", "password": "tok-7781"}],
        }
    )
    with_creds = Renderer.create(settings=settings, cache_dir=tmp_path / "a")
    anonymous = Renderer.create(settings=SETTINGS, cache_dir=tmp_path / "b")
    assert with_creds.repos.credential_identity(repo.url) != anonymous.repos.credential_identity(repo.url) == ""
    assert names(with_creds.render(app(repo, "apps/plain")).manifests) == ["Deployment/web", "Service/web"]
    assert "tok-7781" not in repr(with_creds.repos.credentials)


def test_multi_source_helm_values_from_a_ref_source(renderer: Renderer, repo: GitRepo, tmp_path: Path) -> None:
    values_repo = make_repo(
        tmp_path / "values", {"env/prd.yaml": "env: from-ref\nreplicas: 9\n", "env/notes.md": "x\n"}
    )
    data = application(repo.url, "charts/web")
    spec: dict[str, Any] = data["spec"]  # type: ignore[assignment]
    chart = spec.pop("source")
    chart["helm"] = {"valueFiles": ["values-dev.yaml", "$values/env/prd.yaml"]}
    spec["sources"] = [chart, {"repoURL": values_repo.url, "targetRevision": "main", "ref": "values"}]
    multi = Application.from_dict(data)
    deploy = by_kind(renderer.render(multi).manifests, "Deployment")
    assert deploy.obj["metadata"]["labels"]["env"] == "from-ref" and deploy.obj["spec"]["replicas"] == 9

    values_repo.write({"env/prd.yaml": "env: changed\n"})
    values_repo.commit("change values")
    renderer.repos.clock.now += 120  # type: ignore[attr-defined]
    deploy = by_kind(renderer.render(multi).manifests, "Deployment")
    assert deploy.obj["metadata"]["labels"]["env"] == "changed"  # a new ref commit re-renders

    chart["helm"] = {"valueFiles": ["$values/../../outside.yaml"]}
    with pytest.raises(RenderError, match="outside the repository"):
        renderer.render(Application.from_dict(data))
    chart["helm"] = {"valueFiles": ["$other/x.yaml"]}  # not a ref: substituted like Argo CD, to /x.yaml
    with pytest.raises(RenderError, match="'/x.yaml' does not exist"):
        renderer.render(Application.from_dict(data))


def test_build_environment_is_substituted(renderer: Renderer, repo: GitRepo) -> None:
    helm = {
        "parameters": [
            {"name": "image.tag", "value": "$ARGOCD_APP_REVISION_SHORT", "forceString": True},
            {"name": "env", "value": "${ARGOCD_APP_NAME}-$$-$HOME"},
        ],
        "valueFiles": ["values-$ARGOCD_APP_NAMESPACE.yaml"],
    }
    result = renderer.render(app(repo, "charts/web", source={"helm": helm}, namespace="prd", name="shop"))
    deploy = by_kind(result.manifests, "Deployment")
    assert deploy.obj["spec"]["template"]["spec"]["containers"][0]["image"] == f"nginx:{result.revisions[0][:7]}"
    assert deploy.obj["metadata"]["labels"]["env"] == "shop-$-"  # nothing from the service's environment
    assert deploy.obj["spec"]["replicas"] == 4  # values-prd.yaml
    kz = {"kustomize": {"images": ["nginx:$ARGOCD_APP_REVISION_SHORT_8"], "commonLabels": {"app": "$ARGOCD_APP_NAME"}}}
    found = renderer.render(app(repo, "kustomize/overlays/dev", source=kz, name="gb")).manifests
    deploy = by_kind(found, "Deployment")
    assert deploy.obj["metadata"]["labels"]["app"] == "gb"
    assert deploy.obj["spec"]["template"]["spec"]["containers"][0]["image"] == f"nginx:{result.revisions[0][:8]}"


def _children() -> list[str]:
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            out.append(stat_file.parent.name)
    return out


def test_no_git_or_tool_processes_are_left_behind(renderer: Renderer, repo: GitRepo) -> None:
    for path in ("apps/plain", "kustomize/overlays/prd", "charts/web"):
        renderer.render(app(repo, path))
    assert _children() == []


def test_kustomize_base_outside_the_repository_is_refused(renderer: Renderer, repo: GitRepo, tmp_path: Path) -> None:
    other = tmp_path / "other-tenant"
    other.mkdir()
    (other / "kustomization.yaml").write_text("resources: [secret.yaml]\n")
    (other / "secret.yaml").write_text("apiVersion: v1\nkind: Secret\nmetadata: {name: TOP-SECRET}\n")
    depth = "../" * 12
    repo.write({"kustomize/escape/kustomization.yaml": f"resources:\n- {depth}{str(other).lstrip('/')}\n"})
    repo.commit("escape")
    with pytest.raises(RenderError, match="outside the repository") as info:
        renderer.render(app(repo, "kustomize/escape"))
    assert "TOP-SECRET" not in str(info.value)


@pytest.mark.parametrize("overrides", [{}, {"kustomize": {"namePrefix": "x-"}}], ids=["plain", "overlay"])
def test_kustomize_errors_carry_no_server_paths(renderer: Renderer, repo: GitRepo, overrides: dict[str, Any]) -> None:
    repo.write({"kustomize/bad/kustomization.yaml": "resources: [missing.yaml]\n"})
    repo.commit("bad")
    with pytest.raises(RenderError) as info:
        renderer.render(app(repo, "kustomize/bad", source=overrides))
    message = str(info.value)
    assert info.value.reason == "ToolFailed" and "kustomize/bad/missing.yaml" in message
    assert "trees" not in message and str(renderer.repos.cache_dir) not in message and "/tmp" not in message


def test_render_cache_persists_across_processes(tmp_path: Path, repo: GitRepo) -> None:
    first = Renderer.create(settings=SETTINGS, cache_dir=tmp_path / "shared")
    expected = names(first.render(app(repo, "apps/plain")).manifests)
    repo.write({"README.md": "docs\n"})
    repo.commit("docs")
    second = Renderer.create(settings=SETTINGS, cache_dir=tmp_path / "shared")  # a new CLI run
    assert names(second.render(app(repo, "apps/plain")).manifests) == expected
    assert (second.cache.hits, second.cache.misses) == (1, 0)
    assert len(list((tmp_path / "shared" / "git" / "trees").glob("*/*"))) == 1
