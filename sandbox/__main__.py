"""``python -m sandbox --port P --state FILE``: serve a sandbox until interrupted (Ctrl-C or SIGTERM).

A standalone entry point without the syncwarden CLI, for tests that need the sandbox in another
process (restarts with ``--state``) and for running it by hand.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sandbox import StateFileError, start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description="Serve a Kubernetes API emulator.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8001, help="port to listen on (default 8001; 0 picks one)")
    parser.add_argument("--state", type=Path, default=None, help="keep objects in this file across restarts")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="also write a kubeconfig here")
    args = parser.parse_args(argv)
    try:
        sandbox = start(host=args.host, port=args.port, state_file=args.state)
    except StateFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    done = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if args.kubeconfig is not None:
        sandbox.write_kubeconfig(args.kubeconfig)
    print(f"sandbox serving at {sandbox.url}", flush=True)
    try:
        done.wait()
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
