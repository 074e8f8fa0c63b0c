"""Screenshots of the web client for the docs: desktop (1280x800) and phone (390x844).

    python bench/screenshots.py                          # the shipped bundles (else a random demo bundle), seed 3
    python bench/screenshots.py --bundle runs/anime/bundle --out docs

Starts the server in a thread, drives Debian's chromium (/usr/bin/chromium) through
Playwright: opens the page with `?seed=`, waits until it runs the models on the device, draws
strokes, submits an edit, draws one more stroke, and saves docs/screenshot-desktop.png and
docs/screenshot-phone.png.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from neuedit.server.testing import CHROMIUM, CHROMIUM_ARGS, mouse_stroke


def bundles(args) -> list[str]:
    if args.bundle:
        return args.bundle
    from neuedit.runtime.bundle import shipped
    ships = shipped()
    if ships:
        return [str(p) for p in ships]
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_server import demo_bundle
    return [str(demo_bundle(Path(args.work)))]


def stroke(page, points, touch: bool) -> None:
    box = page.locator("#strokes").bounding_box()
    xy = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in points]
    if touch:
        cdp = page.context.new_cdp_session(page)
        kinds = ["touchStart"] + ["touchMove"] * (len(xy) - 1)
        for kind, (x, y) in zip(kinds, xy):
            cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [{"x": x, "y": y}]})
            page.wait_for_timeout(16)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        cdp.detach()
    else:
        mouse_stroke(page, points, steps=4)


def shoot(browser, url: str, path: Path, touch: bool, seed: int | None, **context) -> None:
    """The page as a person sees it after one two-stage edit (run on this device: the page's
    automatic choice once its runtime has loaded) and one more stroke."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.goto(url + (f"?seed={seed}" if seed is not None else ""))
    page.wait_for_selector("body[data-ready='1']")
    page.wait_for_function("() => document.body.dataset.runtime === 'device'", timeout=120_000)
    page.fill("#brush-colour", "#f4dc4a")
    stroke(page, [(0.30, 0.22), (0.45, 0.18), (0.62, 0.22), (0.70, 0.30)], touch)
    before = page.get_attribute("#image", "src")
    (page.tap if touch else page.click)("#submit")
    page.wait_for_function("s => document.getElementById('image').src !== s", arg=before)
    page.wait_for_function("() => !document.body.classList.contains('busy')")
    page.fill("#brush-colour", "#2f6fde")
    stroke(page, [(0.35, 0.55), (0.40, 0.60)], touch)
    page.evaluate("window.scrollTo(0, 0)")  # a tap may have scrolled the button into view
    page.wait_for_timeout(200)
    page.screenshot(path=str(path))
    ctx.close()
    print(f"wrote {path}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", action="append", help="exported bundle(s) to show (repeat)")
    p.add_argument("--out", default="docs", help="folder for the PNGs")
    p.add_argument("--seed", type=int, default=3, help="seed of the first picture (-1: random, as the page does)")
    p.add_argument("--work", default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "neuedit-bench"),
                   help="where a random demo bundle is built when no bundle is shipped")
    args = p.parse_args(argv)
    if not Path(CHROMIUM).is_file():
        print(f"{CHROMIUM} is absent: apt-get install chromium", file=sys.stderr)
        return 1
    from playwright.sync_api import sync_playwright

    from neuedit.server.config import ServerConfig
    from neuedit.server.testing import ServerThread
    out = Path(args.out)
    seed = None if args.seed < 0 else args.seed
    out.mkdir(parents=True, exist_ok=True)
    with ServerThread(ServerConfig(bundles=tuple(bundles(args)))) as server, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        shoot(browser, server.url, out / "screenshot-desktop.png", False, seed, viewport={"width": 1280, "height": 800})
        shoot(browser, server.url, out / "screenshot-phone.png", True, seed, viewport={"width": 390, "height": 844},
              device_scale_factor=2, is_mobile=True, has_touch=True)
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
