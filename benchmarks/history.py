"""History-size benchmark: the dashboard's lazy list against every row in a DataTable.

For histories of 1k, 10k, 100k and 1M tasks it measures, each in a fresh process:
  * first frame: from process start (Textual's import included) to the first frame of
    the dashboard with its list painted (the list's first task row drawn), what the
    user sees; "start-up settled": until the work that follows the first frame (the
    engine built, its keys looked up, the credits scan, the selected task's poster) is
    done and the app idle. The naive table paints once idle: both are its idle time;
  * search, typed once the start-up has settled (a user types after the dashboard is
    up): from applying a search word to the filtered list's first row painted (a
    word about 1 in 15 prompts contains, so the result is large); "settled" is until the
    whole screen is idle (detail pane and labels updated too, paced by Textual's frame
    timer). The naive table has nothing to paint first: both are its settle time;
  * peak memory: the process's peak RSS.
"naive" is the approach measured before any code was written: every row of the history
loaded into a DataTable, and a search that filters them in Python and reloads the table.
The naive run is skipped at 1M (minutes and gigabytes; see TEXTUAL-NOTES.md).

It also measures the gallery (`g`), each in a fresh process, at every size:
  * launch → gallery: process start to the gallery painted (dashboard first, then `g`);
  * g → painted: the gallery's first frame after the key, tiles and captions drawn;
  * g → 16 frames: until the 16 tiles of a 160×48 screen show their frames (posters
    made beforehand in the library, as after any earlier look: decode, scale, paint);
and the poster extraction per render (median over FRAME_SAMPLES simulator videos of
100-450 KB): from a saved file, from a live link (Range requests, only the blocks the
decoder asks for), against the naive way (download the whole video, then decode).

Histories are built once (one transaction, the FTS index rebuilt at the end) and cached
under benchmarks/out/.

Run: python benchmarks/history.py [--sizes 1000,10000,100000,1000000] [--no-naive]
     [--no-gallery] [--no-frames]

`--backend postgres` (studio mode) times the store's queries instead, on the same
synthetic history in SQLite and in PostgreSQL (a throwaway server of its own, as the
tests start one: tests/pg_server.py), side by side: a list page (the first, and a keyset
page from the middle), a count, a search (its count and first page) and the credits
sums; beside them PostgreSQL's floor, one `SELECT 1` round trip. Medians of REPEATS.

     python benchmarks/history.py --backend postgres [--sizes 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

START = time.perf_counter()
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = ROOT / "benchmarks" / "out"
SIZES = (1_000, 10_000, 100_000, 1_000_000)
NAIVE_MAX = 100_000
NOW = 1_800_000_000.0
SEARCH_WORD = "lantern"
FRAME_SAMPLES = 30
GALLERY_TILES = 16  # a 160x48 screen's 4x4
SUBJECTS = (
    "fox",
    "lighthouse",
    "koi",
    "train",
    "balloon",
    "astronaut",
    "violin",
    "crane",
    "skateboarder",
    "honeybee",
    "wok",
    "glacier",
    "lantern",
    "falcon",
    "tram",
)
PLACES = (
    "beach",
    "forest",
    "desert",
    "harbor",
    "rooftop",
    "canyon",
    "market",
    "meadow",
    "station",
    "library",
    "reef",
    "bridge",
)
STYLES = ("cinematic lighting", "slow motion", "tracking shot", "overhead view", "macro",
          "golden hour", "neon rain", "film grain", "tilt-shift", "handheld")  # fmt: skip


def synthetic_tasks(count: int, *, now: float = NOW, seed: int = 7) -> Iterator:
    """`count` finished tasks, one every ~30 s back from `now`; deterministic for a seed."""
    from seedance_tui.models import Provider, Task, TaskStatus
    from seedance_tui.store import new_task_id

    rng = random.Random(seed)
    nano_prices = {"480p": 2, "720p": 4, "1080p": 8}
    for i in range(count):
        created = now - (count - i) * 30.0 - rng.random() * 20
        prompt = (f"A {rng.choice(SUBJECTS)} at the {rng.choice(PLACES)}, "
                  f"{rng.choice(STYLES)}, take {i}")  # fmt: skip
        failed = rng.random() < 0.08
        if rng.random() < 0.6:
            res, dur = rng.choice(("480p", "720p", "1080p")), rng.choice(("4", "8", "12"))
            credits = nano_prices[res] * int(dur) // 4
            params = {"mode": "text-to-video", "aspect_ratio": "landscape", "resolution": res,
                      "duration": dur, "audio": False, "fixed_lens": False}  # fmt: skip
            provider = Provider.NANOPHOTO
        else:
            dur = rng.choice(("5", "10"))
            credits = 65 * int(dur) // 5
            params = {"mode": "text-to-video", "aspect_ratio": "16:9", "duration": dur,
                      "audio": False}  # fmt: skip
            provider = Provider.SEEDANCE15PRO
        id = new_task_id(created)
        yield Task(
            id=id, provider=provider,
            status=TaskStatus.FAILED if failed else TaskStatus.COMPLETED,
            prompt=prompt, params=params, created_at=created, task_id=f"bench_{id}",
            credits_estimated=credits, credits_charged=credits,
            credits_refunded=credits if failed else 0,
            video_urls=() if failed else (f"http://127.0.0.1:47615/media/bench_{id}.mp4",),
            error="Video generation failed" if failed else None,
            submitted_at=created + 0.3, completed_at=created + 40, generation_time=None if failed else 38.0,
            updated_at=created + 40,
        )  # fmt: skip


def history(count: int) -> Path:
    """The cached history file of `count` tasks, built if missing."""
    from seedance_tui.store import Store

    path = OUT / f"history-{count}.db"
    if path.exists():
        store = Store.open(path, create=False)
        try:
            if store.count() == count:
                return path
        finally:
            store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    store = Store.open(path)
    store.bulk_import(synthetic_tasks(count))
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as conn:  # the WAL folded into the file
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(f"  built {path.name} in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return path


# -- the two contestants, each run in a child process ----------------------------------


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def run_ours(db: Path) -> dict:
    from seedance_tui.config import load_settings
    from seedance_tui.tui.app import SeedanceApp
    from seedance_tui.tui.task_list import TaskList

    first_paint: list[float] = []
    class_render_line = TaskList.render_line

    def noted_render_line(self, y: int):
        strip = class_render_line(self, y)
        if y == 1 and not first_paint:  # line 0 is the header: the first task row
            first_paint.append(time.perf_counter() - START)
        return strip

    TaskList.render_line = noted_render_line  # notes when the list is first painted
    app = SeedanceApp(load_settings(db=db, env={}), clock=lambda: NOW, poll=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        await app.workers.wait_for_complete()  # the start-up work after the first frame
        await pilot.pause()
        startup_settled = time.perf_counter() - START
        TaskList.render_line = class_render_line
        first_frame = first_paint[0]
        tasks = app.query_one(TaskList)
        assert tasks.total > 0 and tasks.task_at(0) is not None
        painted: list[float] = []
        render_line = tasks.render_line

        def timed_render_line(y: int):
            strip = render_line(y)
            if y == 1 and not painted:
                painted.append(time.perf_counter())
            return strip

        tasks.render_line = timed_render_line  # notes when the new first row is painted
        started = time.perf_counter()
        app.dashboard.query_state.search = SEARCH_WORD
        app.dashboard.apply_query()
        await pilot.pause()
        settled = time.perf_counter() - started
        search = painted[0] - started
        tasks.render_line = render_line
        matches = tasks.total
        for _ in range(20):  # scroll a few pages deep and back: memory stays flat
            await pilot.press("pagedown")
        await pilot.press("end")
        await pilot.press("home")
        held = tasks.held_rows()
        await app.workers.wait_for_complete()
    return {"first_frame": first_frame, "startup_settled": startup_settled, "search": search,
            "settled": settled, "matches": matches, "held": held}  # fmt: skip


async def run_naive(db: Path) -> dict:
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.widgets import DataTable

    from seedance_tui.store import Store

    store = Store.open(db)
    tasks = store.list(limit=None)

    def rows(selected):
        return [
            (Text(t.short_id), Text(t.provider.value), Text(t.status.value),
             Text(t.prompt[:40]), Text(t.spec.summary()), Text(str(t.credits_net)))
            for t in selected
        ]  # fmt: skip

    class Naive(App):
        def compose(self) -> ComposeResult:
            yield DataTable()

        def on_mount(self) -> None:
            table = self.query_one(DataTable)
            table.add_columns("id", "provider", "status", "prompt", "params", "credits")
            table.add_rows(rows(tasks))

    app = Naive()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        first_frame = time.perf_counter() - START
        started = time.perf_counter()
        table = app.query_one(DataTable)
        matching = [t for t in tasks if SEARCH_WORD in t.prompt.lower()]
        table.clear()
        table.add_rows(rows(matching))
        await pilot.pause()
        search = settled = time.perf_counter() - started
    return {"first_frame": first_frame, "startup_settled": first_frame, "search": search,
            "settled": settled, "matches": len(matching),
            "held": len(tasks)}  # fmt: skip


async def run_gallery(db: Path) -> dict:
    from seedance_tui.config import load_settings
    from seedance_tui.tui.app import SeedanceApp
    from seedance_tui.tui.frame_view import FrameView
    from seedance_tui.tui.gallery import GalleryScreen, Tile

    app = SeedanceApp(load_settings(db=db, env={}), clock=lambda: NOW, poll=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        started = time.perf_counter()
        await pilot.press("g")
        await pilot.pause()
        painted = time.perf_counter()
        gallery = app.screen
        assert isinstance(gallery, GalleryScreen)
        views = [tile.query_one(FrameView) for tile in gallery.query(Tile)]
        deadline = time.monotonic() + 30
        framed_views = [v for v in views if v.subject is not None and v.subject.video_urls]
        while not all(v.shown == v.subject.id for v in framed_views):
            if time.monotonic() > deadline:
                raise SystemExit("the gallery's frames did not show within 30 s")
            await pilot.pause(0.005)
        framed = time.perf_counter()
        for _ in range(10):
            await pilot.press("pagedown")
        held = gallery.pages.held_rows()
        await pilot.press("escape")
        await app.workers.wait_for_complete()
    return {"launch": painted - START, "open": painted - started, "framed": framed - started,
            "held": held, "tiles": len(views)}  # fmt: skip


async def run_floor(db: Path) -> dict:
    """The floor under both figures: a bare Textual app in the same harness, at the same
    size — one Static for the first frame, then a screen of 16 bordered tiles with two
    caption lines each pushed on a key (what `g` does, without a history or images).
    Nothing of ours is imported, so no dashboard can be faster on this machine now."""
    from textual.app import App, ComposeResult
    from textual.containers import Grid, Vertical
    from textual.screen import Screen
    from textual.widgets import Footer, Static

    class Tiles(Screen):
        DEFAULT_CSS = """
        Grid { grid-size: 4 4; }
        Vertical { border: round $border-blurred; }
        """

        def compose(self) -> ComposeResult:
            with Grid():
                for i in range(GALLERY_TILES):
                    with Vertical():
                        yield Static(" ", classes="image")
                        yield Static(f"caption {i}")
                        yield Static("provider · credits · duration · id")
            yield Footer()

    class Bare(App):
        def compose(self) -> ComposeResult:
            yield Static("a first frame")
            yield Footer()

    app = Bare()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        first_frame = time.perf_counter() - START
        started = time.perf_counter()
        app.push_screen(Tiles())
        await pilot.pause()
        painted = time.perf_counter()
    return {"first_frame": first_frame, "open": painted - started}


def prepare_posters(db: Path, home: Path) -> None:
    """Posters of the gallery's first screen of tasks, in the library under `home`."""
    import os

    os.environ["SEEDANCE_TUI_HOME"] = str(home)
    from seedance_tui import frames
    from seedance_tui.config import load_settings
    from seedance_tui.simulator.media import media_bytes
    from seedance_tui.store import Store

    settings = load_settings(db=db, env={})
    store = Store.open(db, create=False)
    try:
        for task in store.list(limit=GALLERY_TILES):
            if task.video_urls and frames.cached_poster(settings, task) is None:
                video = home / "video.mp4"
                video.write_bytes(media_bytes(task.task_id or task.id))
                frames._cache_from_file(settings, task, video)
    finally:
        store.close()


