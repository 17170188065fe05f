"""Where API keys are stored: the OS keyring when one is usable, else a 0600 file.

Lookup order (first found wins), as `config.load_settings` applies it:

  1. a key given on the command line (a flag),
  2. the environment (`NANOPHOTO_API_KEY`, `SEEDANCE15PRO_API_KEY`),
  3. the OS keyring (service "seedance-tui", user = the provider's name),
  4. `keys.json` (mode 0600) in the config dir.

`SEEDANCE_TUI_KEYRING=0` turns the keyring off (step 3 is skipped and `key set` writes
the file). Nothing here ever prints, logs or returns a key to a caller that shows it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .config import (
    APP,
    ConfigError,
    keys_path,
    read_keys_file,
    write_keys_file,
)
from .models import Provider
from .providers import ADAPTERS

SERVICE = APP


def keyring_enabled(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("SEEDANCE_TUI_KEYRING", "1").strip().lower() not in ("0", "false", "no", "off")


def keyring_backend(env: dict[str, str] | None = None) -> Any | None:
    """The keyring backend when a usable one exists (not the fail or null backend)."""
    if not keyring_enabled(env):
        return None
    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    try:
        from keyring.backends import chainer

        if isinstance(backend, chainer.ChainerBackend) and not backend.backends:
            return None
    except ImportError:
        pass
    try:
        if float(backend.priority) <= 0:
            return None
    except Exception:
        return None
    return backend


def keyring_name(backend: Any) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def keyring_get(provider: Provider, env: dict[str, str] | None = None) -> str | None:
    backend = keyring_backend(env)
    if backend is None:
        return None
    try:
        value = backend.get_password(SERVICE, provider.value)
    except Exception:
        return None  # a locked or broken keyring is treated as holding nothing
    return value or None


@dataclass(frozen=True, slots=True)
class KeyStatus:
    provider: Provider
    source: str | None  # "env", "keyring", "file" or None: the first that has a key
    sources: tuple[str, ...]  # every place that holds one
    env_var: str

    def to_public(self) -> dict[str, Any]:
        return {
            "provider": self.provider.value,
            "has_key": self.source is not None,
            "source": self.source,
            "sources": list(self.sources),
            "env_var": self.env_var,
        }


def key_status(env: dict[str, str] | None = None) -> list[KeyStatus]:
    """Which providers have a key and where it comes from (never the key itself)."""
    env = dict(os.environ if env is None else env)
    stored = read_keys_file()
    out = []
    for provider, adapter in ADAPTERS.items():
        sources = []
        if env.get(adapter.env_key):
            sources.append("env")
        if keyring_get(provider, env):
            sources.append("keyring")
        if stored.get(provider.value):
            sources.append("file")
        out.append(
            KeyStatus(provider, sources[0] if sources else None, tuple(sources), adapter.env_key)
        )
    return out


def store_key(provider: Provider, key: str, *, env: dict[str, str] | None = None) -> str:
    """Store a key; returns where it went ("keyring" or the file's path)."""
    key = key.strip()
    if not key:
        raise ConfigError("an empty key was given; nothing stored")
    if any(c.isspace() for c in key) or not key.isprintable():
        raise ConfigError("the key contains spaces or control characters; nothing stored")
    backend = keyring_backend(env)
    if backend is not None:
        try:
            backend.set_password(SERVICE, provider.value, key)
        except Exception as exc:
            raise ConfigError(
                f"the keyring ({keyring_name(backend)}) refused the key: {type(exc).__name__}; "
                "set SEEDANCE_TUI_KEYRING=0 to store it in a 0600 file instead"
            ) from None
        # A stale copy in the file would be shadowed and confusing: drop it.
        stored = read_keys_file()
        if stored.pop(provider.value, None) is not None:
            write_keys_file(stored)
        return "keyring"
    stored = read_keys_file()
    stored[provider.value] = key
    return str(write_keys_file(stored))


def delete_key(provider: Provider, *, env: dict[str, str] | None = None) -> list[str]:
    """Remove a stored key from the keyring and the file; returns where it was removed from."""
    removed = []
    backend = keyring_backend(env)
    if backend is not None:
        try:
            if backend.get_password(SERVICE, provider.value):
                backend.delete_password(SERVICE, provider.value)
                removed.append("keyring")
        except Exception:
            pass
    stored = read_keys_file()
    if stored.pop(provider.value, None) is not None:
        write_keys_file(stored)
        removed.append(str(keys_path()))
    return removed
