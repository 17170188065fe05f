"""Export (csv/json/jsonl) round-trips every task; no secrets; history path/stats/backup."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import NANO_KEY
from raw_sql import raw_sql
from store_cases import tied_tasks

from seedance_tui import cli
from seedance_tui.demo import seed_history
from seedance_tui.keys import fingerprint
from seedance_tui.models import Provider, Task, TaskStatus
from seedance_tui.store import Store, new_task_id
from seedance_tui.text import to_json

AWKWARD = (
    'Quotes "inside", commas, and\na newline',
    "Emoji 🎬 and ünïcödé, tab\tand [bold]markup[/]",
    '=HYPERLINK("http://x")',
    "",
    # What a spreadsheet would run as a formula, and the apostrophe that marks them.
    "+1", "-2+3", "@SUM(A1:A9)", "\t=1+1", "\uff1d1+1", "'already quoted", "''two",
    # Line ends a CSV must quote, and text that is not ASCII.
    "bare\rCR", "CRLF\r\nline", "\rstarts with a CR", "ends with a CR\r",
    "family 👨\u200d👩\u200d👧, flags 🇫🇷", "RTL שלום עולם and مرحبا بالعالم",
    # What a terminal would act on: clear screen, window title, clipboard write (OSC 52),
    # 8-bit CSI, bidirectional overrides and isolates.
    "\x1b[2J\x1b[H cleared", "\x1b]0;pwned title\x07", "\x1b]52;c;ZWNobyBwd25lZA==\x07",
    "\x9b31m C1 red", "\u202etxt.exe", "\u2066isolated\u2069 and \u200fmark",
)  # fmt: skip
# What a terminal acts on: C0 controls but tab and newline, DEL, C1, bidirectional controls.
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
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
            error=f'interrupted, "maybe" charged: {prompt}',
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


class Terminal(io.StringIO):
    """Standard output that is a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("fmt", ["csv", "json", "jsonl"])
