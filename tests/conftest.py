"""Shared fixtures: a fresh database per test, and no test touches the user's real one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evaltui.store import Store


@pytest.fixture(autouse=True)
def _isolated_default_db(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # code that falls back to the default database writes to a throwaway file
    monkeypatch.setenv("EVALTUI_DB", str(tmp_path_factory.mktemp("default-db") / "evaltui.db"))


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "evaltui.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    s = Store(db_path)
    yield s
    s.close()
