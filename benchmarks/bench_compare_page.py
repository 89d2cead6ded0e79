"""Time-to-interactive of the Compare page for a stored run, in a real browser (Debian's Chromium via Playwright).

It makes one stored run of the default comparison (the sample CNN and digits.npz, every post-training variant)
per checkout measured, submitted to a job scheduler over a scratch runs folder with that checkout's own code (as
the app queues a run), then starts ``streamlit run app.py`` of that checkout on 127.0.0.1 over the same folder
(STUDIO_WARM=0: no standby runner loading TensorFlow in the background while it measures) and opens
``/Compare?run=<id>`` N times, each in a fresh browser context (a new session with an empty cache, as when a link
is opened). One timing is from navigation start (``performance.now()`` in the page) to the first moment when the
first chart is drawn (a Plotly chart with data and traces, or an ECharts chart's SVG with its shapes and texts),
the results table is drawn and the "Recommended" line is visible; the time each of
those first appeared is printed too, with the main thread's long tasks and the Plotly charts on the page then.

With ``--against OTHER_CHECKOUT`` both pages are measured in turn (this one, the other, this one, ...) by one
browser, each from its own server, so a machine whose load drifts (other jobs) weighs on both alike.

Usage: ``python benchmarks/bench_compare_page.py [--repeats 5] [--root CHECKOUT] [--against CHECKOUT]
[--runs-dir DIR]`` (a checkout: e.g. ``git archive 949ac2a | tar -x -C /tmp/compare-before``; ``--runs-dir``:
keep the seeded runs there, ``DIR/root`` and ``DIR/against``, and reuse them next time instead of seeding again.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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
  // A chart drawn by ECharts: its SVG with shapes and texts, or its canvas.
  const echart = document.querySelector('[data-testid="stEChartsChart"] svg, [data-testid="stEChartsChart"] canvas');
  const drawn = echart && (echart.tagName === 'CANVAS' || echart.querySelector('path') && echart.querySelector('text'));
  if (!m.chart && drawn && echart.getBoundingClientRect().width > 0) m.chart = now;
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
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def finished_run(runs_dir: Path) -> str | None:
    from optimizer.jobs.store import RunStore

    return next((r["id"] for r in RunStore(runs_dir).list() if r["status"] == "done"), None)


def _cpu_seconds(roots: set[int]) -> float:
    """User + system CPU time of the processes ``roots`` and all their descendants (Linux /proc), in s: the work a
    load costs, which the machine's load (other jobs) does not change, unlike the wall-clock time."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # not a process, or it ended meanwhile
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    total, todo, seen = 0.0, list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        total += stats[pid][1]
        todo += [child for child, (parent, _) in stats.items() if parent == pid]
    return total


def _context(browser: Any, width: int) -> Any:
    context = browser.new_context(viewport={"width": width, "height": 1000})
    context.add_init_script(MARKS)
    return context


