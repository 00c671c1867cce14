"""Where tests read what the platforms publish: copies under tests/fixtures/vendor (their
sources and licenses in SOURCES.md there), so the suite runs on a machine with only the repo."""

from __future__ import annotations

from pathlib import Path

VENDOR_DIR = Path(__file__).resolve().parent / "fixtures" / "vendor"


def vendor_file(relative: str) -> Path:
    path = VENDOR_DIR / relative
    if not path.is_file():
        raise FileNotFoundError(f"vendor fixture {relative} is missing under {VENDOR_DIR} (see SOURCES.md there)")
    return path
