"""screenshots/ (linked from the README) holds copies of snapshots: each must be its
snapshot byte for byte, so a screen that changed cannot keep an old picture.

After `pytest --snapshot-update`, `python tests/test_screenshots.py` copies them all.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "__snapshots__"

# screenshots/NAME.svg ← tests/__snapshots__/FILE.svg
COPIES = {
    "dashboard-80x24": "test_tui_list/test_snapshot_dashboard[80x24]",
    "dashboard-160x48": "test_tui_list/test_snapshot_dashboard[160x48]",
    "compare-detail-80x24": "test_tui_list/test_snapshot_compare_detail[80x24]",
    "compare-detail-160x48": "test_tui_list/test_snapshot_compare_detail[160x48]",
    "compare-confirm-80x24": "test_tui_caps/test_snapshot_compare_confirm[size0]",
    "compare-confirm-160x48": "test_tui_caps/test_snapshot_compare_confirm[size1]",
    "confirm-over-cap-80x24": "test_tui_caps/test_snapshot_confirm_over_the_cap[size0]",
    "confirm-over-cap-160x48": "test_tui_caps/test_snapshot_confirm_over_the_cap[size1]",
    "credits-caps": "test_tui_caps/test_snapshot_credits_panel_with_caps",
    "credits-panel": "test_tui/test_snapshot_credits_panel",
    "detail-frame-80x24": "test_tui_frames/test_snapshot_detail_frame_80x24",
    "detail-frame-160x48": "test_tui_frames/test_snapshot_detail_frame_160x48",
    "download-progress": "test_tui_settings/test_snapshot_download_in_progress",
    "failed-task-detail": "test_tui/test_snapshot_failed_task_detail",
    "gallery-80x24": "test_tui_frames/test_snapshot_gallery_80x24",
    "gallery-160x48": "test_tui_frames/test_snapshot_gallery_160x48",
    "help": "test_tui/test_snapshot_help",
    **{
        f"{name}-{size}": f"test_tui_dialogs/test_snapshot_{name.replace('-', '_')}_{size}"
        for name, sizes in (
            ("first-start-no-key", ("80x24", "160x48")),
            ("key-dialog", ("80x24",)),
            ("duplicate-warning", ("80x24", "160x48")),
            ("help", ("80x24", "160x48")),
        )
        for size in sizes
    },
    **{
        f"{name}-{size}": f"test_tui_form/test_snapshot_form[{name}-{size}]"
        for name in ("form-nanophoto", "form-seedance15pro", "form-i2v-seedance15pro")
        for size in ("80x24", "160x48")
    },
}


def pairs() -> list[tuple[Path, Path]]:
    return [
        (ROOT / "screenshots" / f"{name}.svg", SNAPSHOTS / f"{snapshot}.svg")
        for name, snapshot in COPIES.items()
    ]


@pytest.mark.parametrize(("screenshot", "snapshot"), pairs(), ids=list(COPIES))
def test_each_screenshot_is_its_snapshot(screenshot: Path, snapshot: Path) -> None:
    assert snapshot.exists(), snapshot
    assert screenshot.exists(), f"{screenshot} missing: python tests/test_screenshots.py"
    assert screenshot.read_bytes() == snapshot.read_bytes(), (
        f"{screenshot.name} is not its snapshot any more: python tests/test_screenshots.py"
    )


def test_every_svg_in_screenshots_is_a_copy() -> None:
    svgs = {path.stem for path in (ROOT / "screenshots").glob("*.svg")}
    assert svgs == set(COPIES), svgs ^ set(COPIES)


if __name__ == "__main__":
    for screenshot, snapshot in pairs():
        shutil.copyfile(snapshot, screenshot)
    sys.stdout.write(f"copied {len(COPIES)} snapshots to screenshots/\n")
