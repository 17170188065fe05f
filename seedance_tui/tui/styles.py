"""Where the dashboard's .tcss files are: inside the package when installed (the wheel maps
the top-level `styles/` folder to `seedance_tui/styles`), in the repository in a checkout."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def styles_dir() -> Path:
    installed = _PACKAGE / "styles"
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / "styles"


def css_paths() -> list[Path]:
    return sorted(styles_dir().glob("*.tcss"))
