"""Run history in SQLite (standard library) with each run's artifacts in its own folder.

One row per run: inputs' names and hashes, options, versions, status, live progress and results. Written by
the job runner process and read by the app, so WAL mode and short transactions; nothing is lost when the
server restarts.

Ownership rules, shared by every server and runner on one runs folder:
- a run is published (inserted as ``queued``) only once its folder holds everything it needs;
- a queued run is claimed by exactly one scheduler, in one transaction that also enforces the folder-wide
  limit of running jobs (:meth:`RunStore.claim_next`);
- a running run's runner writes a heartbeat; only a run whose heartbeat is stale, or whose runner process
  is gone, is marked interrupted (:meth:`RunStore.reap_dead`);
- a final status (done, failed, cancelled, interrupted) never changes again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from optimizer.errors import InvalidOption, StoreUnavailable, folder_unwritable

Names = list[str]  # run ids or folder names (inside RunStore, `list` is a method)

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")
_JSON_FIELDS = ("inputs", "options", "progress", "rows", "manifest")
# A runner writes its heartbeat every HEARTBEAT_S; one silent for STALE_AFTER_S is taken for dead.
HEARTBEAT_S = 2.0
STALE_AFTER_S = 30.0
UPLOAD_IDLE_S = 24 * 3600.0  # a session's uploads are removed a day after it was last used
INTERRUPTED = "interrupted: the runner of this run stopped before it finished (its server stopped or it was killed)"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    status TEXT NOT NULL,
    session TEXT,
    model_name TEXT NOT NULL,
    inputs TEXT NOT NULL,
    options TEXT NOT NULL,
    progress TEXT,
    error TEXT,
    runner_pid INTEGER,
    server_id TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    rows TEXT,
    manifest TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs(created_at);
"""
# Columns added after the first release: added to an older runs.db when it is opened.
_ADDED_COLUMNS = {"heartbeat_at": "REAL", "started_at": "REAL", "finished_at": "REAL",
                  "claims": "INTEGER NOT NULL DEFAULT 0", "request_key": "TEXT"}
_UPDATABLE = {"status", "progress", "error", "runner_pid", "server_id", "cancel_requested", "rows", "manifest"}


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]


def unwritable(root: Path, error: BaseException) -> StoreUnavailable:
    return folder_unwritable(root, error, "runs", "set STUDIO_RUNS_DIR to a writable folder")


def _disk_full(error: BaseException) -> bool:
    return "no space left" in str(error)