def measure_once(browser: Any, url: str, width: int, server_pid: int, context: Any = None) -> dict[str, Any]:
    """One load of ``url`` in a new page of ``context`` (default: a fresh context, so an empty cache and a new
    session): the marks (s since navigation start), what the page held then, and the CPU time the browser and the
    server spent on it."""
    fresh = context is None
    context = context or _context(browser, width)
    page = context.new_page()
    browser_pids = {os.getpid()}  # Playwright's driver and Chromium are this process's descendants
    browser_cpu, server_cpu = _cpu_seconds(browser_pids), _cpu_seconds({server_pid})
    page.goto(url)
    page.wait_for_function("() => window.__marks && window.__marks.all", timeout=180_000)
    server_cpu = _cpu_seconds({server_pid}) - server_cpu
    browser_cpu = _cpu_seconds(browser_pids) - browser_cpu - server_cpu  # the servers are descendants too
    marks = page.evaluate("() => window.__marks")
    navigation = page.evaluate("() => performance.getEntriesByType('navigation')[0].toJSON()")
    marks["dom_content_loaded"] = navigation["domContentLoadedEventEnd"]
    # Main-thread tasks over 50 ms before everything was there (script parsing, Plotly/grid drawing).
    marks["long_tasks"] = page.evaluate("() => window.__long.filter(([s]) => s < window.__marks.all)"
                                        ".reduce((a, [, d]) => a + d, 0)")
    timing: dict[str, Any] = {k: round(v / 1000, 3) for k, v in marks.items()}
    timing["browser_cpu_s"], timing["server_cpu_s"] = round(browser_cpu, 2), round(server_cpu, 2)
    timing["plotly_charts"] = page.evaluate("() => document.querySelectorAll('.js-plotly-plot').length")
    timing["echarts_charts"] = page.evaluate(
        "() => document.querySelectorAll('[data-testid=\"stEChartsChart\"]').length")
    timing["load_average_1min"] = round(os.getloadavg()[0], 2)
    timing["largest_scripts"] = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter(r => r.name.endsWith('.js')).sort((a, b) => b.decodedBodySize - a.decodedBodySize)
        .slice(0, 3).map(r => [r.name.split('/').pop(), Math.round(r.decodedBodySize / 1024) + ' KB',
                               +(r.responseEnd / 1000).toFixed(3)])""")
    page.close()
    if fresh:
        context.close()
    return timing


def measure(urls: dict[str, tuple[str, int]], repeats: int, width: int,
            warm_cache: bool = False) -> dict[str, list[dict[str, Any]]]:
    """``repeats`` loads of each page (its address and its server's process id), in turn, in one browser. With
    ``warm_cache``, each page's loads share one context whose cache an unmeasured first load filled (a link
    opened in a browser that has shown the app before)."""
    from playwright.sync_api import sync_playwright

    timings: dict[str, list[dict[str, Any]]] = {side: [] for side in urls}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        contexts = {side: _context(browser, width) if warm_cache else None for side in urls}
        for side, (url, server_pid) in urls.items():
            if warm_cache:
                measure_once(browser, url, width, server_pid, contexts[side])
        for _ in range(repeats):
            for side, (url, server_pid) in urls.items():
                timings[side].append(measure_once(browser, url, width, server_pid, contexts[side]))
        browser.close()
    return timings


class _Server(Server):
    """The browser tests' server, started from another checkout, without a standby runner."""

    def __init__(self, runs_dir: Path, root: Path) -> None:
        super().__init__(runs_dir)
        self.root = root

    def start(self) -> None:
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


def _pid(server: _Server) -> int:
    if server.process is None:
        raise RuntimeError("the server is not running")
    return server.process.pid


def summary(root: Path, run_id: str, seeded_s: float, timings: list[dict[str, Any]]) -> dict[str, Any]:
    totals = [t["all"] for t in timings]
    for timing in timings[:-1]:
        timing.pop("largest_scripts")  # the same files every time: shown once
    return {"root": str(root), "run": run_id, "seed_s": round(seeded_s, 1), "median_s": statistics.median(totals),
            "all_s": totals, "median_browser_cpu_s": statistics.median(t["browser_cpu_s"] for t in timings),
            "median_server_cpu_s": statistics.median(t["server_cpu_s"] for t in timings), "marks_s": timings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose app is measured")
    parser.add_argument("--against", type=Path, help="another checkout, measured in turn with --root")
    parser.add_argument("--runs-dir", type=Path, help="where the seeded runs are kept (else a scratch folder)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--warm-cache", action="store_true",
                        help="loads share a browser cache filled by a first, unmeasured load (else each is cold)")
    args = parser.parse_args()
    roots = {"root": args.root.resolve(), **({"against": args.against.resolve()} if args.against else {})}
    with tempfile.TemporaryDirectory() as scratch:
        servers: dict[str, _Server] = {}
        seeded: dict[str, tuple[str, float]] = {}
        try:
            for side, root in roots.items():
                runs_dir = ((args.runs_dir or Path(scratch)) / side).resolve()
                runs_dir.mkdir(parents=True, exist_ok=True)
                started = time.perf_counter()
                seeded[side] = (finished_run(runs_dir) or seed(root, runs_dir), time.perf_counter() - started)
                servers[side] = _Server(runs_dir, root)
                servers[side].start()
            timings = measure({side: (f"{servers[side].url}/Compare?run={seeded[side][0]}", _pid(servers[side]))
                               for side in roots}, args.repeats, args.width, args.warm_cache)
        finally:
            for server in servers.values():
                server.stop()
    print(json.dumps({"viewport_width": args.width, "cpus": os.cpu_count(), "warm_cache": args.warm_cache,
                      **{side: summary(roots[side], *seeded[side], timings[side]) for side in roots}}, indent=1))


if __name__ == "__main__":
    main()
