"""Headless Chromium for the report's real-browser test and the README's screenshot (one code path for both)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def chromium() -> str | None:
    """The Chromium executable, or None (Debian's ``chromium`` package; ``.ci/run`` installs it)."""
    return next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)


def render(page: Path, fragment: str, screenshot: Path, size: tuple[int, int] = (1200, 1500)) -> str:
    """Load ``page#fragment`` offline in headless Chromium: write a screenshot, return the DOM after scripts ran."""
    url = f"{page.resolve().as_uri()}#{fragment}"
    flags = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars"]
    flags += ["--disable-background-networking", f"--user-data-dir={screenshot.parent / 'chromium-profile'}"]
    subprocess.run(
        [*flags, f"--screenshot={screenshot}", f"--window-size={size[0]},{size[1]}", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    result = subprocess.run([*flags, "--dump-dom", url], check=True, capture_output=True, text=True, timeout=120)
    return result.stdout
