"""Settings: the config file and the environment, checked, as one `Settings` object.

Where the files are is `paths.py`'s business, how a key is found `keys.py`'s (a
provider's key is looked up when first asked for, so a command that never sends pays
nothing for the keyring), what the config file may hold and how one value is changed
in it `config_file.py`'s (re-exported here).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .caps import Caps, Window, windows
from .config_file import (
    IMAGE_MODES,
    NOTIFY_MODES,
    ConfigFile,
    ProviderConfig,
    command_argv,
    keymap,
    parse_config,
    read_config_file,
    save_setting,
)
from .errors import ConfigError, MissingKeyError
from .hosts import HOSTS
from .keys import KeyLookup, Secret, fingerprint
from .models import Provider
from .paths import default_db_path, default_library_dir, demo_library_dir
from .store.locations import is_url, redact

# -- settings --------------------------------------------------------------------------


@dataclass
class ProviderSettings:
    provider: Provider
    base_url: str
    requests_per_hour: int | None = None
    # The span (seconds) over which `requests_per_hour` is counted: a sliding window, an
    # hour unless a provider's limiter is known to count over a shorter one.
    rate_window: float = 3600.0
    # Job field defaults in JobSpec names: aspect_ratio, resolution, duration, audio, fixed_lens.
    defaults: dict[str, Any] = field(default_factory=dict)
    # A finished render's link is taken as likely expired this long after completion.
    link_ttl_hours: float = 24.0
    # Spending caps in credits per local calendar day and month (None: no cap; caps.py).
    daily_cap: int | None = None
    monthly_cap: int | None = None
    lookup: KeyLookup = field(default_factory=KeyLookup, repr=False)
    _found: tuple[Secret | None, str | None] | None = field(default=None, repr=False)

    def _find(self) -> tuple[Secret | None, str | None]:
        if self._found is None:
            value, source = self.lookup.find(self.provider)
            self._found = (Secret(value) if value else None, source)
        return self._found

    @property
    def key(self) -> Secret | None:
        """The API key, looked up once, when first asked for (ConfigError: a keys file
        others can read)."""
        return self._find()[0]

    @property
    def key_source(self) -> str | None:
        """Where the key was found: "flag", "env", "keyring", "file" — never the key."""
        return self._find()[1]


@dataclass
class Settings:
    # The history file; in studio mode (`db_url`, a postgresql:// URL) the history is
    # that database instead and db_path is not used.
    db_path: Path
    providers: dict[Provider, ProviderSettings]
    bell: bool = False
    demo: bool = False
    # Scheduler knobs from the `[polling]` table: min_interval, target_latency,
    # max_interval (seconds) and prior = (low, high) (render seconds before any history).
    polling: dict[str, Any] = field(default_factory=dict)
    library: Path | None = None  # the download folder as configured (None: the default)
    auto_download: bool = True  # save each render as soon as it completes
    theme: str | None = None  # a Textual theme name (None: Textual's default)
    keymap: dict[str, str] = field(default_factory=dict)  # action → key(s), the user's overrides
    # `[keymap]` entries refused at load (`keymap.checked`), each a message to show.
    keymap_problems: list[str] = field(default_factory=list)
    default_provider: Provider = Provider.NANOPHOTO
    # How the dashboard draws frames: "auto" (detected), "kitty", "sixel" or "halfblocks".
    images: str = "auto"
    desktop_notifications: str = "auto"  # one of NOTIFY_MODES
    # Run (no shell) with a task's JSON on stdin when it ends: argv, split by shlex.
    notify_command: tuple[str, ...] | None = None
    # Studio mode: the PostgreSQL database holding the history, as given (it may carry
    # a password: used to connect, never shown; `db_location` is what is shown).
    db_url: str | None = field(default=None, repr=False)

    @property
    def db_location(self) -> str:
        """The history as messages and `config show` name it: its file, or the
        database's URL without a password."""
        return redact(self.db_url) if self.db_url else str(self.db_path)

    @property
    def db_target(self) -> str | Path:
        """What `store.open_store` opens: the URL in studio mode, else the file."""
        return self.db_url or self.db_path

    def library_dir(self) -> Path:
        """Where downloads go; the demo keeps its own folder apart from the user's."""
        if self.demo:
            return demo_library_dir()
        return self.library or default_library_dir()

    def key(self, provider: Provider) -> str | None:
        secret = self.providers[provider].key
        return secret.get_secret_value() if secret else None

    def require_key(self, provider: Provider) -> str:
        """The provider's key, or MissingKeyError saying how to set one."""
        key = self.key(provider)
        if not key:
            raise MissingKeyError(provider, HOSTS[provider].env_key)
        return key

    def keys_changed(self) -> None:
        """A key was stored or removed while running (the dashboard's key dialog): each
        provider's key is looked up again, in the same order, when next asked for."""
        for section in self.providers.values():
            section._found = None
            section.lookup.forget()

    def key_fingerprint(self, provider: Provider) -> str | None:
        key = self.key(provider)
        return fingerprint(provider, key) if key else None

    def limits(self) -> dict[str, int | None]:
        return {p.value: s.requests_per_hour for p, s in self.providers.items()}

    def caps(self, provider: Provider) -> Caps:
        """The provider's spending caps (`daily_cap`, `monthly_cap`; 0 or absent: none)."""
        section = self.providers[provider]
        return Caps.of(section.daily_cap, section.monthly_cap)

    def cap_windows(self, providers: Iterable[Provider], now: float) -> tuple[Window, ...]:
        """The caps of these providers that apply at `now`, with their local calendar
        periods' bounds: what the store checks a job against (caps.py)."""
        return tuple(w for p in dict.fromkeys(providers) for w in windows(p, self.caps(p), now))

    def rate_windows(self) -> dict[str, float]:
        """Seconds over which each provider's limit counts (see `rate_window`)."""
        return {p.value: s.rate_window for p, s in self.providers.items()}


