"""The job form (#14's form items, #16's compare switch), driven with Pilot, and its
snapshots at 80×24 and 160×48.

Each test asserts on state a user sees or relies on: the painted text of a row, the
focused widget, the selected row, the fields' values, a disabled row.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli
from rich.cells import cell_len
from textual.widgets import Button, Checkbox, Input, TextArea
from tui_helpers import (
    FIXED_NOW,
    KEYED_ENV,
    fixed_clock,
    noted,
    notes,
    seeded_settings_in,
    wait_until,
)

from seedance_tui import jobs
from seedance_tui.config import Settings, load_settings
from seedance_tui.models import JobValidationError, Mode, Provider, Task, TaskStatus
from seedance_tui.providers.base import check_prompt
from seedance_tui.simulator.config import SimConfig
from seedance_tui.store import Store
from seedance_tui.store.rows import this_submitter
from seedance_tui.tui.app import SeedanceApp
from seedance_tui.tui.form import ASPECT_FROM_IMAGE, Choice, FieldError, FittedLine, JobForm
from seedance_tui.tui.key_dialog import KeyDialog
from seedance_tui.tui.prompt_history import PromptHistory, recent_prompts
from seedance_tui.tui.screens import ConfirmCompare, ConfirmSubmit
from seedance_tui.tui.task_list import TaskList

IMAGE = "https://cdn.example.com/frame.png"


@pytest.fixture
def seeded_settings(tmp_path: Path) -> Settings:
    """Test keys (never sent: no simulator; ctrl+s reaches the confirm); the 48 demo tasks."""
    return seeded_settings_in(tmp_path, KEYED_ENV)


def painted(widget) -> str:
    """The widget's first line as painted (what a user reads), trailing blanks dropped."""
    return widget.render_line(0).text.rstrip()


async def choose_provider(pilot, provider: Provider) -> None:
    form = pilot.app.query_one(JobForm)
    pilot.app.query_one("#provider", Choice).focus()
    while form.provider is not provider:
        await pilot.press("right")
    await pilot.pause()


async def set_images(pilot, urls: str) -> None:
    pilot.app.query_one("#image_urls", Input).value = urls
    await pilot.pause()


# -- 1: the chosen value is always visible ------------------------------------------------


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
async def test_every_choice_row_shows_its_chosen_value(seeded_settings, size):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=size) as pilot:
        provider_row = app.query_one("#provider", Choice)
        assert "[nanophoto]" in painted(provider_row)
        await choose_provider(pilot, Provider.SEEDANCE15PRO)
        assert app.query_one(JobForm).provider is Provider.SEEDANCE15PRO
        row = painted(provider_row)
        assert "[seedance15pro]" in row and "nanophoto]" not in row
        if size == (80, 24):
            # Both names do not fit in the side column: the other one is behind ‹.
            assert row.split() == ["Provider", "‹", "[seedance15pro]"]
        # Every option of every row, on each provider: the chosen one is painted whole.
        for provider in (Provider.SEEDANCE15PRO, Provider.NANOPHOTO):
            await choose_provider(pilot, provider)
            for choice in app.query(Choice):
                if not choice.display:
                    continue
                for value, label in list(choice.options):
                    choice.value = value
                    await pilot.pause()
                    line = painted(choice)
                    assert f"[{label}]" in line, (choice.id, value, line)
                    assert cell_len(line) <= choice.size.width
                    assert "…" not in line


