"""The web UI as a chemist uses it: ``python app.py`` with the shipped model, driven in headless Chromium.

Open the page, generate a few molecules, see the depictions and the table, download the CSV (and SDF) and
read it back, make mistakes and read the messages, then use every other tab once. A tab whose design feature
this version of molgen lacks must say so on the page.

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (``.ci/run`` installs
them); without them the tests fail with what to install, they do not skip.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest

from tests.ui.harness import REPO, BrowserMissing, chromium, running_app

pytest.importorskip("gradio")

MODEL = REPO / "checkpoints" / "moses"  # what `python app.py` serves by default
CAP = 40  # --max-n of the app under test
REPAIR_CAP = 3  # --max-repairs of the app under test
BUSY = ".progress-text, .pending"  # what Gradio lays over an output while its request is queued or running
WAIT = 180  # seconds; generous, the CI machine is shared with training jobs


def designer_has(method: str) -> bool:
    try:
        from molgen.design import Designer
    except ImportError:
        return False
    return callable(getattr(Designer, method, None))


@pytest.fixture(scope="module")
def app_url():
    if not (MODEL / "prior" / "config.json").exists():
        pytest.fail(f"the shipped model {MODEL} (with its prior) is missing")
    import app

    assert app.DEFAULT_MODEL == MODEL, f"app.py serves {app.DEFAULT_MODEL} by default, these tests expect {MODEL}"
    options = ("--max-n", str(CAP), "--max-steps", "20", "--max-repairs", str(REPAIR_CAP), "--max-calls", "32", "--device", "cpu")
    with running_app(*options) as url:
        yield url


@pytest.fixture(scope="module")
def downloads(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def page(app_url, downloads):
    try:
        browser = chromium(downloads)
    except BrowserMissing as exc:
        pytest.fail(f"the UI tests need headless Chromium: {exc}")
    page = Page(browser, downloads)
    browser.get(app_url)
    page.wait(lambda: page.find("#generate-run"), "the page to load")
    yield page
    browser.quit()


class Page:
    """A few verbs on the Gradio page, by the element ids app.py gives its components."""

    def __init__(self, browser, downloads: Path) -> None:
        from selenium.webdriver.common.by import By

        self.browser, self.downloads, self.by = browser, downloads, By

    def find(self, css: str):
        found = self.browser.find_elements(self.by.CSS_SELECTOR, css)
        return found[0] if found else None

    def all(self, css: str) -> list:
        return self.browser.find_elements(self.by.CSS_SELECTOR, css)

    def wait(self, condition, what: str, seconds: float = WAIT):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if result := condition():
                return result
            time.sleep(0.25)
        raise AssertionError(f"timed out after {seconds:.0f} s waiting for {what}; errors on the page: {self.errors()}")

    def fill(self, elem_id: str, text) -> None:
        css = f"#{elem_id} input, #{elem_id} textarea"
        field = self.wait(lambda: (f := self.find(css)) is not None and f.is_displayed() and f, f"the input field #{elem_id}", seconds=15)
        from selenium.webdriver.common.keys import Keys

        # Typed as a person would: clear() alone fires no input event, so the page would keep the old value.
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.BACKSPACE)
        if str(text):
            field.send_keys(str(text))

    def click(self, css: str) -> None:
        self.find(css).click()

    def tab(self, label: str) -> None:
        button = next(b for b in self.all("[role=tab]") if b.text.strip() == label)
        button.click()
        self.wait(lambda: button.get_attribute("aria-selected") == "true", f"tab {label!r} to open")

    def errors(self) -> list[str]:
        texts = [t.text.replace("\n", " ").strip() for t in self.all(".toast-body.error")]
        return [t for t in texts if t]  # a closing message keeps its element, empty, for a moment

    def close_messages(self) -> None:
        self.browser.execute_script("document.querySelectorAll('.toast-close').forEach(b => b.click())")
        self.wait(lambda: not self.all(".toast-body"), "the messages to close", seconds=10)

    def run(self, tab: str) -> str:
        """Click the tab's run button and wait for its summary line or an error message; return the summary.

        A repeated request can end with the very summary it replaced (same molecules, same rounded time), so the
        end of a request is told by the summary having been busy (Gradio lays its status over it while the request
        is queued or running) and then no longer being busy, not by its text."""
        self.browser.execute_script(
            "const el = document.querySelector(arguments[0]); window.molgenWasBusy = false;"
            "new MutationObserver((_, o) => { if (el.querySelector(arguments[1])) { window.molgenWasBusy = true; o.disconnect(); } })"
            ".observe(el, {subtree: true, childList: true, characterData: true, attributes: true});",
            f"#{tab}-summary",
            BUSY,
        )
        self.click(f"#{tab}-run")
        was_busy = lambda: self.browser.execute_script("return window.molgenWasBusy")  # noqa: E731
        self.wait(lambda: self.errors() or (was_busy() and not self.busy(tab) and self.summary(tab)), f"{tab} results")
        assert not self.errors(), f"{tab}: unexpected error {self.errors()}"
        return self.summary(tab)

    def summary(self, tab: str) -> str:
        """The text of the tab's summary line (not the status label Gradio lays over it while busy)."""
        content = self.find(f"#{tab}-summary .prose")
        return content.text.strip() if content is not None else ""

    def expect_error(self, tab: str, fragment: str) -> str:
        self.click(f"#{tab}-run")
        message = self.wait(lambda: next((e for e in self.errors() if fragment in e), None), f"an error mentioning {fragment!r}")
        self.close_messages()
        return message

    def images(self, tab: str) -> list:
        return self.all(f"#{tab}-grid img.molgen-mol")

    def table_rows(self, tab: str) -> int:
        grid = self.find(f"#{tab}-table [role=grid]")
        return int(grid.get_attribute("aria-rowcount")) - 1  # minus the header row

    def download(self, css: str, suffix: str) -> Path:
        for old in self.downloads.glob(f"*{suffix}"):
            old.unlink()
        self.click(css)
        return self.wait(lambda: next(iter(self.downloads.glob(f"*{suffix}")), None), f"the {suffix} download")

    def sort(self, tab: str, column: str, order: str) -> None:
        """Sort the tab's table by ``column`` through the column's menu (``Sort ascending`` / ``Sort descending``)."""
        header = next(h for h in self.all(f"#{tab}-table th") if h.text.strip() == column)
        self.browser.execute_script("arguments[0].click()", header.find_element(self.by.CSS_SELECTOR, "button.cell-menu-button"))
        item = self.wait(lambda: next((b for b in self.all("button, [role=menuitem]") if b.text.strip() == order and b.is_displayed()), None), f"the {order!r} menu item")
        item.click()

    def first_row(self, tab: str) -> list[str]:
        """Cell texts of the first row the table shows, left to right.

        Gradio's table draws its rows as ``.virtual-row`` elements (only those in view); its ``td`` cells form a
        hidden row that sizes the columns with each column's widest text, so they are not a row of the data."""
        width = len(self.all(f"#{tab}-table th"))
        rows = [r for r in self.all(f"#{tab}-table .virtual-row") if r.is_displayed()]
        assert rows, f"{tab}: the table shows no row"
        top = min(rows, key=lambda r: r.rect["y"])
        cells = [c.get_attribute("textContent").strip() for c in top.find_elements(self.by.CSS_SELECTOR, ".body-cell")]
        assert len(cells) == width, f"{tab}: the first row has {len(cells)} cells for {width} columns"
        return cells

    def open_accordion(self, label: str) -> None:
        """Open the (visible) accordion whose title starts with ``label``."""
        for header in self.all(".label-wrap"):
            if header.is_displayed() and header.text.strip().startswith(label):
                if "open" not in (header.get_attribute("class") or ""):
                    header.click()
                return
        raise AssertionError(f"no accordion {label!r} on the visible tab")

    def busy(self, tab: str) -> bool:
        """Whether the tab's request is queued or running (Gradio lays its status over the outputs meanwhile)."""
        return bool(self.all(", ".join(f"#{tab}-summary {css}" for css in BUSY.split(", "))))

    def rendered(self, image) -> bool:
        return self.browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)


