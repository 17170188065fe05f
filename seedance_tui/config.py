"""Settings (config file + env), paths (platformdirs), and API key lookup.

One module knows paths and settings. `SEEDANCE_TUI_HOME` redirects all state (config,
history, library) into one folder, which keeps tests and demos apart from a user's files.

Key lookup order, first found wins: an explicit key (a CLI flag), the environment
(`NANOPHOTO_API_KEY`, `SEEDANCE15PRO_API_KEY`), the keys file `keys.json` (0600) in the
config dir.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import SecretStr

from .models import Provider
from .providers import ADAPTERS

APP = "seedance-tui"


class ConfigError(Exception):
    """Settings that cannot be used as they are; the message says how to fix them."""


# -- paths -----------------------------------------------------------------------------


def home() -> Path | None:
    value = os.environ.get("SEEDANCE_TUI_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    root = home()
    return root / "config" if root else Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    root = home()
    return root / "data" if root else Path(platformdirs.user_data_dir(APP))


def config_path() -> Path:
    return config_dir() / "config.toml"


def keys_path() -> Path:
    return config_dir() / "keys.json"


def default_db_path() -> Path:
    return data_dir() / "history.db"


def demo_db_path() -> Path:
    return data_dir() / "demo.db"


# -- keys ------------------------------------------------------------------------------


def fingerprint(provider: Provider | str, key: str) -> str:
    """A stable, non-reversible label for a key: what the request ledger stores."""
    digest = hashlib.sha256(f"seedance-tui:{Provider(provider).value}:{key}".encode()).hexdigest()
    return digest[:12]


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


# -- settings --------------------------------------------------------------------------


@dataclass
class ProviderSettings:
    base_url: str
    key: SecretStr | None = None
    key_source: str | None = None  # "flag", "env", "file" — never the key itself
    requests_per_hour: int | None = None
    defaults: dict[str, Any] = field(default_factory=dict)


@dataclass
class Settings:
    db_path: Path
    providers: dict[Provider, ProviderSettings]
    bell: bool = False
    demo: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def key(self, provider: Provider) -> str | None:
        secret = self.providers[provider].key
        return secret.get_secret_value() if secret else None

    def key_fingerprint(self, provider: Provider) -> str | None:
        key = self.key(provider)
        return fingerprint(provider, key) if key else None

    def limits(self) -> dict[str, int | None]:
        return {p.value: s.requests_per_hour for p, s in self.providers.items()}


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


def load_settings(
    *,
    db: str | os.PathLike[str] | None = None,
    keys: dict[Provider, str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Settings from, in order of precedence: arguments, environment, config file."""
    env = dict(os.environ if env is None else env)
    file = read_config_file()
    stored_keys: dict[str, str] | None = None
    providers: dict[Provider, ProviderSettings] = {}
    for provider, adapter in ADAPTERS.items():
        section = file.get("providers", {}).get(provider.value, {})
        base_url = (
            env.get(adapter.env_base_url) or section.get("base_url") or adapter.default_base_url
        )
        key, source = None, None
        if keys and keys.get(provider):
            key, source = keys[provider], "flag"
        elif env.get(adapter.env_key):
            key, source = env[adapter.env_key], "env"
        else:
            if stored_keys is None:
                stored_keys = read_keys_file()
            if stored_keys.get(provider.value):
                key, source = stored_keys[provider.value], "file"
        limit = section.get("requests_per_hour", adapter.requests_per_hour)
        providers[provider] = ProviderSettings(
            base_url=base_url.rstrip("/"),
            key=SecretStr(key) if key else None,
            key_source=source,
            requests_per_hour=int(limit) if limit else None,
            defaults=dict(section.get("defaults", {})),
        )
    db_path = db or env.get("SEEDANCE_TUI_DB") or file.get("db")
    return Settings(
        db_path=Path(db_path).expanduser() if db_path else default_db_path(),
        providers=providers,
        bell=bool(file.get("bell", False)),
        extra=file,
    )
