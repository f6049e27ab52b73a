"""What every command shares: exit codes, output formats, and turning domain errors into messages.

Exit codes (DESIGN.md): 0 allowed/ok, 1 denied (or a check found mismatches), 2 invalid input or usage,
3 could not decide (retryable: the database or cluster was unreachable).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from enum import Enum
from typing import Any, NoReturn

import typer
from rich.console import Console

from config import yamlsafe

__all__ = [
    "EXIT_DENIED",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_RETRY",
    "Output",
    "console",
    "emit",
    "err_console",
    "fail",
    "parse_time",
]

EXIT_OK = 0
EXIT_DENIED = 1
EXIT_INVALID = 2
EXIT_RETRY = 3


class Output(str, Enum):
    table = "table"
    json = "json"
    yaml = "yaml"


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def emit(data: Any, fmt: Output | str) -> None:
    """Print machine output (json or yaml) to stdout."""
    value = fmt.value if isinstance(fmt, Output) else fmt
    if value == "json":
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
    elif value == "yaml":
        sys.stdout.write(yamlsafe.dump(data))
    else:
        raise ValueError(f"emit() handles json and yaml, not {value!r}")


def fail(message: str, code: int = EXIT_INVALID) -> NoReturn:
    """Print ``error: message`` to stderr and exit with ``code`` (2 by default: invalid input)."""
    err_console().print(f"error: {message}", markup=False)
    raise typer.Exit(code)


def parse_time(value: str, *, option: str = "--at", alternative: str = "") -> datetime:
    """RFC 3339 with an explicit offset or ``Z``; a naive time is ambiguous and refused (exit 2)."""
    try:
        parsed = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        also = f" nor {alternative}" if alternative else ""
        fail(f"{option} {value!r} is not an RFC 3339 time (e.g. 2026-11-20T17:30:00Z){also}")
    if parsed.tzinfo is None:
        fail(f"{option} {value!r} has no time zone offset; add Z or +01:00")
    return parsed.astimezone(UTC)
