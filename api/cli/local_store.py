"""Opening the local policy store for a CLI command: settings, signing key, database, and the mapping of
store failures onto exit codes. Used by ``syncwarden proj`` and ``syncwarden audit``.

Exit codes: 2 for bad configuration (e.g. a signing key shorter than 32 bytes, an unsupported database
URL), 3 when the database or the audit log cannot be reached (retryable). Messages never include the
database URL (it may hold a password) or SQL parameters.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from api.cli.common import EXIT_RETRY, fail
from config.settings import Settings, load_settings
from policy import audit, tokens
from policy.store import Store, open_store

__all__ = ["cli_context", "local_settings", "local_store", "signing_keys"]


def local_settings() -> Settings:
    try:
        return load_settings()
    except ValueError as exc:
        fail(f"invalid settings: {exc}")


def _keyring(settings: Settings) -> tokens.KeyRing:
    secret = settings.policy.signing_key.get_secret_value() if settings.policy.signing_key else None
    try:
        return tokens.load_keyring(signing_key=secret, data_dir=settings.data_dir)
    except tokens.SigningKeyError as exc:
        fail(str(exc))


def signing_keys(store: Store) -> list[bytes]:
    """Every key a checkpoint may have been signed with: the current one and the retired ones."""
    return [store.keyring.current.secret, *(k.secret for k in store.keyring.retired)]


@contextmanager
def local_store() -> Iterator[Store]:
    """The store of the local database (``SYNCWARDEN_DATABASE_URL`` or SQLite in the data directory)."""
    settings = local_settings()
    keyring = _keyring(settings)
    try:
        store = open_store(
            settings.database_url(),
            keyring=keyring,
            issuer=settings.policy.token_issuer,
            audience=settings.policy.token_audience,
            pool_size=settings.database.pool_size,
        )
    except ValueError as exc:
        fail(str(exc))
    except sa.exc.SQLAlchemyError as exc:
        fail(f"the database is unavailable ({type(exc).__name__}); try again", EXIT_RETRY)
    try:
        yield store
    except audit.AuditUnavailable as exc:
        fail(f"refused: {exc}", EXIT_RETRY)
    except sa.exc.SQLAlchemyError as exc:
        fail(f"the database is unavailable ({type(exc).__name__}); try again", EXIT_RETRY)
    finally:
        store.close()


def cli_context() -> audit.AuditContext:
    """Who is acting from this command line: the local OS user, marked as such."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = "unknown"
    return audit.AuditContext(subject=f"local:{user}", client="cli", request_id=uuid.uuid4().hex)
