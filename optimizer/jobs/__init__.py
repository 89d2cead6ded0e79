"""Background jobs: the run store (SQLite), the runner process and the scheduler."""
