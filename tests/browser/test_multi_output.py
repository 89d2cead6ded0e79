"""A journey in a real browser with a model of two outputs: upload it with its .npz, see which array feeds which
tensor, run three variants, and on Compare read each output's columns and switch the accuracy axis to the
regression output."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from optimizer.variants import KINDS
from tests.browser.test_journeys import RUN_TIMEOUT_MS, _open_page, _run_button
from tests.support import models

VARIANTS = ["float32", "int8", "dynamic_range"]


def _choose_variants(page, kinds: list[str]) -> None:
    page.get_by_role("button", name="Clear all").click()
    for kind in kinds:
        page.get_by_role("combobox").first.fill(KINDS[kind].label)
        page.keyboard.press("Enter")
    page.keyboard.press("Escape")


# The y-axis titles of the Plotly charts on screen, and of the trade-off chart (ECharts' SVG: its one text
# drawn upright, taller than wide).
_SHOWN_Y_TITLES = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(plot => plot.offsetParent !== null && plot.layout).map(plot => plot.layout.yaxis?.title?.text ?? '')
    .concat(Array.from(document.querySelectorAll('[data-testid="stEChartsChart"] svg text')).filter(t => {
        const b = t.getBoundingClientRect(); return b.height > b.width && t.textContent.length > 3; })
        .map(t => t.textContent))"""


def _y_axis_titles_once_drawn(page, prefix: str) -> list[str]:
    """The y-axis titles of the charts on screen, once one of them starts with ``prefix``."""
    page.wait_for_function(f"() => ({_SHOWN_Y_TITLES})().some(title => title.startsWith({prefix!r}))")
    return page.evaluate(_SHOWN_Y_TITLES)


def _expect_table_columns(page, columns: list[str]) -> None:
    """The results table draws on a canvas; its column menu (Show/hide columns) lists the columns as text."""
    table = page.locator('[data-testid="stDataFrame"]').first
    table.hover()
    # The toolbar button shows on hover, but the grid's scroller can lie over it: click the button itself.
    table.page.get_by_role("button", name="Show/hide columns").first.dispatch_event("click")
    for column in columns:
        expect(page.get_by_role("checkbox", name=column, exact=True).first).to_be_checked()
    page.keyboard.press("Escape")


def _choose_chart(page, name: str) -> None:
    """A click on one of the trade-off chart buttons (widgets.tradeoff_chart's segmented control)."""
    page.locator(".st-key-tradeoff_chart").get_by_role("radio", name=name, exact=True).click()


def test_two_heads_are_mapped_run_and_compared_per_output(server, page, tmp_path):
    # The Compare page takes several seconds to draw on a loaded 2-core machine (benchmarks/README.md): every
    # wait below may take far longer than Playwright's 5 s default.
    page.set_default_timeout(90_000)
    expect.set_options(timeout=60_000)
    built = models.two_heads(tmp_path)
    page.goto(f"{server.url}/Model_and_data")
    page.get_by_text("Upload", exact=True).click()
    uploaders = page.locator('[data-testid="stFileUploaderDropzoneInput"]')
    uploaders.nth(0).set_input_files(str(built.model))
    uploaders.nth(1).set_input_files(str(built.data))
    expect(page.get_by_text("two_heads.npz").first).to_be_visible(timeout=30_000)
    page.get_by_role("button", name="Use these files").click()
    mapping = page.locator('[data-testid="stTable"]')
    expect(mapping).to_be_visible(timeout=120_000)
    for tensor, data in (("pixels", "two_heads.npz: x"), ("digit", "two_heads.npz: y_digit"),
                         ("ink", "two_heads.npz: y_ink")):
        row = mapping.get_by_role("row").filter(has=page.get_by_role("cell", name=tensor, exact=True))
        expect(row.get_by_role("cell", name=data, exact=True)).to_be_visible()

    _open_page(page, "Variants and run")
    _choose_variants(page, VARIANTS)
    expect(_run_button(page)).to_be_enabled(timeout=60_000)
    _run_button(page).click()
    expect(page.get_by_text(re.compile(r"Run .* finished\."))).to_be_visible(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("link", name="Open the comparison").click()

    expect(page.get_by_text(re.compile(r"Columns named <output>: <figure> hold each output's own figures"))) \
        .to_be_visible(timeout=60_000)
    _expect_table_columns(page, ["digit: accuracy (%)", "digit: accuracy_delta (pts)", "ink: mae", "ink: mae_delta"])
    axis = page.get_by_role("combobox", name="Accuracy axis: output")
    expect(axis).to_have_value("digit")  # the run's accuracy output
    _choose_chart(page, "Latency vs digit: accuracy")
    assert "digit: Accuracy (higher is better)" in _y_axis_titles_once_drawn(page, "digit")
    axis.click()
    page.get_by_role("option", name="ink", exact=True).click()
    expect(page.locator(".st-key-tradeoff_chart").get_by_role("radio", name="Latency vs ink: mae", exact=True)) \
        .to_be_visible()  # the same chart, now of the other output
    titles = _y_axis_titles_once_drawn(page, "ink")
    assert "ink: Mean absolute error (lower is better)" in titles and not any(t.startswith("digit") for t in titles)
