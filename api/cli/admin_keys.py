"""``syncwarden admin signing-key rotate``: a new signing key for project tokens, the old one kept for a grace.

Who calls: :mod:`api.cli.admin` registers it. It works on the data directory and the database of this machine's
settings, like ``audit retain``: run it with the server's settings.

What it does, in this order:

1. refuses (exit 2) when the key is configured (``SYNCWARDEN_SIGNING_KEY`` or ``policy.signing_key``): such a
   key is one value without a retired companion, so this command cannot rotate it; the message says what an
   operator does instead;
2. opens the database (exit 3 when it is unavailable: nothing has changed yet);
3. rotates ``<data dir>/signing-keys.json`` (:func:`policy.tokens.rotate_key_file`): the new key signs from now
   on, the old one verifies tokens until ``now + --grace``, retired keys whose grace ended are dropped;
4. signs the audit retention anchor again with the new key when one of the keys of before signed it, so ``audit
   verify`` stays green after the old key is dropped (an anchor no known key signed is left alone, and said);
5. records ``signing-key.rotate`` in the audit log (key ids and times only, never a key).

Running servers that read the same key file sign with the new key within :data:`policy.tokens.RELOAD_SECONDS`
seconds; no restart is needed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import sqlalchemy as sa
import typer

from api.cli.common import EXIT_INVALID, EXIT_RETRY, Output, console, emit, err_console, fail
from api.cli.local_store import cli_context, local_settings, local_store
from policy import audit, tokens

__all__ = ["app", "rotate"]

app = typer.Typer(help="The signing key of project tokens (and of audit checkpoints).", no_args_is_help=True)

_ZERO = re.compile(r"\s*0+\s*[smhdw]?\s*")

CONFIGURED_KEY = (
    "the signing key is configured (SYNCWARDEN_SIGNING_KEY or policy.signing_key), so it comes from the "
    "environment and this command does not change it. A configured key is a single key: there is no retired key "
    "that keeps verifying during a grace period. To rotate it, set a new value of at least 32 bytes on every "
    "replica and restart them; every project token signed with the old value stops verifying at once (mint new "
    "ones with `syncwarden proj role create-token`), and audit checkpoints or a retention anchor signed with it "
    "no longer verify (export a new checkpoint; `audit retain` signs a new anchor). For rotation with a grace "
    "period, leave the key unset so it lives in the data directory's signing-keys.json (the server creates one "
    "on its next start; tokens signed with the configured key then stop verifying)."
)


def _grace(text: str) -> timedelta:
    if _ZERO.fullmatch(text):
        return timedelta(0)
    try:
        return tokens.parse_duration(text)
    except ValueError as exc:
        fail(f"--grace: {exc}")


def _stamp(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment is not None else ""


@app.command()
def rotate(
    grace: Annotated[str, typer.Option(
        "--grace", help="How long the old key keeps verifying tokens, e.g. 24h, 7d; 0 stops it at once.")] = "24h",
    output: Annotated[Output, typer.Option("-o", "--output", help="Output format.")] = Output.table,
) -> None:
    """Make a new key sign project tokens; the old one verifies until the grace period ends."""
    settings = local_settings()
    if settings.policy.signing_key is not None:
        fail(CONFIGURED_KEY, EXIT_INVALID)
    period = _grace(grace)
    path = settings.data_dir / tokens.KEY_FILE_NAME
    if not path.is_file():  # before opening the store: that would create a key file here
        fail(f"{path}: no signing key file to rotate (a server creates it on its first start); is "
             "SYNCWARDEN_DATA_DIR the server's data directory?")
    now = datetime.now(UTC).replace(microsecond=0)
    with local_store() as store:
        before_current, before_retired = store.keyring.keys()
        before = [before_current.secret, *(k.secret for k in before_retired)]
        try:
            ring = tokens.rotate_key_file(settings.data_dir, now=now, grace=period)
        except (tokens.SigningKeyError, ValueError) as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{path}: cannot write the rotated key file ({exc.strerror}); nothing changed", EXIT_RETRY)
        current, retired = ring.keys()
        report: dict[str, Any] = {
            "file": str(path),
            "kid": current.kid,
            "previousKid": before_current.kid,
            "previousVerifiesUntil": _stamp(now + period),
            "retired": [{"kid": k.kid, "verifiesUntil": _stamp(k.retire_at)} for k in retired],
        }
        try:
            report["anchor"] = store.audit.resign_anchor(keys=before, key=current.secret)
            store.audit.append(audit.AuditEvent.create(
                ctx=cli_context(), time=now, action="signing-key.rotate", result="ok",
                details={k: v for k, v in report.items() if k != "file"}))
        except (audit.AuditUnavailable, sa.exc.SQLAlchemyError) as exc:
            fail(f"the key was rotated (new key id {current.kid}), but the audit log could not be updated "
                 f"({type(exc).__name__}): the retention anchor may still be signed with the old key; rotating "
                 "again once the database is back signs it anew", EXIT_RETRY)
    if report["anchor"] == "unverified":
        err_console().print("warning: the audit retention anchor is signed by none of the known keys; it was left "
                            "as it is (`audit verify` reports it)", markup=False)
    if output is not Output.table:
        emit(report, output)
        return
    out = console()
    out.print(f"signing key rotated in {path}", markup=False)
    out.print(f"new key:  {current.kid} (signs from now on)", markup=False)
    when = "stopped verifying at once" if not period else f"verifies tokens until {report['previousVerifiesUntil']}"
    out.print(f"old key:  {before_current.kid} {when}", markup=False)
    for k in retired[1:]:
        out.print(f"retired:  {k.kid} verifies tokens until {_stamp(k.retire_at)}", markup=False)
    out.print(f"Servers reading this key file sign with the new key within {tokens.RELOAD_SECONDS:g}s; no restart "
              "is needed.", markup=False)
