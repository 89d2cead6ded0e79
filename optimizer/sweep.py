"""Parameter sweeps: grids of one kind's options turned into variant specs, run on one or several models, with
one table of every point (a model column and one column per swept parameter).

A grid is ``KIND:OPTION=V1,V2[:OPTION=V1,V2]`` (``prune:sparsity=0.3,0.5,0.7``); several options of one grid
give their Cartesian product. Every point is an ordinary variant (validated by :class:`VariantSpec`, measured
like any other), named after its kind and values (``prune_sparsity0p3``) so its files and rows are its own.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from optimizer.errors import InvalidOption
from optimizer.variants import KINDS, SourceFormat, VariantKind, VariantSpec, check_sources, kind_named

_VALUE_TEXT = re.compile(r"[^A-Za-z0-9]+")
PARAM_PREFIX = "param: "  # the sweep table's parameter columns: "param: sparsity"


@dataclass(frozen=True)
class Grid:
    """One kind and the values of each of its options to try."""

    kind: str
    values: dict[str, list[Any]] = field(default_factory=dict)

    def specs(self) -> list[VariantSpec]:
        """One spec per point, named after the options that vary (``prune:sparsity=0.3,0.5:epochs=1`` gives
        ``prune_sparsity0p3``)."""
        return [spec for spec, _ in self.points()]

    def points(self) -> list[tuple[VariantSpec, str]]:
        """Each point's spec and its full name (every option of the grid), used when two grids' short names meet."""
        names = list(self.values)
        varying = [name for name in names if len(self.values[name]) > 1] or names
        points = []
        for point in itertools.product(*self.values.values()):
            options = dict(zip(names, point, strict=True))
            short = point_name(self.kind, {n: options[n] for n in varying})
            points.append((VariantSpec(self.kind, options, name=short), point_name(self.kind, options)))
        return points


def _value(text: str) -> Any:
    """``"8"`` -> 8, ``"0.5"`` -> 0.5, anything else stays text (``schedule=constant``)."""
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def point_name(kind: str, options: dict[str, Any]) -> str:
    """A file-safe variant name for one point: ``prune_sparsity0p3``, ``sparse_cluster_sparsity0p5_clusters8``."""
    parts = [str(kind)] + [f"{name}{_VALUE_TEXT.sub('p', str(value))}" for name, value in options.items()]
    return "_".join(parts)[:64]


def parse_grid(text: str) -> Grid:
    """``prune:sparsity=0.3,0.5`` -> Grid(prune, {sparsity: [0.3, 0.5]}); errors name the part they refuse."""
    kind_text, *assignments = [part.strip() for part in text.split(":")]
    kind = kind_named(kind_text)
    if not assignments:
        raise InvalidOption(f"--grid {text!r}: expected KIND:OPTION=V1,V2 (e.g. prune:sparsity=0.3,0.5); "
                            "found no OPTION=values")
    allowed = KINDS[kind].option_defaults
    values: dict[str, list[Any]] = {}
    for assignment in assignments:
        name, _, listed = assignment.partition("=")
        name = name.strip()
        if name not in allowed:
            raise InvalidOption(f"--grid {text!r}: {kind} has no option {name!r}; "
                                f"its options: {', '.join(sorted(allowed)) or 'none'}")
        choices = [_value(v.strip()) for v in listed.split(",") if v.strip()]
        if not choices:
            raise InvalidOption(f"--grid {text!r}: expected values after {name}=; found none")
        values[name] = list(dict.fromkeys(choices))  # a value given twice is one point
    return Grid(kind, values)


def grid_specs(grids: Sequence[str], source: SourceFormat, extra: Sequence[VariantSpec] = ()) -> list[VariantSpec]:
    """Every point of every grid (float32 first, the reference of fidelity and of every delta), then ``extra``;
    a point that two grids share is run once."""
    specs: dict[str, VariantSpec] = {"float32": VariantSpec(VariantKind.FLOAT32)}
    points = [(spec, spec.name) for spec in extra] + [point for text in grids for point in parse_grid(text).points()]
    for spec, full_name in points:
        taken = specs.get(spec.name)
        if taken is not None and taken.options != spec.options:  # same varying values, other fixed ones
            spec = VariantSpec(spec.kind, spec.options, name=full_name)
        specs.setdefault(spec.name, spec)
    chosen = list(specs.values())
    check_sources(chosen, source)
    return chosen


def swept_parameters(grids: Sequence[str]) -> dict[str, list[str]]:
    """``{kind: [option, ...]}``: which options the grids vary, for the table's parameter columns."""
    swept: dict[str, list[str]] = {}
    for text in grids:
        grid = parse_grid(text)
        swept.setdefault(str(grid.kind), [])
        swept[str(grid.kind)] += [name for name in grid.values if name not in swept[str(grid.kind)]]
    return swept


def unique_folders(models: Sequence[Path], out: Path) -> list[Path]:
    """One output folder per model under ``out``, named after its file (``_2``, ``_3`` for equal names)."""
    folders: list[Path] = []
    for model in models:
        stem, candidate, number = model.stem or "model", out / (model.stem or "model"), 1
        while candidate in folders:
            number += 1
            candidate = out / f"{stem}_{number}"
        folders.append(candidate)
    return folders


def sweep_table(results: Sequence[tuple[str, list[dict[str, Any]]]], swept: dict[str, list[str]]) -> pd.DataFrame:
    """One row per point of every model: the model, the variant's own columns and one ``param: <option>``
    column per swept option (empty where a row's kind does not have it, e.g. float32)."""
    from optimizer.report.results import to_frame

    frames = []
    parameters = list(dict.fromkeys(name for names in swept.values() for name in names))
    for model, rows in results:
        frame = to_frame(rows)
        frame.insert(0, "model", model)
        for position, name in enumerate(parameters, start=2):
            frame.insert(position, PARAM_PREFIX + name, [
                (row.get("options") or {}).get(name) if name in swept.get(str(row.get("kind")), []) else None
                for row in rows])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


RunOne = Callable[[Path, Path], list[dict[str, Any]]]


def run_sweep(models: Sequence[Path], out: Path, run_one: RunOne) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each model's rows, run by ``run_one(model, folder)`` one model after another (benchmarks never share the
    CPU); a model that is refused raises before the next starts, as a single run would."""
    return [(model.name, run_one(model, folder)) for model, folder in zip(models, unique_folders(models, out),
                                                                          strict=True)]
