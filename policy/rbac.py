"""RBAC: who may do which action on which object, with Argo CD's Casbin model and policy.csv format.

Callers: ``policy.evaluate`` (the one gate), ``api`` (route dependencies, ``admin rbac`` CLI), ``bench``.
This is the only module that imports ``casbin`` (import-linter enforces it): pycasbin's ``Enforcer``, built
from the packaged ``model.conf`` and the same rows, is the *semantic reference*
(:meth:`Authorizer.reference_enforcer`); decisions are served by :class:`policy.rbac_index.PolicyIndex`,
which a differential test holds to identical answers.

Semantics (``shared/reference/argocd-policy-semantics.md`` §2) with DESIGN.md's deliberate differences:

* 3 — an explicit deny wins over every allow: deny is evaluated across the caller's whole identity (the
  subject, each group bound by some ``g`` line, and the default role). Allowed iff some applicable row
  allows and none denies. (Argo CD checks the default role first and each identity separately.)
* 4 — a project-role subject ``proj:<p>:<r>`` is confined to project ``p``: a request on another project's
  object, or on an object of no project, is denied (``projects, get, p`` belongs to ``p``), so the default
  role never applies outside ``p``.
* 6 — regex mode matches the whole string (RE2 full match), and the built-in policy is loaded regex-valid.
* A policy is validated before it is installed (:mod:`policy.rbac_csv`); a bad one raises
  :class:`~policy.errors.InvalidPolicy` and the last good one stays live. Swaps are atomic.
* Fail closed: if evaluation raises, the answer is a deny with ``Code.POLICY_ERROR`` and a log line.

A project's runtime policy (its roles' rows, §2.9) is consulted only for requests whose object belongs to
that project, as in Argo CD.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import casbin

import config
from policy import patterns
from policy.decision import Code, Decision, Violation
from policy.errors import InvalidPolicy
from policy.rbac_csv import (
    GLOB,
    ParsedPolicy,
    PolicyRule,
    configmap_config,
    normalize_match_mode,
    parse_policy,
    parse_project_policy,
    project_from_request,
    project_token_project,
    regex_builtin,
)
from policy.rbac_index import PolicyIndex

__all__ = ["DEFAULT_CACHE_SIZE", "Authorizer", "build_reference_enforcer"]

log = logging.getLogger(__name__)
_REFERENCE_LOG = logging.getLogger(__name__ + ".reference")
_REFERENCE_LOG.setLevel(logging.ERROR)  # the reference enforcer's per-request lines are noise by design

#: decisions kept per policy version; the cache is dropped whenever anything changes
DEFAULT_CACHE_SIZE: Final = 10_000
BUILTIN_SOURCE: Final = "builtin-policy.csv"


class _Keep:
    """Sentinel: keep the current default role / match mode."""


_KEEP: Final = _Keep()


@dataclass(frozen=True, slots=True)
class _Project:
    text: str
    policy: ParsedPolicy
    index: PolicyIndex


@dataclass(frozen=True, slots=True)
class _State:
    """One immutable policy version. Replaced whole; the decision cache belongs to it."""

    segments: tuple[tuple[str, str], ...]
    builtin: bool
    default_role: str | None
    match_mode: str
    policy: ParsedPolicy
    index: PolicyIndex
    projects: Mapping[str, _Project]
    cache: dict[tuple[str, str, str, str, tuple[str, ...]], Decision] = field(default_factory=dict)


def _global_policy(segments: Sequence[tuple[str, str]], *, builtin: bool, match_mode: str) -> ParsedPolicy:
    parsed = ParsedPolicy((), ())
    texts: list[tuple[str, str]] = []
    if builtin:
        text = config.read_asset("builtin-policy.csv")
        texts.append((BUILTIN_SOURCE, regex_builtin(text) if match_mode != GLOB else text))
    texts.extend(segments)
    for source, text in texts:
        parsed = parsed + parse_policy(text, source=source, match_mode=match_mode, order_start=len(parsed.rules))
    return parsed


def _check_role_name(default_role: str | None) -> str | None:
    if default_role is None or default_role == "":
        return None
    if default_role != default_role.strip() or any(ord(ch) < 32 or ord(ch) == 127 for ch in default_role):
        raise InvalidPolicy(f"default role {default_role!r} has surrounding whitespace or control characters",
                            source="policy.default")
    return default_role


def _build_state(
    segments: tuple[tuple[str, str], ...],
    *,
    builtin: bool,
    default_role: str | None,
    match_mode: str,
    projects: Mapping[str, _Project],
) -> _State:
    mode = normalize_match_mode(match_mode)
    policy = _global_policy(segments, builtin=builtin, match_mode=mode)
    index = PolicyIndex(policy, match_mode=mode)
    rebuilt: dict[str, _Project] = {}
    for name, project in projects.items():
        parsed = parse_project_policy(name, project.text, match_mode=mode, order_start=len(policy.rules))
        rebuilt[name] = _Project(project.text, parsed, PolicyIndex(parsed, match_mode=mode, base=index))
    return _State(segments, builtin, _check_role_name(default_role), mode, policy, index, rebuilt)


class Authorizer:
    """Answers ``enforce(subject, resource, action, obj, groups=...)`` with a :class:`Decision`.

    Thread-safe: readers take the current immutable state; writers build a new one under a lock and swap it
    in, so a failed load never disturbs the live policy.
    """

    def __init__(self, state: _State, *, cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self._state = state
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- construction -----------------------------------------------------------------------------------

    @classmethod
    def from_csv(
        cls,
        text: str,
        *,
        default_role: str | None = None,
        match_mode: str = "glob",
        builtin: bool = True,
        source: str = "policy.csv",
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Authorizer:
        """From policy.csv text; raises :class:`InvalidPolicy` naming the line."""
        state = _build_state(((source, text),), builtin=builtin, default_role=default_role,
                             match_mode=match_mode, projects={})
        return cls(state, cache_size=cache_size)

    @classmethod
    def from_configmap(
        cls,
        data: Mapping[str, str],
        *,
        builtin: bool = True,
        source: str = "argocd-rbac-cm",
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Authorizer:
        """From ``argocd-rbac-cm`` data: policy.csv + policy.*.csv overlays in key order, policy.default,
        policy.matchMode."""
        cfg = configmap_config(data, source=source)
        state = _build_state(cfg.segments, builtin=builtin, default_role=cfg.default_role,
                             match_mode=cfg.match_mode, projects={})
        return cls(state, cache_size=cache_size)

    # -- changes (each one atomic; on error the previous policy stays live) --------------------------------

    def replace_policy(
        self,
        text: str,
        *,
        default_role: str | _Keep | None = _KEEP,
        match_mode: str | _Keep = _KEEP,
        source: str = "policy.csv",
    ) -> None:
        """Swap in new policy.csv text. Loaded project policies are re-validated in the (new) match mode."""
        self._replace(((source, text),), default_role, match_mode)

    def replace_configmap(self, data: Mapping[str, str], *, source: str = "argocd-rbac-cm") -> None:
        """Swap in a new ``argocd-rbac-cm`` (its default role and match mode included)."""
        cfg = configmap_config(data, source=source)
        self._replace(cfg.segments, cfg.default_role, cfg.match_mode)

    def _replace(
        self, segments: tuple[tuple[str, str], ...], default_role: str | _Keep | None, match_mode: str | _Keep
    ) -> None:
        with self._lock:
            old = self._state
            self._state = _build_state(
                segments,
                builtin=old.builtin,
                default_role=old.default_role if isinstance(default_role, _Keep) else default_role,
                match_mode=old.match_mode if isinstance(match_mode, _Keep) else match_mode,
                projects=old.projects,
            )

    def load_project_policy(self, project: str, csv_text: str) -> None:
        """Install (or atomically replace) project ``project``'s runtime policy (its roles' rows, §2.9)."""
        with self._lock:
            old = self._state
            parsed = parse_project_policy(project, csv_text, match_mode=old.match_mode,
                                          order_start=len(old.policy.rules))
            entry = _Project(csv_text, parsed, PolicyIndex(parsed, match_mode=old.match_mode, base=old.index))
            self._state = _State(old.segments, old.builtin, old.default_role, old.match_mode, old.policy,
                                 old.index, {**old.projects, project: entry})

    def remove_project_policy(self, project: str) -> None:
        with self._lock:
            old = self._state
            if project not in old.projects:
                return
            rest = {k: v for k, v in old.projects.items() if k != project}
            self._state = _State(old.segments, old.builtin, old.default_role, old.match_mode, old.policy,
                                 old.index, rest)

    # -- introspection ----------------------------------------------------------------------------------

    @property
    def default_role(self) -> str | None:
        return self._state.default_role

    @property
    def match_mode(self) -> str:
        return self._state.match_mode

    @property
    def rule_count(self) -> int:
        """``p`` rows of the global policy (built-ins included)."""
        return len(self._state.policy.rules)

    @property
    def user_line_count(self) -> int:
        """``p`` and ``g`` lines of the user policy (built-ins excluded); 0 means an empty policy."""
        policy = self._state.policy
        return sum(1 for r in policy.rules if r.source != BUILTIN_SOURCE) + sum(
            1 for g in policy.groupings if g.source != BUILTIN_SOURCE
        )

    def unbound_group_grant(self, subject: str) -> bool:
        """True when ``subject`` looks like an SSO group (has ``:``, not ``role:`` nor ``proj:p:r``), has its
        own ``p`` rows, and no ``g`` line binds it: the server ignores such grants for group claims (§5.1)."""
        state = self._state
        return (
            ":" in subject
            and not subject.startswith("role:")
            and project_token_project(subject) is None
            and state.index.has_rows(subject)
            and not state.index.is_bound(subject)
        )

    def warnings(self) -> list[str]:
        """Non-fatal findings: roles used in ``g`` lines that grant nothing (Argo's validate warning)."""
        return [f"{g.source} line {g.line}: role {g.role!r} has no p rows, so {g.member!r} gains nothing from it"
                for g in self._state.index.roles_without_rows()]

    # -- decisions --------------------------------------------------------------------------------------

    def enforce(
        self,
        subject: str,
        resource: str,
        action: str,
        obj: str,
        *,
        groups: Sequence[str] = (),
        explain: bool = False,
    ) -> Decision:
        """May ``subject`` (with ``groups``) do ``action`` on ``resource`` object ``obj``? Never raises."""
        state = self._state
        use_cache = not explain and self._cache_size > 0
        try:
            key = (subject, resource, action, obj, tuple(groups))
            if use_cache:
                hit = state.cache.get(key)
                if hit is not None:
                    return hit
            decision = _decide(state, subject, resource, action, obj, key[4], explain=explain)
        except Exception as exc:  # noqa: BLE001 - fail closed on anything, and say so in the log
            log.error("RBAC evaluation failed for %s, %s, %s, sub: %s: %s: denying",
                      resource, action, obj, subject, type(exc).__name__)
            return Decision.deny(Violation(
                Code.POLICY_ERROR,
                f"permission denied: {resource}, {action}, {obj}, sub: {subject}: the policy could not be evaluated",
                "policy",
            ))
        if use_cache:
            if len(state.cache) >= self._cache_size:
                state.cache.clear()
            state.cache[key] = decision
        return decision

    def may_allow_in_project(
        self, subject: str, resource: str, action: str, project: str, *, groups: Sequence[str] = ()
    ) -> bool:
        """Whether ``enforce`` could allow ``action`` on some object ``<project>/...`` of ``resource``. False
        proves every such object is denied; True proves nothing (callers still ask per object), also on error."""
        state = self._state
        try:
            if subject.startswith("proj:"):
                own = project_token_project(subject)
                if own is not None and own != project:
                    return False
            entry = state.projects.get(project)
            index = entry.index if entry is not None else state.index
            return index.may_allow_under(_identity(state, index, subject, groups), resource, action, project)
        except Exception:  # noqa: BLE001 - a pre-filter never denies on its own
            log.warning("RBAC pre-filter failed for %s, %s, project %s: asking per object", resource, action, project)
            return True

    def reference_enforcer(self, project: str | None = None, *, argo_regex: bool = False) -> Any:
        """pycasbin's ``Enforcer`` on the same model and rows (global, plus ``project``'s runtime policy).

        Semantics of plain Casbin: one subject per query, no default role, no project confinement. With
        ``argo_regex`` regex mode searches unanchored as Argo CD does, for showing difference 6.
        """
        state = self._state
        policy = state.policy
        if project is not None and project in state.projects:
            policy = policy + state.projects[project].policy
        return build_reference_enforcer(policy, match_mode=state.match_mode, argo_regex=argo_regex)


def _decide(
    state: _State, subject: str, resource: str, action: str, obj: str, groups: tuple[str, ...], *, explain: bool
) -> Decision:
    proj = project_from_request(resource, obj)
    project = state.projects.get(proj) if proj is not None else None
    index = project.index if project is not None else state.index
    if subject.startswith("proj:"):
        own = project_token_project(subject)
        if own is not None and proj != own:
            return Decision.deny(Violation(
                Code.RBAC_DENIED,
                f"permission denied: {resource}, {action}, {obj}, sub: {subject}: "
                f"a project role may only act on its own project {own!r}",
                "subject",
                "project role confined to its own project (difference 4)",
            ))
    names = _identity(state, index, subject, groups)
    allow, deny = index.decide(names, resource, action, obj)
    if allow is not None and deny is None:
        return Decision.allow(_explain(index, names, allow) if explain else allow.label)
    request = f"{resource}, {action}, {obj}, sub: {subject}"
    if deny is not None:
        rule = _explain(index, names, deny) if explain else deny.describe()
        return Decision.deny(Violation(Code.RBAC_DENIED, f"permission denied: {request}: explicitly denied",
                                       "subject", rule))
    return Decision.deny(Violation(Code.RBAC_DENIED, f"permission denied: {request}: no policy allows it",
                                   "subject"))


def _identity(state: _State, index: PolicyIndex, subject: str, groups: Sequence[str]) -> list[str]:
    """The names whose rows apply to a caller: the subject, its bound groups, the default role."""
    names = [subject]
    names.extend(g for g in groups if g != subject and index.is_bound(g))
    if state.default_role is not None and state.default_role not in names:
        names.append(state.default_role)
    return names


def _explain(index: PolicyIndex, names: Sequence[str], rule: PolicyRule) -> str:
    """The deciding row plus the ``g`` lines through which the caller holds its subject."""
    for name in names:
        if rule.subject == name:
            return rule.describe()
        chain = index.path(name, rule.subject)
        if chain:
            return "; ".join([rule.describe(), *(g.describe() for g in chain)])
    return rule.describe()


def build_reference_enforcer(policy: ParsedPolicy, *, match_mode: str = GLOB, argo_regex: bool = False) -> Any:
    """A pycasbin ``Enforcer`` with Argo CD's model, ``globOrRegexMatch`` registered, and ``policy``'s rows."""
    model = casbin.Enforcer.new_model(text=config.read_asset("model.conf"))
    # pycasbin switches its loggers off process-wide when an Enforcer is built; undo that (logging is
    # configured by config.logging only) and give this enforcer a quiet logger of its own: it would
    # otherwise log every denied request at WARNING.
    loggers = [logging.getLogger(n) for n in ("casbin", "casbin.enforcer", "casbin.policy", "casbin.role")]
    before = [lg.disabled for lg in loggers]
    enforcer = casbin.Enforcer(model)
    for lg, disabled in zip(loggers, before, strict=True):
        lg.disabled = disabled
    enforcer.logger = _REFERENCE_LOG
    if match_mode == GLOB:
        match = patterns.glob_match
    elif argo_regex:
        match = patterns.regex_search
    else:
        match = patterns.regex_fullmatch

    def glob_or_regex_match(value: str, pattern: str) -> bool:
        return match(pattern, value)

    enforcer.add_function("globOrRegexMatch", glob_or_regex_match)
    # appended directly: pycasbin's add_policy checks duplicates with a linear scan (quadratic at 10k rows)
    enforcer.get_model()["p"]["p"].policy.extend([list(k) for k in dict.fromkeys(r.fields for r in policy.rules)])
    enforcer.get_model()["g"]["g"].policy.extend(
        [list(k) for k in dict.fromkeys((g.member, g.role) for g in policy.groupings)]
    )
    enforcer.build_role_links()
    return enforcer
