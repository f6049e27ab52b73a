"""A small, bounded subset of jq path expressions, for ``ignoreDifferences.jqPathExpressions``.

Who calls this: :mod:`sync.compare_ignore` parses every expression of an app once (an expression outside the
subset is an ``InvalidSpecError`` naming it), and :mod:`sync.compare` deletes the matched fields from both the
desired and the live object before diffing, as Argo CD's ``del(<expr>)`` does (§1.12, §3.5);
:mod:`sync.ignore_respect` finds the same fields (:meth:`JqPath.paths`) to keep their live values on a sync.

Why a subset instead of jq: a jq interpreter is a native dependency, and jq programs can loop, so Argo CD
needs a timeout for them. The expressions people write for ignoreDifferences are paths, usually with a
``select`` to pick list items by name; this subset covers them and cannot run away: there are no loops or
recursion, so evaluation visits each field of the object at most once per stage, and expressions are short.

Grammar (whitespace allowed between tokens)::

    expr   := stage ( "|" stage )*
    stage  := path | "select(" path ( "==" | "!=" ) literal ")"
    path   := step+            (the first stage's path starts at the object; "." alone is not allowed there)
    step   := "." name | "." string | "[" "]" | "[" integer "]" | "[" string "]"     each optionally followed by "?"
    literal:= string | number | true | false | null

``.a`` on a non-object, an index out of range or a missing key match nothing (as jq's ``?`` would); a
``select`` on a missing field compares ``null``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_EXPRESSION_CHARS", "JqPath", "JqSyntaxError", "parse"]

#: longer expressions are refused (nothing legitimate comes close)
MAX_EXPRESSION_CHARS = 1024

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>"(?:[^"\\]|\\.)*")
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op>==|!=|\.|\[|\]|\?|\||\(|\))
    )""",
    re.VERBOSE,
)

Step = tuple[str, Any]  # ("key", str) | ("index", int) | ("iter", None)
Concrete = tuple[str | int, ...]


