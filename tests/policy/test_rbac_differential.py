"""Differential test: the indexed evaluator behind ``Authorizer.enforce`` against pycasbin's ``Enforcer``.

Covers: ≥ 10,000 generated requests over generated policies with nested roles (chains and cycles), deny
rows, ``*`` (and other patterns) in every field, a literal ``*`` subject, SSO groups, a default role, and
project role policies; glob and regex match modes. The role-depth limit (10 levels) is pinned separately.

What is compared, and the deliberate differences (DESIGN.md) the test computes and states:

* Plain requests (one subject, no groups, no default role): **identical** to pycasbin on the same rows
  (global, plus the request's project policy when its object names that project), except
  **difference 4**: a ``proj:<p>:<r>`` subject asking about another project's object (or an object of no
  project) is denied by us whatever the rows say. The expected answer is computed as "deny" there, and
  the test asserts that this case actually changed some answers.
* Identity requests (subject + groups + default role): our answer must equal pycasbin's answer for a
  synthetic caller that inherits the subject, every bound group and the default role (**difference 3**:
  deny wins across the whole identity). Argo CD's answer is "default role allows, or the subject allows,
  or some bound group allows" (per-subject evaluation); the test counts where that differs (a deny on the
  subject or a group defeating a default-role or group allow) and asserts the difference is exercised.
* Regex mode: identical to pycasbin with full-match regexes; against Argo CD's unanchored search
  (**difference 6**) the test counts the changed answers and asserts there are some.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

import pytest

from policy import rbac_csv
from policy.rbac import Authorizer

ROLES = [f"role:r{i}" for i in range(8)]
USERS = ["alice", "bob", "carol", "dave", "admin"]
GROUPS = ["org:devs", "org:ops", "org:unbound"]  # org:unbound never appears first in a g line
PROJECT_ROLES = ["proj:pa:ci", "proj:pa:dev", "proj:pb:ci"]
SUBJECT_POOL = [*USERS, *ROLES, *GROUPS, *PROJECT_ROLES, "*", "role:readonly"]

GLOB_OBJECTS = ["pa/*", "pb/web", "*", "*/*", "pa/ns/*", "p?/web", "{pa,pb}/api", "pa*", "*/web", "[!p]*/x",
                "https://git.example/*", "pa", "pb"]
REGEX_OBJECTS = [".*", "pa/.*", "p[ab]/web", "(pa|pb)/.*", ".*/web", "pa", "p.*", "pb/(web|api)", "pa/ns/.*",
                 "https://git\\.example/.*", "a"]
GLOB_RESOURCES = ["applications", "applications", "logs", "clusters", "projects", "repositories", "exec", "*",
                  "app*"]
REGEX_RESOURCES = ["applications", "applications", "logs", "projects", ".*", "app.*", "(logs|exec)"]
GLOB_WILD_ACTIONS = ["*", "get", "sync", "update/*", "{get,sync}", "action/*"]
REGEX_WILD_ACTIONS = [".*", "get", "sync", "update/.*", "(get|sync)", "action/.*"]

REQ_RESOURCES = ["applications", "applications", "applications", "logs", "clusters", "projects", "repositories",
                 "exec", "certificates", "*"]
REQ_ACTIONS = ["get", "get", "sync", "create", "update", "delete", "override", "update/apps/Deployment/ns/web",
               "action/apps/Deployment/restart", "*"]
REQ_OBJECTS = ["pa/web", "pb/web", "pa/ns/web", "pb/api", "pc/x", "pa", "pb", "*", "*/*", "", "https://git.example/r",
               "a", "px/web"]


@dataclass
class Scenario:
    mode: str
    text: str
    projects: dict[str, str]
    default_role: str
    bound: set[str] = field(default_factory=set)  # first fields of global g lines
    project_bound: dict[str, set[str]] = field(default_factory=dict)


def _action_for(resource: str, rng: random.Random, mode: str) -> str:
    if resource in rbac_csv.ACTIONS:
        choices = [*sorted(rbac_csv.ACTIONS[resource]), "*" if mode == "glob" else ".*"]
        if resource == "applications":
            choices += ["update/*", "delete/*/Pod/*", "action/*"] if mode == "glob" else ["update/.*", "action/.*"]
        action = rng.choice(choices)
        return action
    if resource == "(logs|exec)":  # matches no resource with a path action
        return rng.choice([".*", "get", "create"])
    return rng.choice(GLOB_WILD_ACTIONS if mode == "glob" else REGEX_WILD_ACTIONS)


def make_scenario(seed: int, mode: str) -> Scenario:
    rng = random.Random(seed)
    objects = GLOB_OBJECTS if mode == "glob" else REGEX_OBJECTS
    resources = GLOB_RESOURCES if mode == "glob" else REGEX_RESOURCES
    lines = []
    for _ in range(rng.randrange(25, 45)):
        subject = rng.choice([*ROLES, *ROLES, *USERS, *GROUPS, "*", "proj:pa:ci", "proj:pb:ci"])
        resource = rng.choice(resources)
        action = _action_for(resource, rng, mode)
        effect = "deny" if rng.random() < 0.3 else "allow"
        lines.append(rbac_csv.format_fields(["p", subject, resource, action, rng.choice(objects), effect]))
    edges: set[tuple[str, str]] = set()
    for i in range(len(ROLES) - 1):  # a chain role:r0 -> r1 -> ... (nested up to 7 deep), sometimes a cycle
        if rng.random() < 0.7:
            edges.add((ROLES[i], ROLES[i + 1]))
    if rng.random() < 0.3:
        edges.add((ROLES[-1], ROLES[0]))
    for user in USERS:
        for role in rng.sample(ROLES, k=rng.randrange(0, 3)):
            edges.add((user, role))
    for group in GROUPS[:2]:
        edges.add((group, rng.choice(ROLES)))
    if rng.random() < 0.5:
        edges.add(("alice", "proj:pa:dev"))
    lines += [f"g, {m}, {r}" for m, r in sorted(edges)]
    projects = {
        "pa": "\n".join([
            f"p, proj:pa:ci, applications, {rng.choice(['sync', 'get', '*'])}, pa/*, allow",
            f"p, proj:pa:ci, applications, delete, {rng.choice(['pa/*', 'pa/ns/*'])}, deny",
            "p, proj:pa:dev, applications, *, pa/*, allow",
            f"p, proj:pa:dev, logs, get, pa/*, {rng.choice(['allow', 'deny'])}",
            "g, org:devs, proj:pa:dev",
            "g, carol, proj:pa:ci",
        ]),
        "pb": "p, proj:pb:ci, applications, sync, pb/*, allow\ng, org:ops, proj:pb:ci",
    }
    if mode == "regex":
        projects = {}  # project role objects are globs-or-literals by Argo's object regex; covered in glob mode
    default_role = rng.choice(["role:r3", "role:r5", "role:readonly", "role:none"])
    scenario = Scenario(mode, "\n".join(lines) + "\n", projects, default_role)
    scenario.bound = {m for m, _ in edges} | ({"admin", "role:admin"} if seed % 2 == 0 else set())
    scenario.project_bound = {"pa": {"org:devs", "carol"}, "pb": {"org:ops"}}
    return scenario


def _builtin(seed: int) -> bool:
    return seed % 2 == 0  # half the scenarios load the built-in policy (43 Argo rows + audit)


def _authorizer(s: Scenario, seed: int, *, default_role: str | None, extra: str = "") -> Authorizer:
    auth = Authorizer.from_csv(s.text + extra, default_role=default_role, match_mode=s.mode,
                               builtin=_builtin(seed), cache_size=0)
    for name, text in s.projects.items():
        auth.load_project_policy(name, text)
    return auth


class References:
    """pycasbin enforcers per project context, built lazily (global, pa, pb)."""

    def __init__(self, auth: Authorizer, *, argo_regex: bool = False) -> None:
        self.auth = auth
        self.argo_regex = argo_regex
        self._by: dict[str | None, object] = {}

    def __call__(self, project: str | None, sub: str, res: str, act: str, obj: str) -> bool:
        key = project if project in {"pa", "pb"} else None
        if key not in self._by:
            self._by[key] = self.auth.reference_enforcer(key, argo_regex=self.argo_regex)
        return bool(self._by[key].enforce(sub, res, act, obj))  # type: ignore[attr-defined]


def _requests(rng: random.Random, n: int) -> list[tuple[str, str, str, str, tuple[str, ...]]]:
    out = []
    for _ in range(n):
        groups = tuple(rng.sample(GROUPS, k=rng.randrange(0, 3)))
        out.append((rng.choice(SUBJECT_POOL), rng.choice(REQ_RESOURCES), rng.choice(REQ_ACTIONS),
                    rng.choice(REQ_OBJECTS), groups))
    return out


SEEDS_GLOB = list(range(14))
SEEDS_REGEX = list(range(100, 106))
PER_SCENARIO = 500  # 20 scenarios x 500 = 10,000 requests, each compared plain and as an identity


def _confined(sub: str, project: str | None) -> bool:
    own = rbac_csv.project_token_project(sub)
    return own is not None and own != project


LIVE_GROUPS = GROUPS[:2]  # the groups a scenario binds with g lines; org:unbound never is


def _caller(sub: str, groups: list[str]) -> str:
    mask = sum(1 << LIVE_GROUPS.index(g) for g in groups)
    return f"caller:{SUBJECT_POOL.index(sub)}:{mask}"


def _callers(default_role: str) -> str:
    """g lines for a synthetic caller per (subject, subset of bound groups): it inherits all of them and the
    default role, so pycasbin's deny-override over its closure is our whole-identity answer."""
    out = []
    for sub in SUBJECT_POOL:
        for mask in range(1 << len(LIVE_GROUPS)):
            groups = [g for j, g in enumerate(LIVE_GROUPS) if mask >> j & 1]
            name = _caller(sub, groups)
            out += [f"g, {name}, {sub}", f"g, {name}, {default_role}", *(f"g, {name}, {g}" for g in groups)]
    return "\n".join(out) + "\n"


