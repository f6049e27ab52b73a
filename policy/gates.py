"""The AppProject gates: pure functions from a project and a request to a :class:`~policy.decision.Decision`.

:class:`policy.project.AppProject` exposes them as methods (``project.check_source(url)`` …); the combined
gate (:mod:`policy.evaluate`) calls those methods. Semantics are Argo CD's (reference §1.2–§1.5, §1.8),
with the dialects of §0: ``sourceRepos`` use G/ on normalised URLs (:mod:`policy.urls`), destinations and
``sourceNamespaces`` globs use G, resource lists use FP, ``/regex/`` source namespaces an unanchored regex
search. Each decision names the entry that decided (``spec.destinations[2] {server: *, namespace: !kube-system}``).

Negation (``!``), for ``sourceRepos`` and destinations only:

* **Deliberate difference 1**: a destination entry whose negation matches the request denies, whatever form
  the entry takes, scoped by the entry's other fields. ``{name: "!prod", namespace: dev}`` denies ``prod`` for
  namespace ``dev`` only (Argo CD: for every namespace); ``{name: in-cluster, namespace: "!kube-system"}``
  denies ``in-cluster``/``kube-system`` (Argo CD: never, since it only honours a namespace negation when the
  entry's *server* matches); ``{server: "!S", name: n, namespace: "*"}`` denies cluster ``S`` even when it is
  named ``n`` (Argo CD: the name match wins). A negated cluster field only judges a value the caller gave: with
  ``name=""`` a ``name: "!prod"`` entry can neither deny nor allow, so callers pass both the server and the
  name of the resolved cluster when they know them.
* Kept from Argo CD (DESIGN.md makes only denial strict): a negated entry also *allows* what it does not
  negate. ``sourceRepos: ["!https://github.com/evil/*"]`` alone permits every other repository, and
  ``{server: "!https://prod", namespace: default}`` alone permits ``default`` on every other cluster
  (reference §1.2, §1.4, §6 item 38). The allowing rule says so in the decision.
* Deliberate difference 2: an unparseable repository URL matches only an identical ``sourceRepos`` entry.
* Stricter than Argo CD: a ``sourceRepos`` negation is also tried on the URL without its user-info, so
  ``https://anyone@github.com/evil/x`` cannot slip past ``!https://github.com/evil/*``.

Fail closed: ``permitOnlyProjectScopedClusters: true`` without the project's scoped clusters denies with
``policy.error``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from typing import TYPE_CHECKING

from policy import patterns, urls
from policy.decision import Code, Decision, Violation

if TYPE_CHECKING:
    from policy.project import AppProject, Destination, ResourceRule

__all__ = [
    "check_destination",
    "check_resource",
    "check_source",
    "check_source_namespace",
    "redact_url",
    "service_account_for",
]

log = logging.getLogger(__name__)

_CREDENTIALS = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/@]*)@")


def redact_url(url: str) -> str:
    """``url`` (or ``!url``) with any user-info of a ``scheme://`` URL replaced by ``***`` (it may hold a token)."""
    if url.startswith("!"):
        return "!" + redact_url(url[1:])
    return _CREDENTIALS.sub(lambda m: f"{m.group(1)}***@", url, count=1)


def _without_userinfo(url: str) -> str:
    return _CREDENTIALS.sub(lambda m: m.group(1), url.strip(), count=1)


# --------------------------------------------------------------------------------------------- sources


def check_source(project: AppProject, url: str, *, field: str = "spec.source.repoURL") -> Decision:
    """May an app of ``project`` use repository ``url``? (``IsSourcePermitted``, reference §1.2)."""
    shown = redact_url(url)
    repos = project.source_repos or ()
    negations = [(i, raw) for i, raw in enumerate(repos) if raw.startswith("!")]
    bare = _without_userinfo(url)
    for i, raw in negations:
        if urls.repo_url_matches(raw[1:], url) or urls.repo_url_matches(raw[1:], bare):
            rule = f"spec.sourceRepos[{i}] {redact_url(raw)}"
            return Decision.deny(Violation(
                Code.SOURCE_DENIED,
                f"repository {shown!r} is excluded by {rule} of project {project.name!r}", field, rule))
    for i, raw in enumerate(repos):
        if not raw.startswith("!") and urls.repo_url_matches(raw, url):
            return Decision.allow(f"spec.sourceRepos[{i}] {redact_url(raw)}")
    if negations:  # Argo CD: a negation that does not match counts as an allow (reference §1.2)
        i, raw = negations[0]
        return Decision.allow(
            f"spec.sourceRepos[{i}] {redact_url(raw)} (a negation allows every repository it does not match)")
    if not repos:
        reason = "the project lists no spec.sourceRepos"
    elif urls.normalize_repo_url(url) is None:
        reason = "it cannot be parsed as a URL, so only an identical spec.sourceRepos entry could permit it"
    else:
        reason = "no entry of spec.sourceRepos matches it"
    rule = "spec.sourceRepos"
    return Decision.deny(Violation(
        Code.SOURCE_NOT_PERMITTED,
        f"repository {shown!r} is not permitted in project {project.name!r}: {reason}", field, rule))


