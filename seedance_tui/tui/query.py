"""What the task list shows: the status and provider filters, the sort and the search.

One `ListQuery` belongs to the dashboard; the gallery shows and changes the same one, so
a filter chosen in either applies to both.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Provider, TaskStatus
from ..store import Filter, nothing_to_search
from .format import PROVIDER_SHORT

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


@dataclass
class ListQuery:
    """Indices into STATUS_FILTERS, PROVIDER_FILTERS and SORTS, and the search text."""

    status: int = 0
    provider: int = 0
    sort_index: int = 0
    search: str = ""

    @property
    def sort(self) -> str:
        return SORTS[self.sort_index]

    def filter(self) -> Filter:
        search, submitted_by = search_and_submitter(self.search)
        return Filter(
            status=STATUS_FILTERS[self.status][1],
            provider=PROVIDER_FILTERS[self.provider],
            search=search or None,
            submitted_by=submitted_by,
        )

    @property
    def unsearchable(self) -> bool:
        """A search was typed with no word to search for (`"`, `*`, an emoji): it says
        so instead of listing everything."""
        words, _who = search_and_submitter(self.search)
        return nothing_to_search(words)

    def summary(self, *, short: bool = False) -> str:
        """The filters and sort in force, as the list's count line says them; `short`
        for a narrow bar ("all · nano · newest"), so the sort still shows."""
        status = STATUS_FILTERS[self.status][0]
        provider = PROVIDER_FILTERS[self.provider]
        if short:
            provider_text = PROVIDER_SHORT[Provider(provider)] if provider else "all"
        else:
            provider_text = provider or "all providers"
        return f"{status} · {provider_text} · {self.sort}"

    def cycle_status(self) -> None:
        self.status = (self.status + 1) % len(STATUS_FILTERS)

    def cycle_provider(self) -> None:
        self.provider = (self.provider + 1) % len(PROVIDER_FILTERS)

    def cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)

    def clear(self) -> None:
        self.status = self.provider = self.sort_index = 0
        self.search = ""
