"""The Textual dashboard. Imported only by `seedance-tui` with no subcommand (Textual
takes a few hundred milliseconds to import; headless commands never pay it)."""

from __future__ import annotations

from ..config import Settings


def run_app(settings: Settings, *, demo: bool = False) -> int:
    """Run the dashboard; with `demo`, against the built-in simulator and demo history."""
    from .app import SeedanceApp

    session = None
    if demo:
        from ..demo import start_demo

        session = start_demo()
        session.settings.bell = settings.bell
        settings = session.settings
    try:
        from .images import detect

        detect(settings.images)  # asks the terminal, which Textual will own from run() on
        app = SeedanceApp(settings)
        app.run()
        return app.return_code or 0
    finally:
        if session is not None:
            session.close()


__all__ = ["run_app"]
