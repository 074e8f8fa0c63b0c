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
from neuedit.server.testing import CHROMIUM, ServerThread, mouse_stroke

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not Path(CHROMIUM).is_file(), reason=f"{CHROMIUM} is absent (apt-get install chromium)")]


@pytest.fixture(scope="module")
def server(tiny_exported, tiny_exported_empty):
    cfg = ServerConfig(bundles=(str(tiny_exported.path), str(tiny_exported_empty.path)), inference_threads=1,
                       decode_threads=1, threads=1)
    with ServerThread(cfg) as s:
        yield s


def open_page(browser, server, **context):
    """The page with the models run by the server (`?run=server`; the in-browser runtime has its
    own tests in tests/test_web.py), after its first picture."""
    ctx = browser.new_context(**context)
    page = ctx.new_page()
    page.problems = []
    page.on("pageerror", lambda e: page.problems.append(f"pageerror: {e}"))
    page.on("console", lambda m: m.type == "error" and page.problems.append(f"console: {m.text}"))
    with page.expect_response("**/api/generate") as gen:
        page.goto(server.url + "?run=server")
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
    assert page.eval_on_selector("#image", "e => getComputedStyle(e).imageRendering") == "auto"  # smoothly scaled
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

    # back to the generated picture (the history), then latent edits with Enter: the state comes back
    # changed and the next request carries it
    page.click("#history li:nth-child(2) button")
    page.keyboard.press("Control+z")  # the entry came with its own (no) strokes: the stroke back
    assert strokes(page) == 1
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
    xs = np.linspace(0.62, 0.85, 8)  # the 3 px brush is 19 % of the 16 px picture wide: keep it off the middle
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


def test_a_photo_latent_edit_keeps_the_photo_and_continues(browser, server, tmp_path):
    # upload, Latent, Submit twice (the second continues the first: the same photo and its state),
    # Undo; then a two-stage edit, and a latent edit after it starts from the two-stage result
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
    page.fill("#steps", "2")
    body, out = submit_and_wait(page, lambda: page.click("#submit"))
    assert body["method"] == "latent" and "image" in body and "state" not in body  # the photo itself
    assert out["state"]["z0"] is not None and len(out["state"]["r"]) == 16 * 8 * 8  # the photo's detail map
    body2, out2 = submit_and_wait(page, lambda: page.click("#submit"))
    assert body2["image"] == body["image"] and body2["state"] == out["state"]  # continued
    assert out2["state"]["z0"] == out["state"]["z0"]
    tags = page.locator("#history li .tag").all_text_contents()
    assert tags[:3] == ["latent ×2", "latent ×2", "photo"]
    page.keyboard.press("Control+z")
    assert strokes(page) == 0
    page.keyboard.press("Control+y")
    page.check("#method-two-stage")
    body3, out3 = submit_and_wait(page, lambda: page.click("#submit"))
    assert "state" not in body3 and body3["image"] == out2["image"]  # the picture on screen, not the upload
    page.check("#method-latent")
    body4, _ = submit_and_wait(page, lambda: page.click("#submit"))
    assert body4["image"] == out3["image"] and "state" not in body4  # the two-stage result, as a photo
    assert page.problems == []
    page.context.close()


# ---- what a new user trips over --------------------------------------------------------------------------
def new_picture(page, action):
    """Run `action` (New, a model switch) and wait for the generated picture to be on screen."""
    with page.expect_response("**/api/generate") as gen:
        action()
    out = gen.value.json()
    page.wait_for_function("src => document.getElementById('image').src === src",
                           arg="data:image/png;base64," + out["image"])
    return out


def attribute_menus(page) -> list[str]:
    return page.eval_on_selector_all("#attributes select", "ss => ss.map(s => s.value)")


def expected_menus(page, c) -> list[str]:
    """The menus' values for attributes c, by the page's rule: per group the largest value above 0.5."""
    groups = page.eval_on_selector_all("#attributes select", "ss => ss.map(s => [+s.dataset.offset, +s.dataset.size])")
    out = []
    for off, n in groups:
        best = max(range(n), key=lambda k: c[off + k])
        out.append(str(best) if c[off + best] > 0.5 else "-1")
    return out


