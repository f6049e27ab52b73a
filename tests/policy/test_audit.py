"""policy.audit (pure): redaction, sealing, the hash chain and its verification, checkpoints.

Covered: secret keys, Secret data/stringData, user:pass URLs, bearer headers and JWT-shaped strings are
masked without mutating the input; records link by prev_hash; verify names the first bad record after an
edit, a deletion, a swap, a truncation (against a signed checkpoint); checkpoint signatures; time never
goes backwards along the chain; a retention anchor lets a chain start after seq 1.
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
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


TRICKY = ['quote " and \\ backslash', "ctrl \x00\x01\x1f\t\n", "é ü 日本 😀", "line\u2028sep", "</script>", ""]


@pytest.mark.parametrize("text", TRICKY)
def test_canonical_form_is_compact_json_without_ascii_escaping(text: str) -> None:
    event = audit.AuditEvent(
        time=T0,
        action=text,
        result="ok",
        subject=text,
        project=text,
        object=text,
        details={"z": text, "a": [1.5, None]},
    )
    record = audit.AuditRecord.seal(event, seq=3, prev_hash="f" * 64)
    fields = [record.seq, record.time_us, *record[2:14]]
    expected = json.dumps(["syncwarden-audit-v1", *fields], ensure_ascii=False, separators=(",", ":"))
    assert audit.canonical_bytes(record) == expected.encode()
    assert record.hash == hashlib.sha256(expected.encode()).hexdigest()
    assert record.details_json == json.dumps(
        {"a": [1.5, None], "z": text}, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    )
    assert audit_verify.verify_chain([record], anchor=audit_verify.Checkpoint(3, "f" * 64, "anchor")).ok


@pytest.mark.parametrize(
    ("details", "error"),
    [
        pytest.param({"x": float("nan")}, ValueError, id="nan"),
        pytest.param({"x": {1, 2}}, TypeError, id="set"),
        pytest.param({"x": object()}, TypeError, id="object"),
    ],
)
def test_details_that_json_cannot_hold_are_refused(details: dict[str, object], error: type[Exception]) -> None:
    with pytest.raises(error):
        audit.prepare(audit.AuditEvent(time=T0, action="a", result="ok", details=details))


def test_circular_details_are_refused() -> None:
    loop: dict[str, object] = {}
    loop["self"] = loop
    with pytest.raises(ValueError, match="Circular"):
        audit.prepare(audit.AuditEvent(time=T0, action="a", result="ok", details=loop))


def test_non_string_field_is_refused() -> None:
    with pytest.raises(TypeError, match="must be strings"):
        audit.prepare(audit.AuditEvent(time=T0, action="a", result="ok", project=5))  # type: ignore[arg-type]


def test_seal_all_is_the_chain_of_single_seals() -> None:
    events = [
        audit.AuditEvent(time=T0 + timedelta(seconds=s), action=f"a{i}", result="ok")
        for i, s in enumerate([3, 1, 4, 1, 5])
    ]
    prepared = [audit.prepare(e) for e in events]
    sealed = audit.seal_all(prepared, seq=10, prev_hash="e" * 64, min_time_us=audit.micros(T0 + timedelta(seconds=2)))
    prev, last = "e" * 64, audit.micros(T0 + timedelta(seconds=2))
    for i, event in enumerate(events):
        one = audit.AuditRecord.seal(event, seq=11 + i, prev_hash=prev, min_time_us=last)
        assert sealed[i] == one
        prev, last = one.hash, one.time_us
    assert [r.seq for r in sealed] == [11, 12, 13, 14, 15]
    assert [r.time_us for r in sealed] == sorted(r.time_us for r in sealed)  # clamped, never backwards
    assert audit.seal_all([], seq=1, prev_hash=prev) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("AUTHORIZATION: BEARER abc.def", "AUTHORIZATION: BEARER ***", id="upper-bearer"),
        pytest.param("basic Zm9vOmJhcg==", "basic ***", id="lower-basic"),
        pytest.param("mail bob@example.com", "mail bob@example.com", id="at-without-password"),
        pytest.param("git://u:p@h/r", "git://u:***@h/r", id="url"),
        pytest.param("plain words", "plain words", id="clean"),
    ],
)
def test_redact_text_fast_path_keeps_every_mask(text: str, expected: str) -> None:
    assert audit.redact_text(text) == expected
    assert audit.redact({"note": text, "apiKey": "k"}) == {"note": expected, "apiKey": "***"}


def test_string_enum_fields_are_recorded_as_plain_text() -> None:
    class Result(enum.StrEnum):
        OK = "ok"

    class Action(str, enum.Enum):  # str() of this one would be "Action.SYNC"
        SYNC = "app.sync"

    record = audit.AuditRecord.seal(
        audit.AuditEvent(time=T0, action=Action.SYNC, result=Result.OK), seq=1, prev_hash=audit.GENESIS_HASH
    )
    assert (type(record.action), record.action, type(record.result), record.result) == (str, "app.sync", str, "ok")
    assert audit.chain_hash(record) == record.hash
