"""The TOML config file: schema, `config path|show|set`, save_setting, keymap, job defaults."""

from __future__ import annotations

import json
import tomllib

import pytest
from conftest import NANO_KEY

from seedance_tui import cli
from seedance_tui.config import ConfigError, keymap, load_settings, save_setting
from seedance_tui.models import Provider
from seedance_tui.paths import config_path

SAMPLE = """
library = "~/Videos/seedance"
auto_download = false
bell = true
theme = "nord"
provider = "seedance15pro"

[keymap]
submit = "ctrl+enter"
quit = "ctrl+q"

[providers.nanophoto]
requests_per_hour = 50
link_ttl_hours = 6

[providers.nanophoto.defaults]
resolution = "1080p"
duration = 8
aspect = "portrait"
audio = true

[providers.seedance15pro.defaults]
duration = "10"
"""


def write_config(text: str) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_file_sets_every_kind_of_setting() -> None:
    write_config(SAMPLE)
    s = load_settings(env={})
    assert s.auto_download is False and s.bell is True and s.theme == "nord"
    assert s.default_provider is Provider.SEEDANCE15PRO
    assert s.library is not None and s.library.name == "seedance" and "~" not in str(s.library)
    assert s.library_dir() == s.library
    assert s.keymap == {"submit": "ctrl+enter", "quit": "ctrl+q"}
    nano = s.providers[Provider.NANOPHOTO]
    assert nano.requests_per_hour == 50 and nano.link_ttl_hours == 6
    assert nano.defaults == {
        "aspect_ratio": "portrait", "resolution": "1080p", "duration": "8", "audio": True,
    }  # fmt: skip
    assert s.providers[Provider.SEEDANCE15PRO].defaults == {"duration": "10"}
    assert keymap() == {"submit": "ctrl+enter", "quit": "ctrl+q"}


def test_env_overrides_file() -> None:
    write_config(SAMPLE)
    s = load_settings(env={"SEEDANCE_TUI_AUTO_DOWNLOAD": "1", "SEEDANCE_TUI_LIBRARY": "/tmp/lib"})
    assert s.auto_download is True and str(s.library) == "/tmp/lib"


def test_defaults_without_a_file() -> None:
    s = load_settings(env={})
    assert s.auto_download is True and s.theme is None and s.keymap == {}
    assert s.library_dir().name == "library"
    s.demo = True
    assert s.library_dir().name == "demo-library"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("bogus = 1", "unknown setting bogus"),
        ("api_key = 'x'", "keys belong in"),
        ("[providers.nanophoto]\nkey = 'x'", "keys belong in"),
        ("[providers.nanophoto]\nrequests_per_hour = -1", "requests_per_hour"),
        (
            "[providers.nanophoto.defaults]\nsize = 3",
            "unknown setting providers.nanophoto.defaults.size",
        ),
        ("[providers.nosuch]\nrequests_per_hour = 1", "providers.nosuch"),
        ("auto_download = 'maybe'", "auto_download"),
        ("[polling]\nmin_interval = -1", "polling.min_interval"),
        ("not toml at all", "cannot read"),
    ],
)
def test_bad_settings_are_reported(text: str, message: str) -> None:
    write_config(text)
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_settings(env={})


def test_save_setting_round_trips_and_validates() -> None:
    write_config(SAMPLE)
    save_setting("theme", "dracula")
    save_setting("keymap.submit", "f5")
    save_setting("providers.seedance15pro.link_ttl_hours", 48)
    s = load_settings(env={})
    assert s.theme == "dracula" and s.keymap["submit"] == "f5" and s.keymap["quit"] == "ctrl+q"
    assert s.providers[Provider.SEEDANCE15PRO].link_ttl_hours == 48
    before = config_path().read_text()
    with pytest.raises(ConfigError):
        save_setting("auto_download", "perhaps")
    with pytest.raises(ConfigError):
        save_setting("bogus", 1)
    assert config_path().read_text() == before  # a bad value never reaches the file
    save_setting("theme", None)
    assert load_settings(env={}).theme is None


def test_a_refused_setting_names_itself_and_the_full_name() -> None:
    # The file does not exist yet: the message is about the setting, not "the file".
    with pytest.raises(ConfigError) as refused:
        save_setting("nanophoto.aspect", "portrait")
    message = str(refused.value)
    assert message.startswith("nanophoto.aspect not set")
    assert "providers.nanophoto.defaults.aspect" in message
    with pytest.raises(ConfigError, match=r"did you mean providers\.seedance15pro\.daily_cap"):
        save_setting("seedance15pro.daily_cap", 5)
    assert not config_path().exists()


