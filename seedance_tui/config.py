"""Settings (config file + env), paths (platformdirs), and API key lookup.

One module knows paths and settings. `SEEDANCE_TUI_HOME` redirects all state (config,
history, library) into one folder, which keeps tests and demos apart from a user's files.

Key lookup order, first found wins:
  1. an explicit key (a CLI flag),
  2. the environment (`NANOPHOTO_API_KEY`, `SEEDANCE15PRO_API_KEY`),
  3. the OS keyring (service "seedance-tui", user = provider), when a usable backend
     exists and `SEEDANCE_TUI_KEYRING` is not 0 (see `keys.py`),
  4. the keys file `keys.json` (0600; refused when others can read it) in the config dir.

The config file is TOML at `config_path()`; `ConfigFile` below is its schema (unknown
names are refused, so a typo is reported rather than ignored). `save_setting` changes
one value of it (the TUI remembers the theme that way); `keymap()` returns the user's
key bindings. The file never holds keys.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from .models import Provider
from .providers import ADAPTERS

APP = "seedance-tui"
IMAGE_MODES = ("auto", "kitty", "sixel", "halfblocks")


class ConfigError(Exception):
    """Settings that cannot be used as they are; the message says how to fix them."""


class MissingKeyError(Exception):
    """No API key for a provider that a job needs."""

    def __init__(self, provider: Provider, env_key: str) -> None:
        super().__init__(
            f"no API key for {provider.value}: set {env_key} or run "
            f"`seedance-tui key set {provider.value}`"
        )
        self.provider = provider


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


def default_library_dir() -> Path:
    return data_dir() / "library"


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
    key_source: str | None = None  # "flag", "env", "keyring", "file" — never the key itself
    requests_per_hour: int | None = None
    # The span (seconds) over which `requests_per_hour` is counted: a sliding window, an
    # hour unless a provider's limiter is known to count over a shorter one.
    rate_window: float = 3600.0
    # Job field defaults in JobSpec names: aspect_ratio, resolution, duration, audio, fixed_lens.
    defaults: dict[str, Any] = field(default_factory=dict)
    # A finished render's link is taken as likely expired this long after completion.
    link_ttl_hours: float = 24.0


@dataclass
class Settings:
    db_path: Path
    providers: dict[Provider, ProviderSettings]
    bell: bool = False
    demo: bool = False
    # Scheduler knobs from the `[polling]` table: min_interval, target_latency,
    # max_interval (seconds) and prior = [low, high] (render seconds before any history).
    polling: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    library: Path | None = None  # the download folder as configured (None: the default)
    auto_download: bool = True  # save each render as soon as it completes
    theme: str | None = None  # a Textual theme name (None: Textual's default)
    keymap: dict[str, str] = field(default_factory=dict)  # action → key(s), the user's overrides
    default_provider: Provider = Provider.NANOPHOTO
    # How the dashboard draws frames: "auto" (detected), "kitty", "sixel" or "halfblocks".
    images: str = "auto"

    def library_dir(self) -> Path:
        """Where downloads go; the demo keeps its own folder apart from the user's."""
        if self.demo:
            return data_dir() / "demo-library"
        return self.library or default_library_dir()

    def key(self, provider: Provider) -> str | None:
        secret = self.providers[provider].key
        return secret.get_secret_value() if secret else None

    def key_fingerprint(self, provider: Provider) -> str | None:
        key = self.key(provider)
        return fingerprint(provider, key) if key else None

    def limits(self) -> dict[str, int | None]:
        return {p.value: s.requests_per_hour for p, s in self.providers.items()}

    def rate_windows(self) -> dict[str, float]:
        """Seconds over which each provider's limit counts (see `rate_window`)."""
        return {p.value: s.rate_window for p, s in self.providers.items()}


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


POLLING_KEYS = {"min_interval": float, "target_latency": float, "max_interval": float}


def _polling(table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise ConfigError("[polling] in the config file should be a table")
    out: dict[str, Any] = {}
    for name, value in table.items():
        if name in POLLING_KEYS:
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"polling.{name} should be a positive number of seconds")
            out[name] = float(value)
        elif name == "prior":
            if (not isinstance(value, list) or len(value) != 2
                    or not all(isinstance(v, int | float) and v > 0 for v in value)
                    or value[0] > value[1]):  # fmt: skip
                raise ConfigError("polling.prior should be [low, high] seconds, low ≤ high")
            out[name] = (float(value[0]), float(value[1]))
        else:
            raise ConfigError(f"unknown setting polling.{name}")
    return out


