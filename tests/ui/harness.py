"""Start ``python app.py`` on a free loopback port and drive it with the system's headless Chromium.

Shared by the browser tests, ``benchmarks/ui.py`` and ``benchmarks/ui_screenshot.py``. Chromium comes from
Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs them); nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
DRIVER_CANDIDATES = ("chromedriver", "chromium-driver")
INSTALL_HINT = "apt-get install -y chromium chromium-driver (and pip install selenium); scripts/install-browser does it as root"


class BrowserMissing(RuntimeError):
    """No headless Chromium, chromedriver or selenium installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_app(*options: str, startup_seconds: float = 240.0) -> Iterator[str]:
    """``python app.py --port <free> *options`` in a subprocess; yields its URL once the page answers."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="molgen-app-", suffix=".log", delete=False)
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, str(REPO / "app.py"), "--port", str(port), *options],
        cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + startup_seconds
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with code {process.returncode} before serving:\n{Path(log.name).read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer on {url} within {startup_seconds:.0f} s:\n{Path(log.name).read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)


def _find(names: tuple[str, ...]) -> str | None:
    return next((path for name in names if (path := shutil.which(name))), None)


def chromium(download_dir: str | Path, size: tuple[int, int] = (1400, 1000)):
    """A headless Chromium driven by Selenium; downloads land in ``download_dir``.

    Raises :class:`BrowserMissing` naming what to install when the browser, its driver or selenium is absent.
    """
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserMissing(f"selenium is not installed ({exc}); {INSTALL_HINT}") from None
    binary, driver = _find(CHROMIUM_CANDIDATES), _find(DRIVER_CANDIDATES)
    if binary is None or driver is None:
        # The README's test command must work on a fresh machine: install them as .ci/run does, once.
        subprocess.run([str(REPO / "scripts" / "install-browser")], check=False, timeout=900)
        binary, driver = _find(CHROMIUM_CANDIDATES), _find(DRIVER_CANDIDATES)
    if binary is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", binary), ("chromedriver", driver)) if p is None)
        raise BrowserMissing(f"{missing} not found on PATH; {INSTALL_HINT}")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={size[0]},{size[1]}"):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(download_dir), "download.prompt_for_download": False, "safebrowsing.enabled": True}
    )
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(download_dir)})
    return browser
