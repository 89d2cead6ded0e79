"""The target picker on Variants & run: saving a target (path of the key only), choosing it for the run request,
refusing a malformed one, and Check reporting a target's problem from a subprocess."""

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.test_pages import ROOT
from tests.support.sshd import free_port

PAGE = "app_pages/2_Variants_and_run.py"


def _page() -> AppTest:
    return AppTest.from_file(str(ROOT / PAGE), default_timeout=180)


@pytest.fixture()
def key_file(tmp_path):
    key = tmp_path / "id_test"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LWtleS1ib2R5\n-----END OPENSSH PRIVATE KEY-----\n")
    return key


def _save(at: AppTest, uri: str, key: str = "", python: str = "python3") -> None:
    at.text_input(key="target_uri").input(uri)
    at.text_input(key="target_key").input(key)
    at.text_input(key="target_python").input(python)
    at.button(key="target_save").click().run()


def test_a_saved_target_goes_into_the_run_request(runs_dir, key_file, monkeypatch):
    from ui import services

    queued = []
    monkeypatch.setattr(services, "start_run", lambda request: queued.append(request) or "run-id")
    at = _page().run()
    assert not at.exception, [e.value for e in at.exception]
    _save(at, "ssh://pi@10.0.0.5", str(key_file), "/usr/bin/python3")
    assert not at.exception, [e.value for e in at.exception]
    saved = json.loads((runs_dir / "targets.json").read_text())
    assert saved == [{"uri": "ssh://pi@10.0.0.5:22", "ssh_key": str(key_file), "python": "/usr/bin/python3"}]
    assert "c2VjcmV0" not in (runs_dir / "targets.json").read_text()  # the key's path, never its contents
    assert at.multiselect(key="target_choice").value == ["ssh://pi@10.0.0.5:22"]  # a new target is chosen

    at.button(key="run_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(queued) == 1
    options = queued[0].options
    assert options.targets == ["ssh://pi@10.0.0.5:22"]
    assert options.ssh_key == str(key_file) and options.target_python == "/usr/bin/python3"

    reopened = _page().run()  # saved in the runs folder: a new session lists it, not chosen yet
    assert reopened.multiselect(key="target_choice").options == ["pi@10.0.0.5:22"]
    assert reopened.multiselect(key="target_choice").value == []


def test_a_malformed_target_or_missing_key_is_refused(runs_dir, tmp_path):
    at = _page().run()
    _save(at, "pi@10.0.0.5")
    assert any("expected 'local' or ssh://USER@HOST[:PORT]" in e.value for e in at.error)
    _save(at, "ssh://pi@10.0.0.5", str(tmp_path / "absent"))
    assert any("expected a private key file on this server" in e.value for e in at.error)
    assert not (runs_dir / "targets.json").exists()


def test_targets_with_different_keys_block_the_run(runs_dir, key_file):
    at = _page().run()
    _save(at, "ssh://pi@10.0.0.5", str(key_file))
    _save(at, "ssh://pi@10.0.0.6")
    assert at.multiselect(key="target_choice").value == ["ssh://pi@10.0.0.5:22", "ssh://pi@10.0.0.6:22"]
    assert at.button(key="run_button").disabled
    assert any("different keys or Pythons" in w.value for w in at.warning)


def test_check_reports_an_unreachable_target(runs_dir):
    port = free_port()
    at = _page().run()
    _save(at, f"ssh://root@127.0.0.1:{port}")
    at.button(key=f"target_check_root_127_0_0_1_{port}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(f"cannot reach root@127.0.0.1:{port}: connection refused" in e.value for e in at.error)
