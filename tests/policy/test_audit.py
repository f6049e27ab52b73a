"""policy.audit (pure): redaction, sealing, the hash chain and its verification, checkpoints.

Covered: secret keys, Secret data/stringData, user:pass URLs, bearer headers and JWT-shaped strings are
masked without mutating the input; records link by prev_hash; verify names the first bad record after an
edit, a deletion, a swap, a truncation (against a signed checkpoint); checkpoint signatures; time never
goes backwards along the chain; a retention anchor lets a chain start after seq 1.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from policy import audit, audit_verify
from policy.decision import Decision, Violation

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = b"k" * 32
CTX = audit.AuditContext(subject="alice", token_id="jti-1", client="10.0.0.1", request_id="req-1")


def chain(n: int, *, start: int = 1, prev: str = audit.GENESIS_HASH) -> list[audit.AuditRecord]:
    records = []
    for i in range(n):
        event = audit.AuditEvent.create(
            ctx=CTX, time=T0 + timedelta(seconds=i), action="app.sync", result="ok", project="web", app=f"a{i}"
        )
        record = audit.AuditRecord.seal(event, seq=start + i, prev_hash=prev)
        records.append(record)
        prev = record.hash
    return records


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"password": "hunter2", "user": "bob"}, {"password": "***", "user": "bob"}, id="password"),
        pytest.param({"Authorization": "Bearer abc"}, {"Authorization": "***"}, id="authorization"),
        pytest.param({"apiToken": "x", "client_secret": "y"}, {"apiToken": "***", "client_secret": "***"}, id="token"),
        pytest.param({"sshPrivateKey": "-----BEGIN"}, {"sshPrivateKey": "***"}, id="key-suffix"),
        pytest.param(
            {"kind": "Secret", "data": {"a": "c2VjcmV0"}, "stringData": {"b": "plain"}, "type": "Opaque"},
            {"kind": "Secret", "data": {"a": "***"}, "stringData": {"b": "***"}, "type": "Opaque"},
            id="secret-object",
        ),
        pytest.param(
            {"repo": "https://bob:s3cret@git.example/org/app.git"},
            {"repo": "https://bob:***@git.example/org/app.git"},
            id="url-userinfo",
        ),
        pytest.param({"note": "header was Bearer abc.def"}, {"note": "header was Bearer ***"}, id="bearer-text"),
        pytest.param(
            {"list": [{"token": "t"}, "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"]},
            {"list": [{"token": "***"}, "***"]},
            id="nested-and-jwt",
        ),
        pytest.param(
            {"kind": "ConfigMap", "data": {"a": "b"}}, {"kind": "ConfigMap", "data": {"a": "b"}}, id="cm-kept"
        ),
    ],
)
def test_redact_masks_secrets(value: dict[str, object], expected: dict[str, object]) -> None:
    before = repr(value)
    assert audit.redact(value) == expected
    assert repr(value) == before  # input untouched


def test_event_create_redacts_details_and_keeps_actor() -> None:
    event = audit.AuditEvent.create(
        ctx=CTX, time=T0, action="project.update", result="ok", project="web", details={"secret": "x", "n": 1}
    )
    assert event.details == {"secret": "***", "n": 1}
    assert (event.subject, event.token_id, event.client, event.request_id) == ("alice", "jti-1", "10.0.0.1", "req-1")


def test_event_from_decision_records_violations() -> None:
    denied = Decision.deny(Violation("destination.not-permitted", "namespace 'prod' is not allowed", "spec", "web"))
    event = audit.AuditEvent.from_decision(denied, ctx=CTX, time=T0, action="app.sync", project="web", app="a")
    assert event.result == "denied"
    assert event.violations[0]["code"] == "destination.not-permitted"
    assert (
        audit.AuditEvent.from_decision(Decision.allow("p, x"), ctx=CTX, time=T0, action="app.sync").result == "allowed"
    )


def test_records_link_and_verify() -> None:
    records = chain(5)
    assert records[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(records))
    result = audit_verify.verify_chain(records)
    assert result.ok and result.checked == 5 and result.last_seq == 5


def test_naive_time_is_refused() -> None:
    event = audit.AuditEvent(time=datetime(2026, 1, 1), action="x", result="ok")
    with pytest.raises(ValueError, match="timezone-aware"):
        audit.prepare(event)


def test_edit_is_named() -> None:
    records = chain(5)
    records[2] = records[2]._replace(result="denied")
    result = audit_verify.verify_chain(records)
    assert not result.ok and result.bad_seq == 3 and "modified" in result.reason


def test_deletion_is_named() -> None:
    records = chain(5)
    del records[1]
    result = audit_verify.verify_chain(records)
    assert not result.ok and result.bad_seq == 2 and "missing" in result.reason


def test_deletion_with_renumbering_is_named() -> None:
    records = chain(5)
    del records[1]
    records = [r._replace(seq=i + 1) for i, r in enumerate(records)]
    result = audit_verify.verify_chain(records)
    assert not result.ok and result.bad_seq == 2


def test_swap_is_named() -> None:
    records = chain(5)
    records[1], records[2] = records[2]._replace(seq=2), records[1]._replace(seq=3)
    result = audit_verify.verify_chain(records)
    assert not result.ok and result.bad_seq == 2


def test_truncation_needs_a_checkpoint() -> None:
    records = chain(5)
    point = audit_verify.sign_checkpoint(audit_verify.Checkpoint(seq=5, hash=records[4].hash), key=KEY)
    assert audit_verify.verify_chain(records[:3]).ok  # without a checkpoint a clean cut is invisible
    result = audit_verify.verify_chain(records[:3], checkpoints=[point])
    assert not result.ok and result.bad_seq == 4 and "truncated" in result.reason


def test_rewritten_tail_fails_the_checkpoint() -> None:
    records = chain(5)
    point = audit_verify.Checkpoint(seq=5, hash=records[4].hash)
    forged = records[:4] + chain(1, start=5, prev=records[3].hash)
    forged[4] = audit.AuditRecord.seal(
        audit.AuditEvent(time=T0, action="other", result="ok"), seq=5, prev_hash=records[3].hash
    )
    result = audit_verify.verify_chain(forged, checkpoints=[point])
    assert not result.ok and result.bad_seq == 5 and "checkpoint" in result.reason


def test_checkpoint_signature_round_trip_and_forgery() -> None:
    point = audit_verify.sign_checkpoint(audit_verify.Checkpoint(seq=7, hash="a" * 64), key=KEY)
    assert audit_verify.Checkpoint.from_dict(point.to_dict(), keys=[b"other" * 8, KEY]) == point
    with pytest.raises(audit_verify.InvalidCheckpoint, match="signature"):
        audit_verify.Checkpoint.from_dict({**point.to_dict(), "seq": 8}, keys=[KEY])
    with pytest.raises(audit_verify.InvalidCheckpoint, match="cp.json: hash"):
        audit_verify.Checkpoint.from_dict({**point.to_dict(), "hash": "zz"}, keys=[KEY], source="cp.json")
    with pytest.raises(audit_verify.InvalidCheckpoint, match="mapping"):
        audit_verify.Checkpoint.from_dict([1, 2], keys=[KEY])


def test_time_never_goes_backwards_along_the_chain() -> None:
    first = audit.AuditRecord.seal(
        audit.AuditEvent(time=T0, action="a", result="ok"), seq=1, prev_hash=audit.GENESIS_HASH
    )
    late = audit.AuditEvent(time=T0 - timedelta(seconds=5), action="b", result="ok")
    second = audit.AuditRecord.seal(late, seq=2, prev_hash=first.hash, min_time_us=first.time_us)
    assert second.time == first.time == T0


def test_anchor_starts_a_retained_chain() -> None:
    records = chain(6)
    kept = records[3:]
    anchor = audit_verify.Checkpoint(seq=4, hash=kept[0].prev_hash, kind="anchor")
    assert audit_verify.verify_chain(kept, anchor=anchor).ok
    result = audit_verify.verify_chain(kept[1:], anchor=anchor)
    assert not result.ok and result.bad_seq == 4


def test_export_form_has_actor_target_and_utc_time() -> None:
    record = chain(1)[0]
    data = record.to_dict()
    assert data["time"] == "2026-03-01T12:00:00.000000Z"
    assert data["actor"] == {"subject": "alice", "token_id": "jti-1", "client": "10.0.0.1"}
    assert data["target"]["project"] == "web"
    assert data["hash"] == audit.chain_hash(record)
