"""Screenshot of the web UI for the README: start ``app.py`` with the shipped model, run one tab in headless
Chromium, save the page as PNG.

    python -m benchmarks.ui_screenshot                          # docs/ui.png: Analogs of paracetamol
    python -m benchmarks.ui_screenshot --tab generate --out /tmp/generate.png
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tests.ui.harness import REPO, chromium, running_app

TABS = {"generate": "Generate", "analogs": "Analogs", "decorate": "Scaffold decoration", "optimize": "Optimize", "interpolate": "Interpolate"}
COUNTS = {"generate": ("generate-n", 12), "analogs": ("analogs-n", 24), "decorate": ("decorate-n", 12), "optimize": ("optimize-n", 16), "interpolate": ("interpolate-points", 8)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tab", choices=sorted(TABS), default="analogs")
    parser.add_argument("--out", default=str(REPO / "docs" / "ui.png"))
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1500)
    args = parser.parse_args()
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    with running_app("--device", "cpu") as url, tempfile.TemporaryDirectory() as downloads:
        browser = chromium(downloads, size=(args.width, args.height))
        try:
            browser.get(url)
            deadline = time.monotonic() + 60
            while not browser.find_elements(By.ID, f"{args.tab}-run") and time.monotonic() < deadline:
                time.sleep(0.5)
            next(b for b in browser.find_elements(By.CSS_SELECTOR, "[role=tab]") if b.text.strip() == TABS[args.tab]).click()
            field_id, count = COUNTS[args.tab]
            field = browser.find_element(By.CSS_SELECTOR, f"#{field_id} input")
            field.send_keys(Keys.CONTROL, "a")
            field.send_keys(str(count))
            browser.find_element(By.ID, f"{args.tab}-run").click()
            deadline = time.monotonic() + 600
            while not browser.find_elements(By.CSS_SELECTOR, f"#{args.tab}-grid img.molgen-mol") and time.monotonic() < deadline:
                time.sleep(0.5)
            time.sleep(1.0)  # let the table and images settle
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            browser.save_screenshot(args.out)
        finally:
            browser.quit()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
