"""config.yamlsafe: the loader every untrusted input goes through (security-cases YAML-01..09, §B.3).

Covers: Python and custom tags, alias bombs, deep nesting, duplicate keys (difference 7), encodings and control
characters, huge integers, size and document caps, empty/null documents and their indexes, timestamps kept as
strings, merge keys, strict JSON.
"""

from __future__ import annotations

import pytest

from config import yamlsafe
from config.yamlsafe import Limits, YamlError


def test_documents_keep_their_file_index_and_skip_empty_ones() -> None:
    docs = yamlsafe.load_all("a: 1\n---\n---\nnull\n---\nb: 2\n", source="m.yaml")
    assert [(d.index, d.data) for d in docs] == [(0, {"a": 1}), (3, {"b": 2})]
    assert all(d.source == "m.yaml" for d in docs)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param('x: !!python/object/apply:os.system ["true"]\n', "constructor", id="python-apply"),
        pytest.param("x: !!python/name:os.system\n", "constructor", id="python-name"),
        pytest.param("x: !!python/object/new:os.system [x]\n", "constructor", id="python-new"),
        pytest.param("x: !Ref other\n", "constructor", id="custom-tag"),
        pytest.param("metadata:\n  namespace: team-a\n  namespace: kube-system\n", "duplicate key 'namespace'", id="dup"),
        pytest.param("x: " + "9" * 5000 + "\n", "out of range", id="huge-int"),
        pytest.param("a: [unclosed\n", "line", id="syntax"),
    ],
)
def test_hostile_yaml_is_an_error_naming_the_source(text: str, needle: str) -> None:
    with pytest.raises(YamlError) as info:
        yamlsafe.load_all(text, source="evil.yaml")
    assert str(info.value).startswith("evil.yaml")
    assert needle in str(info.value)


def test_alias_bomb_is_refused_before_anything_expands_it() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    with pytest.raises(YamlError, match="alias"):
        yamlsafe.load_all("\n".join(lines) + "\n", source="bomb.yaml")


def test_small_aliases_still_work() -> None:
    doc = yamlsafe.load_one("base: &b {x: 1}\nuse: *b\nmerged:\n  <<: *b\n  y: 2\n", source="ok.yaml")
    assert doc == {"base": {"x": 1}, "use": {"x": 1}, "merged": {"x": 1, "y": 2}}


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    deep = "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200)) + "  " * 200 + "c: 1\n"
    with pytest.raises(YamlError, match="nested deeper than 100"):
        yamlsafe.load_all(deep, source="deep.yaml")
    with pytest.raises(YamlError):
        yamlsafe.load_all("[" * 20_000, source="brackets.yaml")


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        pytest.param(b"a: \xff\n", "not valid UTF-8", id="invalid-utf8"),
        pytest.param("\ufeffa: 1\n".encode("utf-16"), "not valid UTF-8", id="utf16-bom"),
        pytest.param(b"a: b\x00c\n", r"U\+0000", id="nul"),
        pytest.param(b"a: b\x1bc\n", r"U\+001B", id="escape-char"),
    ],
)
def test_encoding_is_strict_utf8(data: bytes, needle: str) -> None:
    with pytest.raises(YamlError, match=needle):
        yamlsafe.load_all(data, source="enc.yaml")


def test_utf8_bom_is_tolerated() -> None:
    assert yamlsafe.load_one(b"\xef\xbb\xbfa: 1\n", source="bom.yaml") == {"a": 1}


def test_size_and_document_caps() -> None:
    with pytest.raises(YamlError, match="more than the limit"):
        yamlsafe.load_all(b"a: " + b"x" * 200 + b"\n", source="big.yaml", limits=Limits(max_bytes=100))
    with pytest.raises(YamlError, match="more than 3 documents"):
        yamlsafe.load_all("a: 1\n---\nb: 1\n---\nc: 1\n---\nd: 1\n", source="many.yaml", limits=Limits(max_documents=3))


def test_timestamps_stay_strings_and_yaml11_scalars_are_visible() -> None:
    doc = yamlsafe.load_one("date: 2024-01-01\nflag: on\nmode: 0755\n", source="types.yaml")
    assert doc == {"date": "2024-01-01", "flag": True, "mode": 493}


def test_load_one_requires_exactly_one_document() -> None:
    with pytest.raises(YamlError, match="no document"):
        yamlsafe.load_one("---\n", source="empty.yaml")
    with pytest.raises(YamlError, match="expected one document, found 2"):
        yamlsafe.load_one("a: 1\n---\nb: 2\n", source="two.yaml")


def test_strict_json() -> None:
    assert yamlsafe.loads_json(b'{"a": [1, 2]}', source="body") == {"a": [1, 2]}
    with pytest.raises(YamlError, match="duplicate key 'a'"):
        yamlsafe.loads_json('{"a": 1, "a": 2}', source="body")
    with pytest.raises(YamlError, match="invalid JSON"):
        yamlsafe.loads_json("{", source="body")
    with pytest.raises(YamlError, match="nested too deeply"):
        yamlsafe.loads_json("[" * 100_000 + "]" * 100_000, source="body")


def test_dump_round_trips() -> None:
    data = {"b": 1, "a": ["x", {"c": None}]}
    assert yamlsafe.load_one(yamlsafe.dump(data), source="dump") == data
