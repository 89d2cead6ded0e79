"""The one loop every producing worker runs: each variant made, written and reported on its own, so a
failure (or a crash later in the same worker) never loses a variant already done."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from optimizer.errors import OptimizerError
from optimizer.variants import VariantSpec

# What a producer returns: the .tflite bytes, extra facts for the row, and (optionally) the time that counts
# as conversion when the producer also did other work (e.g. training).
Produced = tuple[bytes, dict[str, Any], float | None]


def produce_each(specs: Iterable[VariantSpec], out_dir: Path, produce: Callable[[VariantSpec], Produced],
                 report: Callable[[dict[str, Any]], None], failure_label: str) -> list[dict[str, Any]]:
    out_dir.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for spec in specs:
        report({"stage": "converting", "variant": spec.name})
        started = time.perf_counter()
        outcome: dict[str, Any] = {"name": spec.name}
        try:
            content, extra, conversion_s = produce(spec)
            path = out_dir / f"{spec.name}.tflite"
            path.write_bytes(content)
            elapsed = conversion_s if conversion_s is not None else time.perf_counter() - started
            outcome.update(status="ok", path=str(path), conversion_s=round(elapsed, 3), extra=extra)
        except OptimizerError as exc:
            outcome.update(status="failed", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a failure of this variant fails only this variant
            text = str(exc).strip().splitlines()
            outcome.update(status="failed",
                           error=f"{failure_label}: {(text[0] if text else type(exc).__name__)[:400]}")
        report({"stage": "converted", "outcome": outcome})
        outcomes.append(outcome)
    return outcomes