class JqSyntaxError(ValueError):
    """An expression outside the subset; ``position`` is the character where reading stopped."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at character {position}")
        self.position = position


@dataclass(frozen=True)
class _Select:
    path: tuple[Step, ...]
    equal: bool
    literal: Any


@dataclass(frozen=True)
class JqPath:
    text: str
    stages: tuple[tuple[Step, ...] | _Select, ...]

    def delete_from(self, obj: Any) -> Any:
        """``obj`` with every matched field removed (``obj`` is modified in place and returned)."""
        matches = sorted(self.paths(obj), key=_deletion_order, reverse=True)
        for path in matches:
            _delete(obj, path)
        return obj

    def paths(self, obj: Any) -> list[Concrete]:
        """The concrete paths (keys and list indexes) of every field the expression matches in ``obj``."""
        current: list[tuple[Concrete, Any]] = [((), obj)]
        for stage in self.stages:
            if isinstance(stage, _Select):
                current = [(p, v) for p, v in current if _test(v, stage)]
            else:
                current = list(_walk(current, stage))
        return [p for p, _ in current if p]


def _deletion_order(path: Concrete) -> tuple[Any, ...]:
    # delete list items from the highest index down, so earlier deletions do not shift later ones
    return tuple((1, p) if isinstance(p, int) else (0, p) for p in path)


def _walk(current: list[tuple[Concrete, Any]], steps: tuple[Step, ...]) -> Iterator[tuple[Concrete, Any]]:
    for step_kind, arg in steps:
        nxt: list[tuple[Concrete, Any]] = []
        for path, value in current:
            if step_kind == "key" and isinstance(value, dict) and arg in value:
                nxt.append(((*path, arg), value[arg]))
            elif step_kind == "index" and isinstance(value, list) and -len(value) <= arg < len(value):
                nxt.append(((*path, arg % len(value)), value[arg]))
            elif step_kind == "iter" and isinstance(value, list):
                nxt.extend(((*path, i), item) for i, item in enumerate(value))
            elif step_kind == "iter" and isinstance(value, dict):
                nxt.extend(((*path, k), item) for k, item in value.items())
        current = nxt
    yield from current


def _test(value: Any, select: _Select) -> bool:
    found = list(_walk([((), value)], select.path))
    got = found[0][1] if found else None
    return (got == select.literal) is select.equal


def _delete(obj: Any, path: Concrete) -> None:
    node = obj
    for part in path[:-1]:
        node = node[part]
    last = path[-1]
    if isinstance(node, dict) and isinstance(last, str):
        node.pop(last, None)
    elif isinstance(node, list) and isinstance(last, int) and last < len(node):
        del node[last]


class _Reader:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _TOKEN.match(text, pos)
            if m is None or m.end() == pos:
                raise JqSyntaxError("unexpected input", pos)
            kind = m.lastgroup or ""
            self.tokens.append((kind, m.group(kind), m.start(kind)))
            pos = m.end()
        self.i = 0
        self.end = len(text)

    def peek(self) -> tuple[str, str, int]:
        return self.tokens[self.i] if self.i < len(self.tokens) else ("end", "", self.end)

    def take(self, value: str | None = None, kind: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if (value is not None and tok[1] != value) or (kind is not None and tok[0] != kind) or tok[0] == "end":
            wanted = value or kind or "more input"
            raise JqSyntaxError(f"expected {wanted!r}, found {tok[1] or 'the end'!r}", tok[2])
        self.i += 1
        return tok

    def path(self) -> tuple[Step, ...]:
        steps: list[Step] = []
        while self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                kind, value, pos = self.peek()
                if kind == "name":
                    steps.append(("key", self.take()[1]))
                elif kind == "string":
                    steps.append(("key", json.loads(self.take()[1])))
                elif value == "[":
                    continue  # ".[...]"
                elif not steps and value in ("|", ")", "", "==", "!="):
                    steps.append(("self", None))
                else:
                    raise JqSyntaxError(f"expected a field name, found {value or 'the end'!r}", pos)
            else:
                kind, value, pos = self.peek()
                if value == "]":
                    steps.append(("iter", None))
                elif kind == "number" and re.fullmatch(r"-?\d+", value):
                    steps.append(("index", int(self.take()[1])))
                elif kind == "string":
                    steps.append(("key", json.loads(self.take()[1])))
                else:
                    raise JqSyntaxError(f"unsupported subscript {value!r}", pos)
                self.take("]")
            if self.peek()[1] == "?":
                self.take()
        return tuple(s for s in steps if s[0] != "self")

    def literal(self) -> Any:
        kind, value, pos = self.take()
        if kind in ("string", "number"):
            return json.loads(value)
        if kind == "name" and value in ("true", "false", "null"):
            return json.loads(value)
        raise JqSyntaxError(f"expected a literal, found {value!r}", pos)


def parse(text: str) -> JqPath:
    """Parse ``text``; :class:`JqSyntaxError` when it is outside the subset."""
    if len(text) > MAX_EXPRESSION_CHARS:
        raise JqSyntaxError(f"longer than {MAX_EXPRESSION_CHARS} characters", MAX_EXPRESSION_CHARS)
    reader = _Reader(text)
    stages: list[tuple[Step, ...] | _Select] = []
    while True:
        kind, value, pos = reader.peek()
        if kind == "name" and value == "select":
            reader.take()
            reader.take("(")
            path = reader.path()
            equal = reader.take(kind="op")[1]
            if equal not in ("==", "!="):
                raise JqSyntaxError(f"expected '==' or '!=', found {equal!r}", pos)
            stages.append(_Select(path, equal == "==", reader.literal()))
            reader.take(")")
        else:
            if value not in (".", "["):
                raise JqSyntaxError(f"expected a path, found {value or 'the end'!r}", pos)
            stages.append(reader.path())
        if reader.peek()[0] == "end":
            break
        reader.take("|")
    if not any(isinstance(s, tuple) and s for s in stages):
        raise JqSyntaxError("the expression selects the whole object", 0)
    return JqPath(text, tuple(stages))
