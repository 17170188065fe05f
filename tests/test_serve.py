"""`seedance-tui serve`: the dashboard through textual-serve, on loopback only.

End to end without a browser: the page is served, and its websocket (what the page's
JavaScript opens) runs a dashboard whose screen shows the demo history's task list.
"""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
import sys
import time

import httpx
import pytest
from processes import DEADLINE, free_port, wait_for_http

from seedance_tui import cli
from seedance_tui.demo import PROMPTS

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")


@pytest.fixture
def served(tmp_path, processes):
    port = free_port()
    process = processes.spawn(
        [sys.executable, "-m", "seedance_tui", "--db", str(tmp_path / "demo.db"), "--demo",
         "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    wait_for_http(process, f"http://127.0.0.1:{port}/", "serve")
    return port


def test_page_is_served_on_loopback(served: int) -> None:
    page = httpx.get(f"http://127.0.0.1:{served}/").text
    assert "textual.js" in page
    assert f"ws://127.0.0.1:{served}/ws" in page


async def test_websocket_runs_the_dashboard_with_the_task_list(served: int) -> None:
    import aiohttp

    words = {p.split(",")[0][:24] for p in PROMPTS}
    screen = ""
    async with aiohttp.ClientSession() as session:
        url = f"ws://127.0.0.1:{served}/ws?width=160&height=48"
        async with session.ws_connect(url) as ws:
            await ws.send_json(["resize", {"width": 160, "height": 48}])
            deadline = time.monotonic() + DEADLINE
            while time.monotonic() < deadline:
                try:
                    message = await asyncio.wait_for(ws.receive(), 2)
                except TimeoutError:
                    continue  # look at the deadline, then wait for the next message
                if message.type == aiohttp.WSMsgType.BINARY:
                    screen += message.data.decode("utf-8", "replace")
                elif message.type == aiohttp.WSMsgType.TEXT:
                    screen += message.data
                elif message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                    break
                text = ANSI.sub("", screen)
                if any(w in text for w in words):
                    break
    text = ANSI.sub("", screen)
    assert any(w in text for w in words), text[-2000:]


def test_port_taken_is_a_usage_error(capsys) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert cli.main(["serve", "--port", str(port)]) == 2
    assert "taken" in capsys.readouterr().err


def test_serve_command_keeps_the_options() -> None:
    from seedance_tui.cli.common import Options
    from seedance_tui.cli.serving import serve_command

    params = cli.cli.make_context("seedance-tui", ["--db", "h.db", "--demo", "serve"]).params
    command = serve_command(Options(db=params["db"], demo=params["demo"]))
    assert command.startswith(sys.executable) and "-m seedance_tui" in command
    assert "--demo" in command and command.split("--db ")[1].split()[0].endswith("/h.db")


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`, from /proc."""
    import os

    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parents[int(entry)] = int(stat.read().split(") ", 1)[1].split()[1])
            except (FileNotFoundError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        children = [child for child, ppid in parents.items() if ppid == parent]
        found += children
        todo += children
    return found


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ")
    except FileNotFoundError:
        return b""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


async def test_sigterm_to_serve_ends_its_dashboards_too(tmp_path, processes) -> None:
    import os
    import signal

    import aiohttp

    port = free_port()
    process = processes.spawn(
        [sys.executable, "-m", "seedance_tui", "--db", str(tmp_path / "demo.db"), "--demo",
         "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.to_thread(wait_for_http, process, f"http://127.0.0.1:{port}/", "serve")
    async with aiohttp.ClientSession() as session:
        url = f"ws://127.0.0.1:{port}/ws?width=120&height=36"
        async with session.ws_connect(url) as ws:
            await ws.send_json(["resize", {"width": 120, "height": 36}])
            deadline = time.monotonic() + DEADLINE
            while not (dashboards := [pid for pid in _descendants(process.pid)
                                      if _cmdline(pid).startswith(sys.executable.encode())]):  # fmt: skip
                assert time.monotonic() < deadline, "no dashboard started for the tab"
                await asyncio.sleep(0.05)  # between two looks at the process table
            children = _descendants(process.pid)
            # A dashboard that cannot answer textual-serve's "quit" (stopped, or busy).
            dashboard = dashboards[0]
            os.kill(dashboard, signal.SIGSTOP)
            os.kill(process.pid, signal.SIGTERM)  # serve alone, as a service manager does
            code = await asyncio.to_thread(processes.wait, process, "serve after SIGTERM")
    assert code == 0
    deadline = time.monotonic() + DEADLINE
    while left := [pid for pid in children if _alive(pid)]:
        assert time.monotonic() < deadline, f"dashboards left running after serve: {left}"
        await asyncio.sleep(0.05)


def test_the_page_starts_the_dashboard_without_a_click_and_says_so(served: int) -> None:
    page = httpx.get(f"http://127.0.0.1:{served}/").text
    assert ".xterm-helper-textarea" in page and "focus()" in page  # takes the keyboard
    assert "it takes the keyboard as soon as it shows" in page
    assert "?delay" not in page  # no Start button to press first


async def test_the_screenshot_command_creates_its_folder(tmp_path, monkeypatch) -> None:
    from tui_helpers import fixed_clock, wait_until

    from seedance_tui.config import load_settings
    from seedance_tui.paths import screenshots_dir
    from seedance_tui.tui.app import SeedanceApp

    monkeypatch.setenv("HOME", str(tmp_path / "user"))  # no ~/Downloads there either
    monkeypatch.delenv("XDG_DOWNLOAD_DIR", raising=False)
    folder = screenshots_dir()
    assert not folder.exists()
    app = SeedanceApp(load_settings(db=tmp_path / "h.db", env={}), clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await app.run_action("screenshot")  # what the command palette's "Save screenshot" runs
        await wait_until(pilot, lambda: folder.is_dir() and any(folder.glob("*.svg")), "saved")
        await wait_until(
            pilot, lambda: any(n.title == "Screenshot" for n in app._notifications), "told"
        )
    assert all(n.severity != "error" for n in app._notifications)


def test_the_page_serves_its_own_font_and_asks_nothing_off_this_machine(served: int) -> None:
    """The terminal's font comes from textual-serve's static folder (no Google Fonts
    request), and the terminal opens once it is loaded: cells measured for the font the
    rows are drawn in, so the first row is not cut at the page's top."""
    page = httpx.get(f"http://127.0.0.1:{served}/").text
    assert "googleapis" not in page and "https://" not in page.split("<body")[0]
    font = re.search(r'url\("([^"]+RobotoMono-VariableFont_wght\.ttf)"\)', page)
    assert font, "no @font-face for Roboto Mono"
    answer = httpx.get(httpx.URL(f"http://127.0.0.1:{served}/").join(font.group(1)))
    assert answer.status_code == 200 and len(answer.content) > 10_000
    assert "document.fonts.load" in page and "openTerminal(event)" in page
