"""End to end in a real browser: Debian's chromium (headless, driven by Selenium through Debian's
chromium-driver) against ``avflow serve`` started from the CLI on a tiny demo-avatar model.

A person's path through the page: type a sentence, press Speak, watch the video (it has a
duration, an audio track the browser decodes, and frames that change); switch to streaming and
hear the first audio before the whole text is done, the avatar's frames drawn on the canvas.
"""

from __future__ import annotations

import base64
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from serve_helpers import CliServer, start_cli_server

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server(tiny_avatar_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliServer]:
    root = tmp_path_factory.mktemp("browser")
    srv = start_cli_server(tiny_avatar_model, root / "jobs", root / "serve.log")
    yield srv
    srv.stop()


def headless_chromium(window: str, *extra_args: str) -> Any:
    """Debian's chromium under Selenium with the system chromedriver (no download), headless and muted;
    ``extra_args`` e.g. fake media devices fed from files (the live browser test)."""
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("chromium and chromedriver are needed: `make system-deps` installs the Debian packages "
                    "chromium and chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", f"--window-size={window}", "--no-first-run", *extra_args):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_script_timeout(60)
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    driver = headless_chromium("1200,900")
    yield driver
    driver.quit()


def _wait(driver: Any, script: str, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    status = driver.execute_script("return document.getElementById('status').textContent")
    raise AssertionError(f"timed out waiting for: {script}\npage status: {status}")


def _type(driver: Any, text: str) -> None:
    from selenium.webdriver.common.by import By

    box = driver.find_element(By.ID, "text")
    box.clear()
    box.send_keys(text)


FRAME_DIFF = """
const done = arguments[arguments.length - 1];
const v = document.getElementById('video');
v.pause();
const c = document.createElement('canvas');
c.width = v.videoWidth; c.height = v.videoHeight;
const g = c.getContext('2d');
const grab = (t) => new Promise((resolve) => {
  v.addEventListener('seeked', () => { g.drawImage(v, 0, 0); resolve(g.getImageData(0, 0, c.width, c.height).data); }, {once: true});
  v.currentTime = t;
});
(async () => {
  const a = await grab(0.1), b = await grab(v.duration * 0.6);
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff += Math.abs(a[i] - b[i]);
  done({diff: diff / a.length, width: c.width});
})();
"""


def test_page_speaks_a_sentence_as_video_then_streams_it(server: CliServer, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    # the page runs under the server's Content-Security-Policy: record anything it blocks
    browser.execute_script("window.cspViolations = []; document.addEventListener('securitypolicyviolation', "
                           "(e) => window.cspViolations.push(e.violatedDirective + ' ' + e.blockedURI));")
    _wait(browser, "return document.getElementById('health').textContent.includes('avatar demo')", 30)

    # video mode: the finished job's preview.mp4 plays, with sound and moving frames
    _type(browser, "Hello there, it is good to see you again.")
    clicked = time.perf_counter()
    browser.find_element(By.ID, "speak").click()
    _wait(browser, "const v = document.getElementById('video'); return !v.hidden && v.readyState >= 2 && v.currentTime > 0.15")
    video_ready_s = time.perf_counter() - clicked
    video = browser.execute_script(
        "const v = document.getElementById('video'); return {duration: v.duration, paused: v.paused, "
        "audioBytes: v.webkitAudioDecodedByteCount, videoBytes: v.webkitVideoDecodedByteCount, src: v.src}")
    assert video["duration"] > 0.3 and not video["paused"]
    assert video["audioBytes"] > 0 and video["videoBytes"] > 0  # an audio track, decoded
    assert video["src"].endswith("/files/preview.mp4")
    frames = browser.execute_async_script(FRAME_DIFF)
    assert frames["width"] == 512 and frames["diff"] > 0.2  # the avatar moves
    links = [a.get_attribute("download") for a in browser.find_elements(By.CSS_SELECTOR, "#downloads a")]
    assert links == ["speech.wav", "motion.npz", "preview.mp4"]

    # streaming mode: sentence chunks arrive one by one and are drawn before the whole text is done
    browser.find_element(By.ID, "mode-stream").click()
    _type(browser, "Hello there. It is good to see you again. How have you been? Tell me everything.")
    browser.find_element(By.ID, "speak").click()
    stream = _wait(browser, "const s = window.avflow.stream; return s && s.endMs !== null && "
                            "{error: s.error, chunks: s.chunks, startMs: s.startMs, firstAudioMs: s.firstAudioMs, endMs: s.endMs}")
    assert stream["error"] is None and stream["chunks"] > 4
    first, end = stream["firstAudioMs"] - stream["startMs"], stream["endMs"] - stream["startMs"]
    assert 0 < first < end  # speech starts playing before the whole text is generated
    _wait(browser, "return window.avflow.stream.drawn > 3", 30)
    snap = "return document.getElementById('avatar').toDataURL('image/png')"
    a = _png(browser.execute_script(snap))
    time.sleep(0.15)
    b = _png(browser.execute_script(snap))
    assert len(np.unique(a.reshape(-1, 3), axis=0)) > 8  # a face, not a blank canvas
    assert np.abs(a.astype(int) - b.astype(int)).mean() > 0.05  # and it moves while the audio plays
    assert browser.execute_script("return window.cspViolations") == []  # video, stream and frames all allowed
    assert browser.execute_script("return [...document.styleSheets].map((s) => s.cssRules.length)")[0] > 0  # style.css
    # and the policy is in force: inline code is blocked
    ran = browser.execute_script("const s = document.createElement('script'); s.textContent = 'window.inlineRan = 1';"
                                 "document.body.appendChild(s); return window.inlineRan === 1")
    assert not ran
    _wait(browser, "return window.cspViolations.some((v) => v.startsWith('script-src'))", 10)
    print(f"\nfirst streamed audio after {first / 1000:.2f} s, whole stream after {end / 1000:.2f} s; "
          f"video mode ready after {video_ready_s:.2f} s (click → playing)")


def _png(data_url: str) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(data_url.split(",", 1)[1]), np.uint8)
    return cv2.cvtColor(cv2.imdecode(raw, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