@dataclass(frozen=True)
class Retention:
    """How long finished runs are kept and how large the runs folder may grow (None: no limit)."""

    max_age_s: float | None = 30 * 86400.0
    max_bytes: int | None = 20 * 1024**3

    @classmethod
    def from_environment(cls) -> Retention:
        """STUDIO_KEEP_DAYS (default 30) and STUDIO_MAX_RUNS_GB (default 20); 0 turns a limit off."""
        days = float(os.environ.get("STUDIO_KEEP_DAYS", "30"))
        gigabytes = float(os.environ.get("STUDIO_MAX_RUNS_GB", "20"))
        return cls(max_age_s=days * 86400 if days > 0 else None,
                   max_bytes=int(gigabytes * 1024**3) if gigabytes > 0 else None)


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under a folder (0 when it does not exist)."""
    total = 0
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


def _active_with_key(db: sqlite3.Connection, request_key: str) -> str | None:
    row = db.execute("SELECT id FROM runs WHERE request_key = ? AND status IN ('queued', 'running')"
                     " ORDER BY created_at LIMIT 1", (request_key,)).fetchone()
    return str(row["id"]) if row else None


def _newest_mtime(folder: Path) -> float:
    newest = folder.stat().st_mtime
    for dirpath, _, filenames in os.walk(folder):
        for name in filenames:
            with contextlib.suppress(OSError):
                newest = max(newest, os.lstat(os.path.join(dirpath, name)).st_mtime)
    return newest


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return True  # not known yet (claimed, runner starting): the heartbeat decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore:
    """The runs folder: ``runs.db`` plus ``jobs/<run id>/`` holding each run's inputs and artifacts.

    Raises StoreUnavailable, with one sentence, when the folder cannot be created or written."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.path = self.root / "runs.db"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "jobs").mkdir(exist_ok=True)
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                present = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
                for name, declaration in _ADDED_COLUMNS.items():
                    if name not in present:
                        db.execute(f"ALTER TABLE runs ADD COLUMN {name} {declaration}")
        except StoreUnavailable as exc:
            if not (_disk_full(exc) and self.path.is_file()):
                raise
            # A full disk: the history stays readable (and deletable, which frees space) as it is.
        except (OSError, sqlite3.Error) as exc:
            raise unwritable(self.root, exc) from exc

    @contextmanager
    def _connect(self, immediate: bool = False) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None if immediate else "DEFERRED")
        except sqlite3.Error as exc:
            raise unwritable(self.root, exc) from exc
        db.row_factory = sqlite3.Row
        try:
            if immediate:  # a write lock from the first statement: claims never interleave
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
            else:
                with db:
                    yield db
        except sqlite3.OperationalError as exc:
            if any(word in str(exc).lower() for word in ("readonly", "read-only", "full", "disk i/o", "unable")):
                raise unwritable(self.root, exc) from exc
            raise
        finally:
            db.close()

    def job_dir(self, run_id: str) -> Path:
        if not run_id or not all(c.isalnum() or c == "-" for c in run_id):
            raise InvalidOption(f"run id: expected letters, digits and '-'; found {run_id!r}")
        return self.root / "jobs" / run_id

    def create(self, model_name: str, inputs: dict[str, Any], options: dict[str, Any],
               session: str | None = None, *, run_id: str | None = None, manifest: dict[str, Any] | None = None,
               request_key: str | None = None) -> str:
        """Publish a queued run in one insert: callers write its folder first, so a runner never sees a run
        whose files are not there yet. With ``request_key``, an active run with the same key is returned
        instead of a new one (a double click queues one run)."""
        run_id = run_id or new_run_id()
        now = time.time()
        with self._connect(immediate=True) as db:
            if request_key is not None and (active := _active_with_key(db, request_key)) is not None:
                return active  # the same request is already queued or running
            db.execute(
                "INSERT INTO runs (id, created_at, updated_at, status, session, model_name, inputs, options,"
                " progress, manifest, request_key) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (run_id, now, now, session, model_name, json.dumps(inputs), json.dumps(options),
                 json.dumps({"stage": "queued", "variants": {}}), json.dumps(manifest) if manifest else None,
                 request_key),
            )
        self.job_dir(run_id).mkdir(parents=True, exist_ok=True)
        return run_id

    def _decode(self, row: sqlite3.Row) -> dict[str, Any]:
        record = dict(row)
        for name in _JSON_FIELDS:
            record[name] = json.loads(record[name]) if record.get(name) else None
        return record

    def _read(self, query: str, params: tuple[Any, ...]) -> list[sqlite3.Row]:
        """A read that still works on a full disk, where SQLite cannot create its WAL index: then the
        database file is read as it is (closed connections have checkpointed everything into it)."""
        try:
            with self._connect() as db:
                return db.execute(query, params).fetchall()
        except StoreUnavailable:
            if not self.path.is_file():
                raise
            db = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
            db.row_factory = sqlite3.Row
            try:
                return db.execute(query, params).fetchall()
            finally:
                db.close()

    def get(self, run_id: str) -> dict[str, Any] | None:
        rows = self._read("SELECT * FROM runs WHERE id = ?", (run_id,))
        return self._decode(rows[0]) if rows else None

    def list(self, limit: int = 200, status: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM runs"
        params: tuple[Any, ...] = ()
        if status:
            query += f" WHERE status IN ({','.join('?' * len(status))})"
            params = status
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        return [self._decode(r) for r in self._read(query, (*params, limit))]

    def find_active(self, request_key: str) -> str | None:
        """The queued or running run with this request key (same inputs and options), if any."""
        with self._connect() as db:
            return _active_with_key(db, request_key)

    def update(self, run_id: str, **fields: Any) -> bool:
        """Write fields of a run; a status change applies only while the run is not final (False if refused)."""
        unknown = set(fields) - _UPDATABLE
        if unknown:
            raise InvalidOption(f"run fields: cannot update {sorted(unknown)}")
        values = {k: json.dumps(v, default=str) if k in _JSON_FIELDS else v for k, v in fields.items()}
        values["updated_at"] = time.time()
        if fields.get("status") in FINAL:
            values["finished_at"] = values["updated_at"]
        assignments = ", ".join(f"{k} = ?" for k in values)
        query = f"UPDATE runs SET {assignments} WHERE id = ?"
        if "status" in fields:
            query += f" AND status NOT IN ({','.join('?' * len(FINAL))})"
        with self._connect() as db:
            cursor = db.execute(query, (*values.values(), run_id, *(FINAL if "status" in fields else ())))
            return cursor.rowcount > 0

    def finish_if_active(self, run_id: str, status: str, error: str | None) -> bool:
        """Set a final status only if the run is still queued/running (the runner may have finished first)."""
        with self._connect() as db:
            now = time.time()
            cursor = db.execute(
                "UPDATE runs SET status = ?, error = ?, updated_at = ?, finished_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (status, error, now, now, run_id),
            )
            return cursor.rowcount > 0

    def claim_next(self, claimant: str, max_running: int) -> dict[str, Any] | None:
        """In one transaction: mark dead runners' runs interrupted, and if fewer than ``max_running`` runs of
        this folder are running, move the oldest queued run to running for ``claimant`` and return it."""
        with self._connect(immediate=True) as db:
            self._reap(db)
            running = db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
            if running >= max_running:
                return None
            row = db.execute("SELECT id FROM runs WHERE status = 'queued' ORDER BY created_at, rowid"
                             " LIMIT 1").fetchone()
            if row is None:
                return None
            now = time.time()
            db.execute("UPDATE runs SET status = 'running', server_id = ?, heartbeat_at = ?, started_at = ?,"
                       " updated_at = ?, runner_pid = NULL, claims = claims + 1 WHERE id = ?",
                       (claimant, now, now, now, row["id"]))
            claimed = db.execute("SELECT * FROM runs WHERE id = ?", (row["id"],)).fetchone()
        return self._decode(claimed)

    def heartbeat(self, run_id: str, pid: int) -> None:
        """The runner is alive (written every HEARTBEAT_S by the runner of a running run)."""
        with self._connect() as db:
            db.execute("UPDATE runs SET heartbeat_at = ?, runner_pid = ? WHERE id = ? AND status = 'running'",
                       (time.time(), pid, run_id))

    def reap_dead(self) -> Names:
        """Mark interrupted every running run whose runner is gone or silent; returns their ids."""
        with self._connect(immediate=True) as db:
            return self._reap(db)

    def _reap(self, db: sqlite3.Connection) -> Names:
        now = time.time()
        running = db.execute("SELECT id, heartbeat_at, runner_pid FROM runs WHERE status = 'running'").fetchall()
        dead = [row["id"] for row in running
                if (row["heartbeat_at"] or 0) < now - STALE_AFTER_S or not _pid_alive(row["runner_pid"])]
        for run_id in dead:
            db.execute("UPDATE runs SET status = 'interrupted', error = ?, updated_at = ?, finished_at = ?"
                       " WHERE id = ? AND status = 'running'", (INTERRUPTED, now, now, run_id))
        return dead

    def running_count(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0])

    def request_cancel(self, run_id: str) -> None:
        self.update(run_id, cancel_requested=1)
        self.finish_if_active_queued(run_id)

    def finish_if_active_queued(self, run_id: str) -> None:
        with self._connect() as db:
            now = time.time()
            db.execute("UPDATE runs SET status = 'cancelled', error = 'cancelled before it started', updated_at = ?,"
                       " finished_at = ? WHERE id = ? AND status = 'queued'", (now, now, run_id))

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next queued run to start; None when the run is not queued."""
        queued = [r["id"] for r in reversed(self.list(limit=10_000, status=("queued",)))]
        return queued.index(run_id) + 1 if run_id in queued else None

    def delete(self, run_id: str) -> None:
        """Remove a finished run: its folder first (that frees space, so this works on a full disk), then
        its row."""
        record = self.get(run_id)
        if record and record["status"] in ACTIVE:
            raise InvalidOption(f"run {run_id} is {record['status']}; cancel it before deleting")
        shutil.rmtree(self.job_dir(run_id), ignore_errors=True)
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def enforce_retention(self, policy: Retention) -> Names:
        """Delete finished runs older than the policy's age, then the oldest finished runs until the folder
        is within its size; never a queued or running run. Also removes job folders no run owns (left by a
        submit that failed half-way) once they are an hour old. Returns the deleted run ids."""
        now = time.time()
        finished = [r for r in reversed(self.list(limit=1_000_000)) if r["status"] in FINAL]  # oldest first
        oldest_kept = now - policy.max_age_s if policy.max_age_s is not None else 0.0
        deleted = [r["id"] for r in finished if r["created_at"] < oldest_kept]
        kept = [r for r in finished if r["id"] not in deleted]
        if policy.max_bytes is not None:
            total = folder_bytes(self.root)
            sizes = {r["id"]: folder_bytes(self.job_dir(r["id"])) for r in finished}
            total -= sum(sizes[run_id] for run_id in deleted)
            for record in kept:
                if total <= policy.max_bytes:
                    break
                deleted.append(record["id"])
                total -= sizes[record["id"]]
        for run_id in deleted:
            self.delete(run_id)
        owned = {r["id"] for r in self.list(limit=1_000_000)}
        for folder in (self.root / "jobs").iterdir():
            if folder.name not in owned and folder.stat().st_mtime < now - 3600:
                shutil.rmtree(folder, ignore_errors=True)
        return deleted

    def uploads_dir(self, session: str) -> Path:
        """Where one browser session's uploads go; its ``.alive`` file is touched while the session is used."""
        if not session or not all(c.isalnum() or c == "-" for c in session):
            raise InvalidOption(f"session id: expected letters, digits and '-'; found {session!r}")
        return self.root / "uploads" / session

    def touch_session(self, session: str) -> None:
        folder = self.uploads_dir(session)
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            (folder / ".alive").touch()

    def clean_uploads(self, max_idle_s: float = UPLOAD_IDLE_S) -> Names:
        """Remove upload folders (and inspection scratch) untouched for ``max_idle_s``: a submitted run has
        its own copies, so only a live session still needs its uploads. Returns the removed folder names."""
        root = self.root / "uploads"
        if not root.is_dir():
            return []
        cutoff = time.time() - max_idle_s
        removed = []
        candidates = [p for p in root.iterdir() if p.is_dir() and p.name != "inspect"]
        if (root / "inspect").is_dir():
            candidates += [p for p in (root / "inspect").iterdir() if p.is_dir()]
        for folder in candidates:
            if _newest_mtime(folder) < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder.name)
        return removed

    def check_writable(self) -> None:
        """Raise StoreUnavailable now if a new run could not be written (for a clear message before a run)."""
        probe = self.root / "jobs" / f".probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"x")
        except OSError as exc:
            raise unwritable(self.root, exc) from exc
        finally:
            with contextlib.suppress(OSError):
                probe.unlink()
