"""Fixtures the reconciler tests share: a sandbox, a cluster client of it, and the two-ConfigMap repository
(:mod:`tests.sync.reconcilekit`). A test module that needs another shape defines its own, which wins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import sandbox
from sync import kube
from tests.sync.gitfixtures import GitRepo
from tests.sync.reconcilekit import connect, two_configmap_repo


@pytest.fixture
def sb() -> Iterator[sandbox.Sandbox]:
    with sandbox.start(port=0, bookmark_interval=0.2) as box:
        yield box


@pytest.fixture
def kc(sb: sandbox.Sandbox, tmp_path: Path) -> Iterator[kube.KubeCluster]:
    c = connect(sb, tmp_path, "main")
    yield c
    c.close()


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return two_configmap_repo(tmp_path)
