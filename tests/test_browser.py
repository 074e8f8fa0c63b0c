"""The web client in a real browser (Debian's chromium through Playwright): draw with the
mouse and with a finger, submit, and check that the picture changed and that each request
carried the state back. (The docs' screenshots come from bench/screenshots.py.)"""
from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from neuedit.server.config import ServerConfig
from neuedit.server.testing import ServerThread

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")]


@pytest.fixture(scope="module")
def server(tiny_exported, tiny_exported_empty):
    cfg = ServerConfig(bundles=(str(tiny_exported.path), str(tiny_exported_empty.path)), inference_threads=1,
                       decode_threads=1, threads=1)
    with ServerThread(cfg) as s:
        yield s


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield b
        b.close()


def open_page(browser, server, **context):
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    with page.expect_response("**/api/generate") as gen:
        page.goto(server.url)
    page.wait_for_selector("body[data-ready='1']")
    assert gen.value.status == 200
    return page, gen.value.json()


def image_src(page) -> str:
    return page.get_attribute("#image", "src")


def sketch_mask(body: dict) -> np.ndarray:
    """The request's sketch PNG -> its alpha channel > 0, [H, W] bool."""
    img = Image.open(io.BytesIO(base64.b64decode(body["sketch"])))
    assert img.format == "PNG" and img.mode == "RGBA"
    return np.asarray(img)[..., 3] > 0


def submit_and_wait(page, action):
    """Run `action` (a click, a tap, a key) and return the /api/edit request body and response."""
    before = image_src(page)
    with page.expect_request("**/api/edit") as req, page.expect_response("**/api/edit") as resp:
        action()
    assert resp.value.status == 200, resp.value.text()
    out = resp.value.json()
    page.wait_for_function("src => document.getElementById('image').src !== src", arg=before)
    assert image_src(page) == "data:image/png;base64," + out["image"] != before
    return req.value.post_data_json, out


def strokes(page) -> int:
    return int(page.get_attribute("#strokes", "data-strokes"))


