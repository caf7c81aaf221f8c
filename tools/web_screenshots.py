"""Screenshots of the web view for the README, made with the tests' headless Chromium.

    python tools/web_screenshots.py               # docs/web-live.png, web-live-phone.png, web-library.png
    python tools/web_screenshots.py --seconds 40  # a shorter live run

Live: ``moodtrack demo --web`` with the shipped model, pages opened at the start and shot
after ``--seconds`` of the demo. Library: the demo's four excerpts (realtime/data/
DEMO_SOURCE.md) and the whole demo analysed with ``moodtrack analyze``, shown by
``moodtrack view`` with the whole demo's timeline chosen.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.bench import DEMO, free_port  # noqa: E402
from tools.browser import launch, served_url  # noqa: E402

#: The demo's excerpts: (name, start s, end s), from DEMO_SOURCE.md.
EXCERPTS = [("Orbital Elevator", 0, 37), ("Enemy Unknown", 37, 73),
            ("Deprecation", 73, 109), ("A New Journey", 109, 146)]


def live(browser, out: Path, seconds: float) -> None:
    cmd = [sys.executable, "-m", "realtime", "demo", "--rate", "5", "--no-zmq", "--no-dashboard",
           "--web", f"127.0.0.1:{free_port()}"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        url = served_url(proc)
        desk = browser.new_page(viewport={"width": 1440, "height": 1000})
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2,
                                 is_mobile=True, has_touch=True)
        for page in (desk, phone):
            page.goto(url)
            page.select_option("#window", "120")
        time.sleep(seconds)
        desk.screenshot(path=str(out / "web-live.png"), full_page=True)
        phone.screenshot(path=str(out / "web-live-phone.png"))
    finally:
        proc.terminate()
        proc.wait(10)


def library(browser, out: Path, tmp: Path) -> None:
    import soundfile as sf

    y, sr = sf.read(str(DEMO), dtype="float32")
    src = tmp / "excerpts"
    src.mkdir()
    for name, a, b in EXCERPTS:
        sf.write(str(src / f"{name}.flac"), y[a * sr:b * sr], sr)
    sf.write(str(src / "demo (all four).flac"), y, sr)
    subprocess.run([sys.executable, "-m", "realtime", "analyze", str(src), "-o", str(tmp / "run")],
                   check=True, cwd=ROOT, capture_output=True)
    proc = subprocess.Popen([sys.executable, "-m", "realtime", "view", str(tmp / "run"), "--web",
                             f"127.0.0.1:{free_port()}"], stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)
    try:
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(served_url(proc))
        page.wait_for_selector("#files tbody tr")
        page.click("#files tbody tr[data-file$='demo (all four).flac']")
        page.wait_for_timeout(800)
        box = page.locator("#timeline").bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.4)
        page.wait_for_timeout(300)
        page.screenshot(path=str(out / "web-library.png"))
    finally:
        proc.terminate()
        proc.wait(10)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs")
    ap.add_argument("--seconds", type=float, default=85.0, help="seconds of the live demo")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw, tempfile.TemporaryDirectory() as d:
        browser = launch(pw)
        library(browser, args.out, Path(d))
        live(browser, args.out, args.seconds)
        browser.close()
    print(f"screenshots in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