def upload_photo(page, path):
    page.set_input_files("#photo", str(path))
    page.wait_for_function("() => document.querySelector('#history li .tag').textContent === 'photo'")


def a_photo(tmp_path, name="photo.png"):
    photo = tmp_path / name
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(photo)
    return photo


def test_new_and_a_model_switch_start_with_no_strokes(browser, server):
    """Strokes drawn on one picture are not silently sent with the next one."""
    page, _ = open_page(browser, server, viewport={"width": 1280, "height": 800})
    mouse_stroke(page, [(0.2, 0.2), (0.5, 0.3)])
    assert strokes(page) == 1
    new_picture(page, lambda: page.click("#regenerate"))
    assert strokes(page) == 0
    body, _ = submit_and_wait(page, lambda: page.click("#submit"))
    assert not sketch_mask(body).any()  # nothing of the old stroke went with the new picture
    page.keyboard.press("Control+z")  # the cleared strokes can still be brought back on purpose
    assert strokes(page) == 1

    mouse_stroke(page, [(0.6, 0.6), (0.8, 0.7)])
    assert strokes(page) == 2
    new_picture(page, lambda: page.select_option("#model", "tiny_empty"))
    assert strokes(page) == 0
    body, _ = submit_and_wait(page, lambda: page.click("#submit"))
    assert body["model"] == "tiny_empty" and not sketch_mask(body).any()
    assert page.problems == []
    page.context.close()


def test_the_attribute_menus_follow_the_picture(browser, server, tmp_path):
    """After a latent edit the menus show the new state's attributes; after an upload "—"
    (unknown); a history entry brings back its own."""
    page, gen = open_page(browser, server, viewport={"width": 1280, "height": 800})
    assert attribute_menus(page) == expected_menus(page, gen["state"]["c"])
    # the latent edit moves the attributes: here, to the first option of every group that was not on it
    groups = page.eval_on_selector_all("#attributes select", "ss => ss.map(s => [+s.dataset.offset, +s.dataset.size])")
    c = [0.0] * len(gen["state"]["c"])
    for (off, n), shown in zip(groups, attribute_menus(page)):
        c[off + (1 if shown == "0" else 0)] = 0.9

    def moved(route):
        out = route.fetch().json()
        out["state"]["c"] = c
        route.fulfill(json=out)
    page.route("**/api/edit", moved)
    mouse_stroke(page, [(0.2, 0.2), (0.5, 0.3)])
    page.check("#method-latent")
    page.fill("#steps", "1")
    submit_and_wait(page, lambda: page.click("#submit"))
    page.unroute("**/api/edit")
    after_edit = expected_menus(page, c)
    assert after_edit != expected_menus(page, gen["state"]["c"])
    assert attribute_menus(page) == after_edit

    upload_photo(page, a_photo(tmp_path))
    assert set(attribute_menus(page)) == {"-1"}  # a photo's attributes are unknown
    page.locator("#history li button").nth(1).click()  # the latent edit
    assert attribute_menus(page) == after_edit
    page.locator("#history li button").nth(0).click()  # the photo
    assert set(attribute_menus(page)) == {"-1"}
    page.locator("#history li button").last.click()  # the generated picture
    assert attribute_menus(page) == expected_menus(page, gen["state"]["c"])
    assert page.problems == []
    page.context.close()


def percent(dist: float) -> str:
    p = dist / 6 * 100
    return f"{p:.1f} %" if p < 10 else f"{p:.0f} %"