async def test_a_click_on_the_arrow_picks_the_option_it_hides(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        row = app.query_one("#provider", Choice)
        line = painted(row)
        assert line.rstrip().endswith("›")
        await pilot.click("#provider", offset=(line.index("›"), 0))
        assert app.query_one(JobForm).provider is Provider.SEEDANCE15PRO
        line = painted(row)
        await pilot.click("#provider", offset=(line.index("‹"), 0))
        assert app.query_one(JobForm).provider is Provider.NANOPHOTO


# -- 2: after a submit ---------------------------------------------------------------------


async def test_after_a_submit_the_list_has_the_focus_and_n_starts_from_the_defaults(
    live_settings, sim
):
    live_settings.providers[Provider.NANOPHOTO].defaults = {"resolution": "1080p", "duration": "8"}
    app = SeedanceApp(live_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(JobForm)
        tasks = app.query_one(TaskList)
        assert app.query_one("#resolution", Choice).value == "1080p"  # the config's
        await pilot.press("n", *"a koi pond at dawn")
        app.query_one("#resolution", Choice).value = "480p"
        app.query_one("#audio", Checkbox).value = True
        await pilot.pause()
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmSubmit)
        await pilot.press("enter")
        await wait_until(pilot, lambda: tasks.total == 1 and not form.submitting)
        [task] = Store.open(live_settings.db_path).list(None, limit=None)
        assert task.spec.resolution == "480p" and task.spec.audio  # what was sent
        assert isinstance(app.focused, TaskList)
        assert tasks.selected is not None and tasks.selected.id == task.id
        # n: a new job, at the config's defaults, the prompt empty.
        await pilot.press("n")
        assert isinstance(app.focused, TextArea) and app.focused.text == ""
        assert app.query_one("#resolution", Choice).value == "1080p"
        assert app.query_one("#duration", Choice).value == "8"
        assert app.query_one("#audio", Checkbox).value is False
        assert not app.query_one("#err-prompt", FieldError).display  # not an error yet
        # The last prompt is one key away.
        await pilot.press("up")
        assert app.focused.text == "a koi pond at dawn"


async def test_a_failed_or_cancelled_submit_keeps_the_form(seeded_settings):
    """Cancelled in the confirm dialog, or with no key for the provider (ctrl+s asks for
    one instead, and is cancelled too): every field stays."""
    app = noted(SeedanceApp(seeded_settings, clock=fixed_clock, poll=False))
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(JobForm)
        await pilot.press("n", *"lanterns over a harbor")
        app.query_one("#duration", Choice).value = "12"
        await pilot.pause()
        before = form.state()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmSubmit))
        await pilot.press("escape")  # cancelled in the confirm dialog
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmSubmit))
        assert form.state() == before
    unkeyed = load_settings(db=seeded_settings.db_path, env={})
    app = noted(SeedanceApp(unkeyed, clock=fixed_clock, poll=False))
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(JobForm)
        await pilot.press("n", *"lanterns over a harbor")
        app.query_one("#duration", Choice).value = "12"
        await pilot.pause()
        before = form.state()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: isinstance(app.screen, KeyDialog), "the key dialog")
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, KeyDialog))
        assert not form.submitting
        assert form.state() == before
        assert app.query_one("#prompt", TextArea).text == "lanterns over a harbor"


@pytest.mark.parametrize(
    "sim_config",
    [SimConfig(generation_time=(0.3, 0.8), failure_rate=0.0, seed=7, valid_keys={"sk-other"})],
    indirect=True,
)
async def test_a_job_the_server_refuses_keeps_the_form(live_settings, sim):
    """The key is refused (401): the task is rejected and the form stays as it was sent,
    to correct and send again."""
    app = noted(SeedanceApp(live_settings))
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(JobForm)
        await pilot.press("n", *"a koi pond at dawn")
        app.query_one("#duration", Choice).value = "12"
        await pilot.pause()
        before = form.state()
        await pilot.press("ctrl+s", "enter")
        await wait_until(pilot, lambda: any(n.title == "Job rejected" for n in notes(app)))
        await wait_until(pilot, lambda: not form.submitting)
        [task] = Store.open(live_settings.db_path).list(None, limit=None)
        assert task.status is TaskStatus.REJECTED
        assert form.state() == before
        assert app.query_one("#prompt", TextArea).text == "a koi pond at dawn"


