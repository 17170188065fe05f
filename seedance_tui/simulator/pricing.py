"""The providers' vocabularies and price tables, as the simulator enforces them."""

from __future__ import annotations

NANOPHOTO = "nanophoto"
SEEDANCE15PRO = "seedance15pro"
PROVIDERS: tuple[str, ...] = (NANOPHOTO, SEEDANCE15PRO)

# nanophoto: the API table of the docs (API calls cost 2x web), before the audio doubling.
NANOPHOTO_CREDITS: dict[tuple[str, str], int] = {
    ("480p", "4"): 2,
    ("480p", "8"): 4,
    ("480p", "12"): 6,
    ("720p", "4"): 4,
    ("720p", "8"): 8,
    ("720p", "12"): 12,
    ("1080p", "4"): 8,
    ("1080p", "8"): 16,
    ("1080p", "12"): 22,
}
NANOPHOTO_MODES = ("textToVideo", "imageToVideo")
NANOPHOTO_ASPECT_RATIOS = ("portrait", "landscape")
NANOPHOTO_RESOLUTIONS = ("480p", "720p", "1080p")
NANOPHOTO_DURATIONS = ("4", "8", "12")

# seedance15pro: silent price per duration; sound doubles it.
SEEDANCE_CREDITS: dict[str, int] = {"5": 65, "10": 130}
SEEDANCE_ASPECT_RATIOS = ("16:9", "9:16", "1:1")
SEEDANCE_DURATIONS = ("5", "10")

PROMPT_MAX = 1000  # in UTF-16 code units, as a JavaScript backend counts


def nanophoto_credits(resolution: str, duration: str, audio: bool) -> int:
    return NANOPHOTO_CREDITS[(resolution, duration)] * (2 if audio else 1)


def seedance_credits(duration: str, sound: bool) -> int:
    return SEEDANCE_CREDITS[duration] * (2 if sound else 1)
