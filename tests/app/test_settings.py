"""The server's settings: it listens on this machine only unless told otherwise, and its file watcher never
walks .venv/ or runs/."""

import os
import subprocess
import tomllib

from tests.app.test_pages import ROOT


def _make_run(*variables: str) -> str:
    """The command `make run` would start (run from `make test`, so the parent make's flags are dropped)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
    return subprocess.run(["make", "--no-print-directory", "-n", "run", *variables], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]


def test_make_run_listens_on_this_machine_unless_address_is_given():
    assert "streamlit run app.py --server.address 127.0.0.1 " in _make_run()
    assert "streamlit run app.py --server.address 0.0.0.0 " in _make_run("ADDRESS=0.0.0.0")


def test_config_binds_locally_and_polls_only_the_app_sources():
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["server"]
    assert server["address"] == "127.0.0.1"
    assert server["fileWatcherType"] == "poll"  # watchdog would watch the whole folder recursively
    assert {".venv", "runs"} <= set(server["folderWatchBlacklist"])
    assert server["enableXsrfProtection"] is True
