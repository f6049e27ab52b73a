"""Client-side request rate limiting for one cluster: a token bucket, like client-go's QPS/Burst.

Who calls it: :class:`sync.kube.KubeCluster` takes a token before every API request, so a reconciler
syncing many apps cannot flood an API server (Argo CD's controller runs with QPS 50 / burst 100).
The clock and the sleep are parameters, so tests drive it with a fake clock and never wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["TokenBucket"]


class TokenBucket:
    """``qps`` tokens per second refill a bucket holding at most ``burst``; ``acquire`` waits for one.

    ``qps <= 0`` disables limiting (every ``acquire`` returns at once). Thread-safe: the cache's
    watcher threads and the engine share one bucket per cluster.
    """

    def __init__(
        self,
        qps: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if qps > 0 and burst < 1:
            raise ValueError(f"burst must be at least 1 when qps is set (got {burst})")
        self.qps = qps
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0
        """Total time callers spent waiting for a token (a figure for benchmarks and metrics)."""

    def _reserve(self) -> float:
        """Take a token now (possibly going into debt) and return how long the caller must wait."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
            self._last = now
            self._tokens -= 1.0
            if self._tokens >= 0:
                return 0.0
            return -self._tokens / self.qps

    def acquire(self) -> float:
        """Block until a request may be sent; returns the seconds waited."""
        if self.qps <= 0:
            return 0.0
        wait = self._reserve()
        if wait > 0:
            self._sleep(wait)
            with self._lock:
                self.waited_seconds += wait
        return wait
