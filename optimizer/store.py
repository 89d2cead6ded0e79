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
from pathlib import Path
from typing import Any

from optimizer.errors import InvalidOption, StoreUnavailable

RunIds = list[str]

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")
_JSON_FIELDS = ("inputs", "options", "progress", "rows", "manifest")
# A runner writes its heartbeat every HEARTBEAT_S; one silent for STALE_AFTER_S is taken for dead.
HEARTBEAT_S = 2.0
STALE_AFTER_S = 30.0
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
    """The one sentence for a runs folder that cannot be written, whatever layer noticed it."""
    reason = _reason(error)
    return StoreUnavailable(f"cannot write runs to {root}: {reason}; free space, fix its permissions or set "
                            "STUDIO_RUNS_DIR to a writable folder")


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.errno is not None:
        return os.strerror(error.errno).lower()
    text = str(error).lower()
    if "readonly" in text or "read-only" in text:
        return "read-only file system"
    if "full" in text:
        return "no space left on device"
    if "unable to open" in text:
        return "the folder cannot be opened"
    return text or type(error).__name__


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
        except StoreUnavailable:
            raise
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
            if request_key is not None:
                active = db.execute("SELECT id FROM runs WHERE request_key = ? AND status IN ('queued', 'running')"
                                    " ORDER BY created_at LIMIT 1", (request_key,)).fetchone()
                if active is not None:
                    return str(active["id"])  # the same request is already queued or running
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

    def get(self, run_id: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return self._decode(row) if row else None

    def list(self, limit: int = 200, status: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        query = "SELECT * FROM runs"
        params: tuple[Any, ...] = ()
        if status:
            query += f" WHERE status IN ({','.join('?' * len(status))})"
            params = status
        query += " ORDER BY created_at DESC, rowid DESC LIMIT ?"
        with self._connect() as db:
            rows = db.execute(query, (*params, limit)).fetchall()
        return [self._decode(r) for r in rows]

    def find_active(self, request_key: str) -> str | None:
        """The queued or running run with this request key (same inputs and options), if any."""
        with self._connect() as db:
            row = db.execute("SELECT id FROM runs WHERE request_key = ? AND status IN ('queued', 'running')"
                             " ORDER BY created_at LIMIT 1", (request_key,)).fetchone()
        return str(row["id"]) if row else None

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

    def reap_dead(self) -> RunIds:
        """Mark interrupted every running run whose runner is gone or silent; returns their ids."""
        with self._connect(immediate=True) as db:
            return self._reap(db)

    def _reap(self, db: sqlite3.Connection) -> RunIds:
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
        """Remove a finished run and its folder. Works on a full disk: deleting frees space, it needs none
        (SQLite's journal for a delete may still need a page; then the folder goes first)."""
        record = self.get(run_id)
        if record and record["status"] in ACTIVE:
            raise InvalidOption(f"run {run_id} is {record['status']}; cancel it before deleting")
        folder = self.job_dir(run_id)
        try:
            with self._connect() as db:
                db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        except StoreUnavailable as exc:
            if not isinstance(exc.__cause__, sqlite3.OperationalError) or "full" not in str(exc.__cause__).lower():
                raise
            shutil.rmtree(folder, ignore_errors=True)  # free the space, then delete the row
            with self._connect() as db:
                db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(folder, ignore_errors=True)

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
