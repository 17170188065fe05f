"""The dashboard's screen: the live task list, the detail pane, the form, credits.

The screen owns its layout, its keys and the handlers that change its widgets. What is not
layout lives beside it: the engine bridge (`bridge.py`: engine events → messages), the
submit flow (`submit.py`), the downloads' state (`downloads.py`) and the list's query
(`query.py`). Its keys are the screen's bindings, so a dialog on top (a modal screen) or
the gallery has its own keys without any gating here.

Every worker runs on this screen in a named group — "engine" (the poll loop), "submit",
"download" (a save started by a key), "credits" (a thread summing the history) — with
`exit_on_error=False`; `_worker_state` is the one place their failures are reported.
(A frame view's worker, group "frame", is exclusive per view and says what went wrong
where the frame would be.)
"""

from __future__ import annotations

import asyncio
import math
import time
from functools import partial
from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static
from textual.worker import Worker, WorkerState

from .. import library
from ..models import Task, TaskStatus
from ..store import Filter, Store, TaskNotFoundError
from . import notices
from .bridge import EngineBridge
from .credits import CreditsFlow, CreditsPanel
from .detail import DetailPane
from .downloads import DownloadFlow, Downloads, DownloadStrip, PollChecks, open_video
from .footer import KeyFooter
from .form import JobForm
from .gallery import GalleryScreen
from .key_dialog import KeyFlow, NoKeyNotice
from .keys import APP_BINDINGS
from .messages import (
    CreditsComputed,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    EngineNotice,
    SubmitFailed,
    SubmitFinished,
    TaskUpdated,
)
from .prompt_history import recent_prompts
from .query import ListQuery
from .submit import SubmitFlow
from .task_list import TaskList
from .unchanged import show_text

if TYPE_CHECKING:
    from textual.timer import Timer

    from .app import SeedanceApp


def credits_of(task: Task) -> tuple:
    """What the credits panel sums of a task (with its status: held while pending)."""
    return (task.status, task.credits_estimated, task.credits_charged, task.credits_refunded)


# Seconds between two toasts about finished tasks, at least: more than a toast's own time
# on screen (Textual's 5 s), so answers streaming in show one summary at a time, not a
# stack of them, with a calm spell between. Each toast shown or hidden lays the whole
# screen out again (3-4 layouts of 10-20 ms at 160x48): one every 5 s cost the dashboard
# ~1.8 % of a core while 3 answers a second arrived, one a second ~3 % and half its output.
ANNOUNCE_EVERY = 10.0
# Seconds between two paints of what the engine changed for the user's eyes (the selected
# task, a new one; see `_paint_soon`), at least: a paint is a frame (10-15 ms at 160x48
# here), and answers arriving 3-4 a second drew one frame each, beside the tick's; the
# first change after a quiet spell shows at once. Other rows wait for the tick's frame.
PAINT_GAP = 0.5
# Actions on the selected task: their keys apply only when the task allows them.
TASK_ACTIONS = ("copy_url", "open_video", "rerun", "poll_now", "download")


