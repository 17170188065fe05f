"""The config file: reading it, checking every name it may hold (`SCHEMA`: an unknown
name is refused, so a typo is reported rather than ignored), and changing one value in
place (`save_setting`, with tomlkit: the user's comments and layout survive). The file
is TOML at `paths.config_path()` and never holds keys; `config.py` turns what it says,
with the environment, into one `Settings` object.

The schema is checked by hand rather than by pydantic: the checks are a page, and
building pydantic models costs a headless command more CPU than everything else it
does (`benchmarks/startup.py`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .models import Provider
from .paths import config_path
from .store.locations import has_password, is_url, redact

IMAGE_MODES = ("auto", "kitty", "sixel", "halfblocks")
# Desktop notifications through the terminal (`notify.py`): "auto" where it is known to
# show them, "on" on any terminal, "off" never.
NOTIFY_MODES = ("auto", "on", "off")


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


def command_argv(name: str, value: Any) -> tuple[str, ...]:
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
        command_argv(name, value)
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


def _db(name: str, value: Any) -> str:
    text = _text(name, value)
    if is_url(text) and has_password(text):
        raise _Bad(
            name,
            "should not carry the database's password: keep it in ~/.pgpass or PGPASSWORD "
            f"and write {redact(text)}",
        )
    return text


SCHEMA: dict[str, Check] = {
    "db": _db,
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


def _full_name(name: str) -> str:
    """A hint for a provider's setting named without its `providers.` table."""
    first, _, rest = name.partition(".")
    if first not in {p.value for p in Provider} or not rest:
        return ""
    where = f"providers.{first}"
    if rest in DEFAULTS_SCHEMA:
        return f" (a job default: {where}.defaults.{rest})"
    return f" (did you mean {where}.{rest}?)"


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
    try:
        checked_file = parse_config(document.unwrap(), path)
    except ConfigError as bad:
        problems = str(bad).split(" has bad settings: ", 1)[-1]
        raise ConfigError(
            f"{name} not set, {path} unchanged: {problems}{_full_name(name)}"
        ) from None
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
    "ConfigFile",
    "ProviderConfig",
    "command_argv",
    "keymap",
    "parse_config",
    "read_config_file",
    "save_setting",
]
