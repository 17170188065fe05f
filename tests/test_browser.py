"""`seedance-tui serve` end to end in a real browser: headless Chromium loads the page, its
JavaScript opens the websocket, xterm.js draws the dashboard, and the task list is there.

Chromium is driven through the DevTools protocol over aiohttp's websocket client. The page
keeps its terminal object private and draws on a canvas, so the test checks three things
the browser itself reports: the bytes the page's own websocket received contain the demo
history's prompts, textual.js marked the terminal as written (`body.-first-byte`), and a
screenshot of the page is a picture (many colours), not a blank or an error page.

What the terminal shows is read from xterm.js's own buffer (its public `buffer.active`
API): the page keeps its Terminal private, so TRAP_TERMINAL catches it when textual.js
hands it to its fit add-on. From those rows the test checks that the app's top border
is the terminal's first row (nothing cut at the page's top) and its footer the last, and
that the credits panel has figures soon after the first frame.

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

# Runs before the page's scripts: the xterm.js Terminal textual.js makes, kept as
# `window.__terminal` when its add-ons are given it (`addon._terminal = terminal`).
TRAP_TERMINAL = """
(() => {
  Object.defineProperty(Object.prototype, "_terminal", {
    configurable: true,
    set(value) {
      if (value && value.buffer && value.buffer.active && !window.__terminal) {
        window.__terminal = value;
      }
      Object.defineProperty(this, "_terminal",
                            {value, writable: true, configurable: true, enumerable: true});
    },
  });
})();
"""

# The terminal's rows as text, and where its screen sits on the page.
TERMINAL_ROWS = """
(() => {
  const terminal = window.__terminal;
  if (!terminal) { return null; }
  const buffer = terminal.buffer.active;
  const rows = [];
  for (let i = 0; i < terminal.rows; i++) {
    const line = buffer.getLine(buffer.viewportY + i);
    rows.push(line ? line.translateToString(true) : "");
  }
  const screen = document.querySelector(".xterm-screen").getBoundingClientRect();
  return {rows, scrolled: buffer.viewportY, top: screen.top, bottom: screen.bottom,
          pageHeight: window.innerHeight};
})()
"""
# Seconds from the app's first frame to the credits panel's figures. The sums start at
# mount beside the first frame and take milliseconds; generous for a loaded machine.
CREDITS_WITHIN = 15.0

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
        await tools.call("Page.addScriptToEvaluateOnNewDocument", source=TRAP_TERMINAL)
        await tools.call("Page.navigate", url=served)
        # The app's first frame in the terminal: its top row holds the task list's title.
        shown = None
        deadline = time.monotonic() + DEADLINE
        while not (shown and any("Tasks" in row for row in shown["rows"])):
            assert time.monotonic() < deadline, f"the terminal never showed the app: {shown}"
            await asyncio.sleep(POLL_INTERVAL)
            shown = await tools.evaluate(TERMINAL_ROWS)
        first_frame = time.monotonic()
        # Its figures soon after: a panel waiting for the engine stayed blank for seconds.
        while not any("refunded" in row for row in shown["rows"]):
            waited = time.monotonic() - first_frame
            assert waited < CREDITS_WITHIN, (
                f"no credits figures {waited:.1f} s after the first frame:\n"
                + "\n".join(shown["rows"])
            )
            await asyncio.sleep(POLL_INTERVAL)
            shown = await tools.evaluate(TERMINAL_ROWS)
        # The whole app in the terminal, nothing scrolled off or cut at the page's top:
        # its top border is the first row, its footer (drawn a moment after the first
        # frame) the last, all inside the page.
        deadline = time.monotonic() + DEADLINE
        while "? Help" not in shown["rows"][-1]:
            assert time.monotonic() < deadline, "no footer on the terminal's last row:\n" + (
                "\n".join(shown["rows"])
            )
            await asyncio.sleep(POLL_INTERVAL)
            shown = await tools.evaluate(TERMINAL_ROWS)
        rows = shown["rows"]
        assert shown["scrolled"] == 0, shown
        assert rows[0].startswith("╭─ Tasks"), "\n".join(rows[:3])
        assert shown["top"] >= 0 and shown["bottom"] <= shown["pageHeight"], shown
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