# ----------------------------------------------------------------------------------------- destinations


def _glob(pattern: str, value: str) -> bool:
    return pattern == "*" or patterns.glob_match(pattern, value)


def _judge(item: Destination, server: str, name: str, namespace: str) -> tuple[bool, bool]:
    """(denies, allows) for one destination entry."""
    cluster_pos = cluster_fired = cluster_spared = False
    for pattern, value in ((item.server or "", server), (item.name or "", name)):
        if not pattern or not value:
            continue  # an unset field, or a value the caller does not know, says nothing
        if pattern.startswith("!"):
            if _glob(pattern[1:], value):
                cluster_fired = True
            else:
                cluster_spared = True
        elif _glob(pattern, value):
            cluster_pos = True
    ns_pattern = item.namespace or ""
    ns_negated = ns_pattern.startswith("!")
    ns_fired = ns_negated and _glob(ns_pattern[1:], namespace)
    ns_ok = (not ns_fired) if ns_negated else _glob(ns_pattern, namespace)
    cluster_covered = cluster_pos or cluster_fired or cluster_spared
    denies = (cluster_fired or ns_fired) and cluster_covered and (ns_negated or ns_ok)
    allows = (cluster_pos or cluster_spared) and ns_ok
    return denies, allows


def _describe_request(server: str, name: str, namespace: str) -> str:
    cluster = " ".join(part for part in (
        f"server {server!r}" if server else "", f"name {name!r}" if name else "") if part)
    return f"{cluster or 'no cluster'}, namespace {namespace!r}"


def check_destination(
    project: AppProject,
    *,
    server: str = "",
    name: str = "",
    namespace: str,
    field: str = "spec.destination",
    scoped_clusters: Collection[tuple[str, str]] | None = None,
) -> Decision:
    """May ``project`` deploy to this cluster (``server`` and/or ``name``) and namespace? (reference §1.4).

    ``scoped_clusters``: ``(server, name)`` of the project's project-scoped clusters; needed only when the
    project sets ``permitOnlyProjectScopedClusters``.
    """
    first_allow: int | None = None
    destinations = project.destinations or ()
    for i, item in enumerate(destinations):
        denies, allows = _judge(item, server, name, namespace)
        if denies:
            rule = f"spec.destinations[{i}] {item.describe()}"
            what = _describe_request(server, name, namespace)
            return Decision.deny(Violation(
                Code.DESTINATION_DENIED,
                f"destination {what} is excluded by {rule} of project {project.name!r}", field, rule))
        if allows and first_allow is None:
            first_allow = i
    what = _describe_request(server, name, namespace)
    if first_allow is None:
        reason = ("the project lists no spec.destinations" if not project.destinations
                  else "no entry of spec.destinations matches it")
        return Decision.deny(Violation(
            Code.DESTINATION_NOT_PERMITTED,
            f"destination {what} is not permitted in project {project.name!r}: {reason}",
            field, "spec.destinations"))
    allow_rule = f"spec.destinations[{first_allow}] {destinations[first_allow].describe()}"
    if project.permit_only_project_scoped_clusters:
        rule = "spec.permitOnlyProjectScopedClusters"
        if scoped_clusters is None:
            log.warning("project %r permits only project-scoped clusters but none were supplied; denying",
                        project.name)
            return Decision.deny(Violation(
                Code.POLICY_ERROR,
                f"project {project.name!r} permits only its project-scoped clusters, and they are not "
                "known here: cannot verify the destination", field, rule))
        if not any((server and s == server) or (name and n == name) for s, n in scoped_clusters):
            return Decision.deny(Violation(
                Code.DESTINATION_NOT_PERMITTED,
                f"destination {what} is not a project-scoped cluster of project {project.name!r}",
                field, rule))
        allow_rule += f"; {rule}"
    return Decision.allow(allow_rule)


# -------------------------------------------------------------------------------------- resource kinds


def _rule_matches(rule: ResourceRule, group: str, kind: str, name: str) -> bool:
    if not (patterns.path_match(rule.kind, kind) and patterns.path_match(rule.group, group)):
        return False
    return not rule.name or patterns.path_match(rule.name, name)


