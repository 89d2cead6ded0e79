"""Code shape: no function in optimizer/ is over 60 lines (ruff's C901 and PLR0915 bound the rest)."""

from __future__ import annotations

from pathlib import Path

from tools.check_function_length import MAX_FUNCTION_LINES, long_functions


def _function(name: str, lines: int, indent: str = "") -> str:
    """Source of a function ``lines`` long from its ``def`` line, behind two decorator lines."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 1))
    return f"{indent}@staticmethod\n{indent}@staticmethod\n{indent}def {name}():\n{body}"


def test_no_function_in_the_optimizer_package_is_over_60_lines() -> None:
    found = long_functions()
    assert not found, "split into named helpers:\n" + "\n".join(found)


def test_a_function_is_counted_from_def_to_its_last_line_and_named_with_its_class(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    fits = _function("fits", MAX_FUNCTION_LINES)
    too_long = _function("wait", MAX_FUNCTION_LINES + 1, indent="    ")
    (package / "sub" / "module.py").write_text(f"{fits}\n\nclass Worker:\n{too_long}")
    assert long_functions(package) == [f"pkg/sub/module.py:{MAX_FUNCTION_LINES + 8}: Worker.wait is "
                                       f"{MAX_FUNCTION_LINES + 1} lines long (limit {MAX_FUNCTION_LINES})"]
