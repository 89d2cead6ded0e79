"""A real OpenSSH server on 127.0.0.1 for the SSH-target tests, started once and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.sshd import Sshd, running_sshd


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    with running_sshd(tmp_path_factory.mktemp("sshd")) as server:
        yield server
