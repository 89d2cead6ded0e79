import stat
import zipfile

import pytest

from optimizer.errors import UnsafeArchive
from optimizer.intake.archive import ArchiveLimits, check_zip, safe_extract


def _zip(path, entries):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            if isinstance(name, zipfile.ZipInfo):
                archive.writestr(name, data)
            else:
                info = zipfile.ZipInfo(name)  # raw name: ZipFile.write would normalise "../"
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
    return path


def test_clean_archive_extracts_inside_destination(tmp_path):
    path = _zip(tmp_path / "ok.zip", [("a/b.txt", b"hello"), ("c.txt", b"x")])
    out = safe_extract(path, tmp_path / "out")
    assert (out / "a" / "b.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("name, fragment", [
    ("../evil.txt", "stay inside"),
    ("a/../../evil.txt", "stay inside"),
    ("/etc/evil.txt", "absolute"),
    ("C:/evil.txt", "absolute"),
])
def test_escaping_names_are_refused_before_extraction(tmp_path, name, fragment):
    path = _zip(tmp_path / "bad.zip", [("fine.txt", b"ok"), (name, b"pwned")])
    with pytest.raises(UnsafeArchive, match=fragment):
        safe_extract(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_entries_are_refused(tmp_path):
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    path = _zip(tmp_path / "link.zip", [(info, b"/etc/passwd")])
    with pytest.raises(UnsafeArchive, match="symbolic links"):
        check_zip(path)


def test_duplicate_names_are_refused(tmp_path):
    path = tmp_path / "dup.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.txt", b"1")
        with pytest.warns(UserWarning):
            archive.writestr("a.txt", b"2")
    with pytest.raises(UnsafeArchive, match="unique"):
        check_zip(path)


def test_member_count_and_ratio_limits(tmp_path):
    many = _zip(tmp_path / "many.zip", [(f"{i}.txt", b"x") for i in range(20)])
    with pytest.raises(UnsafeArchive, match="at most 10 entries"):
        check_zip(many, ArchiveLimits(max_members=10))
    bomb = _zip(tmp_path / "bomb.zip", [("zeros.bin", b"\0" * 50_000_000)])
    with pytest.raises(UnsafeArchive, match="compression ratio"):
        check_zip(bomb)


def test_not_a_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "fake.zip"
    path.write_bytes(b"not a zip at all")
    with pytest.raises(UnsafeArchive, match="expected a zip archive"):
        check_zip(path)
