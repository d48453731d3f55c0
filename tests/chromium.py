"""Where the browser tests (the built book, JupyterLab) find Chromium: Debian's package, or the
Chrome that CI images such as GitHub's ship instead."""

from __future__ import annotations

import shutil

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str:
    """The first browser of BROWSERS on the PATH; fails the test with the install command."""
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    pytest.fail(
        "no Chromium found (looked for " + ", ".join(BROWSERS) + "): on Debian or Ubuntu run "
        "`sudo apt-get install -y chromium` (CI installs it)"
    )
