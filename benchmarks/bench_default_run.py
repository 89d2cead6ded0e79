"""Wall time of the tool's default run against the plain way, side by side on this machine.

For each model (the sample CNN, and a Keras MobileNetV2 built with ``weights=None``) it alternates the
tool's default run (all post-training variants converted, audited, evaluated and benchmarked) with
``benchmarks/baseline_plain.py MODEL DATA`` (one ``from_keras_model`` per variant, a timing loop in the same
process), and prints the ratio of medians. Everything is timed end to end: what a user waits for.

The tool is timed two ways:
- ``cli``: ``python -m optimizer run MODEL --data DATA`` in a fresh process, imports included (a cold start);
- ``app``: the dashboard's path: ``submit`` to a job ``Scheduler(warm=True)`` (as the app server runs it) and
  wait until the job is done; the server keeps a standby runner with TensorFlow loaded while it is idle, so
  each timed job starts after the previous one's standby is ready, as a user's next click would.

Usage: ``python benchmarks/bench_default_run.py [--repeats N] [--only cnn|mobilenet] [--path cli|app|both]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.measure.benchmark import cpu_name  # noqa: E402


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


class _App:
    """The app server's job path: a warm scheduler over a run store in the scratch folder."""

    def __init__(self, scratch: Path) -> None:
        from optimizer.jobs.scheduler import Scheduler
        from optimizer.jobs.store import RunStore

        self.store = RunStore(scratch / "app-runs")
        self.scheduler = Scheduler(self.store, warm=True)

    def wait_ready(self) -> None:
        if not self.scheduler.wait_for_standby(600):
            raise RuntimeError("the standby runner never became ready")

    def timed(self, model: Path, data: Path) -> float:
        """One job from submit to done, started on an idle server (its standby ready, as when a user clicks
        Run); returns after the next standby is ready, so its imports never overlap another measurement."""
        from optimizer.jobs.runner import JobRequest, submit

        self.wait_ready()
        started = time.perf_counter()
        run_id = submit(self.store, JobRequest(model=str(model), data=str(data)))
        self.scheduler.wake()
        while (record := self.store.get(run_id)) is not None and record["status"] in ("queued", "running"):
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        if record is None or record["status"] != "done" or not record["manifest"].get("warm_start"):
            state = (record or {}).get("status"), (record or {}).get("error")
            raise RuntimeError(f"the app run did not finish warm: {state}")
        self.wait_ready()
        return elapsed

    def stop(self) -> None:
        self.scheduler.stop()


def compare(name: str, model: Path, data: Path, repeats: int, scratch: Path,
            app: _App | None, cli: bool) -> dict[str, float]:
    times: dict[str, list[float]] = {"plain": [], "cli": [], "app": []}
    for index in range(repeats):
        if cli:
            times["cli"].append(_timed([sys.executable, "-m", "optimizer", "run", str(model), "--data", str(data),
                                        "--out", str(scratch / f"{name}-{index}"), "--format", "csv"]))
        if app is not None:
            times["app"].append(app.timed(model, data))
        times["plain"].append(_timed([sys.executable, str(ROOT / "benchmarks" / "baseline_plain.py"),
                                      str(model), str(data)]))
        print(f"  {name} run {index + 1}: " + "   ".join(f"{k} {v[-1]:6.1f} s" for k, v in times.items() if v),
              flush=True)
    return {k: statistics.median(v) for k, v in times.items() if v}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", choices=["cnn", "mobilenet"])
    parser.add_argument("--path", choices=["cli", "app", "both"], default="both")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; python {sys.version.split()[0]}; repeats {args.repeats}")
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        cases = []
        if args.only in (None, "cnn"):
            cases.append(("sample CNN", ROOT / "sample_models" / "digits_cnn.keras",
                          ROOT / "sample_models" / "digits.npz"))
        if args.only in (None, "mobilenet"):
            subprocess.run([sys.executable, str(ROOT / "benchmarks" / "make_mobilenet.py"), str(scratch)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            cases.append(("MobileNetV2", scratch / "mobilenetv2.keras", scratch / "mobilenetv2.npz"))
        app = _App(scratch) if args.path in ("app", "both") else None
        try:
            results = [(name, compare(name, model, data, args.repeats, scratch, app, args.path != "app"))
                       for name, model, data in cases]
        finally:
            if app is not None:
                app.stop()
    print("\n| model | tool path | tool (median s) | plain way (median s) | ratio |")
    print("|---|---|---|---|---|")
    for name, medians in results:
        for path in ("cli", "app"):
            if path in medians:
                print(f"| {name} | {path} | {medians[path]:.1f} | {medians['plain']:.1f} | "
                      f"{medians[path] / medians['plain']:.2f}x |")


if __name__ == "__main__":
    main()
