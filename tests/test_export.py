"""Export (csv/json/jsonl) round-trips every task; no secrets; history path/stats/backup."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from conftest import NANO_KEY

from seedance_tui import cli
from seedance_tui.config import fingerprint
from seedance_tui.demo import seed_history
from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.store import Store, new_task_id

AWKWARD = (
    'Quotes "inside", commas, and\na newline',
    "Emoji 🎬 and ünïcödé, tab\tand [bold]markup[/]",
    '=HYPERLINK("http://x")',
    "",
)


def build_history(path: Path) -> list[Task]:
    store = Store.open(path)
    now = time.time()
    tasks = seed_history(store, now, count=30)
    for i, prompt in enumerate(AWKWARD):
        task = Task(
            id=new_task_id(now + i),
            provider=Provider.NANOPHOTO,
            status=TaskStatus.ORPHANED,
            prompt=prompt,
            params={"mode": "text-to-video", "duration": "8", "audio": True},
            created_at=now + i,
            key_fingerprint=fingerprint(Provider.NANOPHOTO, NANO_KEY),
            credits_estimated=8,
            error='interrupted, "maybe" charged',
            local_path=f"/videos/{i}, odd name.mp4" if i % 2 else None,
        )
        store.insert_task(task)
        tasks.append(task)
    store.close()
    return tasks


def public(path: Path) -> dict[str, dict]:
    store = Store.open(path)
    try:
        return {t.id: t.to_public() for t in store.list(None, limit=None)}
    finally:
        store.close()


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_export_round_trips_every_task(tmp_path: Path, fmt: str, capsys) -> None:
    source = tmp_path / "source.db"
    tasks = build_history(source)
    out = tmp_path / f"export.{fmt}"
    assert cli.main(["--db", str(source), "export", "--format", fmt, "--output", str(out)]) == 0
    text = out.read_text()
    assert NANO_KEY not in text and fingerprint(Provider.NANOPHOTO, NANO_KEY) not in text
    target = tmp_path / "target.db"
    assert cli.main(["--db", str(target), "import", str(out)]) == 0
    assert f"imported {len(tasks)} task(s)" in capsys.readouterr().err
    expected, got = public(source), public(target)
    assert len(expected) == len(tasks)
    assert got == expected
    # Importing again adds nothing.
    assert cli.main(["--db", str(target), "import", str(out)]) == 0
    assert f"skipped {len(tasks)}" in capsys.readouterr().err
    assert public(target) == expected


def test_export_filters_and_stdout(tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.db"
    tasks = build_history(db)
    assert cli.main(["--db", str(db), "export", "--status", "orphaned"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(rows) == len(AWKWARD) and {r["status"] for r in rows} == {"orphaned"}
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)
    newest = max(t.created_at for t in tasks)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(newest - 1))
    assert cli.main(["--db", str(db), "export", "--format", "csv", "--since", since]) == 0
    reader = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert 1 <= len(reader) <= len(AWKWARD)
    assert "key_fingerprint" not in reader[0]
    assert cli.main(["--db", str(db), "export", "--since", "yesterday"]) == 2
    assert (
        cli.main(["--db", str(db), "export", "--format", "json", "--provider", "seedance15pro"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data and all(r["provider"] == "seedance15pro" for r in data)


def test_import_reports_a_bad_row_and_writes_nothing(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jsonl"
    good = {"id": "0001", "provider": "nanophoto", "status": "completed", "prompt": "x",
            "created_at": "2026-01-01T00:00:00.000Z"}  # fmt: skip
    bad.write_text(
        json.dumps(good) + "\n" + json.dumps({**good, "id": "0002", "status": "weird"}) + "\n"
    )
    db = tmp_path / "h.db"
    assert cli.main(["--db", str(db), "import", str(bad)]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    assert public(db) == {}


def test_history_path_stats_backup(tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.db"
    tasks = build_history(db)
    assert cli.main(["--db", str(db), "history", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(db)
    assert cli.main(["--db", str(db), "history", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["tasks"] == len(tasks) and stats["bytes"] > 0
    assert stats["by_status"]["orphaned"] >= len(AWKWARD)
    assert cli.main(["--db", str(db), "history", "stats"]) == 0
    assert "tasks" in capsys.readouterr().out

    # A backup while another connection keeps writing is a consistent, complete copy.
    writer = Store.open(db)
    stop = threading.Event()

    def keep_writing() -> None:
        w = Store.open(db)
        while not stop.is_set():
            w.add_event(tasks[0].id, "note", "busy", time.time())
        w.close()

    thread = threading.Thread(target=keep_writing)
    thread.start()
    try:
        dest = tmp_path / "backups" / "copy.db"
        assert cli.main(["--db", str(db), "history", "backup", str(dest)]) == 0
    finally:
        stop.set()
        thread.join()
        writer.close()
    assert capsys.readouterr().out.strip() == str(dest)
    conn = sqlite3.connect(dest)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM tasks").fetchone()[0] == len(tasks)
    conn.close()
    assert public(dest) == public(db)
    assert cli.main(["--db", str(db), "history", "backup", str(dest)]) == 2  # never overwrites
    assert cli.main(["--db", str(db), "history", "backup"]) == 0
    default = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert default.exists() and default.parent.name == "backups"