def test_an_export_to_a_terminal_is_inert(tmp_path: Path, fmt: str, monkeypatch) -> None:
    db = tmp_path / "h.db"
    build_history(db)
    screen = Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    assert cli.main(["--db", str(db), "export", "--format", fmt]) == 0
    shown = screen.getvalue()
    assert "cleared" in shown and "pwned title" in shown
    # CSV records end in CRLF; nothing else in the output is a control character.
    assert not RAW_CONTROL.search(shown.replace("\r\n", "\n")), RAW_CONTROL.findall(shown)
    if fmt == "csv":
        assert "\\x1b]52;c;" in shown and "\\u202etxt.exe" in shown  # shown, not obeyed


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_a_json_export_file_is_inert_and_exact(tmp_path: Path, fmt: str) -> None:
    db = tmp_path / "h.db"
    build_history(db)
    out = tmp_path / f"export.{fmt}"
    assert cli.main(["--db", str(db), "export", "--format", fmt, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert not RAW_CONTROL.search(text)
    rows = json.loads(text) if fmt == "json" else [json.loads(line) for line in text.splitlines()]
    assert {r["prompt"] for r in rows} >= set(AWKWARD)


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    build_history(db)
    out = tmp_path / "export.csv"
    assert cli.main(["--db", str(db), "export", "--format", "csv", "-o", str(out)]) == 0
    with open(out, encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = [cell for row in rows for cell in row.values()]
    assert cells, "no rows"
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "\uff1d")), cell
    prompts = {row["prompt"] for row in rows}
    assert {'\'=HYPERLINK("http://x")', "'+1", "'-2+3", "'@SUM(A1:A9)", "'\t=1+1"} <= prompts
    assert {"''already quoted", "'''two", "bare\rCR", "'\rstarts with a CR"} <= prompts
    assert b'"bare\rCR"' in out.read_bytes()  # a bare CR is quoted: the record stays whole


def test_list_and_status_show_bidirectional_controls_inertly(tmp_path: Path, capsys) -> None:
    db = tmp_path / "h.db"
    tasks = build_history(db)
    shown = []
    for argv in (["list", "--limit", "0"], ["list", "--json", "--limit", "0"],
                 ["status", tasks[-1].id, "--no-refresh"]):  # fmt: skip
        assert cli.main(["--db", str(db), *argv]) in (0, 1)
        captured = capsys.readouterr()
        shown.append(captured.out + captured.err)
    for text in shown:
        assert not RAW_CONTROL.search(text), RAW_CONTROL.findall(text)
    assert "\\u2066isolated\\u2069" in shown[2]


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


# -- streaming: any size in the memory of a page ---------------------------------------


def tied_history(path: Path) -> Store:
    """A history of `tied_tasks` (see there), inserted out of their time order."""
    store = Store.open(path)
    store.bulk_import(reversed(tied_tasks()))  # rowids in another order than the time sort
    return store


def test_a_slow_reader_of_a_stream_holds_no_snapshot(tmp_path) -> None:
    """Between pages nothing is read: a writer can checkpoint the whole WAL."""
    path = tmp_path / "h.db"
    store = tied_history(path)
    writer = Store.open(path)
    try:
        stream = store.iter_tasks(None, page=10)
        seen = [next(stream) for _ in range(15)]  # half-way through the second page
        writer.add_event(seen[0].id, "note", "written while a reader waits", time.time())
        [(busy, _, _)] = raw_sql(path, "PRAGMA wal_checkpoint(TRUNCATE)")
        assert busy == 0, "the stream keeps a read snapshot open"
        assert len(seen) + sum(1 for _ in stream) == store.count()
    finally:
        writer.close()
        store.close()


def test_list_of_everything_is_streamed_as_the_same_json(tmp_path, capsys) -> None:
    db = tmp_path / "h.db"
    tied_history(db).close()
    assert cli.main(["--db", str(db), "list", "--json", "--limit", "0"]) == 0
    out = capsys.readouterr().out
    store = Store.open(db)
    expected = [t.to_public() for t in store.list(None, limit=None)]
    store.close()
    assert out == to_json(expected) + "\n"
    assert cli.main(["--db", str(db), "list", "--limit", "0", "--search", "koi"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 + 80 and all("koi" in line for line in lines[1:])


def test_a_bad_row_after_many_good_ones_writes_nothing(tmp_path, capsys) -> None:
    """Well past the first batch the import writes: still nothing is written."""
    rows = [
        {"id": f"{i:020x}", "provider": "nanophoto", "status": "completed",
         "prompt": f"take {i}", "created_at": "2026-01-01T00:00:00.000Z", "task_id": f"t{i}"}
        for i in range(12_000)
    ]  # fmt: skip
    rows[-1]["status"] = "weird"
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    db = tmp_path / "h.db"
    assert cli.main(["--db", str(db), "import", str(path)]) == 2
    assert "big.jsonl:12000" in capsys.readouterr().err
    assert public(db) == {}
    rows[-1]["status"] = "completed"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert cli.main(["--db", str(db), "import", str(path)]) == 0
    assert "imported 12000" in capsys.readouterr().err
    assert cli.main(["--db", str(db), "list", "--search", "take", "--limit", "0", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 12_000  # the prompt index has them all


def test_an_import_skips_a_provider_task_the_history_has(tmp_path, capsys) -> None:
    db = tmp_path / "h.db"
    row = {"id": "0001", "provider": "nanophoto", "status": "completed", "prompt": "x",
           "created_at": "2026-01-01T00:00:00.000Z", "task_id": "same"}  # fmt: skip
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps([row]))
    second.write_text(json.dumps([{**row, "id": "0002"}, {**row, "id": "0003", "task_id": "new"}]))
    assert cli.main(["--db", str(db), "import", str(first)]) == 0
    assert cli.main(["--db", str(db), "import", str(second)]) == 0
    assert "imported 1 task(s), skipped 1" in capsys.readouterr().err
    assert sorted(public(db)) == ["0001", "0003"]


@pytest.mark.parametrize(
    "text", ["", "{}", "[1,", "[{}, {} {}]", "[{}]x", '[{"id": 1}', "\ufeff[{]"]
)
def test_a_json_file_that_is_not_an_array_of_tasks_is_a_usage_error(tmp_path, text, capsys):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    assert cli.main(["--db", str(tmp_path / "h.db"), "import", str(path)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "Traceback" not in err