def test_the_info_line_and_the_file_name_speak_plainly(browser, server, tmp_path):
    """The distance reads as a share of the colour range, with a tooltip; the chosen photo's
    name stays on the page until the picture is no longer that photo."""
    page, _ = open_page(browser, server, viewport={"width": 1280, "height": 800})
    mouse_stroke(page, [(0.2, 0.2), (0.5, 0.3)])
    _, out = submit_and_wait(page, lambda: page.click("#submit"))
    info = page.text_content("#info")
    assert f"colour under the strokes: {percent(out['dist'])} off" in info and "distance" not in info
    assert "0 %" in page.get_attribute("#info", "title")

    assert page.text_content("#photo-name") == "" and page.is_hidden("#photo-name")
    upload_photo(page, a_photo(tmp_path, "my face.png"))
    assert page.text_content("#photo-name") == "my face.png" and page.is_visible("#photo-name")
    mouse_stroke(page, [(0.3, 0.3), (0.6, 0.5)])
    page.check("#method-latent")
    page.fill("#steps", "1")
    _, edited = submit_and_wait(page, lambda: page.click("#submit"))
    assert page.text_content("#photo-name") == "my face.png"  # its edits still come from it
    page.locator("#history li button").nth(1).click()  # the photo: its own (empty) line comes back
    page.locator("#history li button").nth(0).click()  # the edit: its line again
    info = page.text_content("#info")
    assert f"{percent(edited['dist'])} off" in info and "distance" not in info
    assert page.get_attribute("#info", "title")
    new_picture(page, lambda: page.click("#regenerate"))
    assert page.text_content("#photo-name") == ""
    upload_photo(page, a_photo(tmp_path, "other.png"))
    assert page.text_content("#photo-name") == "other.png"
    new_picture(page, lambda: page.select_option("#model", "tiny_empty"))
    assert page.text_content("#photo-name") == ""
    assert page.problems == []
    page.context.close()


def test_brush_default_and_smooth_pictures(browser, server):
    """The brush starts 3 model pixels wide; the picture and the thumbnails are smoothly scaled."""
    page, gen = open_page(browser, server, viewport={"width": 1280, "height": 800})
    assert page.input_value("#brush-width") == "3" and page.text_content("#brush-width-value") == "3 px"
    mouse_stroke(page, [(0.2, 0.5), (0.8, 0.5)])
    body, _ = submit_and_wait(page, lambda: page.click("#submit"))
    mask = sketch_mask(body)
    thick = mask[:, mask.shape[1] // 2].sum() * gen["resolution"] / mask.shape[0]  # in model pixels
    assert 2.7 <= thick <= 3.3, thick
    for sel in ("#image", "#history img"):
        assert page.eval_on_selector(sel, "e => getComputedStyle(e).imageRendering") == "auto", sel
    page.context.close()


def test_phone_layout_keeps_the_controls_close(browser, server):
    """On a phone the canvas and the toolbar are on the first screen, and the method choice
    and the photo upload within a short scroll; the swatches stay big enough to tap."""
    page, _ = open_page(browser, server, viewport={"width": 390, "height": 844}, device_scale_factor=3,
                        is_mobile=True, has_touch=True)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390

    def bottom(sel):  # in page coordinates
        return page.evaluate("s => document.querySelector(s).getBoundingClientRect().bottom + scrollY", sel)
    assert bottom("#strokes") <= 844 and bottom("#submit") <= 844
    for sel in ("label:has(#method-two-stage)", "label:has(#method-latent)", "label.file", "#download"):
        assert bottom(sel) <= 1.3 * 844, (sel, bottom(sel))  # at most about a third of a screen's scroll
        assert page.locator(sel).bounding_box()["height"] >= 36, sel  # tap targets
    swatches = [page.locator("#swatches button").nth(i).bounding_box()
                for i in range(page.locator("#swatches button").count())]
    assert all(b["width"] >= 36 and b["height"] >= 36 for b in swatches)
    row = [b for b in swatches if abs(b["y"] - swatches[0]["y"]) < 1]
    assert all(b2["x"] - (b1["x"] + b1["width"]) >= 6 for b1, b2 in zip(row, row[1:]))  # apart enough to hit one

    page.tap("label:has(#method-latent)")
    assert page.is_checked("#method-latent")
    page.context.close()


def test_desktop_layout_stays_tidy(browser, server):
    """At 1280x800 the settings sit beside the canvas, within the first screen."""
    page, _ = open_page(browser, server, viewport={"width": 1280, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280
    canvas = page.locator("#strokes").bounding_box()
    for sel in ("#swatches", "label:has(#method-latent)", "label.file", "#download", "#submit"):
        b = page.locator(sel).bounding_box()
        assert b["y"] + b["height"] <= 800, sel
        if sel != "#submit":
            assert b["x"] >= canvas["x"] + canvas["width"], sel  # the panel on the right
    assert page.is_hidden("#photo-name")
    page.context.close()
