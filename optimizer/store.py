"""Run history in SQLite (standard library) with each run's artifacts in its own folder.

One row per run: inputs' names and hashes, options, versions, status, live progress and results. Written by
the job runner process and read by the app, so WAL mode and short transactions; nothing is lost when the
server restarts.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from optimizer.errors import InvalidOption

ACTIVE = ("queued", "running")
FINAL = ("done", "failed", "cancelled", "interrupted")
_JSON_FIELDS = ("inputs", "options", "progress", "rows", "manifest")

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


class RunStore:
    """The runs folder: ``runs.db`` plus ``jobs/<run id>/`` holding each run's inputs and artifacts."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "jobs").mkdir(exist_ok=True)
        self.path = self.root / "runs.db"
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    def job_dir(self, run_id: str) -> Path:
        if not run_id or not all(c.isalnum() or c == "-" for c in run_id):
            raise InvalidOption(f"run id: expected letters, digits and '-'; found {run_id!r}")
        return self.root / "jobs" / run_id

    def create(self, model_name: str, inputs: dict[str, Any], options: dict[str, Any],
               session: str | None = None) -> str:
        run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:8]
        now = time.time()
        with self._connect() as db:
            db.execute(
                "INSERT INTO runs (id, created_at, updated_at, status, session, model_name, inputs, options, progress)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (run_id, now, now, session, model_name, json.dumps(inputs), json.dumps(options), json.dumps({})),
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
        query += " ORDER BY created_at DESC LIMIT ?"
        with self._connect() as db:
            rows = db.execute(query, (*params, limit)).fetchall()
        return [self._decode(r) for r in rows]

    def update(self, run_id: str, **fields: Any) -> None:
        allowed = {"status", "progress", "error", "runner_pid", "server_id", "cancel_requested", "rows", "manifest"}
        unknown = set(fields) - allowed
        if unknown:
            raise InvalidOption(f"run fields: cannot update {sorted(unknown)}")
        values = {k: json.dumps(v, default=str) if k in _JSON_FIELDS else v for k, v in fields.items()}
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = ?" for k in values)
        with self._connect() as db:
            db.execute(f"UPDATE runs SET {assignments} WHERE id = ?", (*values.values(), run_id))

    def finish_if_active(self, run_id: str, status: str, error: str | None) -> bool:
        """Set a final status only if the run is still queued/running (the runner may have finished first)."""
        with self._connect() as db:
            cursor = db.execute(
                "UPDATE runs SET status = ?, error = ?, updated_at = ?"
                " WHERE id = ? AND status IN ('queued', 'running')",
                (status, error, time.time(), run_id),
            )
            return cursor.rowcount > 0

    def request_cancel(self, run_id: str) -> None:
        self.update(run_id, cancel_requested=1)
        self.finish_if_active_queued(run_id)

    def finish_if_active_queued(self, run_id: str) -> None:
        with self._connect() as db:
            db.execute("UPDATE runs SET status = 'cancelled', error = 'cancelled before it started', updated_at = ?"
                       " WHERE id = ? AND status = 'queued'", (time.time(), run_id))

    def queue_position(self, run_id: str) -> int | None:
        """1 for the next queued run to start; None when the run is not queued."""
        queued = [r["id"] for r in reversed(self.list(limit=10_000, status=("queued",)))]
        return queued.index(run_id) + 1 if run_id in queued else None

    def delete(self, run_id: str) -> None:
        record = self.get(run_id)
        if record and record["status"] in ACTIVE:
            raise InvalidOption(f"run {run_id} is {record['status']}; cancel it before deleting")
        with self._connect() as db:
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))
        shutil.rmtree(self.job_dir(run_id), ignore_errors=True)