def test_generate_shows_depictions_table_and_downloads(page):
    page.tab("Generate")
    page.fill("generate-n", 6)
    summary = page.run("generate")
    assert summary.startswith("6 molecules"), summary
    images = page.wait(lambda: page.images("generate") if len(page.images("generate")) == 6 else None, "6 depictions")
    assert all(page.rendered(img) for img in images), "a depiction did not render"
    assert all(img.get_attribute("src").startswith("data:image/svg+xml") for img in images)
    assert page.table_rows("generate") == 6
    headers = [h.text for h in page.all("#generate-table th")]
    assert {"SMILES", "state", "QED", "MW", "alerts"} <= set(headers), headers

    rows = list(csv.DictReader(page.download("#generate-csv", ".csv").open()))
    assert len(rows) == 6
    assert {"smiles", "state", "QED", "logP", "MW", "SA", "alerts", "error"} <= set(rows[0])
    from molgen.chem import parse_smiles

    for row in rows:
        if row["state"] in ("valid", "duplicate", "rejected"):
            parse_smiles(row["smiles"])  # every listed molecule is real chemistry
    sdf = page.download("#generate-sdf", ".sdf").read_text()
    assert sdf.count("$$$$") == 6

    page.sort("generate", "QED", "Sort descending")  # the table sorts in the page, as a chemist would
    best = max(float(r["QED"]) for r in rows if r["QED"])
    assert float(page.first_row("generate")[headers.index("QED")]) == pytest.approx(best, abs=1e-3)


