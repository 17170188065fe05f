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
