"""Keys written behind the mount's back (by lexfs-storetool) as the mount shows them.

Odd but valid keys appear as they are; keys that cannot be a path ("a//b", ".",
"..", names over 255 bytes) are skipped with one warning each; a key that is both
a file and a prefix shows as the directory. Which odd keys a backend can hold at
all differs (the local driver refuses most), so the expectations are computed
from the keys the backend really holds after the attempt.
"""
import errno
import json
import os
import stat
from pathlib import Path

import pytest

GOOD = {
    "k/with space.txt": b"space",
    "k/\u00fcn\u00efc\u00f6d\u00e9.txt": "unicode".encode(),
    "k/pct%20plus+hash#q?.txt": b"punct",
    "k/" + "n" * 255: b"longest name",
    "k/implicit/dir/file.txt": b"deep, no markers",
}
BAD = ["k/a//b", "k/./dot", "k/../dotdot", "k/" + "m" * 256, "k/both", "k/both/child"]


def put(backend, tmp_path, key, data):
    f = tmp_path / "payload"
    f.write_bytes(data)
    return backend.storetool("put", key, str(f), check=False)


def stored_keys(backend, prefix):
    out = backend.storetool("list", prefix, "--recursive").stdout.decode()
    return {json.loads(l)["key"] for l in out.splitlines() if l.strip()}


def test_storetool_keys_appear(pmnt, tmp_path):
    for key, data in GOOD.items():
        r = put(pmnt.backend, tmp_path, key, data)
        assert r.returncode == 0, (key, r.stderr)
    os.setxattr(pmnt.path, "user.lexfs.invalidate", b"1")
    names = set(os.listdir(pmnt.path + "/k"))
    assert names == {"with space.txt", "\u00fcn\u00efc\u00f6d\u00e9.txt",
                     "pct%20plus+hash#q?.txt", "n" * 255, "implicit"}
    for key, data in GOOD.items():
        assert Path(pmnt.path, key).read_bytes() == data, key
    assert stat.S_ISDIR(os.stat(pmnt.path + "/k/implicit/dir").st_mode)
    with pytest.raises(OSError) as e:
        os.rmdir(pmnt.path + "/k/implicit")
    assert e.value.errno == errno.ENOTEMPTY
    os.unlink(pmnt.path + "/k/implicit/dir/file.txt")
    assert "implicit" not in os.listdir(pmnt.path + "/k")


def test_bad_keys_skipped_without_crash(pmnt, tmp_path):
    put(pmnt.backend, tmp_path, "k/fine.txt", b"fine")
    for key in BAD:
        put(pmnt.backend, tmp_path, key, b"x")  # a backend may refuse some
    keys = stored_keys(pmnt.backend, "k/")
    assert "k/fine.txt" in keys
    os.setxattr(pmnt.path, "user.lexfs.invalidate", b"1")
    for _ in range(2):
        names = set(os.listdir(pmnt.path + "/k"))
    expect = {"fine.txt"}
    warned = []
    for key in keys:
        first = key[2:].split("/")[0]
        if key[2:].startswith("/") or first in (".", "..") or len(first.encode()) > 255:
            warned.append(key)
        else:
            expect.add(first)
    assert names == expect
    if "k/both" in keys and any(k.startswith("k/both/") for k in keys):
        assert stat.S_ISDIR(os.stat(pmnt.path + "/k/both").st_mode)
        assert os.listdir(pmnt.path + "/k/both") == ["child"]
        assert pmnt.log.count('"k/both" is both a file and a directory') == 1
    for key in warned:  # one warning per key, though listed twice
        # A delimited listing shows "k/../dotdot" as the common prefix "k/../":
        # that is the name the warning carries on a bucket that holds such keys.
        shown = key[:key.find("/", 2) + 1] if "/" in key[2:] else key
        assert pmnt.log.count('skipping key "%s"' % shown) == 1, key
    assert Path(pmnt.path, "k", "fine.txt").read_bytes() == b"fine"
    # the daemon is alive and well
    Path(pmnt.path, "k", "new").write_text("after")
    assert Path(pmnt.path, "k", "new").read_text() == "after"


def test_local_driver_refuses_bad_keys(tmp_path, backend_local):
    """The local driver cannot hold keys that are not paths: it refuses them."""
    b = backend_local.fresh()
    for key in ("k/a//b", "k/./dot", "k/../dotdot"):
        r = put(b, tmp_path, key, b"x")
        assert r.returncode == errno.EINVAL, (key, r.returncode, r.stderr)
        assert b"LEXFS-006" in r.stderr


def test_store_written_file_after_mount_is_seen(pmnt, tmp_path):
    assert os.listdir(pmnt.path) == []
    put(pmnt.backend, tmp_path, "later.txt", b"written by another client")
    os.setxattr(pmnt.path, "user.lexfs.invalidate", b"1")
    assert Path(pmnt.path, "later.txt").read_bytes() == b"written by another client"
