"""API keys: stored in a keyring when one is usable, else a 0600 file; never printed."""

from __future__ import annotations

import io
import json
import os
import stat

import keyring
import pytest
from conftest import NANO_KEY, SEED_KEY
from keyring.backend import KeyringBackend

from seedance_tui import cli
from seedance_tui.config import ConfigError, load_settings
from seedance_tui.keys import keyring_backend, store_key
from seedance_tui.models import Provider
from seedance_tui.paths import keys_path


class MemoryKeyring(KeyringBackend):
    priority = 10  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.items: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.items[(service, username)]


@pytest.fixture
def memory_keyring(monkeypatch):
    monkeypatch.setenv("SEEDANCE_TUI_KEYRING", "1")  # on, whatever the suite's default
    previous = keyring.get_keyring()
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    yield ring
    keyring.set_keyring(previous)


@pytest.fixture
def no_keyring():
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)


def run(argv: list[str], capsys, stdin: str | None = None, monkeypatch=None) -> tuple[int, str]:
    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_set_without_keyring_writes_a_0600_file(no_keyring, capsys, monkeypatch) -> None:
    assert keyring_backend() is None
    code, output = run(["key", "set", "nanophoto", "--stdin"], capsys, NANO_KEY + "\n", monkeypatch)
    assert code == 0
    path = keys_path()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"nanophoto": NANO_KEY}
    assert NANO_KEY not in output and str(path) in output
    settings = load_settings(env={})
    assert settings.key(Provider.NANOPHOTO) == NANO_KEY
    assert settings.providers[Provider.NANOPHOTO].key_source == "file"


def test_set_with_keyring_uses_it_and_list_shows_sources_only(
    memory_keyring, capsys, monkeypatch
) -> None:
    code, output = run(["key", "set", "seedance15pro", "--stdin"], capsys, SEED_KEY, monkeypatch)
    assert code == 0 and "keyring" in output and SEED_KEY not in output
    assert memory_keyring.items == {("seedance-tui", "seedance15pro"): SEED_KEY}
    assert not keys_path().exists()
    monkeypatch.setenv("NANOPHOTO_API_KEY", NANO_KEY)
    code, output = run(["key", "list"], capsys)
    assert code == 0
    assert "nanophoto      env NANOPHOTO_API_KEY" in output
    assert "seedance15pro  keyring" in output
    assert "MemoryKeyring" in output
    code, output = run(["key", "list", "--json"], capsys)
    listed = {row["provider"]: row for row in json.loads(output)}
    assert listed["seedance15pro"]["source"] == "keyring"
    assert listed["nanophoto"]["sources"] == ["env"]
    for text in (output, json.dumps(listed)):
        assert NANO_KEY not in text and SEED_KEY not in text


def test_lookup_order_flag_env_keyring_file(memory_keyring) -> None:
    from seedance_tui.keys import write_keys_file

    write_keys_file({"nanophoto": "from-file"})
    env = {"NANOPHOTO_API_KEY": "from-env"}
    memory_keyring.set_password("seedance-tui", "nanophoto", "from-keyring")

    def source(**kwargs):
        s = load_settings(**kwargs)
        return s.key(Provider.NANOPHOTO), s.providers[Provider.NANOPHOTO].key_source

    assert source(env=env, keys={Provider.NANOPHOTO: "from-flag"}) == ("from-flag", "flag")
    assert source(env=env) == ("from-env", "env")
    assert source(env={}) == ("from-keyring", "keyring")
    assert source(env={"SEEDANCE_TUI_KEYRING": "0"}) == ("from-file", "file")
    memory_keyring.delete_password("seedance-tui", "nanophoto")
    assert source(env={}) == ("from-file", "file")


def test_delete_removes_from_everywhere(memory_keyring, capsys, monkeypatch) -> None:
    from seedance_tui.keys import write_keys_file

    write_keys_file({"nanophoto": "old"})
    store_key(Provider.NANOPHOTO, NANO_KEY)  # into the keyring; the stale file copy is dropped
    assert json.loads(keys_path().read_text()) == {}
    code, output = run(["key", "delete", "nanophoto"], capsys)
    assert code == 0 and "keyring" in output
    assert memory_keyring.items == {}
    code, _ = run(["key", "delete", "nanophoto"], capsys)
    assert code == 1


def test_refuses_without_a_terminal_or_with_a_bad_key(no_keyring, capsys, monkeypatch) -> None:
    code, output = run(["key", "set", "nanophoto"], capsys, "", monkeypatch)
    assert code == 2 and "--stdin" in output
    code, output = run(["key", "set", "nanophoto", "--stdin"], capsys, "\n", monkeypatch)
    assert code == 2
    with pytest.raises(ConfigError):
        store_key(Provider.NANOPHOTO, "two words")
    assert not keys_path().exists()


def test_hidden_prompt_is_used_on_a_terminal(no_keyring, capsys, monkeypatch) -> None:
    asked: list[str] = []

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Tty(""))
    monkeypatch.setattr("getpass.getpass", lambda prompt: asked.append(prompt) or NANO_KEY)
    code, output = run(["key", "set", "nanophoto"], capsys)
    assert code == 0 and asked and "hidden" in asked[0]
    assert NANO_KEY not in output
    assert load_settings(env={}).key(Provider.NANOPHOTO) == NANO_KEY


def test_readable_keys_file_is_refused(no_keyring, capsys) -> None:
    from seedance_tui.keys import write_keys_file

    path = write_keys_file({"nanophoto": NANO_KEY})
    os.chmod(path, 0o644)
    code, output = run(["key", "list"], capsys)
    assert code == 2 and "chmod 600" in output and NANO_KEY not in output
