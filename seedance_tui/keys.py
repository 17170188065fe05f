"""API keys: the one lookup order, and where keys are stored.

Lookup order (first found wins), `KeyLookup.find`:

  1. a key given on the command line (`--key PROVIDER=KEY`),
  2. the environment (`NANOPHOTO_API_KEY`, `SEEDANCE15PRO_API_KEY`),
  3. the OS keyring (service "seedance-tui", user = the provider's name), when a usable
     backend exists and `SEEDANCE_TUI_KEYRING` is not 0,
  4. `keys.json` (mode 0600; refused when others can read it) in the config dir.

`key set` stores a key in the keyring when one is usable, else in the file (created 0600
before the secret is written). Nothing here ever prints, logs or returns a key to a caller
that shows it; `Secret` keeps one out of reprs and tracebacks. The keyring package is
imported only when a lookup reaches step 3.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .hosts import HOSTS
from .models import Provider
from .paths import APP, keys_path

SERVICE = APP
SOURCES = ("flag", "env", "keyring", "file")  # the lookup order


class Secret:
    """An API key in memory: its repr and str never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def fingerprint(provider: Provider | str, key: str) -> str:
    """A stable, non-reversible label for a key: what the request ledger stores."""
    import hashlib  # only where a key is fingerprinted (its C module costs start-up time)

    digest = hashlib.sha256(f"seedance-tui:{Provider(provider).value}:{key}".encode()).hexdigest()
    return digest[:12]


# -- the keys file ---------------------------------------------------------------------


def check_private(path: Path) -> None:
    """Refuse a secrets file others can read."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(
            f"{path} holds API keys and is readable by others (mode {mode:o}); "
            f"fix it with: chmod 600 {path}"
        )


def read_keys_file(path: Path | None = None) -> dict[str, str]:
    path = path or keys_path()
    if not path.exists():
        return {}
    check_private(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc.__class__.__name__}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} should hold a JSON object of provider → key")
    return {str(k): str(v) for k, v in data.items() if isinstance(v, str)}


def write_keys_file(keys: dict[str, str], path: Path | None = None) -> Path:
    """Write the keys file, created 0600 before any secret is in it."""
    path = path or keys_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(keys, fh, indent=2)
    return path


# -- the OS keyring --------------------------------------------------------------------


def keyring_enabled(env: Mapping[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    return env.get("SEEDANCE_TUI_KEYRING", "1").strip().lower() not in ("0", "false", "no", "off")


def keyring_backend(env: Mapping[str, str] | None = None) -> Any | None:
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


def keyring_get(provider: Provider, env: Mapping[str, str] | None = None) -> str | None:
    backend = keyring_backend(env)
    if backend is None:
        return None
    try:
        value = backend.get_password(SERVICE, provider.value)
    except Exception:
        return None  # a locked or broken keyring is treated as holding nothing
    return value or None


# -- the lookup ------------------------------------------------------------------------


class KeyLookup:
    """The lookup order over one set of flags and one environment (see the module's
    docstring). The keys file is read once, when a lookup first reaches it."""

    def __init__(
        self,
        flags: Mapping[Provider, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.flags = dict(flags or {})
        self.env = dict(os.environ if env is None else env)
        self._file: dict[str, str] | None = None

    def forget(self) -> None:
        """A key was stored or removed meanwhile: the next lookup reads the file again."""
        self._file = None

    def _stored(self) -> dict[str, str]:
        if self._file is None:
            self._file = read_keys_file()
        return self._file

    def _value(self, provider: Provider, source: str) -> str | None:
        if source == "flag":
            return self.flags.get(provider) or None
        if source == "env":
            return self.env.get(HOSTS[provider].env_key) or None
        if source == "keyring":
            return keyring_get(provider, self.env)
        return self._stored().get(provider.value) or None

    def find(self, provider: Provider) -> tuple[str | None, str | None]:
        """(key, where it was found: "flag", "env", "keyring" or "file"), or (None, None)."""
        for source in SOURCES:
            value = self._value(provider, source)
            if value:
                return value, source
        return None, None

    def sources(self, provider: Provider) -> tuple[str, ...]:
        """Every place that holds a key for `provider`, in lookup order."""
        return tuple(s for s in SOURCES if self._value(provider, s))


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


def key_status(env: Mapping[str, str] | None = None) -> list[KeyStatus]:
    """Which providers have a key and where it comes from (never the key itself)."""
    lookup = KeyLookup(env=env)
    out = []
    for provider, host in HOSTS.items():
        sources = lookup.sources(provider)
        out.append(KeyStatus(provider, sources[0] if sources else None, sources, host.env_key))
    return out


# -- storing ---------------------------------------------------------------------------


def store_key(provider: Provider, key: str, *, env: Mapping[str, str] | None = None) -> str:
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


def delete_key(provider: Provider, *, env: Mapping[str, str] | None = None) -> list[str]:
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