def frame_timings(samples: int = FRAME_SAMPLES) -> dict:
    """Median seconds to make one poster: from a file, from a link, and the naive way."""
    import asyncio
    import statistics
    import tempfile

    from seedance_tui import frames, library
    from seedance_tui.client import MediaClient
    from seedance_tui.simulator import SimConfig, SimulatorServer
    from seedance_tui.simulator.media import media_bytes

    ids = [f"task_bench{i:03d}" for i in range(samples)]
    folder = Path(tempfile.mkdtemp(prefix="frames-"))
    sizes = [len(media_bytes(i)) for i in ids]  # encoded before any clock starts
    from_file: list[float] = []
    for task_id in ids:
        path = folder / f"{task_id}.mp4"
        path.write_bytes(media_bytes(task_id))
        started = time.perf_counter()
        frames.save_png(frames.thumbnail(frames.extract_poster(path)), folder / f"{task_id}.png")
        from_file.append(time.perf_counter() - started)

    async def over_http(base: str) -> tuple[list[float], list[float], int]:
        link_times, naive_times, fetched = [], [], 0
        async with MediaClient() as media:
            for task_id in ids:
                url = f"{base}/media/{task_id}.mp4"
                started = time.perf_counter()
                image, link = await frames.poster_from_link(media, url)
                frames.thumbnail(image)
                link_times.append(time.perf_counter() - started)
                fetched += link.fetched
                dest = folder / f"{task_id}-whole.mp4"
                started = time.perf_counter()
                await library.download_url(media, url, dest)
                frames.thumbnail(frames.extract_poster(dest))
                naive_times.append(time.perf_counter() - started)
        return link_times, naive_times, fetched

    with SimulatorServer(SimConfig(seed=1)) as sim:
        for task_id in ids:
            import httpx

            httpx.get(f"{sim.base_url}/media/{task_id}.mp4").raise_for_status()  # warm its cache
        link_times, naive_times, fetched = asyncio.run(over_http(sim.base_url))
    return {
        "file": statistics.median(from_file),
        "link": statistics.median(link_times),
        "naive": statistics.median(naive_times),
        "read_share": fetched / sum(sizes),
        "mean_kb": sum(sizes) / len(sizes) / 1000,
    }


