"""What the local-mode ``syncwarden app`` commands share: opening the running system in this process
(:func:`api.wiring.build_services` on the local database and a kubeconfig context), finding an app by name,
and turning domain errors into messages and exit codes.

Who calls it: :mod:`api.cli.app_ops` and :mod:`api.cli.app_sync`. The local operator owns the database (as
with ``syncwarden proj``), so the command line acts as ``local:<user>`` bound to ``role:admin``; project rules,
sync windows and explicit RBAC denies still apply, and every operation is audited under that subject.
The CLI runs with the user's own rights, so local and ``file://`` repositories are allowed.

Exit codes: 2 for invalid input (unknown app, bad file, bad kubeconfig or context, a request the app's state
does not allow), 3 when the database, the audit log or the cluster is unavailable (retryable).
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from api.cli.common import EXIT_INVALID, EXIT_RETRY, fail
from api.cli.local_store import local_settings
from api.wiring import Services, build_services
from policy import audit, tokens
from sync.appservice import InvalidAppRequest, OperationWaitTimeout
from sync.cluster import ClusterError, Unavailable
from sync.models import InvalidApplication
from sync.render import RenderError
from sync.store import AppExists, AppNotFound, OperationInProgress, StoreError

__all__ = ["ContextOpt", "KubeconfigOpt", "audit_context", "cli_subject", "local_services", "now", "resolve"]

KubeconfigOpt = Annotated[
    Path | None, typer.Option("--kubeconfig", help="Kubeconfig file (default: $KUBECONFIG or ~/.kube/config).")
]
ContextOpt = Annotated[str | None, typer.Option("--context", help="Kubeconfig context (default: current-context).")]


def now() -> datetime:
    return datetime.now(UTC)


def audit_context() -> audit.AuditContext:
    return audit.AuditContext(subject=cli_subject(), client="cli")


def cli_subject() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown"
    return f"local:{user}"


@contextmanager
def local_services(kubeconfig: Path | None, context: str | None) -> Iterator[Services]:
    """The system wired in this process; every failure inside becomes an ``error:`` line and an exit code."""
    settings = local_settings()
    try:
        services = build_services(
            settings,
            kubeconfig=[kubeconfig] if kubeconfig is not None else None,
            context=context,
            client="cli",
            admin_subjects=[cli_subject()],
            allow_file_urls=True,
            owner=f"{cli_subject()}@{socket.gethostname()}",  # an interrupted command's lease is ours to resume
        )
    except tokens.SigningKeyError as exc:
        fail(str(exc))
    except ClusterError as exc:
        fail(str(exc), EXIT_RETRY if isinstance(exc, Unavailable) else EXIT_INVALID)
    except ValueError as exc:
        fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        fail(f"the database is unavailable ({type(exc).__name__}); try again", EXIT_RETRY)
    try:
        yield services
    except (AppNotFound, AppExists, InvalidAppRequest, InvalidApplication) as exc:
        fail(str(exc))
    except OperationInProgress as exc:
        fail(f"{exc}; wait for it to finish or terminate it", EXIT_RETRY)
    except OperationWaitTimeout as exc:
        fail(str(exc), EXIT_RETRY)
    except StoreError as exc:
        fail(str(exc))
    except RenderError as exc:
        fail(str(exc), EXIT_RETRY if exc.retryable else EXIT_INVALID)
    except audit.AuditUnavailable as exc:
        fail(f"refused: {exc}", EXIT_RETRY)
    except Unavailable as exc:
        fail(f"the cluster is unavailable: {exc}", EXIT_RETRY)
    except ClusterError as exc:
        fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        fail(f"the database is unavailable ({type(exc).__name__}); try again", EXIT_RETRY)
    except ValueError as exc:  # any other invalid input or stored state, named by its message
        fail(str(exc))
    finally:
        services.close()


def resolve(services: Services, ref: str) -> tuple[str, str]:
    """``NAMESPACE/NAME`` or ``NAME`` (unique across namespaces) → (namespace, name); exit 2 otherwise."""
    if "/" in ref:
        namespace, _, name = ref.partition("/")
        services.apps.store.apps.get(namespace, name)
        return namespace, name
    matches = [a for a in services.apps.list() if a.name == ref]
    if not matches:
        fail(f"application {ref!r} not found")
    if len(matches) > 1:
        names = ", ".join(f"{a.namespace}/{a.name}" for a in matches)
        fail(f"application name {ref!r} is ambiguous ({names}); use NAMESPACE/NAME")
    return matches[0].namespace, matches[0].name
