"""policy.ical: the iCalendar text of the freeze calendar (RFC 5545).

Aspects covered: TEXT escaping; folding at 75 octets without splitting a UTF-8 character or an escape; CRLF line
ends; UTC date-times; required VEVENT properties; stable UIDs; naive datetimes refused.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from policy import ical

START = datetime(2026, 11, 20, 21, 0, tzinfo=UTC)


def test_escaping() -> None:
    assert ical.escape_text("a;b,c\\d\ne\r\nf") == "a\\;b\\,c\\\\d\\ne\\nf"


@pytest.mark.parametrize("filler", ["a", "é", "€", "😀"])
def test_folding_respects_octets_and_characters(filler: str) -> None:
    line = "DESCRIPTION:" + filler * 200 + "\\n" + filler * 30
    folded = ical.fold_line(line)
    parts = folded.split("\r\n")
    assert all(len(p.encode("utf-8")) <= 75 for p in parts)
    assert all(p.startswith(" ") for p in parts[1:])
    assert "".join(p[1:] if i else p for i, p in enumerate(parts)) == line  # unfolding gives the line back
    assert not any(p.endswith("\\") for p in parts)  # an escape is never split


def test_short_lines_are_not_folded() -> None:
    assert ical.fold_line("SUMMARY:x") == "SUMMARY:x"


def test_calendar_text() -> None:
    event = ical.CalendarEvent(
        uid=ical.stable_uid("web", "deny", start=START),
        start=START.astimezone(timezone(timedelta(hours=1))),
        end=START + timedelta(hours=1),
        summary="Sync freeze: web, prod",
        description="line one\nline two",
        categories=("deny",),
    )
    text = ical.calendar([event], stamp=START - timedelta(minutes=5), name="web sync windows")
    lines = text.split("\r\n")
    assert lines[:4] == [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//syncwarden//sync windows//EN",
        "CALSCALE:GREGORIAN",
    ]
    assert text.endswith("END:VCALENDAR\r\n") and "\n" not in text.replace("\r\n", "")
    assert "DTSTART:20261120T210000Z" in lines  # converted to UTC
    assert "DTEND:20261120T220000Z" in lines
    assert "DTSTAMP:20261120T205500Z" in lines
    assert "SUMMARY:Sync freeze: web\\, prod" in lines
    assert "DESCRIPTION:line one\\nline two" in lines
    assert "CATEGORIES:deny" in lines
    assert "X-WR-CALNAME:web sync windows" in lines


def test_uids_are_stable_and_distinct() -> None:
    assert ical.stable_uid("web", 0, start=START) == ical.stable_uid("web", 0, start=START)
    assert ical.stable_uid("web", 0, start=START) != ical.stable_uid("web", 1, start=START)
    assert ical.stable_uid("web", 0, start=START) != ical.stable_uid("web", 0, start=START + timedelta(days=1))
    assert ical.stable_uid("web", 0, start=START).endswith("-20261120T210000Z@syncwarden")


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        ical.stable_uid("web", start=datetime(2026, 1, 1))