async def test_up_and_down_browse_the_earlier_prompts_newest_first(seeded_settings):
    store = Store.open(seeded_settings.db_path)
    expected = recent_prompts(store)
    store.close()
    assert len(expected) >= 3
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        prompt = app.query_one("#prompt", TextArea)
        await pilot.press("up")
        assert prompt.text == expected[0] == app.query_one(TaskList).task_at(0).prompt
        await pilot.press("up", "up")
        assert prompt.text == expected[2]
        await pilot.press("down")
        assert prompt.text == expected[1]
        await pilot.press("down", "down")
        assert prompt.text == ""  # past the newest: the empty prompt again
        await pilot.press("ctrl+r")
        assert prompt.text == expected[0]
        # Edited, it is the user's text: up moves the cursor, it brings nothing back.
        await pilot.press("end", *" again")
        await pilot.press("up")
        assert prompt.text == expected[0] + " again"
        # A prompt being written is not replaced by ctrl+r either.
        await pilot.press("ctrl+r")
        assert prompt.text == expected[0] + " again"


def test_the_prompt_history_is_newest_first_without_duplicates(tmp_path):
    """This user's prompts (and old rows that name nobody), each once, newest first."""
    store = Store.open(tmp_path / "h.db")
    me = this_submitter()
    rows = [("a fox", me), ("a heron", None), ("a fox", me), ("  ", me),
            ("someone else's", "ann@studio"), ("a koi", me)]  # fmt: skip
    for i, (prompt, who) in enumerate(rows):
        store.insert_task(
            Task(
                id=f"t{i}",
                provider=Provider.NANOPHOTO,
                status=TaskStatus.COMPLETED,
                prompt=prompt,
                params={"duration": "4"},
                created_at=FIXED_NOW + i,
                submitted_by=who,
            )  # fmt: skip
        )
    assert recent_prompts(store) == ["a koi", "a fox", "a heron"]
    history = PromptHistory(lambda: recent_prompts(store))
    history.start("")
    assert [history.older(), history.older(), history.older(), history.older()] == [
        "a koi", "a fox", "a heron", None,
    ]  # fmt: skip
    assert [history.newer(), history.newer(), history.newer()] == ["a fox", "a koi", ""]
    assert not history.browsing
    store.close()


# -- 3: one aspect rule for images on seedance15pro ---------------------------------------


async def test_image_to_video_on_seedance15pro_disables_the_aspect_row(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(JobForm)
        aspect = app.query_one("#aspect_ratio", Choice)
        await choose_provider(pilot, Provider.SEEDANCE15PRO)
        aspect.value = "9:16"
        await pilot.press("n", *"a frame comes alive")
        await set_images(pilot, IMAGE)
        assert aspect.disabled and aspect.note == ASPECT_FROM_IMAGE
        assert painted(aspect).split(None, 1) == ["Aspect", ASPECT_FROM_IMAGE]
        assert "9:16" not in painted(aspect)
        # The same rule as the job's builder and the provider's check.
        assert not jobs.takes(Provider.SEEDANCE15PRO, "aspect_ratio", images=True)
        job = form.revalidate()
        assert job is not None and job.spec.aspect_ratio is None
        assert job.spec.mode is Mode.IMAGE_TO_VIDEO
        # Tab does not stop on it.
        aspect_focusable = aspect in app.screen.focus_chain
        assert not aspect_focusable
        # The confirm dialog shows the job as sent: no aspect ratio.
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmSubmit)
        assert app.screen.spec.aspect_ratio is None
        assert "9:16" not in str(app.screen.body()) and "16:9" not in str(app.screen.body())
        await pilot.press("escape")
        # Without images the row is back, with the choice the user made.
        await set_images(pilot, "")
        assert not aspect.disabled and aspect.note is None
        assert "[9:16]" in painted(aspect)
        assert form.revalidate().spec.aspect_ratio == "9:16"
        # nanophoto takes an aspect ratio with images too: its row stays.
        await choose_provider(pilot, Provider.NANOPHOTO)
        await set_images(pilot, IMAGE)
        assert not aspect.disabled and "[landscape]" in painted(aspect)


