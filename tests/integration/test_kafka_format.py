"""Formatting a broker's data folder with Kafka's own storage tool (deploy/local)."""

from __future__ import annotations

from pathlib import Path

import pytest

import deploy.local.components as components
from singlewindow.security import ADMIN


def test_a_data_folder_formats_whatever_the_cluster_id_starts_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One random cluster id in 64 starts with "-"; given as ``-t -Xy…`` the storage tool read
    it as an option and ``make up`` failed on a fresh machine."""
    monkeypatch.setattr(components, "VAR", tmp_path)
    monkeypatch.setattr(components, "new_cluster_id", lambda: "-bcdefghijklmnopqrstuv")
    kafka = components.Kafka()
    kafka.install()
    kafka.prepare()
    meta = (kafka.data / "meta.properties").read_text()
    assert "cluster.id=-bcdefghijklmnopqrstuv" in meta
    assert kafka.scram_users() >= {ADMIN}
