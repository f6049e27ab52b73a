"""Benchmark: the reconciler's steady-state pass over 1,000 apps x 10 objects against a naive loop, plus
ls-remote sharing, drift latency and automated-sync throughput, all against the sandbox in one run.

Run: ``python -m bench.reconcile [--apps 1000] [--objects 10] [--repos 10] [--database-url URL]``.
Figures are printed, never asserted (issue 6, "Benchmark"). The sandbox runs in a child process
(:mod:`bench.reconcile_setup`); the reconciler uses a watch cache of ConfigMaps, a SQLite store (or
``--database-url``), and a renderer whose ls-remote clock the benchmark moves by hand.

* warm-up: the first pass (every app compared and rendered for the first time; its objects already exist);
* steady state: passes at which every app's poll is due but nothing changed in Git or in the cluster,
  within the ls-remote interval (no git process) and just after it (one ls-remote per repository);
* idle: a pass at which nothing is due (what the loop pays every second);
* naive: :mod:`bench.reconcile_naive` over the same apps; the ratio is naive / steady state;
* drift: a second client changes one object of an app with self-heal; the time until the watch callback
  reached the reconciler and until the self-heal sync was initiated (``run_forever`` loop, real clock);
* throughput: new one-ConfigMap automated apps synced by the ``run_forever`` loop, apps per second (until
  the last operation succeeded; the apps are then checked to show Synced).

Who runs it: engineers changing the reconciler, the compare pipeline or the store (DESIGN.md bench/).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from bench.reconcile_naive import naive_pass  # noqa: E402
from bench.reconcile_setup import (  # noqa: E402
    DEST_NS,
    NS,
    BenchApp,
    RemoteSandbox,
    World,
    build_world,
    make_repos,
    now_utc,
    populate,
    timed,
    workspace,
)
from sync.models import ResourceKey  # noqa: E402
from sync.reconciler import PassReport  # noqa: E402


def _statuses(report: PassReport) -> str:
    counts: dict[str, int] = {}
    for value in report.compared.values():
        counts[value] = counts.get(value, 0) + 1
    errors = f", {len(report.errors)} errors" if report.errors else ""
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) + errors or "nothing compared"


def _pass(world: World, sb: RemoteSandbox, at: Any, label: str, rows: list[tuple[str, str]],
          profile: str | None = None) -> float:
    git_before = world.gits.total()
    ls_before = sum(world.gits.ls_remote.values())
    req_before = sb.requests()
    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    elapsed, report = timed(lambda: world.reconciler.run_once(at))
    if profiler:
        profiler.disable()
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").dump_stats(profile) if profile else None
        stats.sort_stats("tottime").print_stats(25)
    git_n = world.gits.total() - git_before
    ls_n = sum(world.gits.ls_remote.values()) - ls_before
    req_n = sb.requests() - req_before
    print(f"  {label:<44} {elapsed:7.3f} s  git {git_n:>4} (ls-remote {ls_n:>3})  API {req_n:>5}  "
          f"[{_statuses(report)}]")
    rows.append((label, f"{elapsed:.3f} s"))
    return elapsed


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def _drift(world: World, sb: RemoteSandbox, apps: list[BenchApp], samples: int) -> tuple[list[float], list[float]]:
    other = sb.connect()
    to_callback, to_sync = [], []
    try:
        for app in apps[:samples]:
            name = app.objects[0]
            live = other.get(ResourceKey("", "ConfigMap", DEST_NS, name))
            live["metadata"].pop("managedFields", None)
            live["data"] = {**live["data"], "value": "changed by hand"}
            written = time.perf_counter()
            other.apply(live, field_manager="human", force=True)
            if not _wait(lambda name=app.name: name in world.sink.initiated, 30):
                print(f"  drift on {app.name}: no self-heal within 30 s")
                continue
            to_callback.append(world.drift_seen.get(app.name, float("nan")) - written)
            to_sync.append(world.sink.initiated[app.name] - written)
            _wait(lambda: not world.store.operations.in_progress(), 30)
    finally:
        other.close()
    return to_callback, to_sync


def _loop(world: World) -> tuple[threading.Event, threading.Thread]:
    stop = threading.Event()
    loop = threading.Thread(target=world.reconciler.run_forever, args=(stop,), daemon=True)
    loop.start()
    return stop, loop


def _throughput(world: World, root: Path, count: int) -> tuple[float, float, int, int]:
    """Create ``count`` automated one-ConfigMap apps while the loop is stopped, then run the loop: the time
    from its start until the last of their operations succeeded (seen at the event sink, so that measuring
    costs the loop nothing), the CPU seconds this process spent meanwhile (the loop, the watch threads; not
    the sandbox, not git), how many succeeded, and how many then show Synced."""
    fresh = make_repos(root, prefix="one", apps=count, repos=1, objects=1)
    for app in fresh:
        world.store.apps.create(app.manifest(automated=True), now=now_utc())
    names = [a.name for a in fresh]
    stop, loop = _loop(world)
    started, cpu = time.perf_counter(), time.process_time()
    try:
        _wait(lambda: all(n in world.sink.succeeded for n in names), 300)
        cpu = time.process_time() - cpu
        ended = max((world.sink.succeeded.get(n, started) for n in names), default=started)
        keys = {(NS, n) for n in names}

        def synced() -> int:
            statuses = world.store.apps.statuses()
            return sum(statuses[k].sync_status == "Synced" for k in keys if k in statuses)

        deadline = time.monotonic() + 60
        while synced() < count and time.monotonic() < deadline:
            time.sleep(0.25)
        return ended - started, cpu, sum(n in world.sink.succeeded for n in names), synced()
    finally:
        stop.set()
        loop.join(30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--apps", type=int, default=1000)
    parser.add_argument("--objects", type=int, default=10, help="ConfigMaps per app")
    parser.add_argument("--repos", type=int, default=10)
    parser.add_argument("--passes", type=int, default=3, help="timed steady-state passes")
    parser.add_argument("--sync-apps", type=int, default=100, help="one-ConfigMap apps for the throughput")
    parser.add_argument("--drift-samples", type=int, default=5)
    parser.add_argument("--database-url", default=None, help="default: a SQLite file in the temp dir")
    parser.add_argument("--profile", default=None, help="write a cProfile of the first steady pass here")
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args(argv)
    interval = 60.0
    rows: list[tuple[str, str]] = []

    with workspace() as root:
        sb = RemoteSandbox(root)
        kc = sb.connect()
        try:
            kc.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": DEST_NS}})
            apps = make_repos(root, prefix="app", apps=args.apps, repos=args.repos, objects=args.objects)
            world = build_world(root, kc, database_url=args.database_url, ls_remote_interval=interval)
            took, created = timed(lambda: populate(kc, apps, world.env.tracker))
            print(f"setup: {len(apps)} apps in {args.repos} repos, {created:,} live ConfigMaps applied in {took:.1f} s")
            world.cache.warm()
            world.cache.start()
            t0 = now_utc()
            for app in apps:
                world.store.apps.create(app.manifest(automated=True), now=t0)
            time.sleep(1.0)  # let every watch open
            print(f"reconciler passes over {len(apps)} apps x {args.objects} objects:")
            _pass(world, sb, t0, "warm-up (first comparison of every app)", rows)
            steady = []
            for i in range(args.passes):
                profile = args.profile if i == 0 else None
                steady.append(_pass(world, sb, t0 + timedelta(hours=1 + i), f"steady state #{i + 1} (all due)",
                                    rows, profile))
            world.mono.value += interval + 1
            poll = _pass(world, sb, t0 + timedelta(hours=9), "steady state after the ls-remote interval", rows)
            _pass(world, sb, t0 + timedelta(hours=9, seconds=1), "idle pass (nothing due)", rows)
            per_repo = max(world.gits.ls_remote.values()) if world.gits.ls_remote else 0
            print(f"  ls-remote per repository over the run (warm-up + 1 interval): max {per_repo}; "
                  f"git processes by verb: {dict(world.gits.by_verb)}")
            best = min(steady)
            if not args.skip_naive:
                before = sb.requests()
                naive_s, status = timed(lambda: naive_pass(apps, kc, tracking_key=world.env.settings.tracking_key))
                synced = sum(s == "Synced" for s in status.values())
                print(f"  {'naive loop':<44} {naive_s:7.3f} s  git {len(apps):>4} (ls-remote {len(apps):>3})  "
                      f"API {sb.requests() - before:>5}  [{synced} Synced]")
                rows.append(("naive loop", f"{naive_s:.3f} s"))
                rows.append(("ratio naive / steady (best)", f"{naive_s / best:.1f}x"))
                rows.append(("ratio naive / steady after interval", f"{naive_s / poll:.1f}x"))

            stop, loop = _loop(world)
            try:
                cb, heal = _drift(world, sb, apps, args.drift_samples)
            finally:
                stop.set()
                loop.join(30)
            if cb:
                rows.append(("drift: write -> watch callback (median/max)",
                             f"{statistics.median(cb) * 1000:.0f} / {max(cb) * 1000:.0f} ms"))
                rows.append(("drift: write -> self-heal initiated (median/max)",
                             f"{statistics.median(heal) * 1000:.0f} / {max(heal) * 1000:.0f} ms"))
            took, cpu, done, synced = _throughput(world, root, args.sync_apps)
            rows.append((f"automated sync of {args.sync_apps} new one-ConfigMap apps",
                         f"{took:.1f} s, {done / took:.1f} app-syncs/s ({done} succeeded, then {synced} Synced)"))
            rows.append(("  CPU of this process per app-sync", f"{cpu / max(done, 1) * 1000:.0f} ms "
                         f"({done / max(cpu, 1e-9):.0f} app-syncs per CPU second)"))
            print("\nsummary:")
            for label, value in rows:
                print(f"  {label:<52} {value}")
        finally:
            world_cache = locals().get("world")
            if world_cache is not None:
                world_cache.cache.stop()
                world_cache.store.close()
            kc.close()
            sb.stop()


if __name__ == "__main__":
    main()
