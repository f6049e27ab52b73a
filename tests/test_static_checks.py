"""Static checks run as part of the test suite: ruff (lint), mypy (strict on the packages) and
import-linter (the layering and third-party containment contracts of DESIGN.md, in ``.importlinter``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def test_ruff_lint() -> None:
    result = _run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_packages() -> None:
    result = _run(sys.executable, "-m", "mypy", "--cache-dir", str(ROOT / ".mypy_cache"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.fail("lint-imports is not installed: install the test extras (pip install -e '.[test]')")
    result = _run(exe, "--no-cache")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_unsafe_yaml_calls() -> None:
    """Only config/yamlsafe.py touches PyYAML, and never with an unsafe loader (security-cases §B.3)."""
    offenders = []
    for path in ROOT.glob("*/**/*.py"):
        if ".venv" in path.parts or path.name == "test_static_checks.py":
            continue
        text = path.read_text(encoding="utf-8")
        for needle in ("unsafe_load", "FullLoader", "UnsafeLoader", "yaml.load("):
            if needle in text:
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []
