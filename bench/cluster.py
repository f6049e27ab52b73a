"""Benchmark: the cluster cache for 10,000 tracked objects versus asking the API server per object.

Run: ``python bench/cluster.py [--objects N] [--apps N] [--namespaces N]``. It starts a sandbox in
process, creates the objects over HTTP through ``sync.kube`` (ConfigMaps spread over namespaces and
apps, each with a tracking annotation), then reports:

* warm-up: the time to list every resource type once and fill the cache, and the requests it took;
* memory: what the filled cache holds (tracemalloc, a second warm-up of a fresh cache) and peak RSS;
* one steady-state pass (the live objects of every app) read from the running cache versus one GET
  per object, counted at the sandbox's request log, with the ratio.

Figures are printed, never asserted. Who runs it: engineers comparing cache changes (DESIGN.md bench/).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

import sandbox  # noqa: E402
from sync import kube  # noqa: E402
from sync.cluster import ResourceKey, TrackingSelector, key_of  # noqa: E402
from sync.cluster_cache import ClusterCache  # noqa: E402
from sync.cluster_registry import ClusterRegistry  # noqa: E402

TRACK = "syncwarden.io/tracking-id"


def _objects(count: int, apps: int, namespaces: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        ns, app, name = f"bench-{i % namespaces}", f"app-{i % apps}", f"cm-{i:05d}"
        out.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "annotations": {TRACK: f"{app}:/ConfigMap:{ns}/{name}"},
                    "labels": {"bench": "yes"},
                },
                "data": {"index": str(i), "payload": "x" * 200},
            }
        )
    return out


def _requests(sb: sandbox.Sandbox) -> int:
    return len(sb.requests.records())


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--namespaces", type=int, default=20)
    parser.add_argument("--workers", type=int, default=4, help="parallel clients creating the objects")
    args = parser.parse_args(argv)

    with sandbox.start(port=0) as sb, tempfile.TemporaryDirectory() as tmp:
        path = sb.write_kubeconfig(Path(tmp) / "kubeconfig", context="sandbox")
        entry = ClusterRegistry.load([path], environ={}).get("sandbox")
        kc = kube.connect(entry, qps=0, timeout_seconds=60)

        for n in range(args.namespaces):
            kc.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"bench-{n}"}})
        objects = _objects(args.objects, args.apps, args.namespaces)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for _ in pool.map(kc.apply, objects, chunksize=50):
                pass
        create_s = time.perf_counter() - started
        print(
            f"created {len(objects):,} ConfigMaps in {args.namespaces} namespaces for {args.apps} apps: "
            f"{create_s:.1f}s ({len(objects) / create_s:,.0f}/s, server-side apply over HTTP)"
        )

        selector = TrackingSelector(key=TRACK)
        kc.served_resources()
        before = _requests(sb)
        started = time.perf_counter()
        cache = ClusterCache(kc, selector, watch_timeout_seconds=30)
        cache.warm()
        warm_s = time.perf_counter() - started
        warm_requests = _requests(sb) - before
        print(
            f"warm-up: {warm_s:.2f}s, {warm_requests} list requests "
            f"({len(kc.served_resources())} resource types + CRDs), {len(cache):,} objects cached"
        )

        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        probe = ClusterCache(kc, selector)
        probe.warm()
        held = tracemalloc.get_traced_memory()[0] - baseline
        tracemalloc.stop()
        del probe
        print(
            f"memory: cache holds {held / 2**20:.1f} MiB ({held / max(len(cache), 1) / 1024:.1f} KiB/object, "
            f"tracemalloc); peak RSS of this process {_rss_mib():.0f} MiB (sandbox included)"
        )

        cache.start()
        deadline = time.monotonic() + 60
        watches = warm_requests  # one watch per listed type, the CRD watcher included
        while time.monotonic() < deadline and sum(r.verb == "watch" for r in sb.requests.records()) < watches:
            time.sleep(0.05)  # let every watcher open its watch, so the pass counts only its own requests
        apps = sorted(cache.apps())
        before = _requests(sb)
        started = time.perf_counter()
        live: dict[ResourceKey, dict[str, Any]] = {}
        for app in apps:
            for obj in cache.managed(app):
                live[key_of(obj)] = obj
        cached_s = time.perf_counter() - started
        cached_requests = _requests(sb) - before
        cache.stop()

        keys = [key_of(o) for o in objects]
        before = _requests(sb)
        started = time.perf_counter()
        for key in keys:
            kc.get(key)
        get_s = time.perf_counter() - started
        get_requests = _requests(sb) - before

        print(f"steady-state pass over {len(apps)} apps, {len(live):,} objects:")
        print(f"  cache:           {cached_requests:>6} API requests  {cached_s * 1000:>9.1f} ms")
        print(f"  per-object GET:  {get_requests:>6} API requests  {get_s * 1000:>9.1f} ms")
        print(
            f"  ratio (GET/cache requests): {get_requests / max(cached_requests, 1):,.0f}x"
            + ("  (cache made no request; divided by 1)" if cached_requests == 0 else "")
        )
        print(f"  ratio (GET/cache time):     {get_s / max(cached_s, 1e-9):,.0f}x")
        kc.close()


if __name__ == "__main__":
    main()
