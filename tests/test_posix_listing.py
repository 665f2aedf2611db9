"""What a listing costs: `ls -l` of N files uses the listing's attributes."""
import errno
import json
import os
import stat
import time
from pathlib import Path

import pytest

from conftest import BACKEND_NAMES, run

# S3's ListObjectsV2 carries no user metadata (mode, uid, ...): there the
# attributes of listed objects cost a HEAD each.
NO_META_LISTING = ["s3", "r2"]


def store_ops(m):
    return json.loads(os.getxattr(m.path, "user.lexfs.stats"))["store"]["ops"]


def make_files(m, n):
    for i in range(n):
        Path(m.path, "f%03d" % i).write_bytes(b"x" * i)
    os.chmod(m.path + "/f007", 0o600)


def ls_l(m):
    """`ls -l` of the mount root: its lines and the HEAD and LIST calls it cost."""
    before = store_ops(m)
    out = run(["ls", "-l", m.path]).stdout.splitlines()
    after = store_ops(m)
    heads = after["info"]["calls"] - before["info"]["calls"]
    lists = after["list"]["calls"] - before["list"]["calls"]
    return out, heads, lists


def check_listing(out, n):
    assert len(out) == n + 1
    line7 = [l for l in out if l.endswith(" f007")][0]
    assert line7.startswith("-rw------- ") and " 7 " in line7


@pytest.mark.parametrize("name", [n for n in BACKEND_NAMES
                                  if n != "memory" and n not in NO_META_LISTING])
def test_ls_l_costs_no_head_per_file(mounter, request, name):
    """A listing that carries metadata fills the attributes: no HEAD per file."""
    b = request.getfixturevalue("backend_" + name).fresh()
    m = mounter(b.source, opts=b.mount_opts(), env=b.env)
    n = 60
    make_files(m, n)
    m.remount()  # nothing cached by the kernel or the daemon
    out, heads, lists = ls_l(m)
    check_listing(out, n)
    assert heads < 5, "ls -l of %d files cost %d HEADs" % (n, heads)
    assert lists <= 3


@pytest.mark.parametrize("name", NO_META_LISTING)
def test_ls_l_heads_run_together_once(mounter, request, name):
    """A listing without metadata (S3): at most one HEAD per file, made by readdir
    (in parallel), not one per lookup after it; mode from the metadata is right."""
    b = request.getfixturevalue("backend_" + name).fresh()
    m = mounter(b.source, opts=b.mount_opts(), env=b.env)
    n = 60
    make_files(m, n)
    m.remount()
    out, heads, lists = ls_l(m)
    check_listing(out, n)
    assert heads <= n, "ls -l of %d files cost %d HEADs" % (n, heads)
    assert lists <= 3


def test_second_ls_l_within_ttl_costs_nothing(mounter, persistent_backend):
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["stat_ttl=600", "list_ttl=600"],
                env=b.env)
    n = 30
    make_files(m, n)
    m.remount()
    out, _, _ = ls_l(m)
    check_listing(out, n)
    # The kernel's own attribute cache (attr_timeout) is short; the daemon's
    # caches answer once it has expired.
    time.sleep(1.2)
    out, heads, lists = ls_l(m)
    check_listing(out, n)
    assert (heads, lists) == (0, 0)


def test_invalidate_drops_the_listing(mounter, persistent_backend):
    """A key written behind the mount's back shows after user.lexfs.invalidate,
    without waiting for the TTLs."""
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["stat_ttl=600", "list_ttl=600"],
                env=b.env)
    Path(m.path, "mine").write_bytes(b"1")
    assert sorted(os.listdir(m.path)) == ["mine"]
    b.storetool("put", "theirs", "-", input=b"22")
    assert sorted(os.listdir(m.path)) == ["mine"]  # the listing cache answers
    os.setxattr(m.path, "user.lexfs.invalidate", b"1")
    assert sorted(os.listdir(m.path)) == ["mine", "theirs"]
    assert Path(m.path, "theirs").read_bytes() == b"22"


def test_root_is_a_directory_with_mount_defaults(mnt):
    st = os.stat(mnt.path)
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert st.st_uid == os.getuid()


def test_invalidate_on_a_directory_drops_what_lies_under_it(mounter, persistent_backend):
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["stat_ttl=600", "list_ttl=600"],
                env=b.env)
    Path(m.path, "d").mkdir()
    Path(m.path, "d", "mine").write_bytes(b"1")
    assert os.listdir(m.path + "/d") == ["mine"]
    b.storetool("put", "d/theirs", "-", input=b"22")
    assert os.listdir(m.path + "/d") == ["mine"]
    os.setxattr(m.path + "/d", "user.lexfs.invalidate", b"1")
    assert sorted(os.listdir(m.path + "/d")) == ["mine", "theirs"]
    # a file is not a directory
    with pytest.raises(OSError) as e:
        os.setxattr(m.path + "/d/mine", "user.lexfs.invalidate", b"1")
    assert e.value.errno == errno.ENOTDIR
