"""The per-project pre-filter of the app listing (:meth:`Authorizer.may_allow_in_project`) never hides an app the
per-app answer shows: on random policies (globs and regexes, roles, groups, default roles, project policies,
allow and deny rows) filtering by project first and then per object gives exactly the per-object answer, and
the pre-filter does skip projects (it is not vacuously true)."""

from __future__ import annotations

import pytest

from policy.rbac import Authorizer
from tests.policy.test_rbac_differential import PROJECT_ROLES, USERS, _authorizer, make_scenario

PROJECTS = ["pa", "pb", "pc", "px", "a", "default", "p"]
NAMES = ["web", "api", "x", "ns/web", "a", "web2"]
IDENTITIES = [(u, ()) for u in USERS] + [(r, ()) for r in PROJECT_ROLES] + [
    ("erin", ("org:devs",)), ("frank", ("org:ops", "org:unbound")), ("nobody", ())]


def _listing(auth: Authorizer, subject: str, groups: tuple[str, ...], resource: str, action: str,
             *, prefilter: bool) -> list[str]:
    shown = []
    for project in PROJECTS:
        if prefilter and not auth.may_allow_in_project(subject, resource, action, project, groups=groups):
            continue
        shown += [f"{project}/{n}" for n in NAMES
                  if auth.enforce(subject, resource, action, f"{project}/{n}", groups=groups)]
    return shown


@pytest.mark.parametrize("mode", ["glob", "regex"])
def test_prefilter_keeps_the_per_app_answer(mode: str) -> None:
    skipped = 0
    for seed in range(60):
        scenario = make_scenario(seed, mode)
        for default_role in (None, scenario.default_role):
            auth = _authorizer(scenario, seed, default_role=default_role)
            for subject, groups in IDENTITIES:
                for resource, action in (("applications", "get"), ("applications", "sync"), ("logs", "get")):
                    expected = _listing(auth, subject, groups, resource, action, prefilter=False)
                    assert _listing(auth, subject, groups, resource, action, prefilter=True) == expected, (
                        seed, mode, default_role, subject, groups, resource, action)
                    skipped += sum(not auth.may_allow_in_project(subject, resource, action, p, groups=groups)
                                   for p in PROJECTS)
    assert skipped > 0


def test_prefilter_skips_other_projects_of_a_project_token_and_unlisted_projects() -> None:
    auth = Authorizer.from_csv("p, alice, applications, get, web/*, allow\n"
                               "p, bob, applications, get, w*/api, allow\n", builtin=False)
    auth.load_project_policy("web", "p, proj:web:ci, applications, get, web/*, allow\n")
    assert auth.may_allow_in_project("alice", "applications", "get", "web")
    assert not auth.may_allow_in_project("alice", "applications", "get", "ops")
    assert not auth.may_allow_in_project("alice", "applications", "sync", "web")
    assert auth.may_allow_in_project("bob", "applications", "get", "ops")  # w*/api: head not fixed, so maybe
    assert auth.may_allow_in_project("proj:web:ci", "applications", "get", "web")
    assert not auth.may_allow_in_project("proj:web:ci", "applications", "get", "ops")
