"""The only place that speaks HTTP: the API client (`api`) and the media client (`media`).

Everything other modules use is re-exported here (`from seedance_tui.client import
Client, MediaClient`).
"""

from __future__ import annotations

from .api import (
    DEFAULT_DEADLINE,
    DEFAULT_TIMEOUT,
    MAX_ANSWER_BYTES,
    USER_AGENT,
    AnswerTooLarge,
    Client,
    Exchange,
    InsecureTransportError,
    OutcomeUnknown,
    check_transport_security,
    is_loopback,
)
from .media import (
    MAX_MEDIA_BYTES,
    MEDIA_TIMEOUT,
    STALL_BYTES,
    STALL_SECONDS,
    MediaClient,
    MediaError,
    MediaStream,
    check_media_url,
)

__all__ = [
    "DEFAULT_DEADLINE",
    "DEFAULT_TIMEOUT",
    "MAX_ANSWER_BYTES",
    "MAX_MEDIA_BYTES",
    "MEDIA_TIMEOUT",
    "STALL_BYTES",
    "STALL_SECONDS",
    "USER_AGENT",
    "AnswerTooLarge",
    "Client",
    "Exchange",
    "InsecureTransportError",
    "MediaClient",
    "MediaError",
    "MediaStream",
    "OutcomeUnknown",
    "check_media_url",
    "check_transport_security",
    "is_loopback",
]
