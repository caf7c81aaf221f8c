"""Headless Chromium for the web view's tests, benchmark and screenshots.

Debian's ``chromium`` package (``apt-get install chromium``), driven by Playwright's Python
API with ``executable_path``: Playwright's own browser download is never used.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: Flags for a quiet, self-contained headless browser (no sandbox: CI runs as root).
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def chromium_path() -> Path:
    """Debian's chromium (it may be missing: check ``.exists()``)."""
    return Path(shutil.which("chromium") or "/usr/bin/chromium")


def launch(playwright):
    """A headless Chromium browser from a started ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS)


def served_url(proc) -> str:
    """The web view's URL, once the ``moodtrack`` process ``proc`` (stderr a text pipe)
    says it serves it; an AssertionError when it ends without doing so."""
    import re

    said = []
    for line in proc.stderr:
        said.append(line)
        found = re.search(r"web view on (http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"moodtrack served no web view (exit status {proc.wait()}): "
                         + "".join(said).strip())