class DashboardScreen(Screen[None]):
    BINDINGS = APP_BINDINGS

    def __init__(self) -> None:
        """Made by the app (`SeedanceApp.get_default_screen`), inside it."""
        super().__init__()
        self.mounted = asyncio.Event()  # set once on_mount has run (the app waits for it)
        app = cast("SeedanceApp", self.app)
        self.dashboard_app = app
        self.settings = app.settings
        self.clock = app.clock
        self.store: Store = app.store
        self.session = app.session
        self.frame_source = app.frame_source
        self.query_state = ListQuery()
        self.downloads = Downloads()
        self.bridge = EngineBridge(app.session, self.downloads, poll=app.poll)
        self.submit_flow = SubmitFlow(self)
        self.download_flow = DownloadFlow(self, self.downloads)
        self.poll_checks = PollChecks(self)
        self._keys_state: tuple[bool, ...] = ()
        # The engine's changes are painted together (see `_paint_soon`): a paint queued
        # or timed, the time of the last one, the credits summary waiting for it.
        self._paint_queued = False
        self._paint_timer: Timer | None = None
        self._painted_at = -math.inf  # time.monotonic() of the last paint
        self._summary: dict | None = None
        self._detail_due = False  # the selected task changed since the pane showed it
        self._finished: list[Task] = []  # finished since the last toast about finishes
        self._announced_at = 0.0  # time.monotonic() of that toast
        # The widgets this screen changes, made here and yielded by `compose`: handlers,
        # `check_action` (asked by the footer, also while the screen is being taken
        # down) and the engine's messages reach them without a query that could miss.
        self.search_input = Input(placeholder="/ search prompts", id="search", compact=True)
        self.query_label = Static(id="query-label")
        self.task_list = TaskList(
            self.store, clock=self.clock, eta=self.bridge.eta, link=self._link_state, id="tasks"
        )
        self.download_strip = DownloadStrip(id="downloads")
        self.detail = DetailPane(id="detail", frames=self.frame_source)
        self.form = JobForm(self.settings, prompts=partial(recent_prompts, self.store), id="form")
        self.credits = CreditsPanel(id="credits")
        self.key_notice = NoKeyNotice(id="no-key")
        self.key_notice.display = False  # until the keys were looked up (start_engine)
        # Titles and settings before the first frame, which shows them.
        self.form.border_title = "New job"
        self.credits.border_title = "Credits"
        self.search_input.cursor_blink = app.cursor_blink_enabled
        self.credits_flow = CreditsFlow(self, self.credits)
        self.key_flow = KeyFlow(self, self.key_notice)

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self._apply_breakpoint()
        with Horizontal(id="main"):
            with Vertical(id="tasks-column"):
                yield self.key_notice
                tasks_box = Vertical(id="tasks-box")
                tasks_box.border_title = "Tasks"
                with tasks_box:
                    with Horizontal(id="list-bar"):
                        yield self.search_input
                        yield self.query_label
                    yield self.task_list
                yield self.download_strip
                yield self.detail
            with Vertical(id="side-column"):
                yield self.form
                yield self.credits
        yield KeyFooter(compact=True, show_command_palette=False)

    def _apply_breakpoint(self) -> None:
        """The screen's width class (-narrow / -wide) before its widgets are mounted, so
        they are styled once. Textual sets it on the screen's first Resize, after the
        first frame was laid out without it: every widget was then styled, laid out and
        painted again."""
        width = self.app.size.width
        breakpoints = self.app.HORIZONTAL_BREAKPOINTS or []
        fitting = [(least, name) for least, name in breakpoints if width >= least]
        chosen = max(fitting)[1] if fitting else None
        self.update_classes({name: name == chosen for _, name in breakpoints}, animate=False)

    def on_mount(self) -> None:
        try:
            self.task_list.focus()
            self._show_list_state()
            # The credits are summed in a thread from now on, beside the first frame:
            # they need the history only, not the engine (its HTTP stack takes a while
            # to import), so the panel is not left empty behind it. The engine comes
            # right after the first frame.
            self.credits_flow.recount()
            self.call_after_refresh(self.start_engine)
            self.ticker = self.set_interval(1.0, self._tick)
            self.dashboard_app.announce_ready()
        finally:
            self.mounted.set()

    def on_screen_suspend(self) -> None:
        """A dialog or the gallery is on top: their keys apply (the footer shows none)."""
        self.refresh_bindings()

    def on_screen_resume(self) -> None:
        self.refresh_bindings()

    def start_engine(self) -> None:
        """Once: right after the first frame, or at the first submission if sooner."""
        if self.bridge.engine is not None:
            return
        self.dashboard_app.engine = self.bridge.start(self)
        self.key_flow.refresh_notice()  # the engine's client looked the keys up just now
        self.credits_flow.show_budget()

    @property
    def engine(self):
        return self.bridge.engine

    def _link_state(self, task: Task) -> str | None:
        return library.link_state(task, self.settings, now=self.clock())

    # -- engine → screen ---------------------------------------------------------------

    @on(TaskUpdated)
    def _task_updated(self, message: TaskUpdated) -> None:
        """The list holds the task at once. What the user looks at -- the selected task
        (its row, the detail pane, the keys), a new task, a finish being toasted -- is
        painted with the other changes of the moment (see `_paint_soon`); any other row
        at the next tick, within a second, in the frame the clocks draw anyway. The
        budget line at the next tick; the credits recounted when a task's credits
        changed (a recount scans the history)."""
        task, previous = message.task, message.previous
        held = self.task_list.held_task(task.id)
        self.task_list.update_task(task, is_new=message.is_new, paint=False)
        if isinstance(self.app.screen, GalleryScreen):
            self.app.screen.task_updated(task, is_new=message.is_new)
        selected = self.task_list.selected
        shown = message.is_new
        if selected is not None and (
            selected.id == task.id or (selected.group is not None and selected.group == task.group)
        ):
            self._detail_due = shown = True  # the task, or the other half of its compare
        if task.status.is_terminal and previous is not None and previous.is_pending:
            self._finished.append(task)
            if time.monotonic() - self._announced_at >= ANNOUNCE_EVERY:
                self._announce_finished()
                shown = True  # the row says what the toast says
        if held is None or message.is_new or credits_of(held) != credits_of(task):
            self.credits_flow.recount_soon()
        self.credits_flow.budget_due = True
        if shown:
            self._paint_soon()

    def _announce_finished(self) -> None:
        """The tasks that finished since the last toast, in one (or two) toasts: one
        toast every ANNOUNCE_EVERY seconds at most, however fast the answers come."""
        finished, self._finished = self._finished, []
        self._announced_at = time.monotonic()
        notices.announce_finished(self, finished, bell=self.settings.bell)
        for task in finished:  # the desktop notification and notify_command, each task
            self.dashboard_app.tell_ended(task)

    def _paint_soon(self) -> None:
        """Paint the engine's changes behind the messages already queued, or PAINT_GAP
        after the last paint if that is later: a burst, or answers streaming in, cost a
        frame every PAINT_GAP at most, not one each."""
        if self._paint_queued or self._paint_timer is not None:
            return
        wait = self._painted_at + PAINT_GAP - time.monotonic()
        if wait > 0:
            self._paint_timer = self.set_timer(wait, self._paint)
        else:
            self._paint_queued = True
            self.call_later(self._paint)  # behind the updates already queued

    def _paint(self) -> None:
        """What the engine changed since the last paint, in one frame: the rows, the
        selected task's details and keys, the credits summed meanwhile."""
        if self._paint_timer is not None:
            self._paint_timer.stop()
            self._paint_timer = None
        self._paint_queued = False
        self._painted_at = time.monotonic()
        self.task_list.paint_changed()
        if self._detail_due:
            self._detail_due = False
            selected = self.task_list.selected
            self._show_detail(selected.id if selected is not None else None)
            self._refresh_keys()
        if self._summary is not None:
            summary, self._summary = self._summary, None
            self.credits.show_summary(summary)

    @on(EngineNotice)
    def _engine_notice(self, message: EngineNotice) -> None:
        notices.engine_notice(self, message.level, message.text, persistent=message.persistent)

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one place worker failures are reported."""
        if event.state is not WorkerState.ERROR:
            return
        notices.worker_failed(self, event.worker)
        if event.worker.group == "submit":
            self.form.submitting = False
            self.refresh_bindings()

    # -- the list and the detail pane --------------------------------------------------

    @on(TaskList.Highlighted)
    def _highlighted(self, message: TaskList.Highlighted) -> None:
        self._show_detail(message.task_id)
        self._refresh_keys()

    def _refresh_keys(self) -> None:
        task = self.selected_task
        # Which task keys apply; the footer is rebuilt only when that changes.
        keys_state = (
            task is not None,
            bool(task and (task.video_urls or task.local_path)),
            bool(task and task.status is TaskStatus.PROCESSING),
            bool(task and self._can_download(task)),
        )
        if keys_state != self._keys_state:
            self._keys_state = keys_state
            self.refresh_bindings()

    @property
    def selected_task(self) -> Task | None:
        return self.task_list.selected

    def _show_detail(self, task_id: str | None) -> None:
        pane = self.detail
        if task_id is None:
            pane.show(None, [], now=self.clock())
            return
        try:
            task = self.store.get(task_id)
        except TaskNotFoundError:
            pane.show(None, [], now=self.clock())
            return
        eta = next_check = waiting = None
        if task.status.is_pending:
            eta = self.bridge.eta(task.id)
            next_check = self.bridge.next_check(task.id)
            waiting = self.bridge.waiting_reason(task.id)
        # A compare's pair: each provider's task of the group, beside this one.
        group = self.store.list(Filter(group=task.group), limit=None) if task.group else []
        pane.show(
            task,
            self.store.events(task.id),
            group=group,
            now=self.clock(),
            eta=eta,
            next_check=next_check,
            waiting=waiting,
            link=self._link_state(task),
        )
        self.download_flow.show()

    @on(TaskList.Reloaded)
    def _reloaded(self, message: TaskList.Reloaded) -> None:
        self._show_query_label(message.total)

    def _show_query_label(self, total: int) -> None:
        label = Text(no_wrap=True, overflow="ellipsis", style="dim")
        if self.query_state.unsearchable:
            label.append("nothing to search for", "bold yellow")
        else:
            # Narrow: short names, so the sort still shows.
            label.append(
                f"{total:,} · {self.query_state.summary(short=not self.has_class('-wide'))}"
            )
        show_text(self.query_label, label)

    def set_search(self, text: str) -> None:
        """Search the prompts (the gallery's search field drives the list's)."""
        self.query_state.search = text
        search = self.search_input
        with search.prevent(Input.Changed):
            search.value = text
        self.apply_query()

    def apply_query(self) -> None:
        query = self.query_state
        self.task_list.set_query(query.filter(), query.sort, unsearchable=query.unsearchable)
        self._show_list_state()

    def _show_list_state(self) -> None:
        """The count and the selected task's details, in the same frame as the list (at
        start-up and after a query): the list's Reloaded and Highlighted messages arrive
        after that frame, and then find both showing what they would show."""
        task_list = self.task_list
        self._show_query_label(task_list.total)
        selected = task_list.selected
        self._show_detail(selected.id if selected else None)

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.query_state.search = event.value.strip()
        self.apply_query()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.task_list.focus()

    def _tick(self) -> None:
        """Once a second, in one frame: the engine's changes not painted yet, the rows'
        clocks (spinners, ages, ETAs), the finishes since the last toast, the selected
        pending task's timing, the auto-downloads that ended, the budget line if due."""
        selected = self.task_list.selected
        if selected is not None and (selected.status.is_pending or self.detail.pair_pending):
            self._detail_due = True  # its next check, its ETA
        self._paint()
        self.task_list.tick()
        self.dashboard_app.key_order.check_stuck()
        if self._finished and time.monotonic() - self._announced_at >= ANNOUNCE_EVERY:
            self._announce_finished()
        self.download_flow.prune_auto()
        self.poll_checks.tick()
        self.credits_flow.tick()

    # -- credits -----------------------------------------------------------------------

    @on(CreditsComputed)
    def _credits_computed(self, message: CreditsComputed) -> None:
        """The first sums show at once; later ones at the next tick, with its changes (a
        recount ends at any moment: shown at once, each drew a frame of its own)."""
        first = self.credits.summary is None
        self._summary = message.summary
        if first:
            self._paint_soon()

    # -- submitting --------------------------------------------------------------------

    @on(JobForm.SubmitRequested)
    def _submit_requested(self, message: JobForm.SubmitRequested) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        self.submit_flow.request()

    def action_compare(self) -> None:
        self.submit_flow.compare()

    @on(SubmitFinished)
    def _submit_finished(self, message: SubmitFinished) -> None:
        self.submit_flow.finished(message.task)

    @on(SubmitFailed)
    def _submit_failed(self, message: SubmitFailed) -> None:
        self.submit_flow.failed(message.reason, message.field)

    # -- which keys apply --------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which keys apply now; the footer shows only those (greyed when not possible)."""
        if self.dashboard_app.typing_hides(action):
            return False  # the key types a character here
        if action == "focus_list":
            return not isinstance(self.focused, TaskList)
        if action in ("submit", "compare"):
            return self.submit_flow.can_submit()
        if action in TASK_ACTIONS:
            task = self.selected_task
            if task is None:
                return False
            if action in ("copy_url", "open_video") and not (task.video_urls or task.local_path):
                return False
            if action == "poll_now" and task.status is not TaskStatus.PROCESSING:
                return False
            if action == "download":
                if not self._can_download(task):
                    return False
                return None if task.id in self.downloads else True
        return True

    def _can_download(self, task: Task) -> bool:
        """A finished video whose file is not in the library (yet, or any more)."""
        return self._link_state(task) in ("remote", "missing", "expired")

    # -- actions -----------------------------------------------------------------------

    def action_help(self) -> None:
        self.dashboard_app.action_help()

    async def action_quit(self) -> None:
        await self.dashboard_app.action_quit()

    def action_gallery(self) -> None:
        gallery = GalleryScreen(self, self.store, self.frame_source, clock=self.clock,
                                start=self.task_list.cursor)  # fmt: skip
        self.app.push_screen(gallery, self._gallery_closed)

    def _gallery_closed(self, index: int | None) -> None:
        """Back from the gallery: on the task it was left on (`enter`), else where it was.
        The gallery's query is the list's, so an index there is an index here."""
        if index is not None:
            self.task_list.move_cursor(index)
        self.task_list.focus()

    def action_new_job(self) -> None:
        self.query_one("#prompt").focus()

    def action_search(self) -> None:
        self.search_input.focus()

    def action_focus_list(self) -> None:
        if self.focused is self.search_input and self.search_input.value:
            self.set_search("")  # esc from the search line drops the search
        self.task_list.focus()

    def action_cycle_status(self) -> None:
        self.query_state.cycle_status()
        self.apply_query()

    def action_cycle_provider(self) -> None:
        self.query_state.cycle_provider()
        self.apply_query()

    def action_cycle_sort(self) -> None:
        self.query_state.cycle_sort()
        self.apply_query()

    def action_clear_filters(self) -> None:
        self.query_state.clear()
        search = self.search_input
        with search.prevent(Input.Changed):
            search.value = ""
        self.apply_query()

    def action_copy_url(self) -> None:
        notices.copy_url(self, self.selected_task)

    def action_open_video(self) -> None:
        open_video(self, self.selected_task)

    def action_toggle_queue(self) -> None:
        queue = self.session.queue
        if queue is None:
            return
        if queue.paused():
            queue.resume()
        else:
            queue.pause()
        self.credits_flow.show_budget()

    def action_rerun(self) -> None:
        task = self.selected_task
        if task is None:
            return
        self.form.load_spec(task.spec)
        self.query_one("#prompt").focus()
        key = self.form.key_hint("submit")  # the key bound now, after the [keymap]
        then = f" and press {key}" if key else ""
        self.notify(f"Form filled from {task.short_id}: check it{then}", title="Re-run")

    def action_set_key(self) -> None:
        self.key_flow.open()

    def action_poll_now(self) -> None:
        self.poll_checks.ask(self.selected_task)

    # -- downloads ---------------------------------------------------------------------

    def action_download(self) -> None:
        task = self.selected_task
        if task is None or not self._can_download(task):
            self.notify("Only a finished video that is not saved yet can be saved.",
                        severity="warning")  # fmt: skip
            return
        self.download_flow.start(task)

    @on(DownloadProgress)
    def _download_progress(self, message: DownloadProgress) -> None:
        self.download_flow.progressed(message)

    @on(DownloadFinished)
    def _download_finished(self, message: DownloadFinished) -> None:
        self.download_flow.finished(message)

    @on(DownloadFailed)
    def _download_failed(self, message: DownloadFailed) -> None:
        self.download_flow.failed(message)

    def refresh_selected(self, task_id: str) -> None:
        """The task's file changed: the detail pane and the keys that apply to it."""
        selected = self.task_list.selected
        if selected is not None and selected.id == task_id:
            self._show_detail(task_id)
            self._keys_state = ()
            self.refresh_bindings()
