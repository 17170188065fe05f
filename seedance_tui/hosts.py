"""Where each provider is reached: its published host, the environment variables that
name its key and override its host, and its request limit.

Plain data apart from the adapters (`providers/`), so that loading the settings and
looking a key up import no adapter: a command that only reads the history answers
sooner (`benchmarks/startup.py`). The adapters take these values from here.
"""

from __future__ import annotations

from .models import Provider


class Host:
    """How one provider is reached."""

    __slots__ = ("base_url", "env_base_url", "env_key", "requests_per_hour")

    def __init__(
        self, base_url: str, env_key: str, env_base_url: str, requests_per_hour: int | None
    ) -> None:
        self.base_url = base_url  # the provider's published host
        self.env_key = env_key  # the environment variable holding its API key
        self.env_base_url = env_base_url  # the one that points it elsewhere
        # The documented limit per key (seedance15pro documents none: a polite default;
        # config `requests_per_hour = 0` lifts it).
        self.requests_per_hour = requests_per_hour


HOSTS: dict[Provider, Host] = {
    Provider.NANOPHOTO: Host(
        "https://nanophoto.ai", "NANOPHOTO_API_KEY", "NANOPHOTO_BASE_URL", 100
    ),
    Provider.SEEDANCE15PRO: Host(
        "https://seedance1-5pro.com", "SEEDANCE15PRO_API_KEY", "SEEDANCE15PRO_BASE_URL", 600
    ),
}


def key_set_command(provider: Provider) -> str:
    """The shell command that stores a key for `provider` (named, never PROVIDER)."""
    return f"seedance-tui key set {provider.value}"
