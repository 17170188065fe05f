"""seedance-tui: a terminal dashboard for Seedance 1.5 Pro video generation."""

__version__ = "0.1.0"