def child(kind: str, db: Path) -> None:
    import asyncio

    runs = {"ours": run_ours, "naive": run_naive, "gallery": run_gallery, "floor": run_floor}
    result = asyncio.run(runs[kind](db))
    result["peak_mb"] = peak_mb()
    print(json.dumps(result))


def child_env(extra: dict | None = None) -> dict:
    """A child's environment with bytecode as an installed wheel has it (pip compiles it):
    every module, Textual's too, compiled once into one cache by the warm-up run, not again
    in each measured process (PYTHONDONTWRITEBYTECODE would make every run compile)."""
    import os

    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
    return {**env, **(extra or {})}


def measure(kind: str, db: Path, env: dict | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--db", str(db)],
        capture_output=True,
        text=True,
        check=False,
        env=child_env(env),
    )
    if done.returncode != 0:
        raise SystemExit(f"{kind} run on {db.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


REPEATS = 7


def store_timings(store, size: int) -> dict[str, float]:
    """Median seconds of each query the dashboard and `credits` make, on an open store."""
    import statistics

    from seedance_tui.store import Filter

    middle = store.list(None, limit=1, offset=size // 2)[0].id
    search = Filter(search=SEARCH_WORD)
    queries = {
        "first page (50)": lambda: store.list(None, limit=50),
        "keyset page, middle": lambda: store.list_after(None, middle, limit=50),
        "count": lambda: store.count(),
        "search: count": lambda: store.count(search),
        "search: first page": lambda: store.list(search, limit=50),
        "credits sums": lambda: store.credits_summary(NOW),
    }
    timings = {}
    for name, query in queries.items():
        query()  # warm: the page cache, the plan
        runs = []
        for _ in range(REPEATS):
            started = time.perf_counter()
            query()
            runs.append(time.perf_counter() - started)
        timings[name] = statistics.median(runs)
    return timings


def backend_table(sizes: list[int]) -> None:
    """The store's queries on SQLite and on PostgreSQL, side by side."""
    import statistics

    sys.path.insert(0, str(ROOT / "tests"))
    from pg_server import PgServer

    from seedance_tui.store import Store
    from seedance_tui.store.postgres import PgStore

    with PgServer.start() as server:
        for size in sizes:
            sqlite_store = Store.open(history(size), create=False)
            url = server.create_database(f"history_{size}")
            pg = PgStore.open(url)
            started = time.perf_counter()
            pg.bulk_import(synthetic_tasks(size))
            print(f"  loaded {size:,} tasks into PostgreSQL in "
                  f"{time.perf_counter() - started:.1f}s", file=sys.stderr)  # fmt: skip
            try:
                assert pg.count() == sqlite_store.count() == size
                lite, post = store_timings(sqlite_store, size), store_timings(pg, size)
                floor = []
                for _ in range(REPEATS):
                    started = time.perf_counter()
                    pg._scalar("SELECT 1")
                    floor.append(time.perf_counter() - started)
            finally:
                sqlite_store.close()
                pg.close()
            print(f"\n{size:,} tasks: median of {REPEATS} runs, ms; "
                  f"PostgreSQL's floor (SELECT 1 round trip) "
                  f"{statistics.median(floor) * 1000:.2f} ms")  # fmt: skip
            print(f"{'query':<22} | {'SQLite':>9} | {'PostgreSQL':>10} | PostgreSQL ÷ SQLite")
            print("-" * 66)
            for name in lite:
                a, b = lite[name] * 1000, post[name] * 1000
                print(f"{name:<22} | {a:>9.2f} | {b:>10.2f} | {b / a:.1f}×")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES))
    parser.add_argument(
        "--backend", choices=("sqlite", "postgres"), default="sqlite",
        help="postgres: the store's queries on both backends, side by side",
    )  # fmt: skip
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--no-gallery", action="store_true")
    parser.add_argument("--no-frames", action="store_true")
    parser.add_argument("--child", choices=("ours", "naive", "gallery", "floor"))
    parser.add_argument("--db", type=Path)
    parser.add_argument("--posters", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.posters:
        prepare_posters(args.db, args.posters)
        return
    if args.child:
        child(args.child, args.db)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.backend == "postgres":
        backend_table(sizes if args.sizes != parser.get_default("sizes") else [100_000])
        return
    header = (
        f"{'tasks':>9} | {'first frame':>22} | {'start-up settled':>22} "
        f"| {'search (list painted)':>24} "
        f"| {'search (settled)':>24} | {'peak memory':>22} | held rows"
    )
    print(f"search word: {SEARCH_WORD!r}; ours / naive (naive ÷ ours)")
    print(header)
    print("-" * len(header))
    results = {}
    measure("ours", history(sizes[0]))  # the warm-up: compiles the bytecode, fills the page cache
    for size in sizes:
        db = history(size)
        ours = measure("ours", db)
        naive = measure("naive", db) if size <= NAIVE_MAX and not args.no_naive else None
        results[size] = ours

        def pair(
            key: str, unit: str, scale: float = 1.0, fmt: str = ".2f", ours=ours, naive=naive
        ) -> str:
            a = ours[key] * scale
            if naive is None:
                return f"{a:{fmt}}{unit} / -"
            b = naive[key] * scale
            return f"{a:{fmt}}{unit} / {b:{fmt}}{unit} ({b / a:.1f}×)"

        print(
            f"{size:>9,} | {pair('first_frame', 's'):>22} | {pair('startup_settled', 's'):>22} "
            f"| {pair('search', 'ms', 1000, '.0f'):>24} "
            f"| {pair('settled', 'ms', 1000, '.0f'):>24} "
            f"| {pair('peak_mb', 'MB', 1, '.0f'):>22} | {ours['held']:,}"
            + ("" if naive else "  (naive not run)")
        )
    if 1_000 in results and 1_000_000 in results:
        growth = results[1_000_000]["peak_mb"] / results[1_000]["peak_mb"] - 1
        print(f"\npeak memory at 1M vs 1k: {growth:+.0%} (target within ±20%)")
    floors = [measure("floor", history(sizes[0])) for _ in range(3)]
    floor = {k: statistics.median(f[k] for f in floors) for k in ("first_frame", "open")}
    print(f"floor: a bare Textual app in the same harness, first frame {floor['first_frame']:.2f}s "
          "(median of 3; what this machine allows now)")  # fmt: skip
    if 100_000 in results:
        r = results[100_000]
        print(f"at 100k: first frame {r['first_frame']:.2f}s (target ≤ 1s; "
              f"{r['first_frame'] / floor['first_frame']:.2f}× the floor), start-up settled "
              f"{r['startup_settled']:.2f}s, search "
              f"{r['search'] * 1000:.0f}ms painted, {r['settled'] * 1000:.0f}ms settled "
              "(target ≤ 100ms)")  # fmt: skip
    if not args.no_gallery:
        gallery_table(sizes, floor["open"])
    if not args.no_frames:
        f = frame_timings()
        print(
            f"\nposter per render, median of {FRAME_SAMPLES} simulator videos "
            f"(mean {f['mean_kb']:.0f} KB):"
        )
        print(f"  from the saved file {f['file'] * 1000:.1f} ms; from the link "
              f"{f['link'] * 1000:.1f} ms reading {f['read_share']:.0%} of the bytes; "
              f"naive (download whole, then decode) {f['naive'] * 1000:.1f} ms "
              f"({f['naive'] / f['link']:.1f}× the link's)")  # fmt: skip


def gallery_table(sizes: list[int], floor_open: float) -> None:
    import tempfile

    print("\ngallery (g) at 160×48: launch → gallery painted | g → painted | "
          f"g → {GALLERY_TILES} frames shown | held rows after 10 pages")  # fmt: skip
    opened = {}
    for size in sizes:
        db = history(size)
        home = Path(tempfile.mkdtemp(prefix="gallery-home-"))
        done = subprocess.run(
            [sys.executable, __file__, "--posters", str(home), "--db", str(db)], check=False
        )
        if done.returncode != 0:
            raise SystemExit("preparing the posters failed")
        if not opened:  # the warm-up: the gallery's own modules compiled once
            measure("gallery", db, env={"SEEDANCE_TUI_HOME": str(home)})
        r = measure("gallery", db, env={"SEEDANCE_TUI_HOME": str(home)})
        opened[size] = r
        print(f"{size:>9,} | {r['launch']:.2f}s | {r['open'] * 1000:.0f} ms | "
              f"{r['framed'] * 1000:.0f} ms | {r['held']:,}")  # fmt: skip
    if 100_000 in opened:
        r = opened[100_000]
        line = (
            f"at 100k: the gallery's first frame {r['open'] * 1000:.0f} ms after g (target ≤ 1 s)"
        )
        if 1_000 in opened:
            line += f", {r['open'] / opened[1_000]['open']:.2f}× its time at 1k"
        print(line)
    print(f"floor: a bare screen of {GALLERY_TILES} bordered tiles pushed in the same harness: "
          f"{floor_open * 1000:.0f} ms (median of 3)")  # fmt: skip


if __name__ == "__main__":
    main()
