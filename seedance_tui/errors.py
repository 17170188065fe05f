"""Errors about the user's settings and keys, shared by `config` and `keys` (which must
not import each other: `config` looks keys up through `keys`)."""

from __future__ import annotations

from .hosts import key_set_command
from .models import Provider


class ConfigError(Exception):
    """Settings that cannot be used as they are; the message says how to fix them."""


class MissingKeyError(Exception):
    """No API key for a provider that a job needs."""

    def __init__(self, provider: Provider, env_key: str) -> None:
        super().__init__(
            f"no API key for {provider.value}: set {env_key} or run `{key_set_command(provider)}`"
        )
        self.provider = provider


__all__ = ["ConfigError", "MissingKeyError"]
