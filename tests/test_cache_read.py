"""Read path and bounded disk of the cache, through a real mount."""
import errno
import os
import random
import subprocess
from pathlib import Path

import pytest

from conftest import invalidate, stats

MIB = 1024 * 1024


def ops(m):
    return stats(m)["store"]["ops"]


def test_sequential_read_few_growing_ranges(mounter, backend):
    b = backend.fresh()
    m = mounter(b.source, opts=b.mount_opts(), env=b.env)
    data = random.Random(7).randbytes(64 * MIB + 5)
    (Path(m.path) / "big").write_bytes(data)
    m.settle()  # the writer's RELEASE has arrived: invalidate may drop its data
    invalidate(m)
    before = ops(m)["download"]["calls"]
    with open(Path(m.path) / "big", "rb", buffering=0) as f:
        got = bytearray()
        while True:
            chunk = f.read(128 * 1024)
            if not chunk:
                break
            got += chunk
    assert bytes(got) == data
    calls = ops(m)["download"]["calls"] - before
    s = stats(m)
    print("64 MiB sequential read: %d ranged GETs, %d read-ahead" % (calls, s["readahead_reads"]))
    # 512 reads of 128 KiB; read-ahead turns them into far fewer, growing GETs
    assert calls <= 64
    assert s["readahead_hits"] > 400


def test_random_small_reads_do_not_download_object(mounter, backend):
    b = backend.fresh()
    m = mounter(b.source, opts=b.mount_opts(), env=b.env)
    data = random.Random(8).randbytes(64 * MIB)
    (Path(m.path) / "big").write_bytes(data)
    m.settle()  # the writer's RELEASE has arrived: invalidate may drop its data
    invalidate(m)
    before = ops(m)["download"]["bytes"]
    rng = random.Random(9)
    fd = os.open(Path(m.path) / "big", os.O_RDONLY)
    try:
        for _ in range(100):
            off = rng.randrange(0, 64 * MIB - 4096) & ~4095
            os.lseek(fd, off, os.SEEK_SET)
            assert os.read(fd, 4096) == data[off:off + 4096]
    finally:
        os.close(fd)
    got = ops(m)["download"]["bytes"] - before
    print("100 random 4 KiB reads downloaded %d KiB" % (got // 1024))
    # the kernel may round a read up to its own read-ahead (128 KiB); never the object
    assert got < 100 * 256 * 1024


@pytest.fixture
def small_tmpfs(tmp_path):
    d = tmp_path / "tmpfs"
    d.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(d)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail("cannot mount a tmpfs for the cache (needs root): " + r.stderr)
    yield d
    subprocess.run(["umount", "-l", str(d)], capture_output=True)


def test_full_cache_disk_enospc_no_partial_object(mounter, persistent_backend, small_tmpfs):
    """A cache directory on a 24 MiB tmpfs: a 64 MiB write gets ENOSPC (at write or
    close), the daemon keeps working and the store has no partial object."""
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["cache_dir=" + str(small_tmpfs / "c"),
                                                  "part_size=5m"], env=b.env)
    m.expect_errors(r"cache disk full|No space left")
    block = os.urandom(MIB)
    fd = os.open(Path(m.path) / "huge", os.O_WRONLY | os.O_CREAT, 0o644)
    err = 0
    try:
        for _ in range(64):
            os.write(fd, block)
    except OSError as e:
        err = e.errno
    try:
        os.close(fd)
    except OSError as e:
        err = err or e.errno
    assert err == errno.ENOSPC
    assert b.storetool("info", "huge", check=False).returncode == errno.ENOENT
    s = stats(m)
    assert s["enospc"] >= 1
    assert s["store"]["ops"]["mp_complete"]["calls"] == 0
    # the daemon survives and the space is back: a small file still works
    (Path(m.path) / "small").write_bytes(b"still alive")
    assert b.storetool("get", "small").stdout == b"still alive"


def test_cache_size_limit_back_pressure(mounter, persistent_backend, tmp_path):
    """Write-back with cache_size below the data written: writers wait for uploads
    (they do not fail), clean data is evicted, everything arrives."""
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=1", "cache_size=16m"], env=b.env)
    files = {"f%d" % i: os.urandom(3 * MIB) for i in range(12)}  # 36 MiB > 16 MiB
    for name, data in files.items():
        (Path(m.path) / name).write_bytes(data)
        assert stats(m)["cache_used"] <= 16 * MIB + 3 * MIB
    s = stats(m)
    assert s["space_waits"] >= 1, s   # writers waited for uploads to make room
    assert s["evictions"] >= 1, s     # and uploaded (clean) files made way
    m.unmount()
    for name, data in files.items():
        assert b.storetool("get", name).stdout == data, name
