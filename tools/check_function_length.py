"""Name every function in ``optimizer/`` longer than 60 lines; exit 1 if there is one.

ruff has no rule for a function's length (PLR0915 counts statements), so ``make lint`` runs this script and
``tests/unit/test_code_shape.py`` calls :func:`long_functions`. A function's length runs from its ``def``
line to its last line, decorators excluded; nested functions and methods are checked on their own too.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MAX_FUNCTION_LINES = 60
PROJECT_ROOT = Path(__file__).resolve().parent.parent
CHECKED_PACKAGE = PROJECT_ROOT / "optimizer"

_Function = ast.FunctionDef | ast.AsyncFunctionDef


def _functions(node: ast.AST, prefix: str = "") -> Iterator[tuple[str, _Function]]:
    """Every function under ``node`` with its dotted name (``Worker.wait``, ``outer.inner``)."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{child.name}", child
            yield from _functions(child, f"{prefix}{child.name}.")
        elif isinstance(child, ast.ClassDef):
            yield from _functions(child, f"{prefix}{child.name}.")
        else:  # functions defined under an if, try or with
            yield from _functions(child, prefix)


def long_functions(package: Path = CHECKED_PACKAGE, max_lines: int = MAX_FUNCTION_LINES) -> list[str]:
    """``path:line: name is N lines long (limit 60)`` for each function over ``max_lines`` in ``package``."""
    found = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for name, function in _functions(tree):
            lines = (function.end_lineno or function.lineno) - function.lineno + 1
            if lines > max_lines:
                shown = path.relative_to(package.parent)
                found.append(f"{shown}:{function.lineno}: {name} is {lines} lines long (limit {max_lines})")
    return found


def main() -> int:
    """Print each function over the limit; the exit status says whether there was one."""
    found = long_functions()
    for line in found:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
