"""The scene side of the web UI in headless Chromium: ``python app.py`` serves the shipped molecule model and, behind
the domain switch, the shipped scene model. Switch to Scenes, design scenes to a request, complete a partial scene,
find the nearest scenes: each draws its scenes as top-down layouts and as graphs, with a table and a download.

Needs Debian's ``chromium`` and ``chromium-driver`` and ``selenium``, like ``test_browser.py``.
"""

from __future__ import annotations

import json

import pytest

from tests.ui.harness import REPO, BrowserMissing, chromium, running_app
from tests.ui.test_browser import Page

pytest.importorskip("gradio")


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not (REPO / "checkpoints" / "clevr" / "prior" / "config.json").exists():
        pytest.fail("the shipped scene model checkpoints/clevr (with its prior) is missing")
    downloads = tmp_path_factory.mktemp("scene-downloads")
    with running_app("--max-n", "8", "--device", "cpu") as url:
        try:
            browser = chromium(downloads)
        except BrowserMissing as exc:
            pytest.fail(f"the UI tests need headless Chromium: {exc}")
        page = Page(browser, downloads)
        browser.get(url)
        page.wait(lambda: page.find("#generate-run"), "the page to load")
        yield page
        browser.quit()


def scene_images(page: Page, tab: str, kind: str) -> list:
    return page.all(f"#{tab}-grid img.molgen-scene-{kind}")


def test_the_domain_switch_opens_the_scene_tabs(page):
    assert page.find("#generate-run").is_displayed()  # molecules first, as before
    page.tab("Scenes")
    page.tab("Design scenes")
    assert page.find("#scenes-design-run").is_displayed()
    assert not page.find("#generate-run").is_displayed()


def test_design_draws_each_scene_as_a_layout_and_a_graph(page):
    page.tab("Scenes")
    page.tab("Design scenes")
    page.fill("scenes-design-n", 3)
    summary = page.run("scenes-design")
    assert summary.startswith("3 scenes") and "3 satisfy" in summary, summary
    for kind in ("layout", "graph"):
        images = page.wait(lambda kind=kind: scene_images(page, "scenes-design", kind) if len(scene_images(page, "scenes-design", kind)) == 3 else None, f"3 {kind} drawings")
        assert all(page.rendered(img) for img in images)
    assert page.table_rows("scenes-design") == 3
    records = [json.loads(line) for line in page.download("#scenes-design-jsonl", ".jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["satisfied"] for r in records)


def test_a_bad_request_is_a_message_and_the_tab_keeps_working(page):
    page.tab("Scenes")
    page.tab("Design scenes")
    page.fill("scenes-design-request", "2 red cubez")
    assert "cubez" in page.expect_error("scenes-design", "unknown word")
    page.fill("scenes-design-request", "a metal sphere")
    page.fill("scenes-design-n", 2)
    assert page.run("scenes-design").startswith("2 scenes")


def test_complete_and_nearest_run_once(page):
    page.tab("Scenes")
    page.tab("Complete a scene")
    page.fill("scenes-complete-n", 2)
    summary = page.run("scenes-complete")
    assert summary.startswith("2 completions") and "2 satisfy" in summary, summary
    page.tab("Nearest scenes")
    page.fill("scenes-nearest-k", 3)
    assert page.run("scenes-nearest").startswith("3 nearest scenes")
    page.wait(lambda: len(scene_images(page, "scenes-nearest", "layout")) == 4, "the query and 3 neighbours")
