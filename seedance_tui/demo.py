"""`--demo`: the built-in simulator on loopback and a seeded demo history, no key needed."""

from __future__ import annotations

import os
import random
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from . import providers
from .config import Settings, load_settings
from .keys import fingerprint
from .models import JobSpec, Mode, Provider, Task, TaskStatus
from .paths import demo_db_path
from .simulator import SimConfig, SimulatorServer
from .store import Store, new_task_id

# The demo simulator prefers a fixed port, so the seeded history's video links keep working.
DEMO_PORT = int(os.environ.get("SEEDANCE_TUI_DEMO_PORT", "47615"))
DEMO_KEY = "demo-key"  # the simulator accepts any key; this one is not a secret
DEMO_RENDER_SECONDS = (8.0, 20.0)
# The demo's polling: its simulator has no rate limit to save, so a job is first checked
# about when the fastest render can be done and every couple of seconds after (the real
# providers' defaults wait up to 30 s between checks, to spare a 100-an-hour budget).
DEMO_POLLING = {
    "min_interval": 1.0,
    "target_latency": 2.0,
    "max_interval": 4.0,
    "prior": DEMO_RENDER_SECONDS,
}
UNSAVED_EVERY = 6  # one seeded render in this many was never saved (its link expired)

PROMPTS = (
    "A golden retriever running on a beach at sunset, cinematic lighting",
    "Drone shot over a neon night market in the rain",
    "The character comes alive, walking through a magical forest",
    "Slow dolly-in on a steaming cup of coffee by a frosted window",
    "Paper boats drifting down a flooded city street, overhead view",
    "A lighthouse beam sweeping across a stormy sea at night",
    "Time-lapse of clouds rolling over snowy mountain peaks",
    "Macro shot of a honeybee landing on a lavender flower",
    "Retro arcade cabinet flickering to life in an empty mall",
    "A red fox trotting through fresh snow, tracking shot",
    "Astronaut floating past the window of a space station, Earth below",
    "Street musician playing violin under a bridge, warm evening light",
    "Koi fish circling in a pond, ripples catching the sun",
    "A vintage train crossing a stone viaduct in autumn",
    "Close-up of hands shaping clay on a potter's wheel",
    "Fireflies rising from tall grass at dusk",
    "Neon sign reading [bold red]OPEN[/] flickers in the rain",
    "A hot air balloon festival at dawn, wide shot",
    "Waves crashing over black volcanic rocks in slow motion",
    "Cat knocking a glass off a kitchen counter, comedic timing",
    "Origami crane unfolding itself on a wooden desk",
    "Skateboarder carving through an empty swimming pool, fisheye",
    "Northern lights over a frozen lake, tripod shot",
    "Chef flipping vegetables in a flaming wok, close-up",
)
IMAGES = (
    "https://static.nanophoto.ai/demo/nano-banana-pro.webp",
    "https://cdn.example.com/reference/frame01.png",
)
FAILURES = (
    "Video generation failed",
    "content moderation: the prompt was flagged",
    "upstream render node timed out",
)


@dataclass
class DemoSession:
    settings: Settings
    simulator: SimulatorServer

    def close(self) -> None:
        self.simulator.stop()


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def start_demo(db_path: Path | None = None, *, now: float | None = None) -> DemoSession:
    """Start the simulator, point both providers at it, and open (seeding if new) the demo file."""
    config = SimConfig(generation_time=DEMO_RENDER_SECONDS, failure_rate=0.12)
    port = DEMO_PORT if _port_free(DEMO_PORT) else 0
    simulator = SimulatorServer(config, port=port)
    base_url = simulator.start()
    env = {
        "NANOPHOTO_BASE_URL": base_url,
        "SEEDANCE15PRO_BASE_URL": base_url,
        "NANOPHOTO_API_KEY": DEMO_KEY,
        "SEEDANCE15PRO_API_KEY": DEMO_KEY,
    }
    settings = load_settings(db=db_path or demo_db_path(), env=env)
    settings.demo = True
    settings.polling = dict(DEMO_POLLING)  # the user's [polling] is for real providers
    for provider_settings in settings.providers.values():
        provider_settings.requests_per_hour = None  # the simulator counts no budget
    store = Store.open(settings.db_path)
    try:
        if store.count() == 0:
            now = now or time.time()
            tasks = seed_history(store, now, media_base=f"http://127.0.0.1:{DEMO_PORT}")
            seed_library(store, settings, tasks, now)
    finally:
        store.close()
    return DemoSession(settings, simulator)


def seed_history(
    store: Store,
    now: float,
    *,
    count: int = 48,
    days: int = 21,
    seed: int = 1515,
    media_base: str = f"http://127.0.0.1:{DEMO_PORT}",
) -> list[Task]:
    """Past tasks over a few weeks, both providers, some failures: the same for a given seed."""
    rng = random.Random(seed)
    times = sorted(now - rng.uniform(600, days * 86400) for _ in range(count))
    tasks = []
    for index, created in enumerate(times):
        provider = Provider.NANOPHOTO if rng.random() < 0.6 else Provider.SEEDANCE15PRO
        spec = _random_spec(rng, provider, index)
        job = providers.get(provider).prepare(spec)
        spec, estimate = job.spec, job.quote.credits
        roll = rng.random()
        status = (
            TaskStatus.FAILED if roll < 0.12
            else TaskStatus.REJECTED if roll < 0.15
            else TaskStatus.COMPLETED
        )  # fmt: skip
        tasks.append(_past_task(rng, spec, estimate, status, created, media_base))
    for task in tasks:
        store.insert_task(task, _events(task))
    return tasks