def test_bad_input_is_a_message_and_the_page_keeps_working(page):
    page.tab("Generate")
    page.fill("generate-n", CAP + 1)
    assert f"at most {CAP}" in page.expect_error("generate", "per request")
    page.fill("generate-n", 3)
    page.fill("generate-repairs", REPAIR_CAP + 1)
    assert f"repair passes = {REPAIR_CAP + 1}: at most {REPAIR_CAP}" in page.expect_error("generate", "repair passes")
    page.fill("generate-repairs", 2)
    page.fill("generate-target-QED", "very high")
    assert "QED target 'very high'" in page.expect_error("generate", "QED target")
    page.fill("generate-target-QED", "1.5")
    assert "impossible" in page.expect_error("generate", "QED 1.5")
    page.fill("generate-target-QED", "")
    assert page.run("generate").startswith("3 molecules")
    assert page.table_rows("generate") == 3


def test_generate_with_targets_smarts_and_filters(page):
    page.tab("Generate")
    page.fill("generate-n", 5)
    page.fill("generate-target-MW", "250-400")
    page.open_accordion("Constraints and filters")
    page.fill("generate-avoid", "[C")
    assert "[C" in page.expect_error("generate", "SMARTS")
    page.fill("generate-avoid", "[N+](=O)[O-]")
    page.fill("generate-sa", 6)
    summary = page.run("generate")
    assert summary.startswith("5 molecules"), summary
    for field in ("generate-target-MW", "generate-avoid", "generate-sa"):
        page.fill(field, "")


def test_fields_follow_the_discrete_prior(page):
    """The shipped model draws each token from a softmax: no denoising steps to set; its repair passes are offered at
    the model's default."""
    page.tab("Generate")
    assert page.find("#generate-n input").is_displayed()
    for tab in ("generate", "analogs", "decorate"):
        field = page.find(f"#{tab}-steps input")
        assert field is None or not field.is_displayed(), f"{tab}: a steps field is shown"
    repairs = page.find("#generate-repairs input")
    shipped_prior = json.loads((MODEL / "prior" / "config.json").read_text())
    assert repairs is not None and repairs.is_displayed() and repairs.get_attribute("value") == str(shipped_prior["default_repairs"])
    # the shipped model has a property predictor: its guidance is offered, at the model's default strength (0: its
    # requests with targets resample candidates chosen by the judge instead)
    steer = page.find("#generate-steer input[type=number]")
    assert steer is not None and steer.is_displayed(), "no predictor guidance field"
    shipped = json.loads((MODEL / "predictor" / "config.json").read_text())
    assert float(steer.get_attribute("value")) == shipped["default_scale"] == 0.0