def test_the_cli_refuses_what_the_form_does_not_offer():
    code, _, err = run_cli("submit", "--provider", "seedance15pro", "--image", IMAGE,
                           "--aspect", "16:9", "--prompt", "a frame comes alive")  # fmt: skip
    assert code == 2
    assert "aspect" in err and "image" in err


# -- 4: switches read on and off ----------------------------------------------------------


async def test_switches_read_on_and_off_without_colour(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        for name, label in (("audio", "audio"), ("fixed_lens", "fixed lens"),
                            ("compare", "compare on both providers")):  # fmt: skip
            toggle = app.query_one(f"#{name}", Checkbox)
            assert painted(toggle) == f"[ ] {label}"
            await pilot.click(f"#{name}")
            assert toggle.value and painted(toggle) == f"[x] {label}"
            await pilot.click(f"#{name}")
            assert painted(toggle) == f"[ ] {label}"
        # The same word on seedance15pro, and in the confirm dialog.
        await choose_provider(pilot, Provider.SEEDANCE15PRO)
        await pilot.click("#audio")
        assert painted(app.query_one("#audio", Checkbox)) == "[x] audio"
        assert app.query_one(JobForm).quote.basis == "5s = 65 ×2 audio"  # the price's words
        await pilot.press("n", *"a bell rings")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmSubmit)
        assert "audio" in str(app.screen.body())


# -- 5: the length message ------------------------------------------------------------------


async def test_the_length_message_names_emoji_only_when_the_prompt_has_some(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(120, 40)) as pilot:
        prompt = app.query_one("#prompt", TextArea)
        error = app.query_one("#err-prompt", FieldError)
        prompt.text = "a" * 1001
        await pilot.pause()
        assert "1001 characters" in str(error.render())
        assert "emoji" not in str(error.render())
        prompt.text = "🎬" * 501
        await pilot.pause()
        assert "1002 characters" in str(error.render())
        assert "emoji count as 2" in str(error.render())
    with pytest.raises(JobValidationError, match="the limit is 1000$"):
        check_prompt("é" * 1001)  # one UTF-16 unit each: no emoji to explain


# -- 6: hints follow the keymap -------------------------------------------------------------


async def test_the_forms_hints_name_the_key_bound_now(seeded_settings):
    seeded_settings.keymap = {"submit": "ctrl+g"}
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        prompt = app.query_one("#prompt", TextArea)
        button = app.query_one("#submit", Button)
        assert "ctrl+g submits" in prompt.placeholder and "ctrl+s" not in prompt.placeholder
        assert str(button.label) == "Submit  ctrl+g"
        await pilot.press("n", *"a heron in fog", "ctrl+g")
        assert isinstance(app.screen, ConfirmSubmit)
    default = SeedanceApp(load_settings(db=seeded_settings.db_path, env=KEYED_ENV), poll=False,
                          clock=fixed_clock)  # fmt: skip
    async with default.run_test(size=(80, 24)):
        assert "ctrl+s submits" in default.query_one("#prompt", TextArea).placeholder
        assert str(default.query_one("#submit", Button).label) == "Submit  ctrl+s"