def load_settings(
    *,
    db: str | os.PathLike[str] | None = None,
    keys: Mapping[Provider, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """Settings from, in order of precedence: arguments, environment, config file.

    Environment: `SEEDANCE_TUI_DB` (history file), `SEEDANCE_TUI_LIBRARY` (download
    folder), `SEEDANCE_TUI_AUTO_DOWNLOAD` (0/1), `SEEDANCE_TUI_IMAGES` (how frames are
    drawn), the providers' key and base URL variables. `keys`: keys given as flags.
    """
    env = dict(os.environ if env is None else env)
    file = parse_config(read_config_file())
    lookup = KeyLookup(keys, env)
    providers: dict[Provider, ProviderSettings] = {}
    for provider, host in HOSTS.items():
        section = file.providers.get(provider) or ProviderConfig()
        base_url = env.get(host.env_base_url) or section.base_url or host.base_url
        limit = (
            section.requests_per_hour
            if section.requests_per_hour is not None
            else host.requests_per_hour
        )
        providers[provider] = ProviderSettings(
            provider=provider,
            base_url=base_url.rstrip("/"),
            requests_per_hour=int(limit) if limit else None,
            defaults=dict(section.defaults),
            link_ttl_hours=section.link_ttl_hours,
            rate_window=section.rate_window,
            daily_cap=section.daily_cap or None,
            monthly_cap=section.monthly_cap or None,
            lookup=lookup,
        )
    db_path = db or env.get("SEEDANCE_TUI_DB") or file.db
    db_url = str(db_path).strip() if is_url(db_path) else None
    library = env.get("SEEDANCE_TUI_LIBRARY") or file.library
    auto = env.get("SEEDANCE_TUI_AUTO_DOWNLOAD")
    images = env.get("SEEDANCE_TUI_IMAGES", "").strip().lower() or file.images
    if images not in IMAGE_MODES:
        raise ConfigError(f"SEEDANCE_TUI_IMAGES={images!r}: use one of {', '.join(IMAGE_MODES)}")
    from .keymap import checked

    keymap, keymap_problems = checked(file.keymap)
    return Settings(
        db_path=Path(db_path).expanduser() if db_path and not db_url else default_db_path(),
        db_url=db_url,
        providers=providers,
        bell=file.bell,
        polling=dict(file.polling),
        library=Path(library).expanduser() if library else None,
        auto_download=file.auto_download if auto is None else _env_flag(auto),
        theme=file.theme,
        keymap=keymap,
        keymap_problems=keymap_problems,
        default_provider=file.provider,
        images=images,
        desktop_notifications=file.desktop_notifications,
        notify_command=command_argv("notify_command", file.notify_command)
        if file.notify_command
        else None,
    )


def _env_flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


__all__ = [
    "IMAGE_MODES",
    "NOTIFY_MODES",
    "ConfigError",
    "ConfigFile",
    "MissingKeyError",
    "ProviderConfig",
    "ProviderSettings",
    "Settings",
    "keymap",
    "load_settings",
    "parse_config",
    "read_config_file",
    "save_setting",
]
