"""Settings: the config file and the environment, checked, as one `Settings` object.

Where the files are is `paths.py`'s business, how a key is found `keys.py`'s (a
provider's key is looked up when first asked for, so a command that never sends pays
nothing for the keyring). The config file is TOML at `paths.config_path()`; `SCHEMA`
below says every name it may hold — an unknown name is refused, so a typo is reported
rather than ignored — and `save_setting` changes one value in place (tomlkit: the user's
comments and layout survive). The file never holds keys.

The schema is checked by hand rather than by pydantic: the checks are a page, and
building pydantic models costs a headless command more CPU than everything else it
does (`benchmarks/startup.py`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .caps import Caps, Window, windows
from .errors import ConfigError, MissingKeyError
from .hosts import HOSTS
from .keys import KeyLookup, Secret, fingerprint
from .models import Provider
from .paths import config_path, default_db_path, default_library_dir, demo_library_dir

IMAGE_MODES = ("auto", "kitty", "sixel", "halfblocks")
# Desktop notifications through the terminal (`notify.py`): "auto" where it is known to
# show them, "on" on any terminal, "off" never.
NOTIFY_MODES = ("auto", "on", "off")


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
    library = env.get("SEEDANCE_TUI_LIBRARY") or file.library
    auto = env.get("SEEDANCE_TUI_AUTO_DOWNLOAD")
    images = env.get("SEEDANCE_TUI_IMAGES", "").strip().lower() or file.images
    if images not in IMAGE_MODES:
        raise ConfigError(f"SEEDANCE_TUI_IMAGES={images!r}: use one of {', '.join(IMAGE_MODES)}")
    from .keymap import checked

    keymap, keymap_problems = checked(file.keymap)
    return Settings(
        db_path=Path(db_path).expanduser() if db_path else default_db_path(),
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
        notify_command=_argv("notify_command", file.notify_command)
        if file.notify_command
        else None,
    )


def _env_flag(value: str) -> bool:
    return value.strip().lower() not in ("0", "false", "no", "off", "")


# -- the config file -------------------------------------------------------------------


def read_config_file(path: Path | None = None) -> dict[str, Any]:
    path = path or config_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    import tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None


@dataclass(frozen=True)
class ProviderConfig:
    """`[providers.NAME]`; `defaults` in JobSpec names (aspect_ratio, resolution,
    duration, audio, fixed_lens)."""

    base_url: str | None = None
    requests_per_hour: int | None = None  # 0: no limit
    rate_window: float = 3600.0  # seconds the limit counts over
    link_ttl_hours: float = 24.0
    daily_cap: int | None = None  # credits; 0: no cap
    monthly_cap: int | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ConfigFile:
    """The whole config file, checked. Every name is optional."""

    db: str | None = None
    library: str | None = None
    auto_download: bool = True
    bell: bool = False
    theme: str | None = None
    provider: Provider = Provider.NANOPHOTO
    images: str = "auto"
    desktop_notifications: str = "auto"
    notify_command: str | None = None
    keymap: Mapping[str, str] = field(default_factory=dict)
    polling: Mapping[str, Any] = field(default_factory=dict)
    providers: Mapping[Provider, ProviderConfig] = field(default_factory=dict)


class _Bad(Exception):
    """One bad value: `name` and what is wrong with it."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")


class _Unknown(_Bad):
    """A name the schema does not have."""

    def __init__(self, name: str) -> None:
        Exception.__init__(self, _unknown(name))


Check = Callable[[str, Any], Any]  # (dotted name, value) -> the value to use, or _Bad

_TRUE = {"1", "on", "t", "true", "y", "yes"}
_FALSE = {"0", "off", "f", "false", "n", "no"}


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad(name, "should be text (in quotes)")
    return value


