"""Mounted POSIX behaviour of files and directories, on every backend."""
import errno
import os
import stat
from pathlib import Path

import pytest

from conftest import make_tree, run, tree_state


def test_write_read_back(mnt):
    p = Path(mnt.path) / "hello.txt"
    p.write_bytes(b"hello world\n")
    assert p.read_bytes() == b"hello world\n"
    assert os.stat(p).st_size == 12


def test_cp_tree_bytes_equal(mnt, tmp_path):
    src = tmp_path / "src"
    files = make_tree(src)
    run(["cp", "-r", str(src), mnt.path + "/dst"])
    for rel, data in files.items():
        assert (Path(mnt.path) / "dst" / rel).read_bytes() == data, rel


def test_cp_a_tree_bytes_and_modes_equal(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.symlink("a.txt", src / "link")
    run(["cp", "-a", str(src), mnt.path + "/dst"])
    assert tree_state(Path(mnt.path) / "dst") == tree_state(src)


def test_cp_a_keeps_mtime(mnt, tmp_path):
    src = tmp_path / "f"
    src.write_bytes(b"x" * 100)
    os.utime(src, ns=(1_500_000_000_123_456_789, 1_500_000_000_123_456_789))
    run(["cp", "-a", str(src), mnt.path + "/f"])
    assert os.stat(Path(mnt.path) / "f").st_mtime_ns == 1_500_000_000_123_456_789


def test_mkdir_p(mnt):
    run(["mkdir", "-p", mnt.path + "/a/b/c/d"])
    assert os.path.isdir(mnt.path + "/a/b/c/d")
    assert os.listdir(mnt.path + "/a/b") == ["c"]


def test_mkdir_existing_is_eexist(mnt):
    os.mkdir(mnt.path + "/d")
    with pytest.raises(FileExistsError):
        os.mkdir(mnt.path + "/d")


def test_mkdir_mode_persists(mnt):
    os.mkdir(mnt.path + "/d", 0o750)
    assert stat.S_IMODE(os.stat(mnt.path + "/d").st_mode) == 0o750


def test_rm_r(mnt, tmp_path):
    make_tree(tmp_path / "src")
    run(["cp", "-r", str(tmp_path / "src"), mnt.path + "/t"])
    run(["rm", "-r", mnt.path + "/t"])
    assert not os.path.exists(mnt.path + "/t")
    assert os.listdir(mnt.path) == []


def test_rmdir_nonempty_is_enotempty(mnt):
    os.mkdir(mnt.path + "/d")
    Path(mnt.path, "d", "f").write_text("x")
    with pytest.raises(OSError) as e:
        os.rmdir(mnt.path + "/d")
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(mnt.path + "/d/f")
    os.rmdir(mnt.path + "/d")
    assert not os.path.exists(mnt.path + "/d")


def test_ls_l(mnt):
    Path(mnt.path, "f1").write_bytes(b"12345")
    os.mkdir(mnt.path + "/sub")
    os.symlink("f1", mnt.path + "/ln")
    out = run(["ls", "-l", mnt.path]).stdout.splitlines()
    lines = {l.split()[-1] if "->" not in l else l.split()[-3]: l for l in out[1:]}
    assert lines["f1"].startswith("-rw") and " 5 " in lines["f1"]
    assert lines["sub"].startswith("d")
    assert lines["ln"].startswith("l") and lines["ln"].endswith("ln -> f1")


def test_readdir_lists_all(mnt):
    names = {"n%03d" % i for i in range(120)}
    for n in names:
        Path(mnt.path, n).write_text(n)
    assert set(os.listdir(mnt.path)) == names


def test_stat_file(mnt):
    p = Path(mnt.path, "f")
    p.write_bytes(b"a" * 1000)
    os.chmod(p, 0o604)
    st = os.stat(p)
    assert stat.S_ISREG(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o604
    assert st.st_size == 1000
    assert st.st_uid == os.getuid()
    assert st.st_nlink == 1


def test_stat_missing_is_enoent(mnt):
    with pytest.raises(FileNotFoundError):
        os.stat(mnt.path + "/nope")


def test_touch_d(mnt):
    p = mnt.path + "/t"
    run(["touch", "-d", "2001-02-03 04:05:06.5 UTC", p])
    st = os.stat(p)
    assert st.st_mtime_ns == 981173106_500000000
    assert st.st_size == 0
    run(["touch", "-d", "2010-01-01 00:00:00 UTC", p])
    assert os.stat(p).st_mtime == 1262304000


def test_symlink(mnt):
    os.symlink("target/elsewhere", mnt.path + "/ln")
    assert os.readlink(mnt.path + "/ln") == "target/elsewhere"
    assert stat.S_ISLNK(os.lstat(mnt.path + "/ln").st_mode)
    Path(mnt.path, "real").write_text("content")
    os.symlink("real", mnt.path + "/ln2")
    assert Path(mnt.path, "ln2").read_text() == "content"


def test_link_is_eperm(mnt):
    Path(mnt.path, "f").write_text("x")
    with pytest.raises(OSError) as e:
        os.link(mnt.path + "/f", mnt.path + "/g")
    assert e.value.errno == errno.EPERM


def test_tar_round_trip(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.symlink("a.txt", src / "link")
    run(["tar", "-C", str(src), "-cf", mnt.path + "/t.tar", "."])
    os.mkdir(mnt.path + "/x")
    run(["tar", "-C", mnt.path + "/x", "-xpf", mnt.path + "/t.tar"])
    assert tree_state(Path(mnt.path) / "x") == tree_state(src)
    out = tmp_path / "out"
    out.mkdir()
    run(["tar", "-C", mnt.path + "/x", "-cf", str(tmp_path / "back.tar"), "."])
    run(["tar", "-C", str(out), "-xpf", str(tmp_path / "back.tar")])
    assert tree_state(out) == tree_state(src)


def test_dd_conv_notrunc(mnt):
    p = Path(mnt.path, "f")
    data = bytearray(os.urandom(2 * 1024 * 1024))
    p.write_bytes(data)
    patch = os.urandom(5000)
    local = Path(mnt.path).parent / "patch"
    local.write_bytes(patch)
    run(["dd", "if=%s" % local, "of=%s" % p, "bs=1000", "seek=700", "conv=notrunc",
         "status=none"])
    data[700000:705000] = patch
    assert p.read_bytes() == bytes(data)


def test_truncate_down_and_up(mnt):
    p = Path(mnt.path, "f")
    data = os.urandom(100000)
    p.write_bytes(data)
    run(["truncate", "-s", "1000", str(p)])
    assert p.read_bytes() == data[:1000]
    run(["truncate", "-s", "5000", str(p)])
    assert p.read_bytes() == data[:1000] + b"\0" * 4000
    os.truncate(p, 0)
    assert p.read_bytes() == b""


def test_ftruncate_open_file(mnt):
    p = mnt.path + "/f"
    with open(p, "wb") as f:
        f.write(b"abcdef")
        f.flush()
        os.ftruncate(f.fileno(), 3)
    assert Path(p).read_bytes() == b"abc"


def test_append(mnt):
    p = Path(mnt.path, "log")
    p.write_bytes(b"one\n")
    with open(p, "ab") as f:
        f.write(b"two\n")
    with open(p, "ab") as f:
        f.write(b"three\n")
    assert p.read_bytes() == b"one\ntwo\nthree\n"


def test_overwrite_with_o_trunc(mnt):
    p = Path(mnt.path, "f")
    p.write_bytes(b"a long first version")
    p.write_bytes(b"short")
    assert p.read_bytes() == b"short"


def test_unlink(mnt):
    p = Path(mnt.path, "f")
    p.write_text("x")
    os.unlink(p)
    assert not p.exists()
    assert os.listdir(mnt.path) == []


def test_unlink_open_file_keeps_handle(mnt):
    p = mnt.path + "/f"
    with open(p, "w+b") as f:
        f.write(b"data")
        f.flush()
        os.unlink(p)
        f.seek(0)
        assert f.read() == b"data"
    assert not os.path.exists(p)
    assert os.listdir(mnt.path) == []


def test_large_file_sequential(mnt, tmp_path):
    src = tmp_path / "big"
    src.write_bytes(os.urandom(20 * 1024 * 1024 + 3))
    run(["cp", str(src), mnt.path + "/big"])
    run(["cmp", str(src), mnt.path + "/big"])


def test_statfs(mnt):
    sv = os.statvfs(mnt.path)
    assert sv.f_bavail * sv.f_frsize >= 1 << 40
    assert sv.f_namemax == 255
