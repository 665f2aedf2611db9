"""Mounted rename semantics (files, directories, renameat2 flags), on every backend."""
import ctypes
import errno
import os
from pathlib import Path

import pytest

from conftest import make_tree, run, tree_state

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
_libc = ctypes.CDLL(None, use_errno=True)


def renameat2(a, b, flags):
    r = _libc.renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), flags)
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def test_mv_file(mnt):
    Path(mnt.path, "a").write_bytes(b"payload")
    os.chmod(mnt.path + "/a", 0o600)
    os.utime(mnt.path + "/a", ns=(1_400_000_000_000_000_001, 1_400_000_000_000_000_001))
    run(["mv", mnt.path + "/a", mnt.path + "/b"])
    assert not os.path.exists(mnt.path + "/a")
    assert Path(mnt.path, "b").read_bytes() == b"payload"
    st = os.stat(mnt.path + "/b")
    assert st.st_mode & 0o7777 == 0o600
    assert st.st_mtime_ns == 1_400_000_000_000_000_001
    assert sorted(os.listdir(mnt.path)) == ["b"]


def test_mv_file_into_directory(mnt):
    os.mkdir(mnt.path + "/d")
    Path(mnt.path, "f").write_text("x")
    run(["mv", mnt.path + "/f", mnt.path + "/d/"])
    assert Path(mnt.path, "d", "f").read_text() == "x"
    assert os.listdir(mnt.path) == ["d"]


def test_rename_replaces_existing_file(mnt):
    Path(mnt.path, "a").write_text("new")
    Path(mnt.path, "b").write_text("old content")
    os.rename(mnt.path + "/a", mnt.path + "/b")
    assert Path(mnt.path, "b").read_text() == "new"
    assert os.listdir(mnt.path) == ["b"]


def test_mv_directory_tree(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    run(["cp", "-a", str(src), mnt.path + "/d1"])
    before = tree_state(Path(mnt.path) / "d1")
    run(["mv", mnt.path + "/d1", mnt.path + "/d2"])
    assert not os.path.exists(mnt.path + "/d1")
    assert tree_state(Path(mnt.path) / "d2") == before
    assert os.listdir(mnt.path) == ["d2"]


def test_mv_empty_directory(mnt):
    os.mkdir(mnt.path + "/e", 0o710)
    os.rename(mnt.path + "/e", mnt.path + "/f")
    assert os.path.isdir(mnt.path + "/f")
    assert os.stat(mnt.path + "/f").st_mode & 0o7777 == 0o710
    assert os.listdir(mnt.path) == ["f"]


def test_rename_dir_onto_empty_dir(mnt):
    os.makedirs(mnt.path + "/a/sub")
    Path(mnt.path, "a", "sub", "f").write_text("x")
    os.mkdir(mnt.path + "/b")
    os.rename(mnt.path + "/a", mnt.path + "/b")
    assert Path(mnt.path, "b", "sub", "f").read_text() == "x"
    assert os.listdir(mnt.path) == ["b"]


def test_rename_dir_onto_nonempty_dir_is_enotempty(mnt):
    os.mkdir(mnt.path + "/a")
    os.mkdir(mnt.path + "/b")
    Path(mnt.path, "b", "keep").write_text("x")
    with pytest.raises(OSError) as e:
        os.rename(mnt.path + "/a", mnt.path + "/b")
    assert e.value.errno == errno.ENOTEMPTY
    assert Path(mnt.path, "b", "keep").read_text() == "x"
    assert os.path.isdir(mnt.path + "/a")


def test_rename_noreplace_existing_is_eexist(mnt):
    Path(mnt.path, "a").write_text("A")
    Path(mnt.path, "b").write_text("B")
    with pytest.raises(OSError) as e:
        renameat2(mnt.path + "/a", mnt.path + "/b", RENAME_NOREPLACE)
    assert e.value.errno == errno.EEXIST
    assert Path(mnt.path, "a").read_text() == "A"
    assert Path(mnt.path, "b").read_text() == "B"


def test_rename_noreplace_to_new_name(mnt):
    Path(mnt.path, "a").write_text("A")
    renameat2(mnt.path + "/a", mnt.path + "/c", RENAME_NOREPLACE)
    assert Path(mnt.path, "c").read_text() == "A"
    assert not os.path.exists(mnt.path + "/a")


def test_rename_exchange_is_einval(mnt):
    Path(mnt.path, "a").write_text("A")
    Path(mnt.path, "b").write_text("B")
    with pytest.raises(OSError) as e:
        renameat2(mnt.path + "/a", mnt.path + "/b", RENAME_EXCHANGE)
    assert e.value.errno == errno.EINVAL
    assert Path(mnt.path, "a").read_text() == "A"
    assert Path(mnt.path, "b").read_text() == "B"


def test_rename_open_file_then_close(mnt):
    """The rsync / editor pattern: write a temp file, rename it over the target."""
    Path(mnt.path, "target").write_text("old")
    with open(mnt.path + "/.tmp.target", "wb") as f:
        f.write(b"new version")
        f.flush()
        os.rename(mnt.path + "/.tmp.target", mnt.path + "/target")
        f.write(b" plus more")
    assert Path(mnt.path, "target").read_bytes() == b"new version plus more"
    assert os.listdir(mnt.path) == ["target"]
