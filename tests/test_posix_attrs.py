"""Mounted attributes and extended attributes: chmod/chown/utimens, xattrs, rsync."""
import errno
import json
import os
import stat
from pathlib import Path

import pytest

from conftest import make_tree, run, tree_state


def test_chmod(mnt):
    p = mnt.path + "/f"
    Path(p).write_text("x")
    os.chmod(p, 0o751)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o751
    os.chmod(p, 0o4600)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o4600


def test_chown(mnt):
    p = mnt.path + "/f"
    Path(p).write_text("x")
    os.chown(p, 1234, 5678)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 5678)
    os.chown(p, -1, 42)
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (1234, 42)


def test_chmod_chown_utimens_persist_across_remount(pmnt):
    f = pmnt.path + "/f"
    d = pmnt.path + "/d"
    Path(f).write_text("x")
    os.mkdir(d)
    os.chmod(f, 0o604)
    os.chown(f, 1001, 1002)
    os.utime(f, ns=(1_300_000_000_000_000_042, 1_300_000_000_000_000_042))
    os.chmod(d, 0o705)
    os.chown(d, 2001, 2002)
    os.utime(d, ns=(1_200_000_000_000_000_000, 1_200_000_000_000_000_000))
    pmnt.remount()
    st = os.stat(f)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o604, 1001, 1002)
    assert st.st_mtime_ns == 1_300_000_000_000_000_042
    st = os.stat(d)
    assert stat.S_ISDIR(st.st_mode)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o705, 2001, 2002)
    assert st.st_mtime_ns == 1_200_000_000_000_000_000


def test_symlink_persists_across_remount(pmnt):
    os.symlink("some/where", pmnt.path + "/ln")
    pmnt.remount()
    assert os.readlink(pmnt.path + "/ln") == "some/where"


def test_attributes_stored_in_s3fs_metadata(pmnt):
    """mode/uid/gid/mtime live under s3fs's names, so buckets move between the tools."""
    p = pmnt.path + "/f"
    Path(p).write_text("x")
    os.chmod(p, 0o640)
    os.chown(p, 77, 88)
    os.utime(p, (1_234_567_890, 1_234_567_890))
    info = json.loads(pmnt.backend.storetool("info", "f").stdout)
    meta = info["meta"]
    assert int(meta["mode"]) == stat.S_IFREG | 0o640
    assert (meta["uid"], meta["gid"], meta["mtime"]) == ("77", "88", "1234567890")


def test_user_xattr_set_get_list_remove(mnt):
    p = mnt.path + "/f"
    Path(p).write_text("x")
    os.setxattr(p, "user.color", b"blue")
    os.setxattr(p, "user.bin", bytes(range(256)))
    assert os.getxattr(p, "user.color") == b"blue"
    assert os.getxattr(p, "user.bin") == bytes(range(256))
    names = os.listxattr(p)
    assert "user.color" in names and "user.bin" in names
    os.removexattr(p, "user.color")
    with pytest.raises(OSError) as e:
        os.getxattr(p, "user.color")
    assert e.value.errno == errno.ENODATA
    assert "user.color" not in os.listxattr(p)


def test_user_xattr_create_replace_flags(mnt):
    p = mnt.path + "/f"
    Path(p).write_text("x")
    os.setxattr(p, "user.k", b"1", os.XATTR_CREATE)
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.k", b"2", os.XATTR_CREATE)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(OSError) as e:
        os.setxattr(p, "user.other", b"2", os.XATTR_REPLACE)
    assert e.value.errno == errno.ENODATA
    os.setxattr(p, "user.k", b"3", os.XATTR_REPLACE)
    assert os.getxattr(p, "user.k") == b"3"


def test_user_xattr_persists_across_remount(pmnt):
    p = pmnt.path + "/f"
    Path(p).write_text("x")
    os.mkdir(pmnt.path + "/d")
    run(["setfattr", "-n", "user.note", "-v", "hello world", p])
    run(["setfattr", "-n", "user.dirnote", "-v", "on a dir", pmnt.path + "/d"])
    pmnt.remount()
    out = run(["getfattr", "--only-values", "-n", "user.note", p]).stdout
    assert out == "hello world"
    assert os.getxattr(pmnt.path + "/d", "user.dirnote") == b"on a dir"


