"""Where a search writes (`storage`): paths made absolute, remote URIs refused, and a storage directory checked
writable with enough free space before anything starts, creating nothing."""

import errno
import os
import tempfile
from types import SimpleNamespace

import pytest

from tune_hardbatch.errors import UserError
from tune_hardbatch.search import storage


def test_relative_and_home_paths_become_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert storage.abs_storage("out/runs") == str(tmp_path / "out" / "runs")
    assert storage.abs_storage("./a/../b") == str(tmp_path / "b")
    assert storage.abs_storage("~/runs") == str(tmp_path / "home" / "runs")
    assert storage.abs_storage("/srv/runs") == "/srv/runs"
    assert not (tmp_path / "out").exists()  # nothing created


@pytest.mark.parametrize("uri", ["s3://bucket/runs", "gs://bucket/x", "file:///tmp/runs"])
def test_remote_storage_uris_are_refused_naming_the_key(uri):
    with pytest.raises(UserError) as info:
        storage.abs_storage(uri, "--out")
    assert info.value.key == "--out" and uri in str(info.value) and "not supported" in str(info.value)
    with pytest.raises(UserError, match=r"^run\.storage: "):
        storage.abs_storage(uri)  # the default key


def test_an_existing_writable_directory_passes_and_keeps_no_probe_file(tmp_path):
    storage.check_writable(str(tmp_path), "--out")
    assert list(tmp_path.iterdir()) == []


def test_a_missing_directory_is_checked_at_its_nearest_existing_parent_and_not_created(tmp_path):
    storage.check_writable(str(tmp_path / "a" / "b" / "c"), "--out")
    assert list(tmp_path.iterdir()) == []  # neither a/ nor a probe file left behind


@pytest.mark.parametrize("below", ["", "sub/dir"])
def test_a_file_in_the_way_names_the_key_and_the_file(tmp_path, below):
    (tmp_path / "f").write_text("x")
    target = tmp_path / "f" / below if below else tmp_path / "f"
    with pytest.raises(UserError) as info:
        storage.check_writable(str(target), "run.storage")
    assert info.value.key == "run.storage"
    assert f"{tmp_path / 'f'} is a file, not a directory" in str(info.value)


def test_a_directory_that_cannot_be_written_names_the_reason(tmp_path, monkeypatch):
    def read_only(*args, **kwargs):  # what a read-only file system answers (chmod does not stop root)
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(tempfile, "mkstemp", read_only)
    with pytest.raises(UserError) as info:
        storage.check_writable(str(tmp_path / "new"), "--out")
    assert info.value.key == "--out"
    assert str(info.value).startswith(f"--out: cannot write to {tmp_path} ({os.strerror(errno.EROFS)})")


def fake_statvfs(free_bytes: int):
    real = os.statvfs

    def statvfs(path):
        real(path)  # the real call's errors still happen
        return SimpleNamespace(f_bavail=free_bytes // 4096, f_frsize=4096)
    return statvfs


def test_free_space_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "statvfs", fake_statvfs(storage.MIN_FREE_BYTES))
    storage.check_writable(str(tmp_path), "--out")  # exactly the minimum is enough
    monkeypatch.setattr(os, "statvfs", fake_statvfs(storage.MIN_FREE_BYTES - 4096))
    with pytest.raises(UserError) as info:
        storage.check_writable(str(tmp_path), "--out")
    assert info.value.key == "--out"
    assert f"free on the file system of {tmp_path}" in str(info.value) and "at least 16 MiB" in str(info.value)
    monkeypatch.setattr(os, "statvfs", fake_statvfs(8 * 1024**2))
    with pytest.raises(UserError, match=r"^--out: only 8\.0 MiB free on the file system of "):
        storage.check_writable(str(tmp_path), "--out")
    assert list(tmp_path.iterdir()) == []
