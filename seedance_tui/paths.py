"""Where things live: one module knows every path of the program's state.

`SEEDANCE_TUI_HOME` redirects all of it into one folder (`config/` and `data/` inside
it), which keeps tests and demos apart from a user's files. Otherwise the platform's
folders (platformdirs: `~/.config/seedance-tui` and `~/.local/share/seedance-tui` on
Linux), imported only when asked for, since most commands are told the history's path.

    config dir   config.toml (settings), keys.json (API keys, 0600)
    data dir     history.db, demo.db, library/ (saved renders) with frames/ (posters),
                 demo-library/, backups/
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "seedance-tui"
HOME_VAR = "SEEDANCE_TUI_HOME"


def home() -> Path | None:
    """The folder `SEEDANCE_TUI_HOME` names, if set."""
    value = os.environ.get(HOME_VAR)
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    root = home()
    if root:
        return root / "config"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    root = home()
    if root:
        return root / "data"
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def config_path() -> Path:
    """The TOML settings file."""
    return config_dir() / "config.toml"


def keys_path() -> Path:
    """The API keys file (JSON, mode 0600) used when no OS keyring is."""
    return config_dir() / "keys.json"


def default_db_path() -> Path:
    """The history file unless `--db`, `SEEDANCE_TUI_DB` or the config say otherwise."""
    return data_dir() / "history.db"


def demo_db_path() -> Path:
    """The demo's own history (`--demo`), apart from the user's."""
    return data_dir() / "demo.db"


def default_library_dir() -> Path:
    """Saved renders unless the config's `library` says otherwise."""
    return data_dir() / "library"


def demo_library_dir() -> Path:
    return data_dir() / "demo-library"


def backups_dir() -> Path:
    """Where `history backup` writes a copy when given no destination."""
    return data_dir() / "backups"


def screenshots_dir() -> Path:
    """Where the dashboard's "Save screenshot" writes: the user's downloads folder
    (Textual's choice), or `screenshots` in SEEDANCE_TUI_HOME when that is set."""
    root = home()
    if root is not None:
        return root / "screenshots"
    from platformdirs import user_downloads_path

    return user_downloads_path()


def frames_dir(library: Path) -> Path:
    """The poster frames cache inside a library folder (one PNG per task)."""
    return library / "frames"


__all__ = [
    "APP",
    "HOME_VAR",
    "backups_dir",
    "config_dir",
    "config_path",
    "data_dir",
    "default_db_path",
    "default_library_dir",
    "demo_db_path",
    "demo_library_dir",
    "frames_dir",
    "home",
    "keys_path",
    "screenshots_dir",
]
