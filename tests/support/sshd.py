"""A real OpenSSH server on 127.0.0.1 for the SSH-target tests: its own config, host key and authorized key in a
temporary folder, on a free port, started with Debian's /usr/sbin/sshd (``make test`` installs openssh-server)
and stopped by its own process id. Nothing here touches the machine's own sshd or ~/.ssh."""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    key: Path  # the client's private key, accepted by this server
    other_key: Path  # a valid private key this server does not accept
    folder: Path
    log: Path

    @property
    def uri(self) -> str:
        return f"ssh://{self.user}@127.0.0.1:{self.port}"


def free_port() -> int:
    """A loopback port nothing listens on (bound and released at once: connecting to it is refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "studio-test", "-f", str(path)],
                   check=True, capture_output=True)


def _config(folder: Path, port: int) -> Path:
    config = folder / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}",
        "ListenAddress 127.0.0.1",
        f"HostKey {folder / 'host_key'}",
        f"AuthorizedKeysFile {folder / 'authorized_keys'}",
        f"PidFile {folder / 'sshd.pid'}",
        "StrictModes no",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PubkeyAuthentication yes",
        "PermitRootLogin prohibit-password",
        "UsePAM no",
        "Subsystem sftp internal-sftp",
        "",
    ]))
    return config


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"sshd exited with {process.returncode}: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {timeout_s} s: "
                       f"{log.read_text(errors='replace')}")


@contextlib.contextmanager
def running_sshd(folder: Path) -> Iterator[Sshd]:
    """Start sshd (in the foreground, -D, so its process id is ours to stop) and stop it afterwards."""
    if not SSHD.is_file() or shutil.which("ssh-keygen") is None:
        raise RuntimeError("openssh-server is not installed: run `make sshd` (apt-get install openssh-server)")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation folder
    for name in ("host_key", "client_key", "other_key"):
        _keygen(folder / name)
    (folder / "authorized_keys").write_text((folder / "client_key.pub").read_text())
    port = free_port()
    log = folder / "sshd.log"
    process = subprocess.Popen([str(SSHD), "-D", "-f", str(_config(folder, port)), "-E", str(log)],
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_listening(process, port, log)
        yield Sshd(port, getpass.getuser(), folder / "client_key", folder / "other_key", folder, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
