"""The command line read as a new user reads it: every command and option explained,
messages that name the provider, plain wording, `list` that keeps its columns."""

from __future__ import annotations

import click
import pytest
from conftest import run_cli

from seedance_tui.cli import COMMANDS, cli


def walk(command: click.Command, ctx: click.Context, path: str):
    yield path, command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            assert sub is not None, f"{path} {name}"
            yield from walk(sub, click.Context(sub, info_name=name, parent=ctx), f"{path} {name}")


def test_every_command_has_a_description_and_every_option_a_help_text():
    root = click.Context(cli, info_name="seedance-tui")
    missing = []
    seen = 0
    for path, command, ctx in walk(cli, root, "seedance-tui"):
        seen += 1
        if not (command.help or "").strip():
            missing.append(f"{path}: no description in --help")
        if not command.get_short_help_str().strip():
            missing.append(f"{path}: no one-line help")
        for param in command.get_params(ctx):
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{path} {param.opts[0]}: no help text")
    assert seen > len(COMMANDS)  # the groups' subcommands were walked too
    assert not missing, "\n".join(missing)


def test_config_show_prints_names_config_set_accepts(monkeypatch):
    import tomllib

    code, out, _ = run_cli("config", "show")
    assert code == 0
    shown = tomllib.loads(out)
    assert shown["providers"]["nanophoto"]["defaults"]["aspect"] == "landscape"  # as --aspect

    def names(table: dict, prefix: str = ""):
        for key, value in table.items():
            if isinstance(value, dict) and value:
                yield from names(value, f"{prefix}{key}.")
            elif not isinstance(value, dict):
                yield f"{prefix}{key}", value

    import json

    for name, value in names(shown):
        text = json.dumps(value) if not isinstance(value, bool) else str(value).lower()
        code, _, err = run_cli("config", "set", name, text)
        assert code == 0, f"config show prints {name}, config set refuses it: {err}"


def test_the_readme_sample_config_holds_the_built_in_defaults():
    import re
    import tomllib
    from pathlib import Path

    from seedance_tui.providers import nanophoto, seedance15pro

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    sample = next(
        block for block in re.findall(r"```toml\n(.*?)```", readme, re.S) if "[providers." in block
    )
    providers = tomllib.loads(sample)["providers"]
    for name, module in (("nanophoto", nanophoto), ("seedance15pro", seedance15pro)):
        built_in = {
            ("aspect" if k == "aspect_ratio" else k): v for k, v in module.defaults().items()
        }
        for key, value in providers[name]["defaults"].items():
            assert built_in.get(key) == value, (name, key, value, built_in)


def test_no_key_messages_name_the_provider(monkeypatch, sim_env, sim):
    monkeypatch.delenv("SEEDANCE15PRO_API_KEY")
    code, _, err = run_cli("submit", "--provider", "seedance15pro", "--prompt", "x")
    assert code == 2
    assert "SEEDANCE15PRO_API_KEY" in err and "`seedance-tui key set seedance15pro`" in err


def test_a_refused_key_says_which_provider_and_variable():
    from seedance_tui.models import Provider
    from seedance_tui.providers import AuthError

    hint = AuthError("Invalid API key", provider=Provider.NANOPHOTO, http_status=401).hint
    assert "`seedance-tui key set nanophoto`" in hint and "NANOPHOTO_API_KEY" in hint
    assert "PROVIDER" not in hint and "*_API_KEY" not in hint


@pytest.mark.parametrize("text", ['"', "*", "(", "😀", " ( * ) "])
def test_a_search_with_no_word_says_so_instead_of_listing_everything(sim_env, text):
    run_cli("submit", "--prompt", "a cow", "--json")
    code, out, err = run_cli("list", "--search", text)
    assert code == 2 and out == ""
    assert "nothing to search for" in err


def test_list_marks_saved_renders_and_cuts_prompts_by_display_width(sim_env, sim, monkeypatch):
    from rich.cells import cell_len

    from seedance_tui.cli.display import PROMPT_CELLS

    monkeypatch.setenv("SEEDANCE_TUI_AUTO_DOWNLOAD", "1")
    path = __import__("seedance_tui.paths", fromlist=["config_path"]).config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("[polling]\nmin_interval = 0.2\ntarget_latency = 0.4\nprior = [1.0, 2.5]\n")
    wide = "\u202eevil " + "猫と犬 🐱🐶 " * 12
    for prompt in (wide, "plain ascii prompt"):
        code, _, err = run_cli("submit", "--prompt", prompt, "--wait")
        assert code == 0, err
    code, out, err = run_cli("list")
    assert code == 0
    header, *rows = out.splitlines()
    prompt_at = header.index("prompt")
    for row in rows:
        assert row[prompt_at - 2] == "⤓"  # saved in the library, marked before the prompt
        assert cell_len(row[prompt_at:]) <= PROMPT_CELLS
    assert rows[1][prompt_at:].endswith("…")  # the wide one, cut
    assert "\u202e" not in out  # the override shown inert, not acting on the line
    assert rows[1][prompt_at:].startswith("\\u202eevil 猫と犬")
    assert "saved in the library" in err  # the legend


def test_counts_are_worded_for_their_number():
    from seedance_tui.cli.tasks import ended_summary
    from seedance_tui.models import TaskStatus
    from seedance_tui.text import plural

    class T:
        def __init__(self, status):
            self.status = status

    assert plural(1, "request") == "1 request" and plural(0, "request") == "0 requests"
    done = [T(TaskStatus.COMPLETED)] * 3
    assert ended_summary(done) == "all 3 completed"
    assert ended_summary(done[:2] + [T(TaskStatus.FAILED)]) == "2 completed, 1 failed"
    assert ended_summary(done[:1]) == "1 completed"
