"""What the pipeline knows of a target: the spec the user asked for, the connection to it, and the JSON-lines
session with one agent process (see :mod:`optimizer.targets.agent` for the requests)."""

from __future__ import annotations

import contextlib
import json
import queue
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from optimizer.errors import InvalidOption, TargetError
from optimizer.run.isolation import DEFAULT_LIMITS, WorkerLimits

LOCAL = "local"
_USER = r"[A-Za-z0-9._][A-Za-z0-9._-]*"
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]"
_SSH = re.compile(rf"^ssh://(?P<user>{_USER})@(?P<host>{_HOST})(?::(?P<port>\d+))?/?$")


@dataclass(frozen=True)
class TargetSpec:
    """What the user asked for; safe to store (no key material, only the key's path)."""

    uri: str  # "local" or "ssh://user@host:port"
    ssh_key: str | None = None
    python: str = "python3"

    @property
    def label(self) -> str:
        """"local" / "user@host:port", the name of the target's column group."""
        return self.uri.removeprefix("ssh://")

    @property
    def is_local(self) -> bool:
        return self.uri == LOCAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetSpec:
        return parse_target(str(data["uri"]), data.get("ssh_key"), str(data.get("python") or "python3"))


def parse_target(text: str, ssh_key: str | None = None, python: str = "python3") -> TargetSpec:
    """``local`` or ``ssh://USER@HOST[:PORT]`` (port 22 by default) -> a :class:`TargetSpec`; anything else is
    refused with the expected form."""
    text = str(text).strip()
    if text == LOCAL:
        return TargetSpec(LOCAL, None, python)
    match = _SSH.match(text)
    if match is None:
        raise InvalidOption(f"target: expected 'local' or ssh://USER@HOST[:PORT]; found {text!r}")
    port = int(match.group("port") or 22)
    if not 1 <= port <= 65535:
        raise InvalidOption(f"target: expected a port in 1..65535; found {port} in {text!r}")
    if not python.strip() or any(c in python for c in "\n;&|`$"):
        raise InvalidOption(f"target_python: expected a path or command name; found {python!r}")
    return TargetSpec(f"ssh://{match.group('user')}@{match.group('host')}:{port}", ssh_key, python)


class AgentSession:
    """A JSON-lines client over a pair of byte streams (a local pipe or an SSH channel). A reader thread
    collects reply lines, so every request can wait with a timeout; on a timeout ``kill`` stops the agent."""

    def __init__(self, reader: IO[bytes], writer: IO[bytes], label: str,
                 kill: Callable[[], None] | None = None, describe_exit: Callable[[], str] | None = None) -> None:
        self.label, self._writer, self._kill, self._describe_exit = label, writer, kill, describe_exit
        self._replies: queue.Queue[bytes | None] = queue.Queue()
        self._closed = False
        threading.Thread(target=self._read, args=(reader,), name=f"agent-{label}", daemon=True).start()

    def _read(self, reader: IO[bytes]) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in reader:
                if line.strip():
                    self._replies.put(line)
        self._replies.put(None)

    def request(self, cmd: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        """Send one request and wait for its reply; a refusal, a dead agent or a timeout is a TargetError."""
        name = cmd.get("cmd")
        if self._closed:
            raise TargetError(f"the agent on {self.label} is closed; cannot send {name}")
        try:
            self._writer.write(json.dumps(cmd).encode() + b"\n")
            self._writer.flush()
        except (OSError, ValueError):
            raise TargetError(f"the agent on {self.label} stopped before {name}: {self._exit_reason()}") from None
        try:
            line = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self.close(kill=True)
            raise TargetError(f"timed out after {timeout_s:.0f} s waiting for {name} on {self.label}") from None
        if line is None:
            self._replies.put(None)  # later requests see the end too
            raise TargetError(f"the agent on {self.label} exited during {name}: {self._exit_reason()}")
        return self._reply(line, name)

    def _reply(self, line: bytes, name: Any) -> dict[str, Any]:
        try:
            reply = json.loads(line)
        except json.JSONDecodeError:
            raise TargetError(f"the agent on {self.label} answered {name} with a line that is not JSON: "
                              f"{line[:120]!r}") from None
        if not isinstance(reply, dict) or not reply.get("ok"):
            error = reply.get("error") if isinstance(reply, dict) else reply
            raise TargetError(f"{name} on {self.label}: {error}")
        return reply

    def _exit_reason(self) -> str:
        return self._describe_exit() if self._describe_exit is not None else "no reason given"

    def close(self, kill: bool = False) -> None:
        """Ask the agent to quit (or kill it), once."""
        if self._closed:
            return
        self._closed = True
        if not kill:
            with contextlib.suppress(OSError, ValueError):
                self._writer.write(b'{"cmd": "quit"}\n')
                self._writer.flush()
        with contextlib.suppress(OSError, ValueError):
            self._writer.close()
        if self._kill is not None:
            self._kill()


class Connection(Protocol):
    """One target for one run: a private folder there, and agent processes started in it."""

    spec: TargetSpec

    def identity(self) -> dict[str, Any]:
        """The hello reply's identity (+ "target": label); a target without LiteRT is a TargetError."""
        ...

    def put(self, local: Path) -> str:
        """Copy a file into the private folder; returns its name there."""
        ...

    def start_agent(self) -> AgentSession:
        """One agent process (a new one per variant)."""
        ...

    def close(self) -> None:
        """Stop the agents and remove the private folder."""
        ...


def check_identity(reply: dict[str, Any], spec: TargetSpec) -> dict[str, Any]:
    """The hello reply's identity with the target's label; a host without LiteRT is refused with the remedy."""
    identity = dict(reply.get("identity") or {})
    identity["target"] = spec.label
    if not identity.get("litert"):
        raise TargetError(f"ai-edge-litert is not installed on {spec.label}: run `{spec.python} -m pip install "
                          f"ai-edge-litert=={_our_litert()}` there ({identity.get('litert_error') or 'import failed'})")
    return identity


def _our_litert() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("ai-edge-litert")
    except importlib.metadata.PackageNotFoundError:
        return "2.3.0"


def connect(spec: TargetSpec, workdir: Path, timeout_s: float = 20, limits: WorkerLimits | None = None) -> Connection:
    """``local`` -> LocalConnection (its agents with ``limits``, the isolated workers' by default); ``ssh://`` ->
    optimizer.targets.ssh.SshConnection (imported only then)."""
    if spec.is_local:
        from optimizer.targets.local import LocalConnection

        return LocalConnection(spec, workdir, timeout_s, limits or DEFAULT_LIMITS)
    if not spec.uri.startswith("ssh://"):
        raise TargetError(f"cannot connect to {spec.uri!r}: expected 'local' or an ssh:// target")
    try:
        from optimizer.targets.ssh import SshConnection  # type: ignore[import-not-found, unused-ignore]
    except ImportError as exc:
        raise TargetError(f"cannot reach {spec.label}: SSH targets need paramiko and optimizer.targets.ssh "
                          f"({exc})") from None
    connection: Connection = SshConnection(spec, workdir, timeout_s)
    return connection
