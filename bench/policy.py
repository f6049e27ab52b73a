"""Policy benchmark: RBAC decision latency of our indexed evaluator against pycasbin, then the window check.

Run: ``python bench/policy.py`` (prints everything in one run; no arguments). Figures are printed, never
asserted: the targets (uncached p50 <= 20 us and p99 <= 100 us at 10,000 rules, >= 1,000x pycasbin there,
100% agreement) are read off the output and reported in the README.

For each size (the built-in policy alone, ~1,000 and ~10,000 ``p`` rows) the same generated policy is loaded
into ``Authorizer`` (decision cache off) and into pycasbin's ``Enforcer`` on the same model and rows
(``Authorizer.reference_enforcer``). Requests are drawn from users that inherit team roles (nested two
levels), with allow and deny rows, wildcards and exact objects. pycasbin scans every row per request, so
it runs on a smaller sample of the same requests; agreement is measured on that sample. Then ``run()`` from
``bench/policy_windows.py`` (another engineer's) prints the window-check figures.
"""

from __future__ import annotations

import gc
import importlib.util
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from policy.rbac import Authorizer  # noqa: E402

ACTIONS = ["get", "create", "update", "delete", "sync", "override", "rollback"]
SEED = 20260101


Workload = tuple[str, list[str], list[str], dict[str, list[tuple[str, str]]]]


