"""Time-to-interactive of the Compare page for a stored run, in a real browser (Debian's Chromium via Playwright).

It makes one stored run of the default comparison (the sample CNN and digits.npz, every post-training variant),
submitted to a job scheduler over a scratch runs folder with the checkout's own code (as the app queues a run),
then starts ``streamlit run app.py`` of that checkout on 127.0.0.1 over the same folder (STUDIO_WARM=0: no
standby runner loading TensorFlow in the background while it measures) and opens ``/Compare?run=<id>`` N times,
each in a fresh browser context (a new session, as when a link is opened). One timing is from navigation start
(``performance.now()`` in the page) to the first moment when the first Plotly chart has data, the results table
is drawn and the "Recommended" line is visible; the time each of those first appeared is printed too.

Usage: ``python benchmarks/bench_compare_page.py [--repeats 5] [--root CHECKOUT] [--runs-dir DIR]``
(``--root``: another checkout, e.g. ``git worktree add /tmp/compare-before 949ac2a``; ``--runs-dir``: reuse a
folder that already holds a finished run instead of making one.)
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, Server  # noqa: E402

# Run in the checkout under test (its own optimizer/), so each side stores the run as its own code does.
SEED = """
import sys, time
from pathlib import Path
from optimizer.jobs.runner import JobRequest, submit
from optimizer.jobs.scheduler import Scheduler
from optimizer.jobs.store import RunStore
store = RunStore(Path(sys.argv[1]))
scheduler = Scheduler(store, warm=False)
run_id = submit(store, JobRequest(model="sample_models/digits_cnn.keras", data="sample_models/digits.npz"))
scheduler.wake()
while store.get(run_id)["status"] in ("queued", "running"):
    time.sleep(0.2)
scheduler.stop()
print(run_id, store.get(run_id)["status"])
"""

# Marks the first time (ms since navigation start) each part of the page is there; runs before the page's own JS.
MARKS = """
window.__marks = {}; window.__long = [];
new PerformanceObserver(list => window.__long.push(...list.getEntries().map(e => [e.startTime, e.duration])))
  .observe({type: 'longtask', buffered: true});
(function poll() {
  const m = window.__marks, now = performance.now();
  const plot = document.querySelector('.js-plotly-plot');
  if (!m.chart && plot?.data?.length > 0 && plot.querySelector('.scatterlayer .trace')) m.chart = now;
  const grid = document.querySelector('[data-testid="stDataFrame"] canvas');
  if (!m.table && grid && grid.getBoundingClientRect().width > 0) m.table = now;
  if (!m.headline && Array.from(document.querySelectorAll('[data-testid="stMarkdownContainer"], h3'))
        .some(e => e.textContent.includes('Recommended') && e.getBoundingClientRect().height > 0)) m.headline = now;
  if (m.chart && m.table && m.headline) { m.all = Math.max(m.chart, m.table, m.headline); return; }
  requestAnimationFrame(poll);
})();
"""


def seed(root: Path, runs_dir: Path) -> str:
    done = subprocess.run([sys.executable, "-c", SEED, str(runs_dir)], cwd=root, check=True, capture_output=True,
                          text=True, env={"PYTHONPATH": str(root), **_env()})
    run_id, status = done.stdout.split()[-2:]
    if status != "done":
        raise RuntimeError(f"the seeded run ended {status}")
    return run_id


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def finished_run(runs_dir: Path) -> str | None:
    from optimizer.jobs.store import RunStore

    return next((r["id"] for r in RunStore(runs_dir).list() if r["status"] == "done"), None)


def measure(url: str, repeats: int, width: int) -> list[dict[str, float]]:
    from playwright.sync_api import sync_playwright

    timings = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for _ in range(repeats):
            context = browser.new_context(viewport={"width": width, "height": 1000})
            context.add_init_script(MARKS)
            page = context.new_page()
            page.goto(url)
            page.wait_for_function("() => window.__marks && window.__marks.all", timeout=120_000)
            marks = page.evaluate("() => window.__marks")
            navigation = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
            marks["dom_content_loaded"] = navigation["domContentLoadedEventEnd"]
            # Main-thread tasks over 50 ms before everything was there (script parsing, Plotly/grid drawing).
            marks["long_tasks"] = page.evaluate("() => window.__long.filter(([s]) => s < window.__marks.all)"
                                                ".reduce((a, [, d]) => a + d, 0)")
            timings.append({k: round(v / 1000, 3) for k, v in marks.items()})
            timings[-1]["largest_scripts"] = page.evaluate("""() => performance.getEntriesByType('resource')
                .filter(r => r.name.endsWith('.js')).sort((a, b) => b.decodedBodySize - a.decodedBodySize)
                .slice(0, 3).map(r => [r.name.split('/').pop(), Math.round(r.decodedBodySize / 1024) + ' KB',
                                       +(r.responseEnd / 1000).toFixed(3)])""")
            context.close()
        browser.close()
    return timings


class _Server(Server):
    """The browser tests' server, started from another checkout, without a standby runner."""

    def __init__(self, runs_dir: Path, root: Path) -> None:
        super().__init__(runs_dir)
        self.root = root

    def start(self) -> None:
        import os

        import tests.browser.conftest as conftest

        saved, warm = conftest.ROOT, os.environ.get("STUDIO_WARM")
        conftest.ROOT, os.environ["STUDIO_WARM"] = self.root, "0"
        try:
            super().start()
        finally:
            conftest.ROOT = saved
            if warm is None:
                os.environ.pop("STUDIO_WARM")
            else:
                os.environ["STUDIO_WARM"] = warm


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app is measured")
    parser.add_argument("--runs-dir", type=Path, help="a runs folder with a finished run (else one is made)")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        runs_dir = (args.runs_dir or Path(scratch) / "runs").resolve()
        runs_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        run_id = finished_run(runs_dir) or seed(args.root.resolve(), runs_dir)
        seeded_s = time.perf_counter() - started
        server = _Server(runs_dir, args.root.resolve())
        server.start()
        try:
            timings = measure(f"{server.url}/Compare?run={run_id}", args.repeats, args.width)
        finally:
            server.stop()
    totals = [t["all"] for t in timings]
    for timing in timings[:-1]:
        timing.pop("largest_scripts")  # the same files every time: shown once
    print(json.dumps({"root": str(args.root.resolve()), "run": run_id, "seed_s": round(seeded_s, 1),
                      "viewport_width": args.width, "median_s": statistics.median(totals), "all_s": totals,
                      "marks_s": timings}, indent=1))


if __name__ == "__main__":
    main()