def test_xattr_on_pending_file(mnt):
    p = mnt.path + "/f"
    with open(p, "wb") as f:
        f.write(b"data")
        os.setxattr(p, "user.early", b"yes")
    assert os.getxattr(p, "user.early") == b"yes"
    assert Path(p).read_bytes() == b"data"


def test_unknown_xattr_is_enodata(mnt):
    p = mnt.path + "/f"
    Path(p).write_text("x")
    for name in ("user.nothing", "security.capability", "trusted.x", "user.lexfs.nope"):
        with pytest.raises(OSError) as e:
            os.getxattr(p, name)
        assert e.value.errno == errno.ENODATA, name
    r = run(["getfattr", "-n", "user.nothing", p], check=False)
    assert r.returncode != 0 and "No such attribute" in r.stderr


def test_lexfs_xattrs_listed_and_read_only(mnt):
    p = mnt.path + "/f.txt"
    Path(p).write_text("x")
    names = os.listxattr(p)
    for n in ("user.lexfs.presigned_url", "user.lexfs.presigned_put_url", "user.lexfs.url",
              "user.lexfs.etag", "user.lexfs.content_type", "user.lexfs.backend"):
        assert n in names, n
        with pytest.raises(OSError) as e:
            os.setxattr(p, n, b"x")
        assert e.value.errno == errno.ENOTSUP, n
    assert os.getxattr(p, "user.lexfs.content_type") == b"text/plain"
    assert os.getxattr(p, "user.lexfs.backend").decode() == mnt.backend.driver
    assert os.getxattr(p, "user.lexfs.etag")
    assert os.getxattr(p, "user.lexfs.url").decode().endswith("f.txt")


@pytest.mark.parametrize("evict", [False, True], ids=["cached", "evicted"])
def test_every_listed_xattr_reads_after_rename_and_metadata_changes(mounter, backend, evict):
    """rsync -X lists a file's xattrs, then reads each one: what listxattr names,
    getxattr must answer, also right after the changes rsync makes (a temp file
    renamed into place, its mode and times set, an xattr added), and whether or
    not the cache still holds the file's data (a 1 MiB cache and a 2 MiB file
    written after each step push it out)."""
    b = backend.fresh()
    mnt = mounter(b.source, opts=b.mount_opts() + ["cache_size=1m"], env=b.env)
    d = Path(mnt.path)
    tmp, final = d / ".a.txt.Xy12Zq", d / "a.txt"
    tmp.write_bytes(b"rsync pattern\n")
    steps = [("rename", lambda: os.rename(tmp, final)),
             ("chmod", lambda: os.chmod(final, 0o640)),
             ("utime", lambda: os.utime(final, (1_600_000_000, 1_600_000_000))),
             ("setxattr", lambda: os.setxattr(final, "user.tag", b"t1"))]
    for what, step in steps:
        step()
        if evict:
            (d / "filler.bin").write_bytes(os.urandom(2 * 1024 * 1024))
        names = os.listxattr(final)
        assert "user.lexfs.etag" in names, what
        for n in names:
            assert os.getxattr(final, n), (what, n)
    assert final.read_bytes() == b"rsync pattern\n"
    assert os.getxattr(final, "user.tag") == b"t1"


def test_presigned_url_present_and_expiry_suffix(mnt):
    p = mnt.path + "/f.txt"
    Path(p).write_text("x")
    url = run(["getfattr", "--only-values", "-n", "user.lexfs.presigned_url", p]).stdout
    assert "f.txt" in url and len(url) > len("f.txt") + 20
    put = os.getxattr(p, "user.lexfs.presigned_put_url").decode()
    assert put and put != url
    short = os.getxattr(p, "user.lexfs.presigned_url.60").decode()
    assert short and short != url
    with pytest.raises(OSError) as e:
        os.getxattr(p, "user.lexfs.presigned_url.0")
    assert e.value.errno == errno.EINVAL