@pytest.mark.slow  # 10,000 requests through pycasbin: 20-60 s on a shared 2-core machine
def test_differential_against_pycasbin() -> None:
    totals = {"requests": 0, "confinement": 0, "deny_wins": 0, "regex_anchor": 0, "allowed": 0}
    for seed in SEEDS_GLOB + SEEDS_REGEX:
        mode = "glob" if seed < 100 else "regex"
        s = make_scenario(seed, mode)
        plain = _authorizer(s, seed, default_role=None)
        with_default = _authorizer(s, seed, default_role=s.default_role)
        ref = References(plain)
        union = References(_authorizer(s, seed, default_role=None, extra=_callers(s.default_role)))
        argo_regex = References(plain, argo_regex=True)
        rng = random.Random(seed * 7919)
        for sub, res, act, obj, groups in _requests(rng, PER_SCENARIO):
            project = rbac_csv.project_from_request(res, obj)
            context = project if project in s.projects else None
            confined = _confined(sub, project)
            totals["requests"] += 1

            # 1. one subject, no groups, no default role: pycasbin's answer, bar difference 4
            ours = plain.enforce(sub, res, act, obj).allowed
            casbin = ref(context, sub, res, act, obj)
            expected = False if confined else casbin
            assert ours == expected, (seed, sub, res, act, obj, casbin)
            totals["confinement"] += casbin and not expected
            totals["allowed"] += ours

            # 2. the whole identity: deny wins across subject, bound groups and the default role
            bound = s.bound | s.project_bound.get(context or "", set())
            live = [g for g in LIVE_GROUPS if g in groups and g in bound]
            ours_id = with_default.enforce(sub, res, act, obj, groups=groups).allowed
            expected_id = False if confined else union(context, _caller(sub, live), res, act, obj)
            assert ours_id == expected_id, (seed, sub, groups, res, act, obj)
            if not confined:
                # Argo CD: default role first, then the subject, then each bound group, each on its own
                argo = (ref(context, s.default_role, res, act, obj) or casbin
                        or any(ref(context, g, res, act, obj) for g in live))
                totals["deny_wins"] += argo and not expected_id

            # 3. regex mode: Argo CD's unanchored search would answer differently here (difference 6)
            if mode == "regex" and not confined:
                totals["regex_anchor"] += argo_regex(context, sub, res, act, obj) != casbin

    assert totals["requests"] >= 10_000
    # the generated policies exercise both answers and every stated difference
    assert 0.05 * totals["requests"] < totals["allowed"] < 0.95 * totals["requests"], totals
    assert totals["confinement"] > 0, totals
    assert totals["deny_wins"] > 0, totals
    assert totals["regex_anchor"] > 0, totals


@pytest.mark.parametrize("depth", [8, 9, 10, 11], ids=lambda d: f"chain-{d}")
def test_role_depth_limit_matches_pycasbin(depth: int) -> None:
    """Casbin's default role manager follows 10 levels (the subject and 9 roles up); so do we."""
    chain = [f"role:c{i}" for i in range(depth + 1)]
    text = "".join(f"g, {a}, {b}\n" for a, b in itertools.pairwise(chain))
    text += f"p, {chain[-1]}, applications, get, */*, allow\n"
    auth = Authorizer.from_csv(text, builtin=False)
    ref = auth.reference_enforcer()
    ours = auth.enforce(chain[0], "applications", "get", "p/a").allowed
    assert ours == bool(ref.enforce(chain[0], "applications", "get", "p/a"))
    assert ours == (depth <= 9)
