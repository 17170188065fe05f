"""One module per provider: request/response models, price table, error mapping. Pure."""

from __future__ import annotations

from ..models import Provider
from .base import (
    ApiError,
    AuthError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    ProtocolError,
    ProviderAdapter,
    RateLimitError,
    RequestSpec,
    ServerError,
    SubmitAnswer,
    TransportError,
)
from .nanophoto import adapter as nanophoto
from .seedance15pro import adapter as seedance15pro

ADAPTERS: dict[Provider, ProviderAdapter] = {
    Provider.NANOPHOTO: nanophoto,
    Provider.SEEDANCE15PRO: seedance15pro,
}


def get(provider: Provider | str) -> ProviderAdapter:
    return ADAPTERS[Provider(provider)]


__all__ = [
    "ADAPTERS",
    "ApiError",
    "AuthError",
    "BadRequestError",
    "InsufficientCreditsError",
    "NotFoundError",
    "ProtocolError",
    "ProviderAdapter",
    "RateLimitError",
    "RequestSpec",
    "ServerError",
    "SubmitAnswer",
    "TransportError",
    "get",
]