TABS = [
    # (tab label, element prefix, design method, what the summary counts)
    ("Analogs", "analogs", "analogs", "analogs"),
    ("Scaffold decoration", "decorate", "decorate", "decorations"),
    ("Optimize", "optimize", "optimize", "best molecules"),
    ("Interpolate", "interpolate", "interpolate", "points"),
]


@pytest.mark.parametrize(("label", "prefix", "method", "noun"), TABS, ids=[t[1] for t in TABS])
def test_each_design_tab_once(page, label, prefix, method, noun):
    page.tab(label)
    if not designer_has(method):
        message = page.expect_error(prefix, "not available in this version")
        assert method in message
        return
    for field, value in {"analogs-n": 4, "decorate-n": 4, "optimize-n": 8, "optimize-calls": 16, "interpolate-points": 4}.items():
        if field.startswith(prefix):
            page.fill(field, value)
    summary = page.run(prefix)
    assert noun in summary, summary
    assert page.images(prefix), f"{label}: no depictions"
    assert page.table_rows(prefix) >= 1


def test_bad_smiles_is_a_message(page):
    page.tab("Analogs")
    page.fill("analogs-smiles", "C1CC(")
    assert "C1CC(" in page.expect_error("analogs", "invalid SMILES")
    page.fill("analogs-smiles", "CC(=O)Nc1ccc(O)cc1")


def test_opening_the_filters_keeps_the_sa_ceiling_empty_and_the_tab_runs(page):
    """Opening "Constraints and filters" draws its fields; the empty SA ceiling must stay "no ceiling" (a number field
    would turn into 0 and reject every molecule)."""
    page.tab("Analogs")
    page.fill("analogs-n", 3)
    page.open_accordion("Constraints and filters")
    field = page.wait(lambda: (f := page.find("#analogs-sa input, #analogs-sa textarea")) is not None and f.is_displayed() and f, "the SA ceiling field")
    assert field.get_attribute("value") == ""
    assert "analogs" in page.run("analogs")
    page.fill("analogs-sa", 0)
    assert "SA scores run from 1 (easy) to 10 (hard)" in page.expect_error("analogs", "SA ceiling 0")
    page.fill("analogs-sa", "")
    assert "analogs" in page.run("analogs")


def test_messages_show_what_was_typed_as_text_not_as_html(page):
    page.tab("Analogs")
    hostile = "<b>bold</b><img src=x onerror=window.molgenXss=1>"
    page.fill("analogs-smiles", hostile)
    page.click("#analogs-run")
    shown = page.wait(lambda: next((e for e in page.all(".toast-body.error") if "<b>bold</b>" in e.text), None), "the message quoting the input")
    assert "<img src=x onerror=window.molgenXss=1>" in shown.text
    assert not shown.find_elements(page.by.CSS_SELECTOR, "b, img"), "the message rendered the input as HTML"
    assert page.browser.execute_script("return window.molgenXss") is None
    page.close_messages()
    page.fill("analogs-smiles", "CC(=O)Nc1ccc(O)cc1")


def test_cancel_stops_a_request_and_the_page_keeps_working(page):
    page.tab("Generate")
    page.fill("generate-n", CAP)
    page.fill("generate-target-QED", "0.9")  # with a target, tens of candidates are drawn per molecule: a long request
    before = page.summary("generate")
    page.click("#generate-run")
    page.wait(lambda: page.busy("generate"), "the request to start")
    page.click("#generate-cancel")
    page.wait(lambda: not page.busy("generate"), "the request to stop", seconds=30)
    assert page.summary("generate") == before, "the cancelled request still showed results"
    assert not page.errors(), page.errors()
    page.fill("generate-target-QED", "")
    page.fill("generate-n", 2)
    assert page.run("generate").startswith("2 molecules")
