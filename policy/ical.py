"""iCalendar (RFC 5545) export of a freeze calendar: one VEVENT per open period of a sync window.

Who calls: ``syncwarden proj windows --ics`` (and, later, the API), so release managers can subscribe to the
change freezes in their calendar. Pure: events and the stamp time come in as values; the output is text.

What RFC 5545 asks for and this does: CRLF line endings; content lines folded at 75 octets (UTF-8, never inside
a character) with CRLF + one space; TEXT values escaped (backslash, semicolon, comma, newline); UTC date-times
(``20261122T210000Z``); every VEVENT has UID, DTSTAMP, DTSTART and DTEND. UIDs are stable: derived from the
window's identity and the occurrence start, so re-exporting updates events instead of duplicating them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["CalendarEvent", "calendar", "escape_text", "fold_line", "stable_uid"]

_PRODID = "-//syncwarden//sync windows//EN"
_FOLD_OCTETS = 75


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    uid: str
    start: datetime
    end: datetime
    summary: str
    description: str = ""
    categories: tuple[str, ...] = ()


def escape_text(value: str) -> str:
    """RFC 5545 §3.3.11 TEXT escaping."""
    return (
        value.replace("\\", "\\\\")
        .replace(";", "\\;")
        .replace(",", "\\,")
        .replace("\r\n", "\\n")
        .replace("\n", "\\n")
        .replace("\r", "\\n")
    )


def fold_line(line: str) -> str:
    """Fold one content line at 75 octets (continuations start with a space, which counts in their 75).

    Never splits a UTF-8 character, nor a backslash escape from the character it escapes (legal, but some
    readers get it wrong).
    """
    if len(line.encode("utf-8")) <= _FOLD_OCTETS:
        return line
    units: list[str] = []
    i = 0
    while i < len(line):
        step = 2 if line[i] == "\\" and i + 1 < len(line) else 1
        units.append(line[i : i + step])
        i += step
    parts: list[str] = []
    current: list[str] = []
    size, limit = 0, _FOLD_OCTETS
    for unit in units:
        width = len(unit.encode("utf-8"))
        if size + width > limit:
            parts.append("".join(current))
            current, size, limit = [], 0, _FOLD_OCTETS - 1
        current.append(unit)
        size += width
    parts.append("".join(current))
    return "\r\n ".join(parts)


def stable_uid(*identity: object, start: datetime) -> str:
    """A UID that stays the same for the same window and occurrence across exports."""
    digest = hashlib.sha256(repr(identity).encode("utf-8")).hexdigest()[:16]
    return f"{digest}-{_stamp(start)}@syncwarden"


def _stamp(value: datetime) -> str:
    if value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: pass a timezone-aware time")
    return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def calendar(events: Iterable[CalendarEvent], *, stamp: datetime, name: str = "") -> str:
    """The whole VCALENDAR text. ``stamp`` is the DTSTAMP of every event (when the export was made)."""
    lines: list[str] = ["BEGIN:VCALENDAR", "VERSION:2.0", f"PRODID:{_PRODID}", "CALSCALE:GREGORIAN"]
    if name:
        lines.append(f"X-WR-CALNAME:{escape_text(name)}")
    for event in events:
        lines.extend(_event(event, stamp))
    lines.append("END:VCALENDAR")
    return "".join(fold_line(line) + "\r\n" for line in lines)


def _event(event: CalendarEvent, stamp: datetime) -> Sequence[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{_stamp(stamp)}",
        f"DTSTART:{_stamp(event.start)}",
        f"DTEND:{_stamp(event.end)}",
        f"SUMMARY:{escape_text(event.summary)}",
    ]
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    if event.categories:
        lines.append("CATEGORIES:" + ",".join(escape_text(c) for c in event.categories))
    lines.append("TRANSP:OPAQUE")
    lines.append("END:VEVENT")
    return lines
