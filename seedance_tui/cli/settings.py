"""`config path|show|set|unset`: the TOML config file and the settings in force."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from ..text import to_json
from .common import EXIT_OK, Options, err, json_option, out, pass_options

if TYPE_CHECKING:
    from ..config import Settings


@click.group(short_help="the TOML config file: where it is, what is in force")
def config() -> None:
    """The TOML config file: where it is, what is in force, and changing one setting at
    a time (comments and layout survive)."""


@config.command("path", short_help="print the config file's path")
def path() -> int:
    """Print where the config file is (or would be: it is created by `config set`)."""
    from ..paths import config_path

    out(str(config_path()))
    return EXIT_OK


@config.command(short_help="the settings in force, as TOML (never any key)")
@json_option
@pass_options
def show(options: Options, as_json: bool) -> int:
    """The settings in force (file, environment and flags together), as TOML or JSON;
    where each provider's key comes from, never the key."""
    from ..paths import config_path

    settings = options.settings()
    for problem in settings.keymap_problems:
        err(f"warning: {problem}")
    shown = effective_config(settings)
    if as_json:
        out(to_json(shown))
        return EXIT_OK
    import tomlkit

    sources = {name: section.pop("key_source") for name, section in shown["providers"].items()}
    out(f"# settings in force (file: {config_path()}); keys are never shown")
    out(tomlkit.dumps(shown).rstrip())
    out("")
    for name, source in sources.items():
        out(f"# {name} key: {source}  (see `seedance-tui key list`)")
    return EXIT_OK


# A VALUE such as -5 is a value to check (and refuse with the setting's own message), not
# an unknown option.
@config.command(
    "set",
    short_help="set one setting, e.g. `config set theme nord`",
    context_settings={"ignore_unknown_options": True},
)
@click.argument("name")
@click.argument("value")
def set_value(name: str, value: str) -> int:
    """Set one setting: NAME is dotted (theme, keymap.submit,
    providers.nanophoto.defaults.duration, ...), VALUE a TOML value (true, 8, "text");
    bare words are text. The file is checked before it is written."""
    import tomllib

    try:
        parsed: Any = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value
    return _save(name, parsed)


@config.command(short_help="remove one setting (back to its default)")
@click.argument("name")
def unset(name: str) -> int:
    """Remove one setting from the config file (NAME dotted, as for `config set`): its
    default applies again."""
    return _save(name, None)


def _save(name: str, value: Any) -> int:
    from ..config import save_setting

    saved = save_setting(name, value)
    err(f"{'set' if value is not None else 'removed'} {name} in {saved}")
    return EXIT_OK


# A job field's name in the config file where it differs from the JobSpec's.
FILE_NAMES = {"aspect_ratio": "aspect"}


def effective_config(settings: Settings) -> dict[str, Any]:
    """The settings in force, in the config file's shape, plus where each key comes from."""
    import shlex

    from ..jobs import defaults_for

    return {
        "db": str(settings.db_path),
        "library": str(settings.library_dir()),
        "auto_download": settings.auto_download,
        "bell": settings.bell,
        "theme": settings.theme or "textual-dark",
        "provider": settings.default_provider.value,
        "images": settings.images,
        "desktop_notifications": settings.desktop_notifications,
        **(
            {"notify_command": shlex.join(settings.notify_command)}
            if settings.notify_command
            else {}
        ),
        "keymap": dict(settings.keymap),
        "polling": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.polling.items()},
        "providers": {
            p.value: {
                "base_url": s.base_url,
                "requests_per_hour": s.requests_per_hour or 0,
                "rate_window": s.rate_window,
                "link_ttl_hours": s.link_ttl_hours,
                "daily_cap": s.daily_cap or 0,
                "monthly_cap": s.monthly_cap or 0,
                "key_source": s.key_source or "none",
                # In the names the config file, `config set` and submit's flags use.
                "defaults": {
                    FILE_NAMES.get(name, name): value
                    for name, value in defaults_for(p, settings).items()
                },
            }
            for p, s in settings.providers.items()
        },
    }
