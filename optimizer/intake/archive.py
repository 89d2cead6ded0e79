"""Zip uploads are checked as a whole before a single byte is extracted or parsed.

Python's ``zipfile`` silently rewrites ``x/../a`` and lets duplicate names overwrite each other, so the raw
member names are checked here, and extraction writes each member itself under the destination folder.
"""

from __future__ import annotations

import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from optimizer.errors import UnsafeArchive


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_total_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0  # uncompressed / compressed, per member and overall


DEFAULT_LIMITS = ArchiveLimits()


def check_zip(path: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> list[zipfile.ZipInfo]:
    """Return the members of a zip that is safe to extract, or raise :class:`UnsafeArchive` naming the problem."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UnsafeArchive(f"{path.name}: expected a zip archive; found unreadable data ({exc})") from None
    with archive:
        members = archive.infolist()
    if len(members) > limits.max_members:
        raise UnsafeArchive(f"{path.name}: at most {limits.max_members} entries allowed; found {len(members)}")
    seen: set[str] = set()
    total = 0
    compressed_total = 0
    for info in members:
        name = info.orig_filename
        pure = PurePosixPath(name.replace("\\", "/"))
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or pure.is_absolute():
            raise UnsafeArchive(f"{path.name}: entries must be relative paths; found absolute path {name!r}")
        if ".." in pure.parts:
            raise UnsafeArchive(f"{path.name}: entries must stay inside the archive; found {name!r}")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise UnsafeArchive(f"{path.name}: symbolic links are not allowed; found link {name!r}")
        key = str(pure).rstrip("/").lower()
        if key in seen:
            raise UnsafeArchive(f"{path.name}: each entry name must be unique; found {name!r} twice")
        seen.add(key)
        total += info.file_size
        compressed_total += info.compress_size
        if info.file_size > 1_000_000 and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise UnsafeArchive(
                f"{path.name}: compression ratio at most {limits.max_ratio:.0f}:1; "
                f"{name!r} expands {info.compress_size} -> {info.file_size} bytes"
            )
    if total > limits.max_total_bytes:
        raise UnsafeArchive(
            f"{path.name}: at most {limits.max_total_bytes} bytes uncompressed allowed; found {total}"
        )
    if total > 10_000_000 and total > limits.max_ratio * max(compressed_total, 1):
        raise UnsafeArchive(f"{path.name}: overall compression ratio exceeds {limits.max_ratio:.0f}:1")
    return members


def safe_extract(path: Path, destination: Path, limits: ArchiveLimits = DEFAULT_LIMITS) -> Path:
    """Check, then extract a zip member by member under ``destination``; returns ``destination``."""
    members = check_zip(path, limits)
    destination.mkdir(parents=True, exist_ok=True)
    root = destination.resolve()
    with zipfile.ZipFile(path) as archive:
        for info in members:
            target = (root / info.orig_filename.replace("\\", "/")).resolve()
            if root != target and root not in target.parents:
                raise UnsafeArchive(f"{path.name}: entry {info.orig_filename!r} would land outside the folder")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            with archive.open(info) as source, open(target, "wb") as sink:
                while chunk := source.read(1 << 20):
                    written += len(chunk)
                    if written > info.file_size:  # a lying header: stop before the disk fills
                        raise UnsafeArchive(f"{path.name}: entry {info.orig_filename!r} is larger than declared")
                    sink.write(chunk)
    return destination
