"""`seedance-tui serve` end to end in a real browser: headless Chromium loads the page, its
JavaScript opens the websocket, xterm.js draws the dashboard, and the task list is there.

Chromium is driven through the DevTools protocol over aiohttp's websocket client. The page
keeps its terminal object private and draws on a canvas, so the test checks three things
the browser itself reports: the bytes the page's own websocket received contain the demo
history's prompts, textual.js marked the terminal as written (`body.-first-byte`), and a
screenshot of the page is a picture (many colours), not a blank or an error page.

Skipped only when /usr/bin/chromium is missing (Debian's `chromium` package; `.ci/run`
installs it). Set SEEDANCE_TUI_WEB_SCREENSHOT=PATH to keep the screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from processes import DEADLINE, POLL_INTERVAL, Processes, free_port, stop, wait_for_http

from seedance_tui.demo import PROMPTS

CHROMIUM = Path("/usr/bin/chromium")
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]|\x1b[=>]")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless browser test needs /usr/bin/chromium (apt-get install chromium)",
)

# Runs before the page's scripts: keep what the page's websocket receives, as text.
CAPTURE_SOCKET = """
(() => {
  const Native = window.WebSocket;
  const decoder = new TextDecoder();
  window.__received = "";
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (event) => {
        if (typeof event.data !== "string") {
          window.__received += decoder.decode(event.data, {stream: true});
        }
      });
    }
  };
})();
"""

# How many distinct colours a screenshot has (a blank page has one or two).
COUNT_COLOURS = """
(async (data) => {
  const image = new Image();
  image.src = "data:image/png;base64," + data;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, image.width, image.height).data;
  const colours = new Set();
  for (let i = 0; i < pixels.length; i += 4 * 7) {
    colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
  }
  return colours.size;
})
"""


@pytest.fixture
def served(tmp_path: Path, processes: Processes) -> str:
    port = free_port()
    env = {**os.environ, "SEEDANCE_TUI_HOME": str(tmp_path / "home"),
           "SEEDANCE_TUI_DEMO_PORT": str(free_port())}  # fmt: skip
    process = processes.spawn(
        [sys.executable, "-m", "seedance_tui", "--demo", "serve", "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    wait_for_http(process, f"http://127.0.0.1:{port}/", "serve")
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def chromium(tmp_path: Path, processes: Processes):
    """Headless Chromium with the DevTools protocol on a loopback port; yields its port."""
    port = free_port()
    process = processes.spawn(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", f"--user-data-dir={tmp_path / 'chromium'}",
         f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
         "--window-size=1280,800",
         # Nothing but loopback: the page's web font request fails at once.
         "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_http(process, f"http://127.0.0.1:{port}/json/version", "chromium's DevTools")
        yield port
    finally:
        stop(process)
        shutil.rmtree(tmp_path / "chromium", ignore_errors=True)


class DevTools:
    """The few DevTools protocol calls the test needs, over one page's websocket."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    async def call(self, method: str, **params):
        id = next(self.ids)
        await self.ws.send_json({"id": id, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), 20)
            if message.get("id") == id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    async def evaluate(self, expression: str, *, await_promise: bool = False):
        result = await self.call(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression[:60]}: {result['exceptionDetails']}")
        return result["result"].get("value")


async def test_the_browser_shows_the_dashboards_task_list(served: str, chromium: int):
    import aiohttp

    # A prompt's first words: the list cuts prompts to its width (about 140 columns here).
    prompts = {p.split(",")[0][:16] for p in PROMPTS}
    targets = httpx.get(f"http://127.0.0.1:{chromium}/json/list").json()
    page = next(t for t in targets if t["type"] == "page")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws,
    ):
        tools = DevTools(ws)
        await tools.call("Page.enable")
        await tools.call("Page.addScriptToEvaluateOnNewDocument", source=CAPTURE_SOCKET)
        await tools.call("Page.navigate", url=served)
        received = ""
        deadline = time.monotonic() + DEADLINE
        while not any(p in received for p in prompts):
            assert time.monotonic() < deadline, (
                f"no prompt of the demo history in what the page received: {received[-1500:]}"
            )
            await asyncio.sleep(POLL_INTERVAL)
            received = ANSI.sub("", await tools.evaluate("window.__received || ''") or "")
        assert "Tasks" in received and "New job" in received
        # textual.js wrote the dashboard into the terminal, which xterm.js draws.
        assert await tools.evaluate("document.body.classList.contains('-first-byte')")
        assert await tools.evaluate("document.querySelectorAll('.xterm-screen canvas').length")
        # The terminal fades in (0.3 s) and draws on animation frames: look until it shows.
        colours = 0
        deadline = time.monotonic() + DEADLINE
        while colours <= 20:
            assert time.monotonic() < deadline, f"the page looks blank ({colours} colours)"
            await asyncio.sleep(POLL_INTERVAL)
            shot = (await tools.call("Page.captureScreenshot", format="png"))["data"]
            colours = await tools.evaluate(f"{COUNT_COLOURS}({shot!r})", await_promise=True)
        if target := os.environ.get("SEEDANCE_TUI_WEB_SCREENSHOT"):
            Path(target).write_bytes(base64.b64decode(shot))


async def test_keys_reach_the_dashboard_without_a_click(served: str, chromium: int):
    """The page gives the terminal the keyboard once the dashboard shows: a key typed
    without clicking anywhere (here `?`, the help screen) reaches it."""
    import aiohttp

    prompts = {p.split(",")[0][:16] for p in PROMPTS}
    targets = httpx.get(f"http://127.0.0.1:{chromium}/json/list").json()
    page = next(t for t in targets if t["type"] == "page")
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws,
    ):
        tools = DevTools(ws)
        await tools.call("Page.enable")
        await tools.call("Page.addScriptToEvaluateOnNewDocument", source=CAPTURE_SOCKET)
        await tools.call("Page.navigate", url=served)
        received = ""
        deadline = time.monotonic() + DEADLINE
        while not any(p in received for p in prompts):
            assert time.monotonic() < deadline, f"the dashboard never showed: {received[-800:]}"
            await asyncio.sleep(POLL_INTERVAL)
            received = ANSI.sub("", await tools.evaluate("window.__received || ''") or "")
        focused = "document.activeElement && document.activeElement.className"
        deadline = time.monotonic() + DEADLINE
        while "xterm-helper-textarea" not in (await tools.evaluate(focused) or ""):
            assert time.monotonic() < deadline, "the terminal never took the keyboard"
            await asyncio.sleep(POLL_INTERVAL)
        shown = len(received)
        for kind in ("keyDown", "char", "keyUp"):  # `?`, typed (DevTools sends it to the focus)
            await tools.call("Input.dispatchKeyEvent", type=kind, text="?", key="?",
                             code="Slash", windowsVirtualKeyCode=191, modifiers=8)  # fmt: skip
        deadline = time.monotonic() + DEADLINE
        while "Keys" not in received[shown:] or "Dashboard" not in received[shown:]:
            assert time.monotonic() < deadline, f"`?` did not reach it: {received[shown:][-800:]}"
            await asyncio.sleep(POLL_INTERVAL)
            received = ANSI.sub("", await tools.evaluate("window.__received || ''") or "")
