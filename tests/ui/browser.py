"""Debian's Chromium, headless, driven by Selenium through Debian's chromedriver.

Selenium is told exactly which binaries to use, so its manager never downloads a browser or a
driver. A fresh profile directory per browser keeps runs independent (and is required as root).
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from typing import Any

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser")
DRIVER_CANDIDATES = ("chromedriver",)
WIDE, NARROW = (1280, 800), (390, 844)


def find_binaries() -> tuple[str, str] | None:
    browser = next((p for p in map(shutil.which, CHROMIUM_CANDIDATES) if p), None)
    driver = next((p for p in map(shutil.which, DRIVER_CANDIDATES) if p), None)
    return (browser, driver) if browser and driver else None


def start_chromium(browser: str, driver: str, profile_dir: str) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={profile_dir}",
        f"--window-size={WIDE[0]},{WIDE[1]}",
        "--force-device-scale-factor=1",
    ):
        options.add_argument(flag)
    web = webdriver.Chrome(options=options, service=Service(executable_path=driver))
    set_viewport(web, *WIDE)
    return web


def set_viewport(web: Any, width: int, height: int) -> None:
    """Make the page's viewport (not the window) width x height, as a device of that size shows it."""
    web.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )


def wait_for(condition: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``condition`` until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as e:  # the element may not be there yet, or is being replaced
            last = e
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last})" if last else "")
    )


def screenshot(web: Any, name: str, directory: str | None = None) -> str:
    """Save the viewport as a small palette PNG under ``$MLPIPE_UI_SCREENSHOTS`` (docs/ui) or a temp dir."""
    from PIL import Image

    directory = directory or os.environ.get("MLPIPE_UI_SCREENSHOTS") or tempfile.gettempdir()
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{name}.png")
    image = Image.open(io.BytesIO(web.get_screenshot_as_png())).convert("RGB")
    image.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path