def load_settings(
    *,
    db: str | os.PathLike[str] | None = None,
    keys: dict[Provider, str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    """Settings from, in order of precedence: arguments, environment, config file.

    Environment: `SEEDANCE_TUI_DB` (history file), `SEEDANCE_TUI_LIBRARY` (download
    folder), `SEEDANCE_TUI_AUTO_DOWNLOAD` (0/1), `SEEDANCE_TUI_IMAGES` (how frames are
    drawn), the providers' key and base URL variables.
    """
    env = dict(os.environ if env is None else env)
    raw = read_config_file()
    file = parse_config(raw)
    stored_keys: dict[str, str] | None = None
    providers: dict[Provider, ProviderSettings] = {}
    for provider, adapter in ADAPTERS.items():
        section = file.providers.get(provider) or ProviderConfig()
        base_url = env.get(adapter.env_base_url) or section.base_url or adapter.default_base_url
        key, source = None, None
        if keys and keys.get(provider):
            key, source = keys[provider], "flag"
        elif env.get(adapter.env_key):
            key, source = env[adapter.env_key], "env"
        else:
            from .keys import keyring_get

            key = keyring_get(provider, env)
            if key:
                source = "keyring"
            else:
                if stored_keys is None:
                    stored_keys = read_keys_file()
                if stored_keys.get(provider.value):
                    key, source = stored_keys[provider.value], "file"
        limit = (
            section.requests_per_hour
            if section.requests_per_hour is not None
            else adapter.requests_per_hour
        )
        providers[provider] = ProviderSettings(
            base_url=base_url.rstrip("/"),
            key=SecretStr(key) if key else None,
            key_source=source,
            requests_per_hour=int(limit) if limit else None,
            defaults=section.defaults.spec_fields(),
            link_ttl_hours=section.link_ttl_hours,
            rate_window=section.rate_window,
        )
    db_path = db or env.get("SEEDANCE_TUI_DB") or file.db
    library = env.get("SEEDANCE_TUI_LIBRARY") or file.library
    auto = env.get("SEEDANCE_TUI_AUTO_DOWNLOAD")
    images = env.get("SEEDANCE_TUI_IMAGES", "").strip().lower() or file.images
    if images not in IMAGE_MODES:
        raise ConfigError(f"SEEDANCE_TUI_IMAGES={images!r}: use one of {', '.join(IMAGE_MODES)}")
    return Settings(
        db_path=Path(db_path).expanduser() if db_path else default_db_path(),
        providers=providers,
        bell=file.bell,
        polling=_polling(raw.get("polling", {})),
        extra=raw,
        library=Path(library).expanduser() if library else None,
        auto_download=file.auto_download if auto is None else _env_flag(auto),
        theme=file.theme,
        keymap=dict(file.keymap),
        default_provider=file.provider,
        images=images,
    )


def _env_flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


# -- the config file's schema ----------------------------------------------------------


class JobDefaults(BaseModel):
    """`[providers.NAME.defaults]`: what `submit`, batches and the TUI form start from."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    aspect_ratio: str | None = Field(default=None, alias="aspect")
    resolution: str | None = None
    duration: str | None = None
    audio: bool | None = None
    fixed_lens: bool | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    def spec_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ProviderConfig(BaseModel):
    """`[providers.NAME]`."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    requests_per_hour: int | None = Field(default=None, ge=0)  # 0: no limit
    rate_window: float = Field(default=3600.0, gt=0)  # seconds the limit counts over
    link_ttl_hours: float = Field(default=24.0, gt=0)
    defaults: JobDefaults = Field(default_factory=JobDefaults)


class ConfigFile(BaseModel):
    """The whole config file. Every name is optional."""

    model_config = ConfigDict(extra="forbid")

    db: str | None = None
    library: str | None = None
    auto_download: bool = True
    bell: bool = False
    theme: str | None = None
    provider: Provider = Provider.NANOPHOTO
    images: Literal["auto", "kitty", "sixel", "halfblocks"] = "auto"
    keymap: dict[str, str] = Field(default_factory=dict)
    polling: dict[str, Any] = Field(default_factory=dict)
    providers: dict[Provider, ProviderConfig] = Field(default_factory=dict)


def parse_config(raw: dict[str, Any], path: Path | None = None) -> ConfigFile:
    """Validate the config file's content; a ConfigError names every bad setting."""
    try:
        return ConfigFile.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(part) for part in error["loc"])
            if error["type"] == "extra_forbidden":
                hint = (
                    " (keys belong in the keyring or keys file: `seedance-tui key set`)"
                    if "key" in name.rsplit(".", 1)[-1] and "keymap" not in name
                    else ""
                )
                problems.append(f"unknown setting {name}{hint}")
            else:
                problems.append(f"{name}: {error['msg']}")
        raise ConfigError(
            f"{path or config_path()} has bad settings: " + "; ".join(problems)
        ) from None


def save_setting(name: str, value: Any, path: Path | None = None) -> Path:
    """Set one setting (dotted name, e.g. "theme" or "keymap.submit") in the config file.

    The file is edited as a TOML document (tomlkit), so the user's comments, order and
    layout survive; it is validated before it is written and replaced atomically.
    `value=None` removes the setting.
    """
    import tomlkit

    path = path or config_path()
    try:
        document = tomlkit.parse(path.read_text()) if path.exists() else tomlkit.document()
    except (OSError, tomlkit.exceptions.ParseError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    parts = name.split(".")
    node: Any = document
    for part in parts[:-1]:
        if part not in node:
            if value is None:
                return path  # nothing to remove
            node[part] = tomlkit.table()
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"{part} in {name} is not a table")
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value
    raw = document.unwrap()
    parse_config(raw, path)
    _polling(raw.get("polling", {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomlkit.dumps(document))
    os.replace(tmp, path)
    return path


def keymap(path: Path | None = None) -> dict[str, str]:
    """The user's key bindings from `[keymap]`: action name → key (or comma-separated keys)."""
    return dict(parse_config(read_config_file(path), path).keymap)