def test_presigned_url_verifies(mnt):
    """The memory driver checks its own signatures through a control."""
    if mnt.backend.driver != "memory":
        url = os.getxattr(mnt.path + "/", "user.lexfs.backend")
        assert url
        Path(mnt.path, "g").write_text("y")
        r = run(["getfattr", "--only-values", "-n", "user.lexfs.presigned_url",
                 mnt.path + "/g"])
        assert "g" in r.stdout
        return
    p = mnt.path + "/f.txt"
    Path(p).write_text("x")
    url = os.getxattr(p, "user.lexfs.presigned_url")
    os.setxattr(mnt.path, "user.lexfs.control.verify_url", url)
    bad = url[:-1] + (b"0" if url[-1:] != b"0" else b"1")
    with pytest.raises(OSError):
        os.setxattr(mnt.path, "user.lexfs.control.verify_url", bad)
    mnt.expect_errors("verify_url")


def test_root_stats_and_invalidate(mnt):
    stats = json.loads(os.getxattr(mnt.path, "user.lexfs.stats"))
    assert isinstance(stats, dict) and stats
    assert "user.lexfs.stats" in os.listxattr(mnt.path)
    os.setxattr(mnt.path, "user.lexfs.invalidate", b"1")
    with pytest.raises(OSError) as e:
        os.setxattr(mnt.path, "user.lexfs.stats", b"1")
    assert e.value.errno == errno.ENOTSUP


def test_cp_a_succeeds_with_xattrs(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.setxattr(src / "a.txt", "user.origin", b"local disk")
    r = run(["cp", "-a", str(src), mnt.path + "/dst"])
    assert r.stderr == ""
    assert os.getxattr(mnt.path + "/dst/a.txt", "user.origin") == b"local disk"
    assert tree_state(Path(mnt.path) / "dst") == tree_state(src)


def test_cp_a_within_mount(mnt):
    Path(mnt.path, "f").write_text("x")
    os.setxattr(mnt.path + "/f", "user.k", b"v")
    r = run(["cp", "-a", mnt.path + "/f", mnt.path + "/g"])
    # lexfs's computed names are listed but cannot be set: cp skips them quietly
    assert r.stderr == ""
    assert Path(mnt.path, "g").read_text() == "x"
    assert os.getxattr(mnt.path + "/g", "user.k") == b"v"


def test_rsync_a_then_nothing_to_do(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.symlink("a.txt", src / "link")
    run(["rsync", "-a", str(src) + "/", mnt.path + "/dst/"])
    assert tree_state(Path(mnt.path) / "dst") == tree_state(src)
    r = run(["rsync", "-ai", str(src) + "/", mnt.path + "/dst/"])
    assert r.stdout == "", "second rsync found differences:\n" + r.stdout


def test_rsync_a_nothing_to_do_after_remount(pmnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    run(["rsync", "-a", str(src) + "/", pmnt.path + "/dst/"])
    pmnt.remount()
    r = run(["rsync", "-ai", str(src) + "/", pmnt.path + "/dst/"])
    assert r.stdout == "", "rsync after remount found differences:\n" + r.stdout


def test_rsync_aX_succeeds(mnt, tmp_path):
    src = tmp_path / "src"
    make_tree(src)
    os.setxattr(src / "a.txt", "user.tag", b"t1")
    run(["rsync", "-aX", str(src) + "/", mnt.path + "/dst/"])
    assert os.getxattr(mnt.path + "/dst/a.txt", "user.tag") == b"t1"
    assert tree_state(Path(mnt.path) / "dst") == tree_state(src)
    # A second run succeeds too. (It itemizes "x" on every file: lexfs's computed
    # user.lexfs.* names are listed, the source lacks them, and removing them is
    # a no-op.)
    run(["rsync", "-aX", str(src) + "/", mnt.path + "/dst/"])
    assert os.getxattr(mnt.path + "/dst/a.txt", "user.tag") == b"t1"


def test_rsync_root_attributes(mnt, tmp_path):
    """rsync src/ MOUNT/ sets the root's mode and time; a second run has nothing to do."""
    src = tmp_path / "src"
    make_tree(src)
    run(["rsync", "-a", str(src) + "/", mnt.path + "/"])
    r = run(["rsync", "-ai", str(src) + "/", mnt.path + "/"])
    assert r.stdout == ""


def test_removing_lexfs_xattr_is_a_no_op(mnt):
    p = mnt.path + "/f"
    Path(p).write_text("x")
    os.removexattr(p, "user.lexfs.url")
    assert "user.lexfs.url" in os.listxattr(p)
    assert os.getxattr(p, "user.lexfs.url")