def test_desktop_mouse(browser, server):
    page, gen = open_page(browser, server, viewport={"width": 1280, "height": 800})
    assert image_src(page) == "data:image/png;base64," + gen["image"]
    assert page.eval_on_selector("#image", "e => getComputedStyle(e).imageRendering") == "pixelated"
    box = page.locator("#strokes").bounding_box()
    assert box["width"] > 300  # the 16 px picture is shown scaled up

    # a stroke with the mouse across the upper left quarter
    page.mouse.move(box["x"] + 0.10 * box["width"], box["y"] + 0.15 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.40 * box["width"], box["y"] + 0.30 * box["height"], steps=8)
    page.mouse.up()
    assert strokes(page) == 1

    body, out = submit_and_wait(page, lambda: page.click("#submit"))
    assert body["state"] == gen["state"] and body["method"] == "two-stage" and body["model"] == "tiny"
    mask = sketch_mask(body)
    h, w = mask.shape
    assert mask.any() and mask[: h // 2, : w // 2].sum() == mask.sum()  # where it was drawn
    assert out["state"] == gen["state"]

    # latent edits with Enter: the state comes back changed and the next request carries it
    page.check("#method-latent")
    page.fill("#steps", "3")
    page.evaluate("document.activeElement.blur()")
    body, out = submit_and_wait(page, lambda: page.keyboard.press("Enter"))
    assert (body["method"], body["steps"], body["state"]) == ("latent", 3, gen["state"])
    assert out["state"]["z"] != gen["state"]["z"] and out["state"]["t"] == 3  # Adam's moments came back
    body2, out2 = submit_and_wait(page, lambda: page.keyboard.press("Enter"))
    assert body2["state"] == out["state"] and out2["state"]["t"] == 6

    # undo / redo / clear from the keyboard
    page.keyboard.press("Control+z")
    assert strokes(page) == 0
    page.keyboard.press("Control+y")
    assert strokes(page) == 1
    page.keyboard.press("c")
    assert strokes(page) == 0
    page.keyboard.press("Control+z")
    assert strokes(page) == 1
    page.click("#toggle-strokes")
    assert page.get_attribute("#toggle-strokes", "aria-pressed") == "false"
    page.keyboard.press("h")
    assert page.get_attribute("#toggle-strokes", "aria-pressed") == "true"

    # history: four results so far; clicking the oldest goes back to the generated picture and its state
    assert page.locator("#history li").count() == 4
    page.locator("#history li button").last.click()
    assert image_src(page) == "data:image/png;base64," + gen["image"]
    assert strokes(page) == 0  # the strokes of that time: none yet (the restore itself can be undone)
    page.keyboard.press("Control+z")
    assert strokes(page) == 1
    body, _ = submit_and_wait(page, lambda: page.click("#submit"))
    assert body["state"] == gen["state"]

    # R: a new picture with a new seed
    with page.expect_response("**/api/generate") as g2:
        page.keyboard.press("r")
    assert g2.value.json()["seed"] != gen["seed"]
    page.wait_for_function("src => document.getElementById('image').src === src",
                           arg="data:image/png;base64," + g2.value.json()["image"])

    # an attribute picked in a select regenerates with the same seed and that attribute on
    with page.expect_request("**/api/generate") as req:
        page.locator("#attributes select").first.select_option("2")
    sent = req.value.post_data_json
    assert sent["seed"] == g2.value.json()["seed"] and sent["c"][2] == 1 and len(sent["c"]) == 25

    # errors are shown, and the busy state goes away
    page.route("**/api/edit", lambda route: route.fulfill(
        status=503, headers={"Retry-After": "2"}, content_type="application/json",
        body='{"error": {"code": "busy", "message": "the server is busy"}}'))
    page.click("#submit")
    page.wait_for_selector("#error:not([hidden])")
    assert "busy" in page.text_content("#error-text")
    page.wait_for_function("!document.body.classList.contains('busy')")
    page.unroute("**/api/edit")
    assert all("503" in p or "busy" in p for p in page.problems)  # the deliberate failure, logged
    page.problems.clear()

    # the other model: no attributes, its own requests
    with page.expect_request("**/api/generate") as req:
        page.select_option("#model", "tiny_empty")
    assert req.value.post_data_json["model"] == "tiny_empty"
    assert page.locator("#attributes-box").is_hidden()
    assert page.problems == []
    page.context.close()


def touch_stroke(page, points):
    """A one-finger stroke through real touch input (CDP), which Chromium turns into pointer events."""
    cdp = page.context.new_cdp_session(page)
    (x0, y0), rest = points[0], points[1:]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
    for x, y in rest:  # at a finger's pace: instant jumps would look like a fling, and the next tap stops it
        page.wait_for_timeout(16)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    page.wait_for_timeout(16)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_phone_touch(browser, server):
    page, gen = open_page(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                          is_mobile=True, has_touch=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert page.eval_on_selector("#strokes", "e => getComputedStyle(e).touchAction") == "none"
    box = page.locator("#strokes").bounding_box()
    assert 300 <= box["width"] <= 390
    for sel in ("#submit", "#undo", "#regenerate"):  # tap targets
        assert page.locator(sel).bounding_box()["height"] >= 40
    page.evaluate("""() => { window.__pointers = [];
        document.getElementById('strokes').addEventListener('pointerdown', e => window.__pointers.push(e.pointerType)); }""")
    xs = np.linspace(0.55, 0.85, 8)
    touch_stroke(page, [(box["x"] + float(x) * box["width"], box["y"] + 0.7 * box["height"]) for x in xs])
    assert page.evaluate("window.__pointers") == ["touch"]
    assert strokes(page) == 1
    body, out = submit_and_wait(page, lambda: page.tap("#submit"))
    assert body["state"] == gen["state"]
    mask = sketch_mask(body)
    h, w = mask.shape
    assert mask.any() and mask[h // 2:, w // 2:].sum() == mask.sum()  # lower right, where the finger went
    assert page.problems == []
    page.context.close()


def test_a_photo_is_projected_for_the_latent_editor(browser, server, tmp_path):
    page, _ = open_page(browser, server, viewport={"width": 1280, "height": 800})
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(photo)
    page.set_input_files("#photo", str(photo))
    page.wait_for_function("() => document.querySelector('#history li .tag').textContent === 'photo'")
    assert not page.is_disabled("#method-latent")  # a photo no longer restricts the method
    box = page.locator("#strokes").bounding_box()
    page.mouse.move(box["x"] + 0.3 * box["width"], box["y"] + 0.3 * box["height"])
    page.mouse.down()
    page.mouse.move(box["x"] + 0.6 * box["width"], box["y"] + 0.5 * box["height"], steps=6)
    page.mouse.up()
    page.check("#method-latent")
    with page.expect_response("**/api/project") as proj:
        body, out = submit_and_wait(page, lambda: page.click("#submit"))
    assert proj.value.status == 200
    projected = proj.value.json()
    # the latent edit starts from the photo's projection, not from the photo
    assert "image" not in body and body["state"] == projected["state"] and body["method"] == "latent"
    assert out["state"]["z"] != projected["state"]["z"]
    tags = page.locator("#history li .tag").all_text_contents()
    assert tags[:3] == [f"latent ×{out['steps']}", "projected", "photo"]
    assert page.problems == []
    page.context.close()