def _flag(name: str, value: Any) -> bool:
    """true/false; also the words and 0/1 a hand-written value may use."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise _Bad(name, "should be true or false")


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise _Bad(name, "should be a number")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise _Bad(name, "should be a number") from None
    else:
        raise _Bad(name, "should be a number")
    if not math.isfinite(number):
        raise _Bad(name, "should be a finite number")
    return number


def _positive(name: str, value: Any) -> float:
    number = _number(name, value)
    if number <= 0:
        raise _Bad(name, "should be greater than 0")
    return number


def _count(name: str, value: Any) -> int:
    number = _number(name, value)
    if number != int(number):
        raise _Bad(name, "should be a whole number")
    if number < 0:
        raise _Bad(name, "should be 0 or more")
    return int(number)


def _cap(name: str, value: Any) -> int:
    """A spending cap: a whole number of credits, 0 (no cap) or more."""
    try:
        return _count(name, value)
    except _Bad:
        raise _Bad(name, "should be a whole number of credits, 0 or more (0: no cap)") from None


def _duration(name: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(name, value)


def _argv(name: str, value: Any) -> tuple[str, ...]:
    """A command line, split as a shell would split it (it is run without one)."""
    import shlex

    try:
        argv = tuple(shlex.split(_text(name, value)))
    except ValueError as exc:
        raise ConfigError(f"{name}: cannot be split into words ({exc})") from None
    if not argv:
        raise ConfigError(f"{name}: is empty (unset it instead)")
    return argv


def _command(name: str, value: Any) -> str:
    try:
        _argv(name, value)
    except ConfigError as exc:
        raise _Bad(name, str(exc).split(": ", 1)[1]) from None
    return value


def _one_of(*allowed: str) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise _Bad(name, f"should be one of {', '.join(allowed)}")
        return value

    return check


def _provider(name: str, value: Any) -> Provider:
    return Provider(_one_of(*(p.value for p in Provider))(name, value))


def _text_table(name: str, value: Any) -> dict[str, str]:
    table = _table(name, value)
    return {key: _text(f"{name}.{key}", item) for key, item in table.items()}


def _polling(name: str, value: Any) -> dict[str, Any]:
    table = _table(name, value)
    out: dict[str, Any] = {}
    for key, item in table.items():
        where = f"{name}.{key}"
        if key in ("min_interval", "target_latency", "max_interval"):
            try:
                out[key] = _positive(where, item)
            except _Bad:
                raise _Bad(where, "should be a positive number of seconds") from None
        elif key == "prior":
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not all(
                    isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in item
                )  # fmt: skip
                or item[0] > item[1]
            ):
                raise _Bad(where, "should be [low, high] seconds, low ≤ high")
            out[key] = (float(item[0]), float(item[1]))
        else:
            raise _Unknown(where)
    return out


def _table(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(name, "should be a table")
    return value


DEFAULTS_SCHEMA: dict[str, tuple[str, Check]] = {  # name in the file → (JobSpec name, check)
    "aspect": ("aspect_ratio", _text),
    "aspect_ratio": ("aspect_ratio", _text),
    "resolution": ("resolution", _text),
    "duration": ("duration", _duration),
    "audio": ("audio", _flag),
    "fixed_lens": ("fixed_lens", _flag),
}
PROVIDER_SCHEMA: dict[str, Check] = {
    "base_url": _text,
    "requests_per_hour": _count,
    "rate_window": _positive,
    "link_ttl_hours": _positive,
    "daily_cap": _cap,
    "monthly_cap": _cap,
}
SCHEMA: dict[str, Check] = {
    "db": _text,
    "library": _text,
    "auto_download": _flag,
    "bell": _flag,
    "theme": _text,
    "provider": _provider,
    "images": _one_of(*IMAGE_MODES),
    "desktop_notifications": _one_of(*NOTIFY_MODES),
    "notify_command": _command,
    "keymap": _text_table,
    "polling": _polling,
}


def _unknown(name: str) -> str:
    last = name.rsplit(".", 1)[-1]
    hint = (
        " (keys belong in the keyring or keys file: `seedance-tui key set`)"
        if "key" in last and "keymap" not in name
        else ""
    )
    return f"unknown setting {name}{hint}"


def _provider_config(name: str, value: Any, problems: list[str]) -> ProviderConfig:
    table = _table(name, value)
    fields: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    for key, item in table.items():
        where = f"{name}.{key}"
        try:
            if key == "defaults":
                for field_name, field_value in _table(where, item).items():
                    spec_name, check = DEFAULTS_SCHEMA.get(field_name, (None, None))
                    if check is None or spec_name is None:
                        problems.append(_unknown(f"{where}.{field_name}"))
                        continue
                    defaults[spec_name] = check(f"{where}.{field_name}", field_value)
            elif key in PROVIDER_SCHEMA:
                fields[key] = PROVIDER_SCHEMA[key](where, item)
            else:
                problems.append(_unknown(where))
        except _Bad as bad:
            problems.append(str(bad))
    return ProviderConfig(**fields, defaults=defaults)


def parse_config(raw: Mapping[str, Any], path: Path | None = None) -> ConfigFile:
    """Check the config file's content; a ConfigError names every bad setting."""
    problems: list[str] = []
    values: dict[str, Any] = {}
    for name, value in raw.items():
        try:
            if name == "providers":
                sections: dict[Provider, ProviderConfig] = {}
                for provider_name, section in _table(name, value).items():
                    where = f"providers.{provider_name}"
                    if provider_name not in {p.value for p in Provider}:
                        names = ", ".join(p.value for p in Provider)
                        problems.append(f"unknown setting {where} (providers: {names})")
                        continue
                    sections[Provider(provider_name)] = _provider_config(where, section, problems)
                values["providers"] = sections
            elif name in SCHEMA:
                values[name] = SCHEMA[name](name, value)
            else:
                problems.append(_unknown(name))
        except _Bad as bad:
            problems.append(str(bad))
    if problems:
        raise ConfigError(f"{path or config_path()} has bad settings: " + "; ".join(problems))
    return ConfigFile(**values)


def save_setting(name: str, value: Any, path: Path | None = None) -> Path:
    """Set one setting (dotted name, e.g. "theme" or "keymap.submit") in the config file.

    The file is edited as a TOML document (tomlkit), so the user's comments, order and
    layout survive; it is checked before it is written and replaced atomically.
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
    checked_file = parse_config(document.unwrap(), path)
    if parts[0] == "keymap":
        from .keymap import checked

        _, problems = checked(checked_file.keymap)
        if problems:
            raise ConfigError("; ".join(problems))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(tomlkit.dumps(document))
    os.replace(tmp, path)
    return path


def keymap(path: Path | None = None) -> dict[str, str]:
    """The user's key bindings from `[keymap]`: action name → key (or comma-separated keys)."""
    return dict(parse_config(read_config_file(path), path).keymap)


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
