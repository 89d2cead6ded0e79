"""``ssh://USER@HOST[:PORT]`` targets over paramiko: one transport per target per run, one channel per agent.

On connect the target gets a private folder (``mktemp -d``, mode 700) holding the standalone agent and its
profiler; every variant put there is removed with the folder at :meth:`SshConnection.close`. The key is the
``--ssh-key`` file or the user's SSH agent and default keys; only its path is ever kept, never its contents
or a passphrase (none is asked for: an encrypted key must be loaded into ssh-agent). A host key not yet in
~/.ssh/known_hosts is accepted with a warning and never written there; a changed one is refused.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import paramiko

from optimizer.errors import TargetError
from optimizer.targets.base import AgentSession, TargetSpec, check_identity
from optimizer.targets.local import agent_files

log = logging.getLogger(__name__)
_FOLDER_PREFIX = "tflite-studio."


def remote_word(path: str) -> str:
    """A shell word for a path on the target: quoted, with a leading ``~/`` left to the target's $HOME."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


@dataclass(frozen=True)
class Address:
    user: str
    host: str
    port: int

    @classmethod
    def of(cls, spec: TargetSpec) -> Address:
        parts = urlsplit(spec.uri)
        if parts.scheme != "ssh" or not parts.hostname or not parts.username:
            raise TargetError(f"cannot connect to {spec.uri!r}: expected ssh://USER@HOST[:PORT]")
        return cls(parts.username, parts.hostname, parts.port or 22)


class _WarnNewHost(paramiko.MissingHostKeyPolicy):  # type: ignore[misc]
    """Accept a host key seen for the first time, with a warning naming its fingerprint; never store it."""

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        log.warning("accepting the unknown %s host key of %s (%s); it is not saved", key.get_name(), hostname,
                    key.fingerprint)


def _load_key(path: str, where: str) -> paramiko.PKey:
    """The private key at ``path``, or a TargetError naming the path (never its contents)."""
    try:
        return paramiko.PKey.from_path(Path(path).expanduser())
    except FileNotFoundError:
        raise TargetError(f"the key {path} does not exist (given for {where})") from None
    except paramiko.PasswordRequiredException:
        raise TargetError(f"the key {path} is protected by a passphrase: load it into ssh-agent (`ssh-add "
                          f"{path}`) and leave out --ssh-key") from None
    except (OSError, paramiko.SSHException, ValueError) as exc:
        raise TargetError(f"the key {path} cannot be read as an SSH private key: {exc}") from None


def _network_reason(exc: OSError) -> str:
    """Why a TCP connection failed, in a few words (refused, no route, unknown name, timed out)."""
    if isinstance(exc, socket.gaierror):
        return "the host name is not known (DNS lookup failed)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        errors = list(exc.errors.values())
        return _network_reason(errors[0]) if errors else "connection refused"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def open_client(spec: TargetSpec, timeout_s: float) -> paramiko.SSHClient:
    """A connected, authenticated SSH client, or a TargetError saying what failed (reach, key, protocol)."""
    address = Address.of(spec)
    where = spec.label
    key = _load_key(spec.ssh_key, where) if spec.ssh_key else None
    client = paramiko.SSHClient()
    with contextlib.suppress(OSError):
        client.load_system_host_keys()  # a known host whose key changed is refused
    client.set_missing_host_key_policy(_WarnNewHost())
    try:
        client.connect(address.host, address.port, username=address.user, pkey=key, timeout=timeout_s,
                       banner_timeout=timeout_s, auth_timeout=timeout_s, channel_timeout=timeout_s,
                       allow_agent=key is None, look_for_keys=key is None)
    except paramiko.BadHostKeyException:
        client.close()
        raise TargetError(f"the host key of {where} does not match the one in ~/.ssh/known_hosts: if the "
                          "machine was reinstalled, remove its old line (`ssh-keygen -R HOST`)") from None
    except paramiko.AuthenticationException:
        client.close()
        offered = f"the key {spec.ssh_key} was" if spec.ssh_key else "every key offered (ssh-agent, ~/.ssh/id_*) was"
        raise TargetError(f"{offered} refused by {where}: add its public key to ~/.ssh/authorized_keys there, "
                          "or pass --ssh-key") from None
    except paramiko.SSHException as exc:
        transport = client.get_transport()
        client.close()
        if transport is None or not transport.remote_version:  # the port answered, but not as an SSH server
            raise TargetError(f"timed out after {timeout_s:.0f} s waiting for the SSH banner of {where}: is an "
                              "SSH server listening on that port?") from None
        if "No authentication methods" in str(exc):
            raise TargetError(f"no key to offer to {where}: pass --ssh-key PATH or load a key into ssh-agent") from None
        raise TargetError(f"cannot talk SSH to {where}: {exc}") from None
    except OSError as exc:
        client.close()
        reason = _network_reason(exc)
        if reason == "timed out":
            raise TargetError(f"timed out after {timeout_s:.0f} s connecting to {where}") from None
        raise TargetError(f"cannot reach {where}: {reason}") from None
    finally:
        del key  # only the path is kept
    return client


