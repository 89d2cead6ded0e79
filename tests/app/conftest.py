"""A runs folder of its own for each AppTest test, and no standby TensorFlow runner."""

import pytest


@pytest.fixture()
def runs_dir(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    monkeypatch.setenv("STUDIO_RUNS_DIR", str(folder))
    monkeypatch.setenv("STUDIO_WARM", "0")  # one scheduler per test folder: no standby TensorFlow for each
    return folder
