"""Benchmark: the admission check over real HTTP — throughput against a no-op route of the same server, p99
latency at a paced 1,000 requests/s — and listing the apps one user may see among 4,500 apps in 200 projects.

Run: ``python bench/admission.py [--requests N] [--connections N] [--rate R] [--seconds S] [--apps N]
[--projects N] [--lists N]``.

In one run: the server is started with ``syncwarden serve`` in a subprocess (on 127.0.0.1, SQLite in a temporary
directory, the reconciler idle), the example project ``web`` of ``config/examples/`` is created through the API,
and a token of its ``ci`` role is minted, as a pipeline would hold it. Then:

* throughput: ``--requests`` requests over ``--connections`` keep-alive connections to the no-op ``GET /healthz``,
  then the same number of ``POST /api/v1/admission/check`` (the example app and its three manifests, checked
  against the stored project, authenticated with the project token, authorized, evaluated and audited),
  ``--rounds`` interleaved rounds; the median requests/s of each and the median of the rounds' ratios
  (target >= 85 %);
* paced latency: the check at ``--rate`` requests/s for ``--seconds`` seconds (open loop: latency counts from
  each request's scheduled start, so a stall is not hidden); p50, p99, max (target p99 <= 10 ms at 1,000/s);
* listing: ``--projects`` projects with ``--apps`` apps spread over them; once the server is idle again (the
  reconciler has compared every new app once; at most ``--settle`` seconds), ``GET /api/v1/applications`` as a
  user who may see one project's apps (a project token); p50/p99 of ``--lists`` requests (target <= 100 ms).
  This needs the application routes and the wired sync services; without them it reports what is missing.

The load generator is a minimal HTTP/1.1 keep-alive client on asyncio (the same for both routes, so its own cost
cancels in the ratio). Loopback only; every loop is bounded. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(ROOT))

from config import yamlsafe  # noqa: E402

#: ``syncwarden serve`` on a free loopback port; the reconciler stays idle (long interval) while we measure
SERVE = [sys.executable, "-c", "from api.cli import main; main()", "serve", "--host", "127.0.0.1", "--port", "0",
         "--no-examples", "--interval", "600", "--lease-seconds", "1200"]
START_TIMEOUT = 90.0
#: seconds one request may take before the benchmark gives up on it
REQUEST_TIMEOUT = 30.0


@dataclass
class Server:
    port: int
    admin_password: str
    proc: subprocess.Popen[str]


@contextmanager
def server(tmp: Path) -> Iterator[Server]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCWARDEN_")}
    env.update({"SYNCWARDEN_DATA_DIR": str(tmp / "data"), "SYNCWARDEN_DATABASE_URL": f"sqlite:///{tmp / 'sw.db'}",
                "PYTHONUNBUFFERED": "1", "SYNCWARDEN_LOGGING__LEVEL": "WARNING"})
    stderr = (tmp / "server.stderr").open("w")
    proc = subprocess.Popen(SERVE, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        port, password = 0, ""
        deadline = time.monotonic() + START_TIMEOUT
        assert proc.stdout is not None
        while not (port and password) and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("syncwarden serving at "):
                port = int(line.split()[3].rsplit(":", 1)[1])
            elif line.startswith("initial admin password: "):
                password = line.strip().split(": ", 1)[1]
        if not (port and password):
            raise SystemExit(f"the server did not start:\n{(tmp / 'server.stderr').read_text()[-3000:]}")
        yield Server(port, password, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=20)
        if proc.stdout is not None:
            proc.stdout.close()
        stderr.close()


# --- a minimal HTTP/1.1 keep-alive client ---------------------------------------------------------------


def request_bytes(method: str, path: str, *, token: str = "", body: object = None) -> bytes:
    payload = b"" if body is None else json.dumps(body).encode()
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Accept: application/json"]
    if token:
        head.append(f"Authorization: Bearer {token}")
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(payload)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + payload


class Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Conn:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def call(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = 0
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
        if chunked:
            body = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                body += chunk[:-2]
            return status, body
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        self.writer.close()


async def call_once(port: int, raw: bytes) -> tuple[int, bytes]:
    conn = await Conn.open(port)
    try:
        return await conn.call(raw)
    finally:
        conn.close()


async def closed_loop(port: int, raw: bytes, *, total: int, connections: int) -> tuple[float, int]:
    """``total`` requests over ``connections`` connections as fast as they answer: (requests/s, failures)."""
    conns = [await Conn.open(port) for _ in range(connections)]
    remaining = [total]
    failures = [0]

    async def worker(conn: Conn) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            status, _ = await conn.call(raw)
            failures[0] += status != 200

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    elapsed = time.perf_counter() - start
    for c in conns:
        c.close()
    return total / elapsed, failures[0]


async def paced(port: int, raw: bytes, *, rate: float, seconds: float, pool: int) -> tuple[list[float], int]:
    """Open loop: request i is due at ``start + i / rate``; latency in ms from that due time."""
    idle: asyncio.Queue[Conn] = asyncio.Queue()
    for _ in range(pool):
        idle.put_nowait(await Conn.open(port))
    count = int(rate * seconds)
    latencies: list[float] = []
    failures = [0]
    start = time.perf_counter() + 0.05

    async def one(i: int) -> None:
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        conn = await idle.get()
        try:
            status, _ = await conn.call(raw)
        finally:
            idle.put_nowait(conn)
        latencies.append((time.perf_counter() - due) * 1000)
        failures[0] += status != 200

    await asyncio.gather(*(one(i) for i in range(count)))
    while not idle.empty():
        idle.get_nowait().close()
    return latencies, failures[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- setup through the API ------------------------------------------------------------------------------


def example_project() -> dict[str, object]:
    manifest = yamlsafe.load_one((ROOT / "config/examples/project.yaml").read_bytes(), source="project.yaml")
    assert isinstance(manifest, dict)
    return manifest


def check_body() -> dict[str, object]:
    app = yamlsafe.load_one((ROOT / "config/examples/app.yaml").read_bytes(), source="app.yaml")
    docs = yamlsafe.load_all((ROOT / "config/examples/manifests/guestbook/guestbook.yaml").read_bytes(),
                             source="guestbook.yaml")
    return {"project": "web", "apps": [app], "manifests": [d.data for d in docs if d.data], "sync": "manual"}


def setup(base: str, password: str) -> tuple[str, str]:
    """(admin session token, the ``web`` project's ``ci`` token)."""
    from api import client

    with client.Client(base) as anonymous:
        admin = anonymous.login("admin", password)
    with client.Client(base, token=admin) as api:
        api.post("/api/v1/projects", {"project": example_project()})
        minted = api.post("/api/v1/projects/web/roles/ci/token", {"description": "bench"})
    return admin, str(minted["token"])


def run_throughput(port: int, token: str, args: argparse.Namespace) -> dict[str, float]:
    noop = request_bytes("GET", "/healthz")
    check = request_bytes("POST", "/api/v1/admission/check", token=token, body=check_body())
    status, body = asyncio.run(call_once(port, check))
    if status != 200 or not json.loads(body)["allowed"]:
        raise SystemExit(f"the check request failed: {status} {body[:300]!r}")
    rates: dict[str, list[float]] = {"noop": [], "check": []}
    for _ in range(args.rounds):  # interleaved rounds: a busy neighbour on the machine hits both alike
        for name, raw in (("noop", noop), ("check", check)):
            rate, failed = asyncio.run(closed_loop(port, raw, total=args.requests, connections=args.connections))
            if failed:
                raise SystemExit(f"{failed} {name} requests failed")
            rates[name].append(rate)
    # the ratio of each round's pair, then the median of those: one noisy round moves neither figure much
    ratios = sorted(c / n for n, c in zip(rates["noop"], rates["check"], strict=True))
    return {"noop": statistics.median(rates["noop"]), "check": statistics.median(rates["check"]),
            "ratio": statistics.median(ratios), "ratio_min": ratios[0], "ratio_max": ratios[-1]}


def run_paced(port: int, token: str, args: argparse.Namespace) -> dict[str, float]:
    check = request_bytes("POST", "/api/v1/admission/check", token=token, body=check_body())
    asyncio.run(paced(port, check, rate=args.rate, seconds=0.5, pool=args.pool))  # warm-up
    latencies, failed = asyncio.run(paced(port, check, rate=args.rate, seconds=args.seconds, pool=args.pool))
    return {"count": len(latencies), "failed": failed, "p50": statistics.median(latencies),
            "p99": pct(latencies, 0.99), "max": max(latencies)}



def team_project(index: int) -> dict[str, object]:
    name = f"team-{index:03d}"
    manifest = example_project()
    manifest["metadata"] = {"name": name}
    spec = dict(manifest["spec"])  # type: ignore[call-overload]
    spec.pop("syncWindows", None)
    spec["sourceRepos"] = ["*"]
    spec["roles"] = [{"name": "ci", "policies": [f"p, proj:{name}:ci, applications, get, {name}/*, allow"]}]
    manifest["spec"] = spec
    return manifest


def team_app(index: int, projects: int) -> dict[str, object]:
    app = yamlsafe.load_one((ROOT / "config/examples/app.yaml").read_bytes(), source="app.yaml")
    assert isinstance(app, dict)
    app["metadata"] = {"name": f"app-{index:05d}", "namespace": app["metadata"]["namespace"]}
    app["spec"]["project"] = f"team-{index % projects:03d}"
    app["spec"]["destination"]["namespace"] = f"web-{index:05d}"
    app["spec"].pop("syncPolicy", None)  # nothing to reconcile on its own while the listing is measured
    app["spec"]["source"]["repoURL"] = f"file:///nonexistent/bench/{index % 50}.git"  # loopback only: no fetch
    return app


async def post_all(port: int, token: str, path: str, bodies: list[dict[str, object]], connections: int) -> int:
    """POST every body (``connections`` at a time); the number that failed."""
    conns = [await Conn.open(port) for _ in range(connections)]
    pending = list(reversed(bodies))
    failed = [0]

    async def worker(conn: Conn) -> None:
        while pending:
            status, body = await conn.call(request_bytes("POST", path, token=token, body=pending.pop()))
            if status != 200:
                failed[0] += 1
                if failed[0] == 1:
                    print(f"first failure of {path}: {status} {body[:300]!r}", file=sys.stderr)

    await asyncio.gather(*(worker(c) for c in conns))
    for c in conns:
        c.close()
    return failed[0]


async def timed_gets(port: int, raw: bytes, count: int) -> tuple[list[float], int, int]:
    """``count`` sequential requests on one connection: latencies (ms), items in the last answer, failures."""
    conn = await Conn.open(port)
    latencies: list[float] = []
    items, failed = 0, 0
    try:
        for _ in range(count):
            start = time.perf_counter()
            status, body = await conn.call(raw)
            latencies.append((time.perf_counter() - start) * 1000)
            if status != 200:
                failed += 1
            else:
                items = len(json.loads(body)["items"])
    finally:
        conn.close()
    return latencies, items, failed


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_idle(pid: int, *, limit: float, window: float = 1.0, busy: float = 0.1) -> float:
    """Seconds until the server used under ``busy`` of a core for a ``window``; -1 if not within ``limit``."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        before = cpu_seconds(pid)
        time.sleep(window)
        if cpu_seconds(pid) - before < busy * window:
            return time.perf_counter() - started
    return -1.0


def run_listing(base: str, port: int, admin: str, pid: int, args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """Rows of the results table for the listing measurement (or why it could not run)."""
    status, body = asyncio.run(call_once(port, request_bytes("GET", "/api/v1/applications", token=admin)))
    if status != 200:
        reason = json.loads(body).get("message", "") if body.startswith(b"{") else body[:80].decode()
        return [("list apps visible to one user", "not measured", f"GET /api/v1/applications: {status} {reason}")]
    from api import client

    with client.Client(base, token=admin) as api:
        for i in range(args.projects):
            api.post("/api/v1/projects", {"project": team_project(i)})
        viewer = str(api.post("/api/v1/projects/team-000/roles/ci/token", {"description": "bench"})["token"])
    started = time.perf_counter()
    bodies: list[dict[str, object]] = [{"application": team_app(i, args.projects)} for i in range(args.apps)]
    failed = asyncio.run(post_all(port, admin, "/api/v1/applications", bodies, connections=8))
    created = time.perf_counter() - started
    if failed:
        return [("list apps visible to one user", "not measured", f"{failed} of {args.apps} app creates failed")]
    rows = [(f"setup: {args.apps:,} apps in {args.projects} projects", f"{created:.1f} s", "")]
    # The reconciler compares every new app once (each fails fast: its repository does not exist); the listing is
    # measured after that catch-up, as a user meets it in steady state.
    settled = wait_idle(pid, limit=args.settle)
    rows.append(("  server idle again after", f"{settled:.1f} s" if settled >= 0 else "not idle", ""))
    for who, token in (("one project's user", viewer), ("admin (every app)", admin)):
        raw = request_bytes("GET", "/api/v1/applications", token=token)
        asyncio.run(timed_gets(port, raw, 3))  # warm-up
        latencies, items, errors = asyncio.run(timed_gets(port, raw, args.lists))
        target = f"<= 100 ms {'OK' if pct(latencies, 0.99) <= 100 else 'MISSED'}" if token is viewer else "(info)"
        rows.append((f"list apps as {who}: {items:,} items", f"p50 {statistics.median(latencies):.1f} ms", ""))
        rows.append(("", f"p99 {pct(latencies, 0.99):.1f} ms, {errors} failed", target))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=3000, help="requests per throughput round")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved no-op/check rounds (median)")
    parser.add_argument("--settle", type=float, default=120.0,
                        help="at most this many seconds to wait for the server to go idle before the listing")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (throughput)")
    parser.add_argument("--rate", type=float, default=1000.0, help="paced requests per second")
    parser.add_argument("--seconds", type=float, default=5.0, help="paced run length")
    parser.add_argument("--pool", type=int, default=64, help="connections available to the paced run")
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--apps", type=int, default=4500)
    parser.add_argument("--lists", type=int, default=50, help="list requests measured")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sw-bench-") as tmp, server(Path(tmp)) as srv:
        base = f"http://127.0.0.1:{srv.port}"
        admin, ci_token = setup(base, srv.admin_password)
        rates = run_throughput(srv.port, ci_token, args)
        lat = run_paced(srv.port, ci_token, args)
        listing = run_listing(base, srv.port, admin, srv.proc.pid, args)
    ratio = rates["ratio"]
    rows = [
        ("no-op GET /healthz (median)", f"{rates['noop']:,.0f} req/s", "baseline"),
        ("POST /api/v1/admission/check (median)", f"{rates['check']:,.0f} req/s", ""),
        (f"  check / no-op, median of {args.rounds} rounds", f"{ratio:.1%}",
         f">= 85% {'OK' if ratio >= 0.85 else 'MISSED'}"),
        ("  (lowest, highest round)", f"{rates['ratio_min']:.1%}, {rates['ratio_max']:.1%}", ""),
        (f"check paced at {args.rate:,.0f}/s, {lat['count']:.0f} req", f"p50 {lat['p50']:.1f} ms", ""),
        ("", f"p99 {lat['p99']:.1f} ms", f"<= 10 ms {'OK' if lat['p99'] <= 10 else 'MISSED'}"),
        ("", f"max {lat['max']:.1f} ms, {lat['failed']:.0f} failed", ""),
        *listing,
    ]
    print(f"{'measurement':<42} {'figure':<28} target")
    for name, figure, target in rows:
        print(f"{name:<42} {figure:<28} {target}")


if __name__ == "__main__":
    main()
