"""Loading manifests from files and directories (``load_manifest_paths``) and the YAML attack rows.

Covers: directory recursion in sorted order with ``.yaml``/``.yml``/``.json``, multi-document files, ``List``
flattening (items keep the file and document index), empty/null documents skipped, required fields and
their types with errors naming file, document index and field; YAML-01 (Python tags), YAML-02 (alias
bomb), duplicate keys, YAML-04 (deep nesting), YAML-05 (encoding), YAML 1.1 typing and merge keys,
custom tags, YAML-07 (document shapes), YAML-09 and REPO-06 (huge scalars, counts, sizes).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from config import yamlsafe
from sync.manifests import ManifestError, load_manifest_paths

CM = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def test_directory_is_walked_recursively_sorted_and_filtered(tmp_path: Path) -> None:
    root = tmp_path / "deploy"
    write(root / "b.yaml", CM.format(name="b"))
    write(root / "a.yml", CM.format(name="a"))
    write(root / "sub" / "c.json", '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}')
    write(root / "README.md", "apiVersion: nope")
    write(root / ".git" / "config.yaml", CM.format(name="hidden"))
    found = load_manifest_paths([root])
    assert [m.name for m in found] == ["a", "b", "c"]
    assert [m.source for m in found] == [
        f"{root.as_posix()}/a.yml",
        f"{root.as_posix()}/b.yaml",
        f"{root.as_posix()}/sub/c.json",
    ]


def test_relative_roots_give_relative_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "deploy" / "x.yaml", CM.format(name="x"))
    monkeypatch.chdir(tmp_path)
    assert [m.source for m in load_manifest_paths([Path("deploy")])] == ["deploy/x.yaml"]


def test_multi_document_lists_and_empty_documents(tmp_path: Path) -> None:
    text = (
        "---\n---\nnull\n---\n"
        + CM.format(name="one")
        + "---\napiVersion: v1\nkind: List\nitems:\n- "
        + CM.format(name="two").replace("\n", "\n  ")
        + "\n---\napiVersion: v1\nkind: ConfigMapList\nitems: null\n"
    )
    f = write(tmp_path / "all.yaml", text)
    found = load_manifest_paths([f])
    assert [(m.name, m.index) for m in found] == [("one", 2), ("two", 3)]
    assert all(m.source == f.as_posix() for m in found)


def test_generate_name_is_accepted(tmp_path: Path) -> None:
    f = write(tmp_path / "job.yaml", "apiVersion: batch/v1\nkind: Job\nmetadata: {generateName: migrate-}\n")
    assert load_manifest_paths([f])[0].name == ""


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        pytest.param("- a\n- b\n", "", "mapping, not a list", id="top-level-list"),
        pytest.param("just a string\n", "", "mapping, not a string", id="top-level-scalar"),
        pytest.param("kind: ConfigMap\nmetadata: {name: a}\n", "apiVersion", "required", id="no-apiversion"),
        pytest.param("apiVersion: v1\nmetadata: {name: a}\n", "kind", "required", id="no-kind"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\n", "metadata", "required", id="no-metadata"),
        pytest.param("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "metadata.name", "required", id="no-name"),
        pytest.param("apiVersion: v1\nkind: 12\nmetadata: {name: a}\n", "kind", "string", id="kind-int"),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: 0755}\n",
            "metadata.namespace",
            "string",
            id="namespace-octal",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {on: x}}\n",
            "metadata.labels",
            "keys must be strings",
            id="label-key-bool",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: {x: no}}\n",
            "metadata.labels.x",
            "string",
            id="label-value-bool",
        ),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, annotations: {t: 12:30}}\n",
            "metadata.annotations.t",
            "string",
            id="annotation-sexagesimal",
        ),
        pytest.param(
            "apiVersion: v1\nkind: List\nitems:\n- {kind: ConfigMap}\n",
            "items[0].apiVersion",
            "required",
            id="list-item",
        ),
    ],
)
def test_invalid_documents_name_file_index_and_field(tmp_path: Path, text: str, field: str, words: str) -> None:
    f = write(tmp_path / "m.yaml", CM.format(name="ok") + "---\n" + text)
    with pytest.raises(ManifestError) as info:
        load_manifest_paths([f])
    assert info.value.source == f.as_posix()
    assert info.value.index == 1
    assert info.value.field == field
    assert words in str(info.value)


def test_missing_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="no such file"):
        load_manifest_paths([tmp_path / "nope"])


@pytest.mark.parametrize(
    ("text", "words"),
    [
        pytest.param('x: !!python/object/apply:os.system ["touch {marker}"]', "python/object", id="YAML-01-apply"),
        pytest.param("x: !!python/name:os.system", "python/name", id="YAML-01-name"),
        pytest.param("x: !!python/object/new:os.system [touch {marker}]", "python/object", id="YAML-01-new"),
        pytest.param("x: !Ref foo", "!Ref", id="custom-tag"),
        pytest.param(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: team-a\n  namespace: kube-system\n",
            "duplicate key",
            id="duplicate-key",
        ),
    ],
)
def test_dangerous_yaml_is_refused_without_execution(tmp_path: Path, text: str, words: str) -> None:
    marker = tmp_path / "pwned"
    f = write(tmp_path / "evil.yaml", text.replace("{marker}", str(marker)))
    with pytest.raises(ManifestError) as info:
        load_manifest_paths([f])
    assert words in str(info.value)
    assert not marker.exists()


def test_yaml_02_alias_bomb_is_rejected_quickly(tmp_path: Path) -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i, name in enumerate("bcdefghi"):
        prev = "abcdefghi"[i]
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    f = write(tmp_path / "bomb.yaml", "\n".join(lines) + "\n")
    started = time.perf_counter()
    with pytest.raises(ManifestError, match="alias"):
        load_manifest_paths([f])
    assert time.perf_counter() - started < 5


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 20_000 + "]" * 20_000, id="flow"),
        pytest.param("".join("  " * i + f"k{i}:\n" for i in range(3000)) + "  " * 3000 + "v\n", id="block"),
    ],
)
def test_yaml_04_deep_nesting_is_an_error_not_a_crash(tmp_path: Path, text: str) -> None:
    f = write(tmp_path / "deep.yaml", text)
    with pytest.raises(ManifestError, match="nest"):
        load_manifest_paths([f])


@pytest.mark.parametrize(
    ("data", "words"),
    [
        pytest.param(b"apiVersion: v1\nkind: \xff\n", "UTF-8", id="invalid-utf8"),
        pytest.param("apiVersion: v1\n".encode("utf-16"), "UTF-8", id="utf16-bom"),
        pytest.param(b"apiVersion: v1\nkind: Config\x00Map\n", "control character", id="nul"),
        pytest.param(b"apiVersion: v1\nkind: Config\x07Map\n", "control character", id="bell"),
    ],
)
def test_yaml_05_encoding(tmp_path: Path, data: bytes, words: str) -> None:
    f = write(tmp_path / "enc.yaml", data)
    with pytest.raises(ManifestError, match=words):
        load_manifest_paths([f])


def test_yaml_05_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    f = write(tmp_path / "bom.yaml", b"\xef\xbb\xbf" + CM.format(name="bom").encode())
    assert load_manifest_paths([f])[0].name == "bom"


def test_merge_keys_resolve_before_validation(tmp_path: Path) -> None:
    # policy checks must see the final object: a namespace pulled in through a merge key counts
    f = write(tmp_path / "merge.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  <<: {name: m, namespace: ns}\n")
    found = load_manifest_paths([f])
    assert (found[0].name, found[0].namespace) == ("m", "ns")


def test_yaml_09_huge_integer_is_an_error(tmp_path: Path) -> None:
    f = write(tmp_path / "int.yaml", CM.format(name="a") + "data:\n  x: " + "9" * 5000 + "\n")
    with pytest.raises(ManifestError, match="out of range"):
        load_manifest_paths([f])


def test_yaml_09_and_repo_06_sizes_and_counts_are_capped(tmp_path: Path) -> None:
    small = yamlsafe.Limits(max_bytes=10_000, max_documents=50)
    big = write(tmp_path / "big" / "huge.yaml", CM.format(name="a") + "data:\n  x: " + "y" * 20_000 + "\n")
    with pytest.raises(ManifestError, match="more than the limit"):
        load_manifest_paths([big], limits=small)
    many = write(tmp_path / "many" / "docs.yaml", "---\n".join(CM.format(name=f"c{i}") for i in range(60)))
    with pytest.raises(ManifestError, match="more than 50"):
        load_manifest_paths([many], limits=small)
    for i in range(30):
        write(tmp_path / "files" / f"f{i:02}.yaml", CM.format(name=f"c{i}") + "data: {x: " + "z" * 400 + "}\n")
    with pytest.raises(ManifestError, match="in total"):
        load_manifest_paths([tmp_path / "files"], limits=small)
