"""The prompts written before, for the prompt editor's `up`/`down` (and ctrl+r).

The history is the task history in the store: the newest prompts first, each once (the
same text submitted twice is one entry), only this user's in a shared (studio) history.
It is read when browsing starts — in an empty prompt — so a prompt submitted a moment
ago is the first one back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..store import Store
from ..store.rows import this_submitter

RECENT = 200  # tasks read per browse: the newest page, one indexed query


def recent_prompts(store: Store, limit: int = RECENT) -> list[str]:
    """This user's prompts among the newest `limit` tasks, newest first, no duplicates."""
    me = this_submitter()
    seen: set[str] = set()
    prompts: list[str] = []
    for task in store.list(None, sort="newest", limit=limit):
        if task.submitted_by not in (None, me):
            continue  # someone else's task in a shared history
        prompt = task.prompt
        if not prompt.strip() or prompt in seen:
            continue
        seen.add(prompt)
        prompts.append(prompt)
    return prompts


class PromptHistory:
    """Browsing the earlier prompts: `older` from the prompt being written (the draft,
    given back by `newer` past the newest entry), `newer` back towards it.

    `load` gives the entries, newest first; it is called when a browse starts.
    """

    def __init__(self, load: Callable[[], Sequence[str]] | None) -> None:
        self._load = load
        self._entries: list[str] = []
        self._index = -1  # the entry shown; -1: not browsing
        self._draft = ""

    @property
    def browsing(self) -> bool:
        return self._index >= 0

    @property
    def shown(self) -> str | None:
        """The entry on show while browsing (None: not browsing)."""
        return self._entries[self._index] if self.browsing else None

    def start(self, draft: str) -> None:
        self._entries = list(self._load()) if self._load is not None else []
        self._draft = draft
        self._index = -1

    def older(self) -> str | None:
        """The entry before the one shown (the newest when not browsing yet); None when
        there is none (the oldest is shown, or there is no history)."""
        if self._index + 1 >= len(self._entries):
            return None
        self._index += 1
        return self._entries[self._index]

    def newer(self) -> str | None:
        """The entry after the one shown, or the draft past the newest (browsing ends);
        None when not browsing."""
        if not self.browsing:
            return None
        self._index -= 1
        return self._draft if self._index < 0 else self._entries[self._index]

    def stop(self) -> None:
        """The user edited the text: it is theirs now, not an entry."""
        self._index = -1
