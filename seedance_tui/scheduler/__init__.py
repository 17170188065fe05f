"""When to poll what: per-task next poll, per-key request budget, backoff.

Pure logic over an injected clock: no sleeps, no I/O, no imports of the client or
the store. The engine feeds it facts (requests made, answers seen, 429s, render times
of finished tasks) and asks it what to do next.

Policy in brief:

* **Budget.** Each budget key (`BudgetKey`: provider and key fingerprint) has a sliding
  window (an hour unless the provider's `rate_window` says otherwise) of request times,
  loaded from the shared ledger and extended by every request recorded. Submissions
  come first: polls never spend the share waiting submissions need, nor a small
  standing reserve, unless as many requests leave the window within `submit_slack`
  (a fresh submission may wait that long for one), or the poll saves more waiting in
  expectation than it may cost (a likely finish seen now against a fresh submission,
  at the last hour's rate, coming before the reserve's release). No key gets more than
  `burst` requests in one second.
* **When to poll.** Render times are learned per profile (provider, resolution,
  duration, audio) as a bounded window of recent observations blended with a prior from
  the docs ("typically 1-3 minutes", longer for high resolution and long clips). The
  prior's range bounds the likely range until the observations refute an end of it;
  a prior whose scale their median refutes is rescaled at once, and without render
  times from the server, first checks that keep finding tasks finished probe earlier.
  A task is first checked one gap after its earliest likely finish, then every gap
  until its latest likely finish, then ever more rarely while overdue.
* **Pacing.** While the window's count stays well under the limit over the coming
  window, the gap is a quarter of the likely range (capped by the target latency).
  Otherwise it is the target latency itself: the fewest polls that still see every
  finish in time. When some of those would have to wait for a slot in the coming
  minutes (simulated: due polls in order, the budget freeing as old requests age),
  whole tasks are deferred, newest first, as many as leave the fewest finishes
  expected to be seen late, rather than every gap stretched: nearly every finish seen
  in time beats all tasks a little late. Polls due that cannot all be afforded go
  first to the on-time tasks most likely to have finished.
* **Trouble.** A 429 stops the key, both endpoints, until Retry-After; then its
  requests are released one at a time at the limit's average pace for a while. A 5xx
  or transport error backs that one task off exponentially, with jitter.

Where each part lives:

* `estimates`: render times learned per profile, the prior, and the belief a task is
  scheduled by (`RenderEstimate`, `RenderTimes`, `prior_range`).
* `budget`: one key's request budget: the sliding window, the reserve kept for
  submissions, the 429 pause, hold and spacing, the burst limit (`KeyBudget`,
  `BudgetState`).
* `pacing`: the gap between polls at each pace and the plan that picks the paces from a
  simulation of the coming minutes (`Cadence`, `Pacer`).
* `tasks`: a pending task as the scheduler sees it (`PollTarget`) and its polls so far.
* `facade`: the `Scheduler` the engine and the ledger call.
"""

from __future__ import annotations

from .budget import (
    BURST_SPAN,
    DEFAULT_BURST,
    DEFAULT_RESERVE_FRACTION,
    DEFAULT_SUBMIT_SLACK,
    HOUR,
    RATE_LIMIT_DEFAULT,
    RECOVERY_MIN,
    RECOVERY_SPACING,
    BudgetState,
)
from .estimates import RenderEstimate, RenderTimes, prior_range
from .facade import Scheduler
from .pacing import DEFAULT_MAX_INTERVAL, DEFAULT_MIN_INTERVAL, DEFAULT_TARGET_LATENCY
from .tasks import PollTarget

__all__ = [
    "BURST_SPAN",
    "DEFAULT_BURST",
    "DEFAULT_MAX_INTERVAL",
    "DEFAULT_MIN_INTERVAL",
    "DEFAULT_RESERVE_FRACTION",
    "DEFAULT_SUBMIT_SLACK",
    "DEFAULT_TARGET_LATENCY",
    "HOUR",
    "RATE_LIMIT_DEFAULT",
    "RECOVERY_MIN",
    "RECOVERY_SPACING",
    "BudgetState",
    "PollTarget",
    "RenderEstimate",
    "RenderTimes",
    "Scheduler",
    "prior_range",
]
