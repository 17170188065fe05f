"""`key set|list|delete`: API keys in the OS keyring, else a 0600 file."""

from __future__ import annotations

import os
import sys

import click

from ..hosts import HOSTS
from ..keys import delete_key, key_status, keyring_backend, keyring_name, store_key
from ..models import Provider
from ..text import to_json
from .common import EXIT_FAILED, EXIT_OK, UsageError, err, json_option, out, provider_names

PROVIDER = click.Choice(provider_names())


@click.group(short_help="store, list or delete API keys (OS keyring, else a 0600 file)")
def key() -> None:
    """Store, list or delete API keys. Lookup order when a command runs: the --key flag,
    the environment (NANOPHOTO_API_KEY, SEEDANCE15PRO_API_KEY), the OS keyring, the keys
    file (0600) in the config dir. SEEDANCE_TUI_KEYRING=0 turns the keyring off."""


@key.command("set", short_help="store a key (asked for with a hidden prompt)")
@click.argument("provider", type=PROVIDER)
@click.option("--stdin", "from_stdin", is_flag=True, help="read the key from standard input")
def set_key(provider: str, from_stdin: bool) -> int:
    """Store a key, asked for with a hidden prompt (--stdin for scripts): in the OS
    keyring when a usable one exists, else in keys.json (mode 0600)."""
    name = Provider(provider)
    if from_stdin:
        secret = sys.stdin.readline().strip()
    elif sys.stdin.isatty():
        import getpass

        secret = getpass.getpass(f"{name.value} API key (hidden): ").strip()
    else:
        raise UsageError("no terminal to ask for the key on: pipe it with --stdin")
    if not secret:
        raise UsageError("no key given; nothing stored")
    where = store_key(name, secret)
    del secret
    err(
        f"stored the {name.value} key "
        + ("in the OS keyring" if where == "keyring" else f"in {where} (mode 0600)")
    )
    env_key = HOSTS[name].env_key
    if os.environ.get(env_key):
        err(f"note: {env_key} is set in the environment and takes precedence over it")
    return EXIT_OK


@key.command("list", short_help="which providers have a key, and from where (never the key)")
@json_option
def list_keys(as_json: bool) -> int:
    """Which providers have a key and where it comes from (never the key)."""
    statuses = key_status()
    if as_json:
        out(to_json([s.to_public() for s in statuses]))
        return EXIT_OK
    backend = keyring_backend()
    for status in statuses:
        where = status.source or "none"
        also = [s for s in status.sources if s != status.source]
        extra = f" (also in: {', '.join(also)}, not used)" if also else ""
        if status.source == "env":
            where = f"env {status.env_var}"
        out(f"{status.provider.value:<14} {where}{extra}")
    out("keyring: " + (keyring_name(backend) if backend is not None
                       else "none usable (keys go to the file)"))  # fmt: skip
    return EXIT_OK


@key.command("delete", short_help="remove a stored key (keyring and file)")
@click.argument("provider", type=PROVIDER)
def delete(provider: str) -> int:
    """Remove a stored key from the keyring and the keys file."""
    name = Provider(provider)
    removed = delete_key(name)
    if not removed:
        err(f"no stored key for {name.value}")
        return EXIT_FAILED
    err(f"removed the {name.value} key from {', '.join(removed)}")
    return EXIT_OK
