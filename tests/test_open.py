"""`open` (CLI) and the dashboard's `o` hand the desktop opener only a saved file or an
https link (plain http only to loopback), as an argument that can never be read as an
option; any other link a server supplies (file:, javascript:, --help...) is refused with a
message."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from seedance_tui import cli, library
from seedance_tui.config import load_settings
from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.store import Store, new_task_id
from seedance_tui.tui.app import SeedanceApp

REFUSED = [
    "file:///etc/passwd",
    "javascript:alert(document.cookie)",
    "--help",
    "-x",
    "/etc/passwd",
    "data:text/html,<script>alert(1)</script>",
    "http://example.com/v.mp4",  # plain http off this machine
    "ftp://example.com/v.mp4",
    "https://cdn.example/v.mp4\x1b[2J",
    "https://cdn.example/a b.mp4",
    "https:///no-host.mp4",
    "HTTPS",
    "",
]
ALLOWED = [
    "https://cdn.example/v.mp4?sig=a-b&x=--help",
    "HTTPS://CDN.example/v.mp4",
    "http://127.0.0.1:8765/media/v.mp4",
    "http://localhost/v.mp4",
    "http://[::1]:8000/v.mp4",
]


def task_with(url: str | None, local_path: str | None = None) -> Task:
    now = time.time()
    return Task(
        id=new_task_id(now), provider=Provider.NANOPHOTO, status=TaskStatus.COMPLETED,
        prompt="a fox", params={"mode": "text-to-video"}, created_at=now, task_id="t-" + str(now),
        credits_charged=4, video_urls=(url,) if url is not None else (), local_path=local_path,
    )  # fmt: skip


@pytest.fixture
def launched(monkeypatch) -> list[list[str]]:
    """A desktop with an opener; records every command line instead of starting it."""
    import subprocess

    calls: list[list[str]] = []
    real_popen = subprocess.Popen

    def recorder(argv, *args, **kwargs):
        if list(argv)[:1] != ["xdg-open"]:
            return real_popen(argv, *args, **kwargs)  # what libraries start for themselves
        calls.append(list(argv))
        return None

    for name in ("SSH_CONNECTION", "SSH_TTY", "SSH_CLIENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(library, "system_opener", lambda env=None: ["xdg-open"])
    monkeypatch.setattr(subprocess, "Popen", recorder)
    return calls


def add(db: Path, task: Task) -> Task:
    store = Store.open(db)
    try:
        store.insert_task(task)
    finally:
        store.close()
    return task


@pytest.mark.parametrize("url", REFUSED)
def test_open_refuses_a_link_that_is_not_https(url, tmp_path, launched, capsys) -> None:
    db = tmp_path / "h.db"
    task = add(db, task_with(url))
    assert cli.main(["--db", str(db), "open", task.id]) == 1
    captured = capsys.readouterr()
    assert launched == []
    assert "refusing to open" in captured.err and "Traceback" not in captured.err
    assert "\x1b" not in captured.err  # the link is shown inertly
    assert captured.out == ""  # nothing to copy either


@pytest.mark.parametrize("url", REFUSED)
def test_open_refuses_it_without_a_desktop_too(url, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "10.0.0.1 5000 10.0.0.2 22")
    db = tmp_path / "h.db"
    task = add(db, task_with(url))
    assert cli.main(["--db", str(db), "open", task.id]) == 1
    captured = capsys.readouterr()
    assert "refusing to open" in captured.err and captured.out == ""


@pytest.mark.parametrize("url", ALLOWED)
def test_open_hands_an_https_or_loopback_link_to_the_opener(url, tmp_path, launched) -> None:
    db = tmp_path / "h.db"
    task = add(db, task_with(url))
    assert cli.main(["--db", str(db), "open", task.id]) == 0
    assert launched == [["xdg-open", url]]


def test_a_saved_file_is_opened_by_its_absolute_path(tmp_path, launched, monkeypatch) -> None:
    video = tmp_path / "-x.mp4"  # a name that reads as an option
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "h.db"
    task = add(db, task_with("javascript:alert(1)", local_path="-x.mp4"))
    assert cli.main(["--db", str(db), "open", task.id]) == 0
    assert launched == [["xdg-open", str(video)]]


@pytest.mark.parametrize("target", ["--help", "-x", "file:///etc/passwd", "javascript:x"])
def test_the_opener_itself_never_takes_an_option_or_a_foreign_scheme(target, launched) -> None:
    with pytest.raises(library.UnsafeTarget):
        library.open_with_system(target)
    assert launched == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "javascript:alert(1)", "--help"])
async def test_the_dashboard_refuses_the_same_links(url, tmp_path, launched) -> None:
    db = tmp_path / "h.db"
    add(db, task_with(url))
    app = SeedanceApp(load_settings(db=db, env={}), poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause()
        notes = [str(n.message) for n in app._notifications]
        assert any("refusing to open" in n for n in notes), notes
        assert launched == []
        assert app.clipboard == ""  # nothing copied in its place


async def test_the_dashboard_opens_an_https_link(tmp_path, launched) -> None:
    db = tmp_path / "h.db"
    add(db, task_with(ALLOWED[0]))
    app = SeedanceApp(load_settings(db=db, env={}), poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("o")
        await pilot.pause()
    assert launched == [["xdg-open", ALLOWED[0]]]