def _first_match(rules: tuple[ResourceRule, ...], group: str, kind: str, name: str) -> int | None:
    return next((i for i, r in enumerate(rules) if _rule_matches(r, group, kind, name)), None)


def check_resource(
    project: AppProject, *, group: str, kind: str, namespaced: bool, name: str = "", field: str = "kind"
) -> Decision:
    """May an app of ``project`` manage this kind? (``IsGroupKindNamePermitted``, reference §1.5).

    Namespaced kinds: allowed unless a namespace whitelist is present and does not list it (an explicit
    empty whitelist allows none), or the namespace blacklist lists it. Cluster-scoped kinds: denied unless
    the cluster whitelist lists it (optionally by object ``name`` glob) and the blacklist does not.
    """
    gk = f"{group or 'core'}/{kind}"
    scope = "namespace" if namespaced else "cluster"
    white = project.namespace_resource_whitelist if namespaced else project.cluster_resource_whitelist
    black = (project.namespace_resource_blacklist if namespaced else project.cluster_resource_blacklist) or ()
    match_name = "" if namespaced else name
    white_key, black_key = f"spec.{scope}ResourceWhitelist", f"spec.{scope}ResourceBlacklist"
    hit = _first_match(black, group, kind, match_name)
    if hit is not None:
        rule = f"{black_key}[{hit}] {black[hit].describe()}"
        return Decision.deny(Violation(
            Code.RESOURCE_DENIED,
            f"resource {gk}{f' {name!r}' if match_name else ''} is excluded by {rule} of project {project.name!r}",
            field, rule))
    if namespaced and white is None:
        return Decision.allow(f"{white_key} (absent: every namespaced kind not blacklisted)")
    hit = _first_match(white or (), group, kind, match_name)
    if hit is not None and white is not None:
        return Decision.allow(f"{white_key}[{hit}] {white[hit].describe()}")
    if not white:
        why = (f"{white_key} is an empty list, which permits no namespaced kind" if namespaced
               else f"cluster-scoped kinds must be listed in {white_key}, which is "
                    f"{'empty' if white is not None else 'absent'}")
    else:
        why = f"no entry of {white_key} matches it"
    return Decision.deny(Violation(
        Code.RESOURCE_NOT_PERMITTED,
        f"{'namespaced' if namespaced else 'cluster-scoped'} resource {gk}{f' {name!r}' if match_name else ''} "
        f"is not permitted in project {project.name!r}: {why}", field, white_key))


# ------------------------------------------------------------------------------------- source namespaces


def check_source_namespace(
    project: AppProject,
    namespace: str,
    *,
    control_plane_namespace: str = "syncwarden",
    field: str = "metadata.namespace",
) -> Decision:
    """May an Application living in ``namespace`` use ``project``? (``IsAppNamespacePermitted``, §1.3)."""
    if not namespace or namespace == control_plane_namespace:
        return Decision.allow(f"control-plane namespace {control_plane_namespace!r}")
    for i, entry in enumerate(project.source_namespaces or ()):
        is_regex = len(entry) >= 2 and entry.startswith("/") and entry.endswith("/")
        if (is_regex and patterns.regex_search(entry[1:-1], namespace)) or patterns.glob_match(entry, namespace):
            return Decision.allow(f"spec.sourceNamespaces[{i}] {entry}")
    reason = ("the project lists no spec.sourceNamespaces, so only the control-plane namespace "
              f"{control_plane_namespace!r} may use it" if not project.source_namespaces
              else "no entry of spec.sourceNamespaces matches it")
    return Decision.deny(Violation(
        Code.SOURCE_NAMESPACE_NOT_PERMITTED,
        f"an Application in namespace {namespace!r} may not use project {project.name!r}: {reason}",
        field, "spec.sourceNamespaces"))


# -------------------------------------------------------------------------------- service accounts (§1.8)


def service_account_for(project: AppProject, *, server: str, namespace: str, app_namespace: str) -> str | None:
    """The user to impersonate for a sync: the first ``destinationServiceAccounts`` entry (in order) whose
    ``server`` glob matches the cluster URL and ``namespace`` glob the destination namespace; ``None`` when
    none matches. ``ns:name`` names the account's namespace; otherwise it is the destination namespace, or
    the Application's own namespace when the destination has none."""
    for item in project.destination_service_accounts or ():
        if _glob(item.server or "", server) and _glob(item.namespace or "", namespace):
            account = item.default_service_account
            if ":" in account:
                return f"system:serviceaccount:{account}"
            return f"system:serviceaccount:{namespace or app_namespace}:{account}"
    return None