class SshConnection:
    """One SSH target for one run (see :class:`optimizer.targets.base.Connection`)."""

    def __init__(self, spec: TargetSpec, workdir: Path, timeout_s: float = 20) -> None:
        self.spec, self.timeout_s = spec, timeout_s
        self.workdir = workdir  # nothing is written here: the key never reaches the run folder
        self.loadavg: list[float] | None = None
        self.hello: dict[str, Any] | None = None
        self.folder: str | None = None
        self._agents: list[tuple[int | None, paramiko.Channel, AgentSession]] = []
        self._client = open_client(spec, timeout_s)
        self._sftp: paramiko.SFTPClient | None = None
        try:
            self.python = self._find_python()
            self.folder = self._make_folder()
            self._sftp = self._client.open_sftp()
            for path in agent_files():
                self._upload(path, path.name)
        except BaseException:
            self.close()
            raise

    # -- commands ---------------------------------------------------------------------------------------
    def run(self, command: str, timeout_s: float | None = None) -> tuple[int, str]:
        """Run a shell command on the target: (exit status, stdout and stderr together), within a timeout."""
        timeout = timeout_s or self.timeout_s
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TargetError(f"the SSH connection to {self.spec.label} was closed")
        channel = transport.open_session(timeout=timeout)
        try:
            channel.set_combine_stderr(True)
            channel.settimeout(timeout)  # a silence longer than this is a timeout
            channel.exec_command(command)
            output = channel.makefile("rb").read()
            if not channel.status_event.wait(timeout):
                raise TimeoutError
            return channel.recv_exit_status(), output.decode(errors="replace")
        except TimeoutError:
            raise TargetError(f"timed out after {timeout:.0f} s waiting for `{command[:60]}` on "
                              f"{self.spec.label}") from None
        finally:
            channel.close()

    def _find_python(self) -> str:
        status, output = self.run(f"command -v {remote_word(self.spec.python)}")
        if status != 0 or not output.strip():
            raise TargetError(f"`{self.spec.python}` was not found on {self.spec.label}: install Python 3 there or "
                              "pass --target-python PATH")
        return output.strip().splitlines()[-1]

    def _make_folder(self) -> str:
        status, output = self.run(f'folder=$(mktemp -d "${{TMPDIR:-/tmp}}/{_FOLDER_PREFIX}XXXXXXXX") && '
                                  'chmod 700 "$folder" && echo "$folder"')
        folder = output.strip().splitlines()[-1] if output.strip() else ""
        if status != 0 or _FOLDER_PREFIX not in folder:
            raise TargetError(f"cannot make a private folder on {self.spec.label} with mktemp -d: {output.strip()}")
        return folder

    def _upload(self, local: Path, name: str) -> None:
        assert self._sftp is not None and self.folder is not None
        remote = f"{self.folder}/{name}"
        try:
            self._sftp.put(str(local), remote)
            self._sftp.chmod(remote, 0o600)
        except OSError as exc:
            raise TargetError(f"cannot copy {local.name} to {self.spec.label}:{self.folder}: {exc}") from None

    # -- Connection -------------------------------------------------------------------------------------
    def identity(self) -> dict[str, Any]:
        """The hello reply's identity (+ "target"); a target without numpy or LiteRT is a TargetError."""
        reply = self.say_hello()
        if not (reply.get("identity") or {}).get("litert"):
            raise TargetError(litert_missing(self.spec))
        return check_identity(reply, self.spec)

    def say_hello(self) -> dict[str, Any]:
        """The agent's hello reply (identity, load average), asked once; LiteRT may be missing in it."""
        if self.hello is None:
            session = self.start_agent()
            try:
                self.hello = session.request({"cmd": "hello"}, self.timeout_s)
            finally:
                session.close()
            self.loadavg = self.hello.get("loadavg")
        return self.hello

    def put(self, local: Path) -> str:
        assert self._sftp is not None and self.folder is not None
        taken = set(self._sftp.listdir(self.folder))
        name, index = local.name, 1
        while name in taken:
            name, index = f"{index}-{local.name}", index + 1
        self._upload(local, name)
        return name

    def start_agent(self) -> AgentSession:
        """``cd FOLDER && exec PYTHON -u agent.py`` on a channel of its own; its stderr goes to a log there."""
        assert self.folder is not None
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise TargetError(f"the SSH connection to {self.spec.label} was closed")
        number = len(self._agents)
        folder, logname = shlex.quote(self.folder), f"agent-{number}.log"
        channel = transport.open_session(timeout=self.timeout_s)
        channel.exec_command(f"cd {folder} && echo $$ && exec {remote_word(self.python)} -u agent.py "
                             f"2>>{logname}")
        reader: IO[bytes] = channel.makefile("rb")
        pid = _read_pid(reader, channel, self.timeout_s)
        session = AgentSession(reader, channel.makefile_stdin("wb"), self.spec.label,
                               kill=lambda: self._kill(pid, channel),
                               describe_exit=lambda: self._describe_exit(channel, logname))
        self._agents.append((pid, channel, session))
        return session

    def _kill(self, pid: int | None, channel: paramiko.Channel) -> None:
        """Let an agent that was told to quit exit (2 s), else kill it by its process id, only while it still runs
        in our folder (a reused pid is never hit); then close its channel."""
        _wait_exit(channel, 2)
        if pid is not None and self.folder is not None and not (channel.closed or channel.exit_status_ready()):
            with contextlib.suppress(TargetError, OSError, paramiko.SSHException):
                self.run(f'[ "$(readlink /proc/{pid}/cwd)" = {shlex.quote(self.folder)} ] && kill -9 {pid}', 10)
        channel.close()

    def _describe_exit(self, channel: paramiko.Channel, logname: str) -> str:
        """How an agent ended: its exit status and the last line of its log, turned into a remedy if known."""
        _wait_exit(channel, 2)
        how = f"exit code {channel.recv_exit_status()}" if channel.exit_status_ready() else "still running"
        try:
            _, tail = self.run(f"tail -n 1 {shlex.quote(str(self.folder))}/{logname}", 10)
        except (TargetError, OSError, paramiko.SSHException):
            tail = ""
        tail = tail.strip()[:300]
        if "No module named 'numpy'" in tail:
            return (f"numpy is not installed for `{self.python}` there: run `{self.spec.python} -m pip install "
                    "numpy` there, or use --target-setup")
        return f"{how}{': ' + tail if tail else ''}"

    def close(self) -> None:
        """Stop every agent, remove the private folder (and the variants in it), close the transport."""
        for pid, channel, session in self._agents:
            session.close()  # quit, then _kill
            self._kill(pid, channel)  # an agent closed earlier: its channel is closed already, nothing is run
        self._agents.clear()
        if self._sftp is not None:
            with contextlib.suppress(OSError, paramiko.SSHException):
                self._sftp.close()
            self._sftp = None
        if self.folder is not None and _FOLDER_PREFIX in self.folder:
            with contextlib.suppress(TargetError, OSError, paramiko.SSHException):
                self.run(f"rm -rf {shlex.quote(self.folder)}", 30)
            self.folder = None
        self._client.close()


