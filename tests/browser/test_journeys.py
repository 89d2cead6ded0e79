"""Journeys in a real browser: run the default comparison and read the chart and CSV; a bad upload; a
server restart that keeps the history."""

from __future__ import annotations

import os
import re
import shutil

import pandas as pd
from playwright.sync_api import expect

from tests.browser.conftest import ARTIFACTS, ROOT

RUN_TIMEOUT_MS = 240_000


def _points_in_first_chart(page) -> list[str]:
    return page.evaluate("""() => {
        const plot = document.querySelector('.js-plotly-plot');
        return plot.data.filter(t => t.mode === 'markers+text').flatMap(t => Array.from(t.text));
    }""")


def test_default_comparison_chart_and_csv(server, page):
    page.goto(server.url)
    page.get_by_role("button", name="Run the default comparison").click()
    expect(page.get_by_text(re.compile(r"Run .* finished\."))).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("link", name="Open the comparison").click()
    try:
        expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=60_000)
        page.wait_for_function("() => document.querySelector('.js-plotly-plot')?.data?.length > 0")
        _save_compare_screenshot(page)
        variants = sorted(_points_in_first_chart(page))
        assert variants == sorted(["float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8"])
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Results CSV").click()
        csv_path = download_info.value.path()
        table = pd.read_csv(csv_path)
        assert sorted(table["variant"]) == variants
        assert (table["status"] == "ok").all()
        assert table["accuracy"].min() > 0.9 and (table["size_bytes"] > 0).all()
    except Exception:
        _save_compare_screenshot(page)
        raise


def _save_compare_screenshot(page) -> None:
    """Kept in test-artifacts/ (and, with STUDIO_UPDATE_SCREENSHOT=1, as the README's docs/compare.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.wait_for_timeout(1500)  # let Plotly finish drawing
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=False)
    if os.environ.get("STUDIO_UPDATE_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "compare.png", ROOT / "docs" / "compare.png")


def test_bad_upload_shows_a_clear_error(server, page, tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"definitely not a flatbuffer")
    page.goto(f"{server.url}/Model_and_data")
    page.get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(bad))
    expect(page.get_by_text("broken.tflite").first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Use these files").click()
    expect(page.get_by_text(re.compile(r"Model refused: broken\.tflite: expected a TensorFlow Lite"))) \
        .to_be_visible(timeout=60_000)
    assert page.get_by_text("Traceback").count() == 0


def test_runs_are_still_listed_after_a_server_restart(server, page):
    from optimizer.store import RunStore

    store = RunStore(server.runs_dir)
    run_id = store.create("seeded_model.keras", {"model": {"name": "seeded_model.keras", "sha256": "ab" * 32}}, {})
    store.update(run_id, status="done", rows=[{"variant": "float32", "status": "ok", "size_bytes": 10}])
    server.stop()
    server.start()
    page.goto(f"{server.url}/History")
    selector = page.locator('[data-testid="stSelectbox"]').first
    expect(selector).to_be_visible(timeout=30_000)
    page.get_by_label("Selected run").click()
    expect(page.get_by_role("option", name=re.compile(f"{run_id} - seeded_model.keras \\(done\\)"))) \
        .to_be_visible(timeout=30_000)