def generate(rules: int, rng: random.Random) -> Workload:
    """policy.csv text with ``rules`` p rows beyond the built-ins, its users, its projects, and for each user
    the projects its teams have rows on (so that requests are allowed about as often as denied)."""
    if rules <= 0:
        return "", ["admin"], ["default"], {}
    projects = [f"proj-{i}" for i in range(max(10, rules // 40))]
    teams = [f"role:team-{i}" for i in range(max(4, rules // 10))]
    users = [f"user-{i}" for i in range(max(8, rules // 4))]
    lines: list[str] = []
    team_rows: dict[str, list[tuple[str, str]]] = {}  # (project, action) of each team's application rows
    count = 0
    while count < rules:
        team = rng.choice(teams)
        proj = rng.choice(projects)
        kind = rng.random()
        if kind < 0.6:
            action = rng.choice(ACTIONS)
            team_rows.setdefault(team, []).append((proj, action))
            obj = rng.choice([f"{proj}/*", f"{proj}/app-{rng.randrange(50)}", f"{proj}/ns-{rng.randrange(5)}/*"])
            lines.append(f"p, {team}, applications, {action}, {obj}, {'deny' if rng.random() < 0.07 else 'allow'}")
        elif kind < 0.75:
            action = rng.choice(["update/*", "delete/*/Pod/*", "action/apps/Deployment/restart", "*"])
            lines.append(f"p, {team}, applications, {action}, {proj}/*, allow")
        elif kind < 0.85:
            res = rng.choice(["clusters", "repositories", "logs", "exec", "applicationsets"])
            action = "create" if res == "exec" else "get"
            lines.append(f"p, {team}, {res}, {action}, {proj}/*, allow")
        elif kind < 0.95:
            effect = "deny" if rng.random() < 0.3 else "allow"
            obj = f"{proj}/app-{rng.randrange(50)}"
            lines.append(f"p, {rng.choice(users)}, applications, {rng.choice(ACTIONS)}, {obj}, {effect}")
        else:
            lines.append(f"p, {team}, *, get, {proj}*, allow")
        count += 1
    for i, team in enumerate(teams):  # nesting: each team inherits a parent team, two levels deep
        if i >= 4:
            lines.append(f"g, {team}, {teams[i // 4]}")
    reach: dict[str, list[tuple[str, str]]] = {}
    for user in users:
        for team in rng.sample(teams, k=rng.choice([1, 1, 2, 3])):
            lines.append(f"g, {user}, {team}")
            reach.setdefault(user, []).extend(team_rows.get(team, []))
    lines.append("g, user-0, role:readonly")
    return "\n".join(lines) + "\n", [*users, "admin"], projects, reach


def requests(workload: Workload, n: int, rng: random.Random) -> list[tuple[str, str, str, str]]:
    _, users, projects, reach = workload
    out = []
    for _ in range(n):
        user = rng.choice(users)
        mine = reach.get(user)
        proj, action = rng.choice(mine) if mine and rng.random() < 0.8 else (rng.choice(projects), "")
        r = rng.random()
        if r < 0.7:
            app = rng.choice(["*", f"app-{rng.randrange(60)}", f"ns-{rng.randrange(5)}/app"])
            out.append((user, "applications", action or rng.choice(ACTIONS), f"{proj}/{app}"))
        elif r < 0.8:
            out.append((user, "applications", "update/apps/Deployment/ns/web", f"{proj}/app-{rng.randrange(60)}"))
        elif r < 0.9:
            out.append((user, rng.choice(["clusters", "repositories", "logs"]), "get", f"{proj}/x"))
        else:
            out.append((user, "projects", "get", proj))
    return out


def _percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2] / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


def _time(fn: object, reqs: list[tuple[str, str, str, str]]) -> tuple[list[int], list[bool]]:
    call = fn  # a bound method taking (sub, res, act, obj)
    samples: list[int] = []
    answers: list[bool] = []
    clock = time.perf_counter_ns
    gc.disable()
    try:
        for req in reqs:
            t0 = clock()
            answer = call(*req)  # type: ignore[operator]
            samples.append(clock() - t0)
            answers.append(bool(answer))
    finally:
        gc.enable()
    return samples, answers


def bench_size(extra_rules: int, ours_n: int, casbin_n: int) -> None:
    rng = random.Random(SEED + extra_rules)
    workload = generate(extra_rules, rng)
    text = workload[0]
    t0 = time.perf_counter()
    auth = Authorizer.from_csv(text, cache_size=0)
    load_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    ref = auth.reference_enforcer()
    ref_load_ms = (time.perf_counter() - t0) * 1000
    reqs = requests(workload, ours_n, rng)
    _time(auth.enforce, reqs[:2000])  # warm-up: compiled-pattern caches, branch predictors
    ours_ns, ours_ans = _time(auth.enforce, reqs)
    sample = reqs[:casbin_n]
    ref_ns, ref_ans = _time(ref.enforce, sample)
    agree = sum(1 for a, b in zip(ours_ans, ref_ans, strict=False) if a == b)
    p50, p99 = _percentiles(ours_ns)
    c50, c99 = _percentiles(ref_ns)
    allowed = sum(ours_ans) / len(ours_ans)
    print(f"{auth.rule_count:>6} p rows | ours p50 {p50:7.2f} us  p99 {p99:7.2f} us  (n={len(reqs)}, "
          f"{allowed:.0%} allowed, load {load_ms:.0f} ms)")
    print(f"{'':>6}        | pycasbin p50 {c50:10.1f} us  p99 {c99:10.1f} us  (n={len(sample)}, "
          f"load {ref_load_ms:.0f} ms)")
    print(f"{'':>6}        | ratio p50 {c50 / p50:8.0f}x  p99 {c99 / p99:8.0f}x   agreement {agree}/{len(sample)} "
          f"= {agree / len(sample):.2%}")


def windows() -> None:
    path = ROOT / "bench" / "policy_windows.py"
    if not path.exists():
        print("window check: bench/policy_windows.py is missing (not written yet); no window figures")
        return
    spec = importlib.util.spec_from_file_location("bench_policy_windows", path)
    if spec is None or spec.loader is None:
        print(f"window check: cannot load {path}")
        return
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.run()


def main() -> None:
    print("RBAC decisions: syncwarden indexed evaluator (uncached) vs pycasbin Enforcer, same model and rows")
    bench_size(0, 20_000, 2_000)
    bench_size(1_000 - 45, 20_000, 500)
    bench_size(10_000 - 45, 20_000, 100)
    print()
    windows()


if __name__ == "__main__":
    main()