def _wait_exit(channel: paramiko.Channel, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not channel.exit_status_ready() and not channel.closed and time.monotonic() < deadline:
        time.sleep(0.02)


def _read_pid(reader: IO[bytes], channel: paramiko.Channel, timeout_s: float) -> int | None:
    """The agent's process id, the line its shell prints before ``exec`` (lines a chatty login script prints
    before it are skipped, so they never reach the JSON-lines session); None if the shell ended first."""
    channel.settimeout(timeout_s)
    try:
        for _ in range(100):
            line = reader.readline()
            text = line.decode(errors="replace").strip()
            if text.isdigit() or not line:
                return int(text) if text.isdigit() else None
        return None
    except TimeoutError:
        raise TargetError(f"timed out after {timeout_s:.0f} s starting the agent") from None
    finally:
        channel.settimeout(None)


def our_litert_version() -> str:
    """The ai-edge-litert version this host runs (read from its metadata: LiteRT itself is not imported)."""
    import importlib.metadata

    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return "2.3.0"


def litert_missing(spec: TargetSpec) -> str:
    """The sentence for a target whose Python cannot import ai_edge_litert, with both remedies."""
    return (f"ai-edge-litert is not installed on {spec.label}: run `{spec.python} -m pip install "
            f"ai-edge-litert=={our_litert_version()}` there, or use --target-setup")