def test_config_commands(capsys, monkeypatch) -> None:
    monkeypatch.setenv("NANOPHOTO_API_KEY", NANO_KEY)
    assert cli.main(["config", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(config_path())
    assert cli.main(["config", "set", "theme", "gruvbox"]) == 0
    assert cli.main(["config", "set", "auto_download", "false"]) == 0
    assert cli.main(["config", "set", "providers.nanophoto.defaults.duration", "12"]) == 0
    assert cli.main(["config", "set", "nonsense", "1"]) == 2
    capsys.readouterr()
    assert cli.main(["config", "show"]) == 0
    output = capsys.readouterr().out
    assert NANO_KEY not in output
    assert "# nanophoto key: env" in output
    body = tomllib.loads(output)  # the comments aside, it is TOML
    assert body["theme"] == "gruvbox" and body["auto_download"] is False
    assert body["providers"]["nanophoto"]["defaults"]["duration"] == "12"
    assert cli.main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["providers"]["nanophoto"]["key_source"] == "env"
    assert NANO_KEY not in json.dumps(shown)
    assert cli.main(["config", "unset", "theme"]) == 0
    assert "theme" not in tomllib.loads(config_path().read_text())


def test_submit_takes_defaults_from_the_config(sim_env, tmp_path) -> None:
    write_config(SAMPLE)
    from seedance_tui.cli.submit import fields_from_flags, submit
    from seedance_tui.jobs import build_spec

    settings = load_settings(env={})

    def spec_from_args(*argv: str):
        flags = submit.make_context("submit", list(argv)).params
        return build_spec(fields_from_flags(flags), settings)

    spec = spec_from_args("--prompt", "a cat")
    assert spec.provider is Provider.SEEDANCE15PRO and spec.duration == "10"
    spec = spec_from_args("--provider", "nanophoto", "--prompt", "a cat")
    assert (spec.resolution, spec.duration, spec.aspect_ratio, spec.audio) == (
        "1080p", "8", "portrait", True,
    )  # fmt: skip
    spec = spec_from_args(
        "--provider", "nanophoto", "--prompt", "a cat", "--no-audio", "--duration", "4"
    )
    assert spec.audio is False and spec.duration == "4"


def test_config_set_keeps_the_users_comments_and_layout() -> None:
    write_config(
        "# my settings\n"
        'theme = "nord"  # the dark one\n'
        "\n"
        "[providers.nanophoto]  # my work key\n"
        "requests_per_hour = 100\n"
        "\n"
        "[providers.nanophoto.defaults]\n"
        'duration = "8"  # long clips\n'
    )
    save_setting("theme", "dracula")
    save_setting("providers.nanophoto.defaults.resolution", "1080p")
    save_setting("providers.seedance15pro.link_ttl_hours", 48)
    text = config_path().read_text()
    assert text.startswith("# my settings\n")
    assert 'theme = "dracula"  # the dark one' in text
    assert "[providers.nanophoto]  # my work key" in text
    assert 'duration = "8"  # long clips' in text
    s = load_settings(env={})
    assert s.providers[Provider.NANOPHOTO].defaults["resolution"] == "1080p"
    assert s.providers[Provider.SEEDANCE15PRO].link_ttl_hours == 48
    save_setting("providers.nanophoto.defaults.resolution", None)
    assert "1080p" not in config_path().read_text()
    assert "# long clips" in config_path().read_text()


def test_spending_caps_are_read_per_provider_and_zero_is_none() -> None:
    config_path().parent.mkdir(parents=True, exist_ok=True)
    config_path().write_text(
        "[providers.nanophoto]\ndaily_cap = 100\nmonthly_cap = 0\n"
        "[providers.seedance15pro]\nmonthly_cap = 2000\n"
    )
    settings = load_settings()
    assert (settings.caps(Provider.NANOPHOTO).daily, settings.caps(Provider.NANOPHOTO).monthly) == (
        100, None,
    )  # fmt: skip
    assert settings.caps(Provider.SEEDANCE15PRO).monthly == 2000
    assert not settings.caps(Provider.SEEDANCE15PRO).daily


@pytest.mark.parametrize("value", ["-5", "2.5", "lots", "true"])
def test_config_set_refuses_a_cap_that_is_not_a_count_of_credits(capsys, value) -> None:
    code = cli.main(["config", "set", "providers.nanophoto.daily_cap", value])
    assert code == 2
    message = capsys.readouterr().err
    assert "providers.nanophoto.daily_cap: should be a whole number of credits" in message
    assert not config_path().exists() or "daily_cap" not in config_path().read_text()


def test_config_set_accepts_a_cap_and_show_reports_it(capsys) -> None:
    assert cli.main(["config", "set", "providers.seedance15pro.daily_cap", "300"]) == 0
    assert load_settings().caps(Provider.SEEDANCE15PRO).daily == 300
    capsys.readouterr()
    assert cli.main(["config", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["providers"]["seedance15pro"]["daily_cap"] == 300
    assert shown["providers"]["nanophoto"]["daily_cap"] == 0
