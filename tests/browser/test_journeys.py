"""Journeys in a real browser: run the default comparison and read its Compare page (headline, table, each
trade-off chart, a section drawn when opened) and CSV; a bad upload that cannot
be run; a double click that queues one run; an uploaded model run twice in a row; a server restart that keeps
the history; a server that watches no folder with inotify."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import pandas as pd
from playwright.sync_api import expect

from optimizer.jobs.store import ACTIVE, RunStore
from tests.browser.conftest import ARTIFACTS, ROOT, Server
from tests.conftest import DIGITS_DATA, DIGITS_MODEL

RUN_TIMEOUT_MS = 240_000


def _open_page(page, name: str) -> None:
    """Through the sidebar, so the session (and what it chose) is kept; a new address would start a new one."""
    page.locator('[data-testid="stSidebarNav"]').get_by_text(name, exact=True).click()


def _run_button(page):
    """The Run button of the current script run (Streamlit keeps the previous run's elements, marked stale,
    until the new run replaces them)."""
    return page.locator('[data-testid="stElementContainer"]:not([data-stale="true"])') \
        .get_by_role("button", name="Run", exact=True)


def _run_id_in_address(page, other_than: str | None = None) -> str:
    page.wait_for_url(lambda url: "run=" in url and (other_than is None or other_than not in url), timeout=30_000)
    return re.search(r"run=([\w-]+)", page.url).group(1)


# The trade-off chart (ECharts, drawn as SVG): its point labels are the texts inside its plotting area, above
# the legend at the foot of the chart (whose entries carry the same names).
_TRADEOFF = '[data-testid="stEChartsChart"]'
_POINT_LABELS = """chart => { const foot = chart.getBoundingClientRect().bottom - 40, names = new Set(%s);
    return Array.from(chart.querySelectorAll('svg text')).filter(t => names.has(t.textContent.trim())
        && t.getBoundingClientRect().bottom < foot).map(t => {
        const b = t.getBoundingClientRect(), size = parseFloat(getComputedStyle(t).fontSize);
        const inset = Math.max(0, (b.height - size) / 2);
        return {text: t.textContent.trim(), left: b.left, right: b.right, top: b.top + inset,
                bottom: b.bottom - inset};
    }); }"""
DEFAULT_VARIANTS = ["float32", "float16", "dynamic_range", "int8", "int8_io", "int16x8"]


def _point_labels(page, names: list[str]) -> list[dict]:
    return page.locator(_TRADEOFF).first.evaluate(_POINT_LABELS % json.dumps(names))


def test_default_comparison_chart_and_csv(server, page):
    page.goto(server.url)
    expect(page.locator('[data-testid="stSidebarNav"]').get_by_text("Home", exact=True)).to_be_visible()
    page.get_by_role("button", name="Run the default comparison").click()
    expect(page.get_by_text(re.compile(r"Run .* finished\."))).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("link", name="Open the comparison").click()
    try:
        expect(page.locator(f"{_TRADEOFF} svg").first).to_be_visible(timeout=60_000)
        page.wait_for_function(f"() => ({_POINT_LABELS % json.dumps(DEFAULT_VARIANTS)})"
                               f"(document.querySelector('{_TRADEOFF}')).length === 6", timeout=60_000)
        page.set_viewport_size({"width": 1280, "height": 1000})
        _save_compare_screenshot(page)
        variants = sorted(label["text"] for label in _point_labels(page, DEFAULT_VARIANTS))
        assert variants == sorted(DEFAULT_VARIANTS)
        expect(page.locator(".js-plotly-plot")).to_have_count(0)  # no Plotly on the first screen
        _check_headline(page, variants)
        _check_accuracy_column_in_view(page)
        _check_chart_labels_apart(page)
        _check_a_section_drawn_when_opened(page)
        with page.expect_download() as download_info:
            page.get_by_role("button", name="Results CSV").click()
        csv_path = download_info.value.path()
        table = pd.read_csv(csv_path)
        assert sorted(table["variant"]) == variants
        assert (table["status"] == "ok").all()
        # Whichever the default model is: float32 learnt its task, and every variant has a measured accuracy.
        assert table["accuracy"].between(0, 1).all() and (table["size_bytes"] > 0).all()
        assert table.set_index("variant").loc["float32", "accuracy"] > 0.9
    except Exception:
        _save_compare_screenshot(page)
        raise


def _check_headline(page, variants: list[str]) -> None:
    """widgets.recommendation_headline: "Recommended: `<variant>`", a sentence, and the Size, Latency p50 and
    Accuracy cards."""
    heading = page.get_by_role("heading", name=re.compile(r"^Recommended: "))
    expect(heading).to_be_visible()
    assert heading.inner_text().removeprefix("Recommended: ").strip("` ") in variants
    cards = page.locator('[data-testid="stMetric"]')
    expect(cards).to_have_count(3)
    assert [c.locator('[data-testid="stMetricLabel"]').inner_text().strip() for c in cards.all()] == \
        ["Size", "Latency p50", "Accuracy"]
    for card in cards.all():
        expect(card).to_be_in_viewport()


def _check_accuracy_column_in_view(page) -> None:
    """At 1280 px the results table (a canvas) shows its accuracy column unscrolled: the grid's accessible
    table lists the header cells of the columns in its visible region only (the last ones are cut off), and the
    grid lies within the viewport, scrolled to its left edge, on a page that does not scroll sideways."""
    table = page.locator('[data-testid="stDataFrame"]').first
    expect(table.locator('[role="columnheader"]', has_text="Accuracy (%)")).to_have_count(1)  # zero-size: hidden
    seen = table.evaluate("""t => {
        const box = t.getBoundingClientRect(), scroller = t.querySelector('.dvn-scroller');
        return {left: box.left, right: box.right, scrollLeft: scroller.scrollLeft,
                page: document.documentElement.scrollWidth, viewport: window.innerWidth,
                headers: Array.from(t.querySelectorAll('[role="columnheader"]')).map(h => h.textContent)};
    }""")
    assert seen["headers"][:2] == ["Variant", "Accuracy (%)"], seen
    assert seen["left"] >= 0 and seen["right"] <= 1280 and seen["scrollLeft"] == 0, seen
    assert seen["page"] <= seen["viewport"], seen


def _chart_buttons(page):
    """The buttons (radios) choosing the trade-off chart (widgets.tradeoff_chart's segmented control)."""
    return page.locator(".st-key-tradeoff_chart").get_by_role("radio")


# What tells the trade-off charts apart: their texts (title, axes) and their markers' outlines (the bubble chart
# has the texts of latency vs accuracy; a marker's size is its path's transform). Empty until a chart is drawn.
_CHART_SIGNATURE = f"""() => {{ const svg = document.querySelector('{_TRADEOFF} svg');
    return svg && svg.querySelector('text') ? Array.from(svg.querySelectorAll('text')).map(t => t.textContent)
        .join('|') + Array.from(svg.querySelectorAll('path'))
        .map(p => p.getAttribute('d') + p.getAttribute('transform')).join('') : ''; }}"""


def _check_chart_labels_apart(page) -> None:
    """No two point labels of a trade-off chart overlap, in every chart (each drawn when chosen: the page holds
    one chart). Each label's box is its rendered text element, trimmed to the font size's height (the element's
    box adds the line spacing above and below)."""
    buttons = _chart_buttons(page)
    expect(buttons).to_have_count(4)
    titles: list[str] = []
    for index in range(4):
        if index:
            buttons.nth(index).click()
            page.wait_for_function(f"before => !['', before].includes(({_CHART_SIGNATURE})())", arg=titles[-1],
                                   timeout=60_000)
        expect(page.locator(_TRADEOFF)).to_have_count(1)
        page.wait_for_timeout(500)
        titles.append(page.evaluate(_CHART_SIGNATURE))
        boxes = _point_labels(page, DEFAULT_VARIANTS)
        assert len(boxes) == 6, (titles[-1], boxes)
        for i, a in enumerate(boxes):
            for b in boxes[i + 1:]:
                apart = a["right"] <= b["left"] or b["right"] <= a["left"] or \
                    a["bottom"] <= b["top"] or b["bottom"] <= a["top"]
                assert apart, (titles[-1], a, b)
    assert len(set(titles)) == 4, titles  # each button drew its own chart
    buttons.first.click()


def _check_a_section_drawn_when_opened(page) -> None:
    """The latency distributions are not on the page until their section is opened; then their chart is."""
    section = page.locator('[data-testid="stExpander"]').filter(has_text="Latency distributions")
    expect(section.locator(".js-plotly-plot")).to_have_count(0)
    section.get_by_text("Latency distributions", exact=True).click()
    expect(section.locator(".js-plotly-plot")).to_be_visible(timeout=60_000)
    page.wait_for_function("() => Array.from(document.querySelectorAll('.js-plotly-plot'))"
                           ".some(p => p.data?.some(t => t.type === 'box'))")


def _save_compare_screenshot(page) -> None:
    """Kept in test-artifacts/ (and, with STUDIO_UPDATE_SCREENSHOT=1, as the README's docs/compare.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    viewport = page.viewport_size
    # Tall enough for the headline, the table and the chart below it (Streamlit scrolls its main area itself,
    # so a full-page screenshot would stop at the viewport).
    page.set_viewport_size({"width": 1280, "height": 1800})
    page.wait_for_timeout(1500)  # let the charts finish drawing at the new size
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=False)
    page.set_viewport_size(viewport)
    if os.environ.get("STUDIO_UPDATE_SCREENSHOT"):
        shutil.copyfile(ARTIFACTS / "compare.png", ROOT / "docs" / "compare.png")


def test_bad_upload_shows_a_clear_error_and_cannot_be_run(server, page, tmp_path):
    bad = tmp_path / "broken.tflite"
    bad.write_bytes(b"definitely not a flatbuffer")
    page.goto(f"{server.url}/Model_and_data")
    page.get_by_text("Upload", exact=True).click()
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(bad))
    expect(page.get_by_text("broken.tflite").first).to_be_visible(timeout=30_000)
    page.get_by_text("Run without data (synthetic inputs for fidelity only)").click()
    page.get_by_role("button", name="Use these files").click()
    expect(page.get_by_text(re.compile(r"Model refused: broken\.tflite: expected a TensorFlow Lite"))) \
        .to_be_visible(timeout=60_000)
    assert page.get_by_text("Traceback").count() == 0
    _open_page(page, "Variants and run")
    refused = page.get_by_text(re.compile(r"Run is off: Model refused: broken\.tflite"))
    expect(refused.first).to_be_visible(timeout=60_000)  # beside Run (and beside Search, in its closed expander)
    expect(_run_button(page)).to_be_disabled()


def test_a_double_click_on_run_queues_one_run(server, page):
    store = RunStore(server.runs_dir)
    before = {r["id"] for r in store.list()}
    page.goto(f"{server.url}/Variants_and_run")
    expect(_run_button(page)).to_be_enabled(timeout=60_000)
    _run_button(page).dblclick()
    run_id = _run_id_in_address(page)
    expect(page.get_by_text(re.compile(f"A run of these inputs is already (queued|running): {run_id}"))) \
        .to_be_visible(timeout=30_000)
    page.wait_for_timeout(1_000)  # a second submit would have landed by now
    new = [r["id"] for r in store.list() if r["id"] not in before]
    for queued in new:
        store.request_cancel(queued)
    _wait_final(store, new)
    assert new == [run_id]


def _wait_final(store: RunStore, run_ids: list[str], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while any(store.get(i)["status"] in ACTIVE for i in run_ids) and time.monotonic() < deadline:
        time.sleep(0.5)


def test_an_uploaded_model_runs_twice_in_a_row(server, page, tmp_path):
    """Each run starts and finishes done (a regression: the second run of the same upload did not start)."""
    model = tmp_path / "my_digits.keras"
    shutil.copyfile(DIGITS_MODEL, model)
    page.goto(f"{server.url}/Model_and_data")
    page.get_by_text("Upload", exact=True).click()
    uploaders = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploaders.nth(0).set_input_files(str(model))
    uploaders.nth(1).set_input_files(str(DIGITS_DATA))
    expect(page.get_by_text(Path(DIGITS_DATA).name).first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Use these files").click()
    expect(page.get_by_text("Data check")).to_be_visible(timeout=120_000)
    _open_page(page, "Variants and run")
    page.get_by_role("button", name="Clear all").click()
    page.get_by_role("combobox").first.fill("float16")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    run_ids: list[str] = []
    for _ in range(2):
        expect(_run_button(page)).to_be_enabled(timeout=60_000)
        _run_button(page).click()
        run_ids.append(_run_id_in_address(page, other_than=run_ids[-1] if run_ids else None))
        expect(page.get_by_text(f"Run {run_ids[-1]} finished.")).to_be_visible(timeout=RUN_TIMEOUT_MS)
    store = RunStore(server.runs_dir)
    assert [(store.get(i)["model_name"], store.get(i)["status"]) for i in run_ids] == [("my_digits.keras", "done")] * 2


def test_runs_are_still_listed_after_a_server_restart(server, page):
    from optimizer.jobs.store import RunStore

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


def test_the_server_watches_no_folder_with_inotify(server):
    """fileWatcherType "poll": watchdog's recursive inotify watch of the app folder walked .venv/ and runs/."""
    fds = []
    for fd in Path(f"/proc/{server.process.pid}/fd").iterdir():
        try:
            fds.append(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    assert "anon_inode:inotify" not in fds


def test_a_link_to_compare_opened_first_on_a_fresh_server_has_the_app_s_sidebar(page, tmp_path):
    """The first request a new server gets is a shared link to Compare: the page runs inside the app's
    navigation (its sidebar names the entry page "Home", and lists no "app" page)."""
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    fresh = Server(runs_dir)
    fresh.start()
    try:
        page.goto(f"{fresh.url}/Compare")
        expect(page.get_by_role("heading", name="Compare", exact=True)).to_be_visible(timeout=60_000)
        links = page.locator('[data-testid="stSidebarNav"] a')
        expect(links).to_have_count(5)
        assert [link.inner_text().strip() for link in links.all()] == \
            ["Home", "Model and data", "Variants and run", "Compare", "History"]
    finally:
        fresh.stop()
