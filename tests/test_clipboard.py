"""Clipboard: system clipboard locally, OSC 52 over SSH, config overrides, size limits."""

from __future__ import annotations

import pytest

from evaltui.tui import clipboard
from evaltui.tui.clipboard import OSC52_LIMIT, copy_text, human_size, over_ssh


class FakeApp:
    def __init__(self) -> None:
        self.osc52: list[str] = []

    def copy_to_clipboard(self, text: str) -> None:
        self.osc52.append(text)


@pytest.fixture
def system(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    import pyperclip

    copied: list[str] = []
    monkeypatch.setattr(pyperclip, "copy", copied.append)
    return copied


LOCAL: dict[str, str] = {}
SSH = {"SSH_CONNECTION": "10.0.0.1 50000 10.0.0.2 22"}


def test_local_auto_uses_the_system_clipboard(system: list[str]) -> None:
    app = FakeApp()
    r = copy_text(app, "hello", "output of row 1", "auto", LOCAL)
    assert r.ok and r.method == "system clipboard"
    assert system == ["hello"] and app.osc52 == []
    assert r.message == "Copied output of row 1 (5 chars) to the system clipboard"


@pytest.mark.parametrize("env", [SSH, {"SSH_TTY": "/dev/pts/3"}, {"SSH_CLIENT": "10.0.0.1 5 22"}])
def test_ssh_auto_uses_osc52(system: list[str], env: dict[str, str]) -> None:
    app = FakeApp()
    r = copy_text(app, "hello", "cell", "auto", env)
    assert r.ok and r.method == "OSC 52"
    assert app.osc52 == ["hello"] and system == []
    assert "via OSC 52" in r.message
    assert over_ssh(env)


def test_over_ssh_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSH_TTY", "SSH_CONNECTION", "SSH_CLIENT"):
        monkeypatch.delenv(name, raising=False)
    assert not over_ssh()
    monkeypatch.setenv("SSH_TTY", "/dev/pts/1")
    assert over_ssh()


def test_auto_falls_back_to_osc52_without_a_clipboard_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyperclip

    def fail(_text: str) -> None:
        raise pyperclip.PyperclipException("could not find a copy/paste mechanism")

    monkeypatch.setattr(pyperclip, "copy", fail)
    app = FakeApp()
    r = copy_text(app, "x", "cell", "auto", LOCAL)
    assert r.ok and r.method == "OSC 52" and app.osc52 == ["x"]


def test_forced_system_reports_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyperclip

    def fail(_text: str) -> None:
        raise pyperclip.PyperclipException("no xclip")

    monkeypatch.setattr(pyperclip, "copy", fail)
    app = FakeApp()
    r = copy_text(app, "x", "cell", "system", SSH)
    assert not r.ok and app.osc52 == []
    assert "no xclip" in r.message


def test_forced_system_over_ssh(system: list[str]) -> None:
    r = copy_text(FakeApp(), "x", "cell", "system", SSH)
    assert r.ok and system == ["x"]


def test_forced_osc52_locally(system: list[str]) -> None:
    app = FakeApp()
    r = copy_text(app, "x", "cell", "osc52", LOCAL)
    assert r.ok and app.osc52 == ["x"] and system == []


def test_unknown_mode_means_auto(system: list[str]) -> None:
    r = copy_text(FakeApp(), "x", "cell", "fax", LOCAL)
    assert r.ok and system == ["x"]


def test_oversized_osc52_payload_is_refused(system: list[str]) -> None:
    app = FakeApp()
    big = "é" * (OSC52_LIMIT // 2 + 1)  # over the limit in UTF-8 bytes, not in characters
    r = copy_text(app, big, "output of row 3", "auto", SSH)
    assert not r.ok and app.osc52 == []
    assert "Not copied" in r.message and "1.0 MB" in r.message and "output of row 3" in r.message
    ok = copy_text(app, "é" * (OSC52_LIMIT // 2), "cell", "auto", SSH)
    assert ok.ok


def test_oversized_system_payload_is_refused(system: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clipboard, "SYSTEM_LIMIT", 10)
    r = copy_text(FakeApp(), "x" * 11, "row", "system", LOCAL)
    assert not r.ok and system == []
    assert "11 B" in r.message


def test_human_size() -> None:
    assert human_size(999) == "999 B"
    assert human_size(1_500) == "1.5 KB"
    assert human_size(200_000) == "200 KB"
    assert human_size(5_200_000) == "5.2 MB"


async def test_app_copy_notifies_what_and_how(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from evaltui.tui.app import EvalTUI

    monkeypatch.setenv("EVALTUI_CONFIG", str(tmp_path / "config.toml"))
    for name in ("SSH_TTY", "SSH_CONNECTION", "SSH_CLIENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SSH_TTY", "/dev/pts/9")
    app = EvalTUI(tmp_path / "db.sqlite")
    osc: list[str] = []
    monkeypatch.setattr(app, "copy_to_clipboard", osc.append)
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.copy_text("abc", "the thing")
        assert osc == ["abc"]
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert "Copied the thing (3 chars) via OSC 52 (terminal clipboard)" in messages
        assert not app.copy_text("x" * (OSC52_LIMIT + 1), "a huge output")
        assert osc == ["abc"]
        await pilot.pause()
        assert any(m.startswith("Not copied: a huge output") for m in (n.message for n in app._notifications))