def seed_library(store: Store, settings: Settings, tasks: list[Task], now: float) -> list[Task]:
    """Save the seeded renders' videos in the library, as auto-download would have.

    One render older than a day in UNSAVED_EVERY is left unsaved: its link has likely
    expired, which the list, the detail pane and the gallery say. (Renders submitted in
    the demo are read from the simulator's links until auto-download saves them.)
    Returns the tasks saved."""
    from .library import target_path
    from .simulator.media import media_bytes, shape_of

    folder = settings.library_dir()
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    old = [t for t in tasks if t.status is TaskStatus.COMPLETED and t.task_id]
    for index, task in enumerate(old):
        recent = now - (task.completed_at or task.created_at) < 86400
        if not recent and index % UNSAVED_EVERY == 3:
            continue
        path = target_path(task, folder)
        path.write_bytes(media_bytes(task.task_id, shape_of(task.params.get("aspect_ratio"))))
        store.set_local_path(task.id, str(path), task.completed_at or now)
        saved.append(store.get(task.id))
    return saved


def _random_spec(rng: random.Random, provider: Provider, index: int) -> JobSpec:
    prompt = PROMPTS[index % len(PROMPTS)]
    image = rng.random() < 0.2
    if provider is Provider.NANOPHOTO:
        return JobSpec(
            provider, prompt,
            mode=Mode.IMAGE_TO_VIDEO if image else Mode.TEXT_TO_VIDEO,
            image_urls=(IMAGES[0],) if image else (),
            aspect_ratio=rng.choice(("landscape", "landscape", "portrait")),
            resolution=rng.choice(("480p", "720p", "720p", "1080p")),
            duration=rng.choice(("4", "8", "8", "12")),
            audio=rng.random() < 0.4,
            fixed_lens=rng.random() < 0.2,
        )  # fmt: skip
    return JobSpec(
        provider, prompt,
        mode=Mode.IMAGE_TO_VIDEO if image else Mode.TEXT_TO_VIDEO,
        image_urls=(IMAGES[1],) if image else (),
        aspect_ratio=None if image else rng.choice(("16:9", "9:16", "1:1")),
        duration=rng.choice(("5", "10")),
        audio=rng.random() < 0.3,
    )  # fmt: skip


def _past_task(
    rng: random.Random,
    spec: JobSpec,
    estimate: int,
    status: TaskStatus,
    created: float,
    media_base: str,
) -> Task:
    fp = fingerprint(spec.provider, DEMO_KEY)
    id = new_task_id(created)
    id = id[:12] + f"{rng.getrandbits(32):08x}"  # deterministic for a seed
    if status is TaskStatus.REJECTED:
        return Task(
            id=id, provider=spec.provider, status=status, prompt=spec.prompt,
            params=spec.params(), created_at=created, key_fingerprint=fp,
            credits_estimated=estimate, completed_at=created + 0.4, updated_at=created + 0.4,
            error=f"{spec.provider.value}: Insufficient credits [INSUFFICIENT_CREDITS] (HTTP 402)",
        )  # fmt: skip
    prefix = "task_" if spec.provider is Provider.NANOPHOTO else "sd15p_"
    task_id = prefix + f"{rng.getrandbits(48):012x}"
    render = round(rng.uniform(*DEMO_RENDER_SECONDS), 1)
    submitted = created + 0.3
    done = submitted + render + rng.uniform(1, 6)
    failed = status is TaskStatus.FAILED
    return Task(
        id=id, provider=spec.provider, status=status, prompt=spec.prompt, params=spec.params(),
        created_at=created, task_id=task_id, key_fingerprint=fp, credits_estimated=estimate,
        credits_charged=estimate, credits_refunded=estimate if failed else 0,
        video_urls=() if failed else (f"{media_base}/media/{task_id}.mp4",),
        error=rng.choice(FAILURES) if failed else None, submitted_at=submitted,
        completed_at=done, generation_time=None if failed else render, updated_at=done,
        last_polled_at=done,
    )  # fmt: skip


def _events(task: Task) -> list[dict]:
    events = [{"at": task.created_at, "kind": "intent", "status": "submitting",
               "detail": f"estimate={task.credits_estimated}"}]  # fmt: skip
    if task.task_id:
        events.append({"at": task.submitted_at, "kind": "submitted", "status": "processing",
                       "detail": f"task_id={task.task_id}"})  # fmt: skip
    events.append({"at": task.completed_at, "kind": "status", "status": task.status.value,
                   "detail": task.error or "completed"})  # fmt: skip
    return events
