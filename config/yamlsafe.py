"""Safe YAML and JSON loading for every untrusted input: projects, apps, RBAC config maps, manifests.

This is the only module that imports PyYAML (import-linter enforces it). Callers get plain Python data
(dicts, lists, str, int, float, bool, None) or a :class:`YamlError` that names the source, the document
index and, where it applies, the line. Never a traceback, never the file's contents.

What it guards against (``shared/reference/security-cases.md`` YAML rows and §B.3):

* Python tags and any other unknown tag: only the safe constructors exist, so ``!!python/...`` and
  ``!Ref`` are errors.
* Alias bombs: the composed node graph is walked before construction, counting every node as often as
  aliases make it reachable; more than ``Limits.max_nodes`` is an error.
* Deep nesting: depth is capped (``Limits.max_depth``), and a ``RecursionError`` is reported, not raised.
* Duplicate mapping keys are an error (Argo CD lets the last one win: deliberate difference 7).
* Encoding: bytes must be strict UTF-8 (a UTF-8 BOM is tolerated); NUL and other C0 control characters
  (except tab, newline, carriage return) are rejected.
* Sizes: bytes per input and documents per input are capped; a 5,000-digit integer is an error.
* Timestamps are not resolved: ``2024-01-01`` stays the string it is (Kubernetes treats it as text).

Error tree::

    YamlError (ValueError)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

__all__ = ["Document", "Limits", "YamlError", "dump", "load_all", "load_one", "loads_json"]

try:  # the C parser is ~10x faster; fall back to the pure-Python one where libyaml is missing
    _BaseLoader: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
    C_LOADER = True
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _BaseLoader = yaml.SafeLoader
    C_LOADER = False

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@dataclass(frozen=True, slots=True)
class Limits:
    """Caps on one input. The defaults follow Argo CD's 10 MB per-app manifest budget."""

    max_bytes: int = 10 * 1024 * 1024
    max_documents: int = 10_000
    max_depth: int = 100
    #: nodes counted with aliases expanded; a billion-laughs bomb blows through this at once
    max_nodes: int = 2_000_000


DEFAULT_LIMITS = Limits()


class YamlError(ValueError):
    """An input that is not acceptable YAML/JSON. The message names the source and document."""

    def __init__(self, source: str, message: str, *, document: int | None = None, line: int | None = None):
        self.source = source
        self.document = document
        self.line = line
        self.detail = message
        where = source
        if document is not None:
            where += f"[{document}]"
        if line is not None:
            where += f" line {line}"
        super().__init__(f"{where}: {message}")


@dataclass(frozen=True, slots=True)
class Document:
    """One non-empty document of an input, with where it came from (for error messages)."""

    source: str
    index: int
    data: Any


class _Loader(_BaseLoader):  # type: ignore[misc,valid-type]
    """Safe loader: duplicate keys rejected, timestamps left as strings."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a scalar", key_node.start_mark
                ) from None
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


# Timestamps stay strings: drop the implicit resolver for them.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.items()
}
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_mapping)


def _decode(data: bytes | str, source: str, limits: Limits) -> str:
    if isinstance(data, bytes):
        if len(data) > limits.max_bytes:
            raise YamlError(source, f"input is {len(data)} bytes, more than the limit of {limits.max_bytes}")
        if data.startswith(b"\xef\xbb\xbf"):
            data = data[3:]
        try:
            text = data.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise YamlError(source, f"not valid UTF-8 (byte offset {exc.start})") from None
    else:
        text = data.removeprefix("\ufeff")
        if len(text) > limits.max_bytes:
            raise YamlError(source, f"input is longer than the limit of {limits.max_bytes} characters")
    bad = _CONTROL.search(text)
    if bad:
        line = text.count("\n", 0, bad.start()) + 1
        raise YamlError(source, f"control character U+{ord(bad.group()):04X} is not allowed", line=line)
    return text


def _check_graph(node: yaml.Node, source: str, index: int, limits: Limits) -> None:
    """Count nodes as construction would visit them (aliases expanded) and measure depth."""
    budget = limits.max_nodes
    stack: list[tuple[yaml.Node, int]] = [(node, 1)]
    while stack:
        current, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise YamlError(
                source,
                f"more than {limits.max_nodes} nodes once aliases are expanded (alias bomb?)",
                document=index,
            )
        if depth > limits.max_depth:
            raise YamlError(
                source,
                f"nested deeper than {limits.max_depth} levels",
                document=index,
                line=current.start_mark.line + 1,
            )
        if isinstance(current, yaml.SequenceNode):
            stack.extend((child, depth + 1) for child in current.value)
        elif isinstance(current, yaml.MappingNode):
            for key, value in current.value:
                stack.append((key, depth + 1))
                stack.append((value, depth + 1))


def _iter_documents(text: str, source: str, limits: Limits) -> Iterator[Document]:
    loader = _Loader(text)
    index = -1
    try:
        while loader.check_node():
            index += 1
            if index >= limits.max_documents:
                raise YamlError(source, f"more than {limits.max_documents} documents")
            node = loader.get_node()
            if node is None:
                continue
            _check_graph(node, source, index, limits)
            data = loader.construct_document(node)
            if data is None:
                continue
            yield Document(source=source, index=index, data=data)
    except YamlError:
        raise
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise YamlError(source, problem, document=max(index, 0), line=line) from None
    except yaml.YAMLError as exc:
        raise YamlError(source, f"invalid YAML: {type(exc).__name__}", document=max(index, 0)) from None
    except RecursionError:
        raise YamlError(source, "nested too deeply", document=max(index, 0)) from None
    except ValueError as exc:  # e.g. Python's limit on integer digits
        raise YamlError(source, f"value out of range: {exc}", document=max(index, 0)) from None
    finally:
        loader.dispose()


def load_all(data: bytes | str, *, source: str, limits: Limits = DEFAULT_LIMITS) -> list[Document]:
    """Every non-empty document of a YAML (or JSON, a subset of YAML) input.

    Empty and ``null`` documents are skipped; the index of each kept document is its position in the
    file counting the skipped ones, as a user counting ``---`` separators would.
    """
    text = _decode(data, source, limits)
    return list(_iter_documents(text, source, limits))


def load_one(data: bytes | str, *, source: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """The single document of an input; an error when there are none or several."""
    docs = load_all(data, source=source, limits=limits)
    if not docs:
        raise YamlError(source, "no document found")
    if len(docs) > 1:
        raise YamlError(source, f"expected one document, found {len(docs)}", document=docs[1].index)
    return docs[0].data


def loads_json(data: bytes | str, *, source: str, limits: Limits = DEFAULT_LIMITS) -> Any:
    """Strict JSON (duplicate keys rejected, same size and depth limits) for request bodies."""
    text = _decode(data, source, limits)

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise YamlError(source, f"duplicate key {key!r}")
            out[key] = value
        return out

    try:
        value = json.loads(text, object_pairs_hook=no_duplicates)
    except YamlError:
        raise
    except RecursionError:
        raise YamlError(source, "nested too deeply") from None
    except ValueError as exc:
        raise YamlError(source, f"invalid JSON: {exc}") from None
    return value


def dump(data: Any, *, multi: bool = False) -> str:
    """YAML text for output (block style, keys in insertion order)."""
    dumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    if multi:
        return yaml.dump_all(data, Dumper=dumper, sort_keys=False, default_flow_style=False)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, default_flow_style=False)
