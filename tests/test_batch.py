"""Batches: checked whole, priced, confirmed once, queued durably, sent within the budget."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import httpx
import pytest
from raw_sql import raw_sql

from seedance_tui import cli
from seedance_tui.batch import load_batch
from seedance_tui.config import Settings
from seedance_tui.events import TaskChanged
from seedance_tui.models import Provider, TaskStatus
from seedance_tui.session import Session
from seedance_tui.store import Filter, Store

FAST_POLLING = {
    "min_interval": 0.1,
    "target_latency": 0.3,
    "max_interval": 1.0,
    "prior": (0.3, 1.0),
}


@pytest.fixture
def fast(settings: Settings) -> Settings:
    settings.polling = dict(FAST_POLLING)
    settings.auto_download = False
    return settings


def write_jobs(path: Path, count: int) -> Path:
    lines = []
    for i in range(count):
        job = {"prompt": f"batch job {i}: a paper boat, take {i}", "duration": "4"}
        if i % 2:
            job |= {"provider": "nanophoto", "resolution": "480p", "audio": i % 4 == 1}
        else:
            job |= {"provider": "seedance15pro", "duration": "5", "aspect": "9:16"}
        lines.append(json.dumps(job))
    path.write_text("\n".join(lines) + "\n")
    return path


def sim_json(sim, path: str):
    return httpx.get(sim.base_url + path).json()


def tasks_of(store: Store, status: TaskStatus) -> list:
    return store.list(Filter(status=(status.value,)), limit=None)


def test_every_bad_row_is_reported_and_nothing_is_queued(fast, tmp_path, capsys) -> None:
    bad = tmp_path / "jobs.jsonl"
    bad.write_text(
        '{"prompt": "fine"}\n'
        '{"prompt": ""}\n'
        "not json\n"
        '{"prompt": "x", "provider": "nanophoto", "resolution": "4k"}\n'
        '{"prompt": "x", "colour": "red"}\n'
        '["a list"]\n'
    )
    assert cli.main(["--db", str(fast.db_path), "submit", "--batch", str(bad), "--yes"]) == 2
    err = capsys.readouterr().err
    for line in (2, 3, 4, 5, 6):
        assert f"jobs.jsonl:{line}:" in err
    assert "jobs.jsonl:1:" not in err
    assert "resolution" in err and "colour" in err and "nothing was queued" in err
    store = Store.open(fast.db_path)
    assert store.count() == 0
    store.close()


def test_csv_rows_and_config_defaults(fast, tmp_path) -> None:
    fast.providers[Provider.NANOPHOTO].defaults = {"resolution": "1080p", "audio": True}
    path = tmp_path / "jobs.csv"
    path.write_text(
        "provider,prompt,image,duration,audio\n"
        'nanophoto,"a dog, running",,8,\n'
        "nanophoto,the frame comes alive,https://cdn.example.com/a.png https://cdn.example.com/b.png,,no\n"
        "seedance15pro,a fox,,10,yes\n"
    )
    batch = load_batch(path, fast)
    assert batch.problems == []
    first, second, third = (job.spec for job in batch.jobs)
    assert (first.prompt, first.resolution, first.duration, first.audio) == (
        "a dog, running",
        "1080p",
        "8",
        True,
    )
    assert second.image_urls == ("https://cdn.example.com/a.png", "https://cdn.example.com/b.png")
    assert second.audio is False and second.mode.value == "image-to-video"
    assert third.provider is Provider.SEEDANCE15PRO and third.audio is True
    assert [job.line for job in batch.jobs] == [2, 3, 4]
    assert batch.total_credits == sum(job.credits for job in batch.jobs) > 0


def test_asks_once_and_refuses_without_a_terminal(fast, tmp_path, capsys, monkeypatch) -> None:
    path = write_jobs(tmp_path / "jobs.jsonl", 3)
    db = str(fast.db_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli.main(["--db", db, "submit", "--batch", str(path)]) == 2
    assert "--yes" in capsys.readouterr().err

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    asked: list[str] = []
    monkeypatch.setattr("sys.stdin", Tty(""))
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "n")
    assert cli.main(["--db", db, "submit", "--batch", str(path)]) == 0
    err = capsys.readouterr().err
    assert len(asked) == 1 and "credits" in asked[0]
    assert "total estimated cost" in err and "nothing queued" in err
    store = Store.open(fast.db_path)
    assert store.count() == 0
    store.close()
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or "y")
    assert cli.main(["--db", db, "submit", "--batch", str(path), "--detach"]) == 0
    assert len(asked) == 2
    store = Store.open(fast.db_path)
    assert len(tasks_of(store, TaskStatus.QUEUED)) == 3
    store.close()


def test_queue_pause_resume_is_persisted(fast, sim, tmp_path, capsys) -> None:
    db = str(fast.db_path)
    path = write_jobs(tmp_path / "jobs.jsonl", 2)
    assert cli.main(["--db", db, "submit", "--batch", str(path), "--yes", "--detach"]) == 0
    assert cli.main(["--db", db, "queue", "pause"]) == 0
    assert cli.main(["--db", db, "queue", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status == {"paused": True, "queued": {"nanophoto": 1, "seedance15pro": 1}, "total": 2}

    async def paused_engine_sends_nothing() -> None:
        async with Session(fast, with_engine=True) as session:
            engine, store, queue = session.engine, session.store, session.queue
            assert queue.paused()
            await asyncio.wait_for(engine.run(until_idle=True), 5)
            assert len(tasks_of(store, TaskStatus.QUEUED)) == 2
            queue.resume()
            assert store.get_state("queue_paused") == "0"

    asyncio.run(paused_engine_sends_nothing())
    assert sim_json(sim, "/_sim/tasks") in ([], {"tasks": []})


async def test_batch_of_20_completes_within_the_budget_across_a_restart(
    fast, sim, tmp_path, capsys
) -> None:
    limit = fast.providers[Provider.NANOPHOTO].requests_per_hour
    assert limit == 100  # the documented nanophoto budget, enforced by the simulator too
    path = write_jobs(tmp_path / "jobs.jsonl", 20)
    db = str(fast.db_path)
    code = await asyncio.to_thread(
        cli.main, ["--db", db, "submit", "--batch", str(path), "--yes", "--detach"]
    )
    assert code == 0
    assert "total estimated cost" in capsys.readouterr().err

    # First run: stop after 8 jobs were sent, as quitting the dashboard does.
    store = Store.open(fast.db_path)
    assert len(tasks_of(store, TaskStatus.QUEUED)) == 20
    session = Session(fast, store=store)
    engine = session.start_engine()
    sent = asyncio.Event()
    count = 0

    def on_event(event: object) -> None:
        nonlocal count
        if isinstance(event, TaskChanged) and event.previous is TaskStatus.SUBMITTING:
            count += 1
            if count == 8:
                sent.set()

    engine.subscribe(on_event)
    loop = asyncio.create_task(engine.run())
    await asyncio.wait_for(sent.wait(), 20)
    await session.stop_sending()
    loop.cancel()
    await asyncio.gather(loop, return_exceptions=True)
    await session.aclose()

    store = Store.open(fast.db_path)
    left = len(tasks_of(store, TaskStatus.QUEUED))
    assert 0 < left <= 12
    assert tasks_of(store, TaskStatus.SUBMITTING) == []
    store.close()

    # After the restart: a new engine on the same history finishes the queue.
    store = Store.open(fast.db_path)
    async with Session(fast, store=Store.open(fast.db_path), with_engine=True) as session:
        await asyncio.wait_for(session.engine.run(until_idle=True), 45)
    tasks = store.list(None, limit=None)
    assert len(tasks) == 20
    assert {t.status for t in tasks} == {TaskStatus.COMPLETED}
    assert {t.prompt for t in tasks} == {
        f"batch job {i}: a paper boat, take {i}" for i in range(20)
    }

    # Each job was sent exactly once, and no request was refused for the rate.
    simulated = sim_json(sim, "/_sim/tasks")
    simulated = simulated["tasks"] if isinstance(simulated, dict) else simulated
    assert len(simulated) == 20
    assert sorted(t.task_id for t in tasks) == sorted(
        t.get("task_id") or t.get("taskId") or t.get("id") for t in simulated
    )
    ledger = sim_json(sim, "/_sim/ledger")
    for provider in ("nanophoto", "seedance15pro"):
        assert ledger["providers"][provider]["rate_limited"] == 0
    assert ledger["providers"]["nanophoto"]["requests"] <= limit
    [(rows,)] = raw_sql(
        store.path, "SELECT count(*) FROM requests WHERE provider='nanophoto' AND sent=1"
    )
    assert rows == ledger["providers"]["nanophoto"]["requests"]
    store.close()


# -- files as spreadsheets and editors save them ---------------------------------------

NASTY_PROMPTS = (
    "a bare\rcarriage return",
    "a CRLF\r\nline break",
    'quotes "inside", and, commas',
    "emoji 🎬👨\u200d👩\u200d👧 and 🇯🇵",
    "RTL שלום עולם and مرحبا",
    "=1+1 stays text",
)


def test_a_byte_order_mark_is_not_a_field(fast, tmp_path) -> None:
    """Excel's "CSV UTF-8" (and Notepad's UTF-8) start the file with a BOM."""
    csv_path = tmp_path / "jobs.csv"
    csv_path.write_bytes(
        "\ufeffprovider,prompt,duration\r\nnanophoto,a lighthouse at dusk,8\r\n".encode()
    )
    jsonl_path = tmp_path / "jobs.jsonl"
    jsonl_path.write_bytes(
        ("\ufeff" + json.dumps({"prompt": "a koi pond", "provider": "nanophoto"}) + "\n").encode()
    )
    for path, prompt in ((csv_path, "a lighthouse at dusk"), (jsonl_path, "a koi pond")):
        batch = load_batch(path, fast)
        assert batch.problems == [], path.name
        assert [job.spec.prompt for job in batch.jobs] == [prompt]


def test_csv_header_names_are_read_as_written_in_a_spreadsheet(fast, tmp_path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text(" Provider ,Prompt,Duration\nnanophoto,a tram in the rain,8\n")
    batch = load_batch(path, fast)
    assert batch.problems == []
    assert (batch.jobs[0].spec.prompt, batch.jobs[0].spec.duration) == ("a tram in the rain", "8")


def test_a_csv_without_a_header_row_says_so(fast, tmp_path, capsys) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("nanophoto,a cat on a roof,8\nnanophoto,a dog on a boat,4\n")
    batch = load_batch(path, fast)
    assert [problem.line for problem in batch.problems] == [1]
    assert "header row" in batch.problems[0].message and batch.jobs == []
    assert cli.main(["--db", str(fast.db_path), "submit", "--batch", str(path), "--yes"]) == 2
    err = capsys.readouterr().err
    assert "jobs.csv:1:" in err and "header row" in err and "prompt" in err
    assert "unknown field" not in err


def test_a_csv_header_without_a_prompt_column_says_so(fast, tmp_path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("provider,duration\nnanophoto,8\n")
    batch = load_batch(path, fast)
    assert [(p.line, "prompt" in p.message) for p in batch.problems] == [(1, True)]


def test_csv_prompts_with_line_breaks_quotes_and_scripts_read_back_exactly(fast, tmp_path):
    import csv

    path = tmp_path / "jobs.csv"
    with open(path, "w", encoding="utf-8-sig", newline="") as fh:  # as Excel saves it
        writer = csv.writer(fh)  # CRLF records, every cell with a CR or LF quoted
        writer.writerow(["provider", "prompt"])
        for prompt in NASTY_PROMPTS:
            writer.writerow(["nanophoto", prompt])
    batch = load_batch(path, fast)
    assert batch.problems == []
    assert [job.spec.prompt for job in batch.jobs] == list(NASTY_PROMPTS)
