"""The dashboard: the submission form, the live task list, the detail pane, credits.

Threading model: everything runs on the app's event loop but one thread worker that sums
credits over its own read connection. The engine's poll loop is an async worker (group
"engine"); its listener turns engine events into messages, and `@on` handlers change the
screen. Submissions run in group "submit", downloads started with a key in group
"download"; nothing here is `exclusive` across groups. The engine's auto-download reports
progress through a listener that posts messages too.

At start-up the config's `[keymap]` is applied (Textual's keymap, by binding id = action
name) and its `theme` chosen; a theme picked later in the command palette is saved.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Input, Static, TextArea
from textual.worker import Worker, WorkerState

from .. import library, providers
from ..caps import CapExceeded, check_all
from ..caps import report as caps_report
from ..config import ConfigError, MissingKeyError, Settings, save_setting
from ..events import DownloadProgress as EngineDownloadProgress
from ..events import EngineEvent, Notice, TaskChanged
from ..jobs import compare_with
from ..models import JobSpec, JobValidationError, PreparedJob, Provider, Task, TaskStatus
from ..session import Session
from ..store import Filter, Store, StoreDamagedError, TaskNotFoundError, is_transient
from ..text import one_line
from .credits import CreditsPanel
from .detail import DetailPane
from .downloads import DownloadStrip
from .footer import KeyFooter
from .form import JobForm
from .frame_view import FrameSource
from .gallery import GalleryScreen
from .keys import APP_BINDINGS, COMMANDS, effective_keys, is_printable, split_keymap
from .messages import (
    CreditsComputed,
    DashboardReady,
    DownloadFailed,
    DownloadFinished,
    DownloadProgress,
    EngineNotice,
    SubmitFailed,
    SubmitFinished,
    TaskUpdated,
)
from .opener import over_ssh
from .screens import ConfirmCompare, ConfirmSubmit, HelpScreen
from .styles import css_paths
from .task_list import TaskList
from .typeahead import KeyOrder, KeyRoundTrip, is_typed
from .unchanged import OneLineLabel, show_text

if TYPE_CHECKING:
    from ..engine import Engine

STATUS_FILTERS: list[tuple[str, tuple[str, ...]]] = [
    ("all", ()),
    (
        "pending",
        (TaskStatus.QUEUED.value, TaskStatus.SUBMITTING.value, TaskStatus.PROCESSING.value),
    ),
    ("completed", (TaskStatus.COMPLETED.value,)),
    (
        "failed",
        (
            TaskStatus.FAILED.value,
            TaskStatus.REJECTED.value,
            TaskStatus.CANCELLED.value,
            TaskStatus.ORPHANED.value,
        ),
    ),
]
PROVIDER_FILTERS: list[str | None] = [None, *(p.value for p in Provider)]
SORTS = ["newest", "oldest", "credits"]
# Actions that act on the selected task or the list: idle while a dialog is open.
MAIN_SCREEN_ACTIONS = {
    "new_job", "search", "cycle_status", "cycle_provider", "cycle_sort", "clear_filters",
    "copy_url", "open_video", "rerun", "poll_now", "focus_list", "download", "toggle_queue",
    "gallery",
}  # fmt: skip
CREDITS_REFRESH_DELAY = 0.5
PERSISTENT_NOTICE = 86_400.0  # seconds a persistent notice stays unless dismissed
PROGRESS_EVERY = 0.1  # seconds between two progress messages of one download
# Set to a path, the dashboard writes its pid there once it takes keys, and removes the
# file when it quits (README, "Working with other tools": driving it from a script).
READY_FILE_VAR = "SEEDANCE_TUI_READY_FILE"


def search_and_submitter(text: str) -> tuple[str, str | None]:
    """The search box's words, and who submitted (a `by:WHO` word: USER@HOST, USER or
    @HOST, as `list --by` takes; the last one counts)."""
    words, who = [], None
    for word in text.split():
        if word.lower().startswith("by:") and len(word) > 3:
            who = word[3:]
        else:
            words.append(word)
    return " ".join(words), who


class SeedanceApp(App[int]):
    TITLE = "seedance-tui"
    CSS_PATH = css_paths()
    BINDINGS = APP_BINDINGS
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        poll: bool = True,
        store: Store | None = None,
        engine: Engine | None = None,
        session: Session | None = None,
    ) -> None:
        """`clock` drives ages, spinners and the engine; `poll=False` leaves the engine's
        loop stopped (snapshots, benchmarks). `session` (else one made of `store` and
        `engine`, each built when not given) owns the history and the engine."""
        super().__init__()
        self.settings = settings
        self.clock = clock
        self.poll = poll
        self.session = session or Session(settings, store=store, engine=engine, clock=clock)
        self.store = self.session.store
        self.engine: Engine | None = None
        self.status_filter = 0
        self.provider_filter = 0
        self.sort_index = 0
        self.search_text = ""
        self._confirming = False
        self._credits_timer = None
        self._keys_state: tuple[bool, ...] = ()
        self.keymap_overrides, self.unknown_keymap_actions = split_keymap(settings.keymap)
        # Actions whose keys type characters: a text field takes those keys, so the footer
        # hides them there (rebinding `search` to ctrl+f keeps it usable while typing).
        self.letter_actions = {
            binding.action
            for binding in APP_BINDINGS
            if any(is_printable(key) for key in effective_keys(binding, self.keymap_overrides))
        }
        # Downloads in progress: task id → (done, total, started by auto-download).
        self.downloads: dict[str, tuple[int, int | None, bool]] = {}
        self._progress_sent: dict[str, float] = {}
        self._form: JobForm | None = None  # found once mounted (see is_mounted_ready)
        self._ending_on_damage = False  # see _handle_exception
        # Poster frames for the detail pane and the gallery (made in workers, cached).
        self.frame_source = FrameSource(settings, clock=clock)
        self._engine_started = False
        self.key_order = KeyOrder(self, super().on_event)  # see typeahead.py
        if settings.demo:
            self.sub_title = "demo: built-in simulator, no key needed"

    # -- layout ------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        self._apply_breakpoint()
        with Horizontal(id="main"):
            with Vertical(id="tasks-column"):
                with Vertical(id="tasks-box"):
                    with Horizontal(id="list-bar"):
                        yield Input(placeholder="/ search prompts", id="search", compact=True)
                        yield OneLineLabel(id="query-label")
                    yield TaskList(
                        self.store,
                        clock=self.clock,
                        eta=self._eta,
                        link=self._link_state,
                        id="tasks",
                    )
                yield DownloadStrip(id="downloads")
                yield DetailPane(id="detail", frames=self.frame_source)
            with Vertical(id="side-column"):
                yield JobForm(id="form")
                yield CreditsPanel(id="credits")
        yield KeyFooter(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self._apply_keymap()
        self._apply_theme()
        self.main.query_one("#tasks-box").border_title = "Tasks"
        self.main.query_one("#form").border_title = "New job"
        self.main.query_one("#credits").border_title = "Credits"
        self.main.query_one("#search", Input).cursor_blink = self.cursor_blink_enabled
        task_list = self.main.query_one(TaskList)
        task_list.focus()
        self._show_list_state(task_list)
        # The first frame shows the list; the engine (and its HTTP stack) and the credits
        # scan come right after it.
        self.call_after_refresh(self._start_engine)
        self.set_interval(1.0, self._tick)
        self._announce_ready()

    def _announce_ready(self) -> None:
        """From here on keys are taken (the list has the focus: the focus change above is
        queued ahead of every key read from now on); keys read before were typed blind
        and are dropped (typeahead.py). Said with a message (for Pilot's message_hook),
        and in the file $SEEDANCE_TUI_READY_FILE names (for a script in a terminal)."""
        ready = DashboardReady()
        self.key_order.ready(ready.time)
        self.post_message(ready)
        path = os.environ.get(READY_FILE_VAR)
        if path:
            try:
                partial_path = Path(path + ".partial")
                partial_path.write_text(f"{os.getpid()}\n")
                os.replace(partial_path, path)
            except OSError as exc:
                self.notify(
                    f"Could not write {READY_FILE_VAR} ({one_line(str(exc), 200)})",
                    severity="warning",
                    markup=False,
                )

    def _withdraw_ready_file(self) -> None:
        """The ready file goes with the dashboard (if it still names this process)."""
        path = os.environ.get(READY_FILE_VAR)
        if not path or not self.is_ready:
            return
        try:
            if Path(path).read_text() == f"{os.getpid()}\n":
                Path(path).unlink()
        except OSError:
            pass  # gone already, or not ours to remove

    @property
    def is_ready(self) -> bool:
        """The dashboard takes keys (DashboardReady was sent)."""
        return self.key_order.ready_at is not None

    async def on_event(self, event: events.Event) -> None:
        """Typed keys and pastes one at a time, in order, each after the last took effect;
        those read before the dashboard was ready are dropped (typeahead.py)."""
        if not is_typed(event):
            await super().on_event(event)
            return
        reported = self.key_order.dropped
        if not await self.key_order.on_event(event) and not reported and self.key_order.dropped:
            self.call_after_refresh(self._report_dropped_keys)

    @on(KeyRoundTrip)
    def _key_round_trip(self, message: KeyRoundTrip) -> None:
        message.stop()
        self.key_order.round_trip_done(message)

    def _report_dropped_keys(self) -> None:
        count, self.key_order.dropped = self.key_order.dropped, 0
        self.notify(
            f"{count} key{'s' if count > 1 else ''} typed while the dashboard was starting "
            "did nothing: type once the task list shows.",
            title="Keys ignored",
            severity="warning",
            markup=False,
        )

    def _apply_breakpoint(self) -> None:
        """The screen's width class (-narrow / -wide) before its widgets are mounted, so
        they are styled once. Textual sets it on the screen's first Resize, after the
        first frame was laid out without it: every widget was then styled, laid out and
        painted again."""
        width = self.size.width
        fitting = [(least, name) for least, name in self.HORIZONTAL_BREAKPOINTS if width >= least]
        chosen = max(fitting)[1] if fitting else None
        self.main.update_classes(
            {name: name == chosen for _, name in self.HORIZONTAL_BREAKPOINTS}, animate=False
        )

    def _apply_keymap(self) -> None:
        if self.keymap_overrides:
            self.set_keymap(self.keymap_overrides)
        for problem in self.settings.keymap_problems:  # refused at load (keymap.py)
            self.notify(problem, title="Keymap", severity="warning", markup=False, timeout=10)
        if self.unknown_keymap_actions:
            self.notify(
                "Unknown action(s) in [keymap], ignored: "
                + ", ".join(self.unknown_keymap_actions)
                + " (the help screen, ?, lists the action names)",
                title="Keymap",
                severity="warning",
                markup=False,
                timeout=10,
            )

    def _apply_theme(self) -> None:
        """The configured theme, then watch for a new choice (the command palette's)."""
        name = self.settings.theme
        if name:
            if name in self.available_themes:
                self.theme = name
            else:
                self.notify(
                    f"Unknown theme {name!r} in the config, using {self.theme}",
                    title="Theme",
                    severity="warning",
                    markup=False,
                )
        self.theme_changed_signal.subscribe(self, self._theme_changed)

    def _theme_changed(self, theme) -> None:
        """Remember the theme in the config file (the next start uses it)."""
        if theme.name == self.settings.theme:
            return
        try:
            save_setting("theme", theme.name)
        except (ConfigError, OSError) as exc:
            self.notify(
                f"Theme not saved: {one_line(str(exc), 200)}",
                severity="warning",
                markup=False,
            )
            return
        self.settings.theme = theme.name

    def _start_engine(self) -> None:
        """Once: right after the first frame, or at the first submission if sooner."""
        if self._engine_started:
            return
        self._engine_started = True
        self.engine = self.session.start_engine()
        self.engine.subscribe(self._on_engine_event)
        if self.poll:
            self.run_worker(self.engine.run(), name="engine", group="engine", exit_on_error=False)
        self._show_budget()
        self._compute_credits()

    @property
    def main(self) -> Screen:
        """The dashboard's screen (queries go here, also while a dialog is on top)."""
        return self.screen_stack[0]

    @property
    def cursor_blink_enabled(self) -> bool:
        """Off under test (deterministic screenshots) and when asked for."""
        return not (self.is_headless or os.environ.get("SEEDANCE_TUI_NO_BLINK"))

    # -- engine → messages -------------------------------------------------------------

    def _on_engine_event(self, event: EngineEvent) -> None:
        """Called by the engine on this loop, synchronously: post, don't touch widgets."""
        if isinstance(event, TaskChanged):
            self.post_message(TaskUpdated(event.task, event.previous, external=event.external))
        elif isinstance(event, Notice):
            self.post_message(EngineNotice(event.level, event.message, persistent=event.persistent))
        elif isinstance(event, EngineDownloadProgress):
            self._post_progress(event.task_id, event.done, event.total, auto=True)

    def _eta(self, task_id: str) -> float | None:
        """A pending task's expected finish; infinity for one past its likely finish
        (the list and the detail pane say "overdue")."""
        if self.engine is None:
            return None
        if self.engine.overdue(task_id):
            return math.inf
        return self.engine.eta(task_id)

    def _link_state(self, task: Task) -> str | None:
        return library.link_state(task, self.settings, now=self.clock())

    @on(TaskUpdated)
    def _task_updated(self, message: TaskUpdated) -> None:
        if not self.is_mounted_ready:
            return  # shutting down
        task, previous = message.task, message.previous
        self.main.query_one(TaskList).update_task(task, is_new=message.is_new)
        if isinstance(self.screen, GalleryScreen):
            self.screen.task_updated(task, is_new=message.is_new)
        selected = self.main.query_one(TaskList).selected
        if selected is not None and selected.id == task.id:
            self._show_detail(task.id)
        if task.status.is_terminal and previous is not None and previous.is_pending:
            self._announce(task)
        self._schedule_credits()
        self._show_budget()

    def _announce(self, task: Task) -> None:
        """A toast (and the bell, if enabled) when a task finishes."""
        excerpt = one_line(task.prompt, 40)
        if task.status is TaskStatus.COMPLETED:
            took = f" in {task.generation_time:.0f}s" if task.generation_time else ""
            self.notify(
                f"{task.short_id} completed{took}: {excerpt}",
                title="Video ready",
                markup=False,
            )
        else:
            reason = one_line(task.error or task.status.value, 120)
            self.notify(
                f"{task.short_id} {task.status.value}: {reason}",
                title="Job " + task.status.value,
                severity="error",
                markup=False,
                timeout=8,
            )
        if self.settings.bell:
            self.bell()
        # The desktop notification and notify_command (notify.py). Textual 8.2.8 has no
        # public call that writes an escape sequence; App.bell and copy_to_clipboard
        # write through the driver as this does.
        from ..notify import tell

        driver = None if self.is_headless or self.is_web else self._driver
        tell(task, self.settings, write=driver.write if driver else None,
             report=lambda text: self.notify(text, severity="warning", markup=False))  # fmt: skip

    @on(EngineNotice)
    def _engine_notice(self, message: EngineNotice) -> None:
        severity = (
            message.level if message.level in ("information", "warning", "error") else "information"
        )
        # A persistent notice (an accepted task id the history could not record) stays
        # for a day unless dismissed (a click on it).
        timeout = PERSISTENT_NOTICE if message.persistent else None
        self.notify(
            one_line(message.text, 400 if message.persistent else 300),
            severity=severity,  # type: ignore[arg-type]
            markup=False,
            timeout=timeout,
        )

    @on(Worker.StateChanged)
    def _worker_state(self, event: Worker.StateChanged) -> None:
        """The one place worker failures are reported."""
        if event.state is WorkerState.ERROR:
            error = event.worker.error
            self.notify(
                f"{event.worker.group or event.worker.name} failed: "
                f"{type(error).__name__}: {one_line(str(error), 200)}",
                severity="error",
                markup=False,
                timeout=10,
            )
            if event.worker.group == "submit":
                self.main.query_one(JobForm).submitting = False

    # -- the list and the detail pane --------------------------------------------------

    @on(TaskList.Highlighted)
    def _highlighted(self, message: TaskList.Highlighted) -> None:
        if not self.is_mounted_ready:
            return
        self._show_detail(message.task_id)
        task = self._selected_task()
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

    def _show_detail(self, task_id: str | None) -> None:
        pane = self.main.query_one(DetailPane)
        if task_id is None:
            pane.show(None, [], now=self.clock())
            return
        try:
            task = self.store.get(task_id)
        except TaskNotFoundError:
            pane.show(None, [], now=self.clock())
            return
        eta = next_check = waiting = None
        if self.engine is not None and task.status.is_pending:
            eta = self._eta(task.id)
            next_check = self.engine.next_check(task.id)
            waiting = self.engine.waiting_reason(task.id)
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
        self._show_downloads()

    @on(TaskList.Reloaded)
    def _reloaded(self, message: TaskList.Reloaded) -> None:
        if not self.is_mounted_ready:
            return  # a reload that finished as the dashboard quit
        self._show_query_label(message.total)

    def _show_query_label(self, total: int) -> None:
        status = STATUS_FILTERS[self.status_filter][0]
        provider = PROVIDER_FILTERS[self.provider_filter] or "all providers"
        label = Text(no_wrap=True, overflow="ellipsis", style="dim")
        label.append(f"{total:,} · {status} · {provider} · {SORTS[self.sort_index]}")
        show_text(self.main.query_one("#query-label", Static), label)

    def current_filter(self) -> Filter:
        search, submitted_by = search_and_submitter(self.search_text)
        return Filter(
            status=STATUS_FILTERS[self.status_filter][1],
            provider=PROVIDER_FILTERS[self.provider_filter],
            search=search or None,
            submitted_by=submitted_by,
        )

    def current_sort(self) -> str:
        return SORTS[self.sort_index]

    def query_summary(self) -> str:
        """The filters and sort in force, as the list's count line says them."""
        status = STATUS_FILTERS[self.status_filter][0]
        provider = PROVIDER_FILTERS[self.provider_filter] or "all providers"
        return f"{status} · {provider} · {SORTS[self.sort_index]}"

    def set_search(self, text: str) -> None:
        """Search the prompts (the gallery's search field drives the list's)."""
        self.search_text = text
        search = self.main.query_one("#search", Input)
        with search.prevent(Input.Changed):
            search.value = text
        self.apply_query()

    def apply_query(self) -> None:
        task_list = self.main.query_one(TaskList)
        task_list.set_query(self.current_filter(), SORTS[self.sort_index])
        self._show_list_state(task_list)

    def _show_list_state(self, task_list: TaskList) -> None:
        """The count and the selected task's details, in the same frame as the list (at
        start-up and after a query): the list's Reloaded and Highlighted messages arrive
        after that frame, and then find both showing what they would show."""
        self._show_query_label(task_list.total)
        selected = task_list.selected
        self._show_detail(selected.id if selected else None)

    @on(Input.Changed, "#search")
    def _search_changed(self, event: Input.Changed) -> None:
        event.stop()
        self.search_text = event.value.strip()
        self.apply_query()

    @on(Input.Submitted, "#search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.main.query_one(TaskList).focus()

    def _tick(self) -> None:
        """Once a second: keep the selected pending task's timing and the budget current."""
        self.key_order.check_stuck()
        if not self.is_mounted_ready:
            return
        selected = self.main.query_one(TaskList).selected
        if selected is not None and selected.status.is_pending:
            self._show_detail(selected.id)
        self._prune_auto_downloads()
        self._show_budget()

    # -- credits -----------------------------------------------------------------------

    def _schedule_credits(self) -> None:
        """Several updates in a burst cost one recount."""
        if self._credits_timer is None:
            self._credits_timer = self.set_timer(CREDITS_REFRESH_DELAY, self._credits_due)

    def _credits_due(self) -> None:
        self._credits_timer = None
        self._compute_credits()

    @work(thread=True, group="credits", exclusive=True, exit_on_error=False)
    def _compute_credits(self) -> None:
        """Sum credits on a connection of this thread's own: it scans the whole history."""
        store = self.store.reader()  # the history's own kind: a file's, or a database's
        if store is None:
            return
        try:
            summary = store.credits_summary(self.clock())
            summary["caps"] = caps_report(
                Provider, self.settings.cap_windows, store.spending, self.clock()
            )
        finally:
            store.close()
        self.post_message(CreditsComputed(summary))

    @on(CreditsComputed)
    def _credits_computed(self, message: CreditsComputed) -> None:
        if not self.is_mounted_ready:
            return
        self.main.query_one(CreditsPanel).show_summary(message.summary)

    def _show_budget(self) -> None:
        if not self.is_mounted_ready:
            return
        if self.engine is None:
            return
        budgets = self.engine.budgets()
        panel = self.main.query_one(CreditsPanel)
        panel.show_budget(
            {p: b.state for p, b in budgets.items()}, {p: b.trouble for p, b in budgets.items()}
        )
        queue = self.session.queue
        if queue is not None:
            panel.show_queue(queue.counts(), queue.paused(), self._key_for("toggle_queue"))

    def _key_for(self, action: str) -> str:
        """How the footer writes the (possibly rebound) key of an app action."""
        for binding in APP_BINDINGS:
            if binding.action == action:
                keys = effective_keys(binding, self.keymap_overrides)
                return self.get_key_display(binding.with_key(keys[0])) if keys else ""
        return ""

    # -- submitting --------------------------------------------------------------------

    @on(JobForm.SubmitRequested)
    def _submit_requested(self, message: JobForm.SubmitRequested) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        form = self.main.query_one(JobForm)
        if form.submitting or self._confirming or isinstance(self.screen, ModalScreen):
            return
        spec = form.revalidate(show_empty_prompt=True)
        if spec is None:
            error = form.error
            if error is not None:
                form.focus_field(error.field)
                self.notify(
                    f"{error.field}: {error.message}",
                    title="Not submitted",
                    severity="warning",
                    markup=False,
                )
            return
        quote = providers.get(spec.provider).quote(spec)
        over = self._over_cap([PreparedJob(spec, quote)])
        self._confirming = True
        self.push_screen(
            ConfirmSubmit(spec, quote, over), partial(self._confirmed, [spec], over is not None)
        )

    def action_compare(self) -> None:
        """The form's job on both providers (fields mapped to each one's nearest): shown
        side by side with each price and the total, then sent as one group."""
        form = self.main.query_one(JobForm)
        if form.submitting or self._confirming or isinstance(self.screen, ModalScreen):
            return
        spec = form.revalidate(show_empty_prompt=True)
        if spec is None:
            error = form.error
            if error is not None:
                form.focus_field(error.field)
                self.notify(
                    f"{error.field}: {error.message}",
                    title="Not submitted",
                    severity="warning",
                    markup=False,
                )
            return
        try:
            jobs = compare_with(PreparedJob(spec, providers.get(spec.provider).quote(spec)),
                                self.settings)  # fmt: skip
        except JobValidationError as exc:
            self.notify(f"{exc.field}: {exc.message}", title="Not compared",
                        severity="warning", markup=False)  # fmt: skip
            return
        over = self._over_cap(jobs)
        self._confirming = True
        self.push_screen(
            ConfirmCompare(jobs, over),
            partial(self._confirmed, [j.spec for j in jobs], over is not None),
        )

    def _over_cap(self, jobs: list[PreparedJob]) -> CapExceeded | None:
        """The cap these jobs would pass (what the confirm dialog shows), if any: a look
        before asking; the store checks again, atomically, when the intents are written."""
        costs: dict[Provider, tuple[int, int]] = {}
        for job in jobs:
            cost, count = costs.get(job.provider, (0, 0))
            costs[job.provider] = (cost + job.quote.credits, count + 1)
        try:
            check_all(self.settings.cap_windows(costs, self.clock()), costs, self.store.spending)
        except CapExceeded as exc:
            return exc
        return None

    def _confirmed(self, specs: list[JobSpec], over_cap: bool, confirmed: bool | None) -> None:
        self._confirming = False
        form = self.main.query_one(JobForm)
        if not confirmed or form.submitting:
            return
        form.submitting = True
        self.refresh_bindings()
        self._submit_job(specs, over_cap)

    @work(group="submit", exit_on_error=False)
    async def _submit_job(self, specs: list[JobSpec], over_cap: bool = False) -> None:
        """One job, or (a compare) several as one group; `over_cap`: the user pressed the
        override key in the confirm dialog, for these jobs only."""
        self._start_engine()  # a job confirmed before the first frame was painted
        assert self.engine is not None
        try:
            if len(specs) == 1 and over_cap:
                tasks = [await self.engine.submit(specs[0], over_cap=True)]
            elif len(specs) == 1:
                tasks = [await self.engine.submit(specs[0])]
            else:
                tasks = await self.engine.submit_group(specs, over_cap=over_cap)
        except JobValidationError as exc:
            self.post_message(SubmitFailed(f"{exc.field}: {exc.message}", exc.field))
        except (MissingKeyError, CapExceeded) as exc:
            self.post_message(SubmitFailed(str(exc)))
        else:
            for task in tasks:
                self.post_message(SubmitFinished(task))

    @on(SubmitFinished)
    def _submit_finished(self, message: SubmitFinished) -> None:
        if not self.is_mounted_ready:
            return
        form = self.main.query_one(JobForm)
        form.submitting = False
        self.refresh_bindings()
        task = message.task
        if task.status is TaskStatus.PROCESSING:
            self.notify(
                f"{task.short_id} accepted, rendering ({task.credits_charged or task.credits_estimated} credits)",
                title="Submitted",
                markup=False,
            )
        else:
            self.notify(
                f"{task.short_id} {task.status.value}: {one_line(task.error, 200)}",
                title="Not accepted",
                severity="error",
                markup=False,
                timeout=10,
            )
        task_list = self.main.query_one(TaskList)
        task_list.select(task.id)
        # The answer arrives whenever it arrives: never pull focus out of a field the user
        # is typing in (the next prompt, say), or their keys would become list shortcuts.
        if not isinstance(self.focused, Input | TextArea):
            task_list.focus()

    @on(SubmitFailed)
    def _submit_failed(self, message: SubmitFailed) -> None:
        if not self.is_mounted_ready:
            return
        form = self.main.query_one(JobForm)
        form.submitting = False
        self.refresh_bindings()
        if message.field:
            form.revalidate(show_empty_prompt=True)
        self.notify(message.reason, title="Not submitted", severity="error", markup=False)

    # -- actions -----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Which keys apply now; the footer shows only those (greyed when not possible)."""
        if isinstance(self.screen, ModalScreen) and action in MAIN_SCREEN_ACTIONS | {
            "help",
            "quit",
        }:
            return False  # a dialog's own keys apply
        if isinstance(self.screen, GalleryScreen) and action in MAIN_SCREEN_ACTIONS:
            return False  # the gallery's own keys apply
        typing = isinstance(self.focused, Input | TextArea)
        if typing and action in self.letter_actions:
            return False  # the key types a character here
        if action == "focus_list":
            return not isinstance(self.focused, TaskList)
        if action in ("submit", "compare"):
            if isinstance(self.screen, ModalScreen) or self._confirming:
                return False
            if self.is_mounted_ready and self._form is not None and self._form.submitting:
                return None
            return True
        if action in ("copy_url", "open_video", "rerun", "poll_now", "download"):
            task = self._selected_task()
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

    @property
    def is_mounted_ready(self) -> bool:
        """The dashboard is up (False while starting and once shutting down). Asked for
        every binding each time the footer is refreshed: the form is looked up once."""
        if not (self.is_running and self.screen_stack):
            return False
        if self._form is None:
            forms = self.main.query(JobForm)
            if not forms:
                return False
            self._form = forms.first()
        return self._form.is_attached

    def _selected_task(self) -> Task | None:
        if not self.is_mounted_ready or not isinstance(self.screen, Screen):
            return None
        return self.main.query_one(TaskList).selected

    def action_gallery(self) -> None:
        if isinstance(self.screen, GalleryScreen):
            return
        task_list = self.main.query_one(TaskList)
        gallery = GalleryScreen(self.store, self.frame_source, clock=self.clock,
                                start=task_list.cursor)  # fmt: skip
        self.push_screen(gallery, self._gallery_closed)

    def _gallery_closed(self, index: int | None) -> None:
        """Back from the gallery: on the task it was left on (`enter`), else where it was.
        The gallery's query is the list's, so an index there is an index here."""
        task_list = self.main.query_one(TaskList)
        if index is not None:
            task_list.move_cursor(index)
        task_list.focus()

    def deliver_screenshot(
        self, filename: str | None = None, path: str | None = None, time_format: str | None = None
    ) -> str | None:
        """Textual's, into a folder that exists (Textual's own fails when ~/Downloads
        does not); in a browser the file is handed to the browser, as Textual does."""
        if not self.is_web:
            from ..paths import screenshots_dir

            folder = Path(path).expanduser() if path else screenshots_dir()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.notify(f"Screenshot not saved: {exc}", severity="error", markup=False)
                return None
            path = str(folder)
        return super().deliver_screenshot(filename, path, time_format)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.keymap_overrides))

    def action_new_job(self) -> None:
        self.main.query_one("#prompt").focus()

    def action_search(self) -> None:
        self.main.query_one("#search", Input).focus()

    def action_focus_list(self) -> None:
        self.main.query_one(TaskList).focus()

    def action_cycle_status(self) -> None:
        self.status_filter = (self.status_filter + 1) % len(STATUS_FILTERS)
        self.apply_query()

    def action_cycle_provider(self) -> None:
        self.provider_filter = (self.provider_filter + 1) % len(PROVIDER_FILTERS)
        self.apply_query()

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.apply_query()

    def action_clear_filters(self) -> None:
        self.status_filter = self.provider_filter = self.sort_index = 0
        self.search_text = ""
        search = self.main.query_one("#search", Input)
        with search.prevent(Input.Changed):
            search.value = ""
        self.apply_query()

    def action_copy_url(self) -> None:
        task = self._selected_task()
        if task is None or not task.video_urls:
            self.notify("This task has no video URL yet.", severity="warning")
            return
        self.copy_to_clipboard(task.video_urls[0])
        self.notify(
            f"Copied {one_line(task.video_urls[0], 80)}", title="Clipboard (OSC 52)", markup=False
        )

    def action_open_video(self) -> None:
        """The saved file (else the link) with the system's opener; without one (over SSH,
        no desktop) copy the link (else the file's path) and say so."""
        task = self._selected_task()
        try:
            target = library.open_target(task) if task else None
        except library.UnsafeTarget as exc:
            self.notify(str(exc), title="Not opened", severity="error", markup=False)
            return
        if task is None or target is None:
            self.notify("This task has no video yet.", severity="warning")
            return
        if library.open_with_system(target):
            self.notify(f"Opening {one_line(target, 80)}", markup=False)
            return
        copied = task.video_urls[0] if task.video_urls else target
        self.copy_to_clipboard(copied)
        where = "over SSH" if over_ssh() else "on this machine"
        what = "the URL" if task.video_urls else "the file's path"
        self.notify(
            f"No system opener {where}: copied {what} instead — {one_line(copied, 80)}",
            title="Copied",
            markup=False,
        )

    # -- downloads ---------------------------------------------------------------------

    def action_download(self) -> None:
        task = self._selected_task()
        if task is None or not self._can_download(task):
            self.notify("Only a finished video that is not saved yet can be saved.",
                        severity="warning")  # fmt: skip
            return
        if task.id in self.downloads:
            self.notify(f"{task.short_id} is being saved already.")
            return
        self.downloads[task.id] = (0, None, False)
        self.refresh_bindings()
        self._show_downloads()
        self._download(task)

    @work(group="download", exit_on_error=False)
    async def _download(self, task: Task) -> None:
        def progress(done: int, total: int | None) -> None:
            self._post_progress(task.id, done, total, auto=False)

        try:
            path = await library.download_task(
                task, self.store, self.settings, on_progress=progress, clock=self.clock
            )
        except library.DownloadError as exc:
            self.post_message(DownloadFailed(task.id, str(exc)))
        else:
            self.post_message(DownloadFinished(task.id, str(path)))

    def _post_progress(self, task_id: str, done: int, total: int | None, *, auto: bool) -> None:
        """At most one message per PROGRESS_EVERY seconds per download, and the last one."""
        now = time.monotonic()
        finished = total is not None and done >= total
        if not finished and now - self._progress_sent.get(task_id, 0.0) < PROGRESS_EVERY:
            return
        self._progress_sent[task_id] = now
        self.post_message(DownloadProgress(task_id, done, total, auto=auto))

    @on(DownloadProgress)
    def _download_progress(self, message: DownloadProgress) -> None:
        if not self.is_mounted_ready:
            return
        current = self.downloads.get(message.task_id)
        if current is None and not message.auto:
            return  # a late message of a download that has ended
        self.downloads[message.task_id] = (message.done, message.total, message.auto)
        self._show_downloads()

    @on(DownloadFinished)
    def _download_finished(self, message: DownloadFinished) -> None:
        self._download_ended(message.task_id)
        if not self.is_mounted_ready:
            return
        task = self.store.get(message.task_id)
        self.main.query_one(TaskList).update_task(task)
        self._refresh_selected(task.id)
        self.notify(f"Saved {task.short_id} to {message.path}", title="Saved", markup=False)

    @on(DownloadFailed)
    def _download_failed(self, message: DownloadFailed) -> None:
        self._download_ended(message.task_id)
        if not self.is_mounted_ready:
            return
        self.notify(
            f"Could not save {message.task_id[-8:]}: {one_line(message.reason, 200)}",
            title="Not saved",
            severity="error",
            markup=False,
            timeout=10,
        )

    def _download_ended(self, task_id: str) -> None:
        self.downloads.pop(task_id, None)
        self._progress_sent.pop(task_id, None)
        if self.is_mounted_ready:
            self._show_downloads()
            self.refresh_bindings()

    def _refresh_selected(self, task_id: str) -> None:
        selected = self.main.query_one(TaskList).selected
        if selected is not None and selected.id == task_id:
            self._show_detail(task_id)
            self._keys_state = ()
            self.refresh_bindings()

    def _prune_auto_downloads(self) -> None:
        """Auto-downloads that ended (saved or given up) leave the strip."""
        downloads = self.session.downloads
        running = downloads.progress if downloads is not None else {}
        for task_id, (_, _, auto) in list(self.downloads.items()):
            if auto and task_id not in running:
                self._download_ended(task_id)

    def _show_downloads(self) -> None:
        """The strip shows the selected task's download, else the latest one started."""
        if not self.is_mounted_ready:
            return
        strip = self.main.query_one(DownloadStrip)
        if not self.downloads:
            strip.hide()
            return
        selected = self.main.query_one(TaskList).selected
        task_id = (
            selected.id
            if selected is not None and selected.id in self.downloads
            else next(reversed(self.downloads))
        )
        done, total, _ = self.downloads[task_id]
        strip.show(task_id[-8:], done, total, others=len(self.downloads) - 1)

    # -- the batch queue ---------------------------------------------------------------

    def action_toggle_queue(self) -> None:
        queue = self.session.queue
        if queue is None:
            return
        if queue.paused():
            queue.resume()
        else:
            queue.pause()
        self._show_budget()

    def action_rerun(self) -> None:
        task = self._selected_task()
        if task is None:
            return
        self.main.query_one(JobForm).load_spec(task.spec)
        self.main.query_one("#prompt").focus()
        self.notify(f"Form filled from {task.short_id}: check it and press ctrl+s", title="Re-run")

    def action_poll_now(self) -> None:
        task = self._selected_task()
        if task is None or self.engine is None or task.status is not TaskStatus.PROCESSING:
            self.notify("Only a task that is rendering can be checked.", severity="warning")
            return
        if self.engine.poll_now(task.id):
            self.notify(f"Checking {task.short_id} now")
        else:
            next_check = self.engine.next_check(task.id)
            when = f" next check in {max(0, next_check - self.clock()):.0f}s" if next_check else ""
            self.notify(
                f"The hourly request budget is spent;{when}", severity="warning", markup=False
            )

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for command in COMMANDS:
            yield SystemCommand(
                command.title, command.help, partial(self.run_action, command.action)
            )

    async def action_quit(self) -> None:
        self.exit(0)

    def _handle_exception(self, error: Exception) -> None:
        """A damaged page of a large history (not read page by page when opened) shows up
        when it is read: end with what is wrong (exit 2, as the commands do), not a
        traceback. Anything else is Textual's to report."""
        if self._ending_on_damage:
            return  # widgets stopped half-way by that exit (e.g. still mounting)
        if isinstance(error, StoreDamagedError):
            self._ending_on_damage = True
            self.exit(return_code=2, message=Text(f"error: {error}"))
            return
        if is_transient(error):
            # A full disk under the history: the action is not done, the dashboard stays
            # (the engine waits for space and says so).
            self.notify(one_line(str(error), 300), severity="error", markup=False, timeout=10)
            return
        super()._handle_exception(error)

    async def on_unmount(self) -> None:
        await self.frame_source.aclose()
        self._withdraw_ready_file()
        await self.session.stop_sending()  # a queued job being sent finishes, no new one
        await self.session.aclose()
