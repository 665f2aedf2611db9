"""Runtime controls on the mount root: user.lexfs.control.<name> -> store_control."""
import errno
import json
import os
from pathlib import Path

import pytest


def test_memory_fault_injection_gives_eio_then_recovers(mounter, backend_memory):
    m = mounter(backend_memory.source)
    m.expect_errors(".")  # failures are the point of this test
    Path(m.path, "before").write_text("ok")
    os.setxattr(m.path, "user.lexfs.control.fault", b"error_rate=1,errno=EIO")
    os.setxattr(m.path, "user.lexfs.invalidate", b"1")  # so the store is asked
    with pytest.raises(OSError) as e:
        os.stat(m.path + "/nodir")
    assert e.value.errno == errno.EIO
    with pytest.raises(OSError) as e:
        Path(m.path, "during").write_text("x")
    assert e.value.errno == errno.EIO
    os.setxattr(m.path, "user.lexfs.control.fault", b"off")
    Path(m.path, "after").write_text("fine")
    assert Path(m.path, "after").read_text() == "fine"
    assert Path(m.path, "before").read_text() == "ok"


def test_bad_control_value_is_einval(mounter, backend_memory):
    m = mounter(backend_memory.source)
    m.expect_errors("fault")
    with pytest.raises(OSError) as e:
        os.setxattr(m.path, "user.lexfs.control.fault", b"error_rate=banana")
    assert e.value.errno == errno.EINVAL


def test_control_without_driver_support_is_enotsup(mounter, backend_local):
    b = backend_local.fresh()
    m = mounter(b.source, opts=b.mount_opts())
    with pytest.raises(OSError) as e:
        os.setxattr(m.path, "user.lexfs.control.fault", b"off")
    assert e.value.errno in (errno.ENOTSUP, errno.EOPNOTSUPP)


def test_control_only_on_root(mnt):
    Path(mnt.path, "f").write_text("x")
    with pytest.raises(OSError) as e:
        os.setxattr(mnt.path + "/f", "user.lexfs.control.fault", b"off")
    assert e.value.errno == errno.EPERM
    with pytest.raises(OSError) as e:
        os.setxattr(mnt.path + "/f", "user.lexfs.invalidate", b"1")
    assert e.value.errno == errno.ENOTDIR  # invalidate works on directories


def test_stats_count_open_handles(mnt):
    def fs_stats():
        return json.loads(os.getxattr(mnt.path, "user.lexfs.stats"))["fs"]
    with open(mnt.path + "/f", "w") as f:
        f.write("x")
        assert fs_stats()["open_handles"] == 1
    mnt.settle()
    assert fs_stats()["open_handles"] == 0