async def test_the_rerun_notice_names_the_key_bound_now(seeded_settings):
    seeded_settings.keymap = {"submit": "ctrl+g"}
    app = noted(SeedanceApp(seeded_settings, clock=fixed_clock, poll=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("r")
        [note] = [n for n in notes(app) if n.title == "Re-run"]
        assert note.message.endswith("check it and press ctrl+g")


# -- 7: the compare switch ------------------------------------------------------------------


async def test_the_compare_switch_shows_both_prices_and_submits_a_compare(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(JobForm)
        meta = app.query_one("#prompt-meta", FittedLine)
        button = app.query_one("#submit", Button)
        await pilot.press("n", *"a koi pond at dawn")
        assert "≈ 4 credits" in painted(meta)  # 720p 4 s on nanophoto
        await pilot.click("#compare")
        assert form.compare_on
        assert [j.quote.credits for j in form.compare_jobs] == [4, 65]  # 4 s → 5 s
        note = app.query_one("#compare-note", FittedLine)
        assert note.display and painted(note) == "→ nanophoto 4 · seedance15pro 65"
        assert painted(meta) == "18/1000  ≈ 69 credits for both"
        assert str(button.label).startswith("Send to both")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmCompare)
        assert [j.provider for j in app.screen.jobs] == list(Provider)
        await pilot.press("escape")
        assert form.compare_on  # cancelled: the form as it was
        # Off again: a single submission.
        await pilot.click("#compare")
        assert str(button.label).startswith("Submit") and not note.display
        assert "for both" not in painted(meta)
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ConfirmSubmit)
        assert not isinstance(app.screen, ConfirmCompare)


async def test_the_compare_switch_wide_names_each_provider(seeded_settings):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.click("#compare")
        meta = painted(app.query_one("#prompt-meta", FittedLine))
        assert meta == "0/1000  ≈ 69 credits  for both providers"
        note = painted(app.query_one("#compare-note", FittedLine))
        assert note == "→ nanophoto ≈ 4 · seedance15pro ≈ 65"


async def test_a_compare_from_the_switch_sends_both_jobs_as_one_group(live_settings, sim):
    app = SeedanceApp(live_settings)
    async with app.run_test(size=(80, 24)) as pilot:
        form = app.query_one(JobForm)
        await pilot.click("#compare")
        await pilot.press("n", *"a koi pond at dawn", "ctrl+s")
        assert isinstance(app.screen, ConfirmCompare)
        await pilot.press("enter")
        tasks = app.query_one(TaskList)
        await wait_until(pilot, lambda: tasks.total == 2 and not form.submitting)
        sent = Store.open(live_settings.db_path).list(None, limit=None)
        assert {t.provider for t in sent} == set(Provider)
        assert len({t.group for t in sent}) == 1 and sent[0].group
        # Both accepted: a new job, compare off, the list focused on one of the pair.
        assert not form.compare_on and form.state()[0].prompt == ""
        assert isinstance(app.focused, TaskList)
        assert tasks.selected.id in {t.id for t in sent}


# -- 8: usable at 80×24 -------------------------------------------------------------------


@pytest.mark.parametrize(("size", "least"), [((80, 24), 3), ((160, 48), 8)])
async def test_the_prompt_has_room_and_no_hint_is_cut(seeded_settings, size, least):
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    async with app.run_test(size=size) as pilot:
        for provider in (Provider.NANOPHOTO, Provider.SEEDANCE15PRO):
            await choose_provider(pilot, provider)
            prompt = app.query_one("#prompt", TextArea)
            assert prompt.size.height >= least
            images = app.query_one("#image_urls", Input)
            assert cell_len(images.placeholder) <= images.size.width
            assert not painted(app.query_one("#prompt-meta", FittedLine)).endswith("…")
            form = app.query_one(JobForm)
            screen = app.screen.region
            assert screen.contains_region(form.region)  # the button's row included
            assert form.region.contains_region(app.query_one("#submit").region)


# -- snapshots ------------------------------------------------------------------------------


def form_shot(provider: Provider, images: bool):
    async def run(pilot) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        if provider is not Provider.NANOPHOTO:
            await choose_provider(pilot, provider)
        if images:
            await set_images(pilot, IMAGE)
        await pilot.press("n", *"a paper boat drifts down a rain gutter")
        await pilot.pause()

    return run


SHOTS = {
    "form-nanophoto": (Provider.NANOPHOTO, False),
    "form-seedance15pro": (Provider.SEEDANCE15PRO, False),
    "form-i2v-seedance15pro": (Provider.SEEDANCE15PRO, True),
}


@pytest.mark.parametrize("size", [(80, 24), (160, 48)], ids=["80x24", "160x48"])
@pytest.mark.parametrize("name", list(SHOTS))
def test_snapshot_form(snap_compare, seeded_settings, name, size):
    provider, images = SHOTS[name]
    app = SeedanceApp(seeded_settings, clock=fixed_clock, poll=False)
    assert snap_compare(app, terminal_size=size, run_before=form_shot(provider, images))
