"""The write-back cache through a real mount: write-back mode, the journal after
kill -9, the rsync pattern, upload failures, streaming multipart."""
import errno
import json
import os
import random
import re
import signal
import subprocess
import threading
import time
import zlib
from pathlib import Path

import pytest

from conftest import (Backend, PY, _is_mounted, control, invalidate, run, stats,
                      wait_for)

MIB = 1024 * 1024


def body_of(i):
    """The bytes of file i of the kill -9 test: sizes vary, content is unique."""
    return (("file %d " % i) * (1 + (i * 37) % 400)).encode()


WRITER = r"""
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
def body_of(i):
    return (("file %d " % i) * (1 + (i * 37) % 400)).encode()
os.makedirs(root + "/d", exist_ok=True)
for i in range(n):
    p = "%s/d/f%04d" % (root, i)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, body_of(i))
        os.close(fd)
    except OSError:
        break
    print(i, flush=True)
"""


def test_kill9_in_writeback_loses_no_closed_file(mounter, persistent_backend, tmp_path):
    """kill -9 while 1,000 files are being written and closed: the next mount with the
    same cache directory uploads every closed file, with the right bytes, and no
    object is partial."""
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3600"], env=b.env)
    w = subprocess.Popen([PY, "-c", WRITER, m.path, "1000"], stdout=subprocess.PIPE, text=True)
    closed = []
    for line in w.stdout:
        closed.append(int(line))
        if len(closed) >= 600:
            break
    os.kill(m.proc.pid, signal.SIGKILL)  # the daemon dies mid-stream
    m.proc.wait(10)
    for line in w.stdout:
        closed.append(int(line))
    w.wait(60)
    subprocess.run(["fusermount3", "-uz", m.path], stderr=subprocess.DEVNULL)
    assert len(closed) >= 600
    # nothing was uploaded before the kill (the delay is an hour)
    listed = b.storetool("list", "d/", "--recursive", check=False)
    assert listed.stdout.count(b'"key"') < len(closed)

    m.start()  # same cache directory: the journal is replayed
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 120, "journal replay uploads")
    m.unmount()
    assert "from the journal" in m.log

    # look at the store through a fresh mount with its own empty cache
    m2 = mounter(b.source, opts=b.mount_opts(), env=b.env)
    names = sorted(os.listdir(Path(m2.path) / "d"))
    for i in closed:
        assert (Path(m2.path) / "d" / ("f%04d" % i)).read_bytes() == body_of(i), i
    for name in names:  # whatever exists is whole
        i = int(name[1:])
        assert (Path(m2.path) / "d" / name).read_bytes() == body_of(i), name


def test_writeback_close_returns_before_upload_and_unmount_drains(mounter,
                                                                    persistent_backend):
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3600"], env=b.env)
    for i in range(20):
        (Path(m.path) / ("w%d" % i)).write_bytes(b"data %d" % i)
    # closed but not uploaded: readable through the mount, absent from the store
    assert (Path(m.path) / "w3").read_bytes() == b"data 3"
    assert b.storetool("info", "w3", check=False).returncode == errno.ENOENT
    s = stats(m)
    assert s["mode"] == "writeback" and s["pending_uploads"] == 20
    m.unmount()  # drains
    assert "unmount: uploads finished" in m.log
    for i in range(20):
        assert b.storetool("get", "w%d" % i).stdout == b"data %d" % i


def test_files_not_yet_uploaded_are_listed(mounter, persistent_backend):
    """ls shows what the store does not have yet: closed files waiting for their
    upload, a file still open for writing, and the directory of a deeper one."""
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3600"], env=b.env)
    (Path(m.path) / "waiting").write_bytes(b"12345")
    (Path(m.path) / "d").mkdir()
    (Path(m.path) / "d" / "inner").write_bytes(b"x")
    fd = os.open(Path(m.path) / "open-now", os.O_WRONLY | os.O_CREAT, 0o640)
    try:
        os.write(fd, b"abc")
        assert b.storetool("info", "waiting", check=False).returncode == errno.ENOENT
        assert sorted(os.listdir(m.path)) == ["d", "open-now", "waiting"]
        assert os.listdir(Path(m.path) / "d") == ["inner"]
        out = run(["ls", "-l", m.path]).stdout
        line = [ln for ln in out.splitlines() if ln.endswith(" waiting")][0]
        assert line.startswith("-rw-r--r-- ") and " 5 " in line, line
    finally:
        os.close(fd)


def test_fsync_uploads_now_in_writeback(mounter, persistent_backend):
    b = persistent_backend.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3600"], env=b.env)
    fd = os.open(Path(m.path) / "synced", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, b"durable")
    os.fsync(fd)
    assert b.storetool("get", "synced").stdout == b"durable"
    os.close(fd)


def test_rsync_pattern_one_upload_zero_copies(mounter, backend_memory, tmp_path):
    """rsync writes .name.XXXXXX, sets times and mode, renames to name: in write-back
    mode that is one upload per file under the final name, and no copy."""
    src = tmp_path / "src"
    src.mkdir()
    for i in range(10):
        (src / ("f%d.txt" % i)).write_bytes(os.urandom(1000 + i))
        os.chmod(src / ("f%d.txt" % i), 0o640)
    b = backend_memory.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3"], env=b.env)
    os.mkdir(Path(m.path) / "dst")
    before = stats(m)["store"]["ops"]
    run(["rsync", "-a", str(src) + "/", m.path + "/dst/"])
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 60, "write-back uploads")
    after = stats(m)["store"]["ops"]

    def calls(op):
        return after.get(op, {}).get("calls", 0) - before.get(op, {}).get("calls", 0)

    assert calls("upload") + calls("mp_complete") == 10
    assert calls("copy") == 0 and calls("move") == 0
    for i in range(10):
        p = Path(m.path) / "dst" / ("f%d.txt" % i)
        assert p.read_bytes() == (src / ("f%d.txt" % i)).read_bytes()
        assert oct(os.stat(p).st_mode & 0o777) == oct(0o640)
        assert int(os.stat(p).st_mtime) == int(os.stat(src / ("f%d.txt" % i)).st_mtime)
    assert not [n for n in os.listdir(Path(m.path) / "dst") if n.startswith(".")]


def _write_file(path, data, chunk=MIB, before_write=None):
    """Write data; returns (write errno or 0, close errno or 0)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    if before_write:
        before_write()
    werr = 0
    try:
        for off in range(0, len(data), chunk):
            os.write(fd, data[off:off + chunk])
    except OSError as e:
        werr = e.errno
    try:
        os.close(fd)
    except OSError as e:
        return werr, e.errno
    return werr, 0


@pytest.mark.parametrize("spec", ["error_rate=0.5", "fail_after=5", "error_rate=0.4,latency_ms=3"])
def test_faults_during_large_upload_right_bytes_or_eio(mounter, backend_memory, spec):
    """Memory-driver faults during a 40 MiB streamed upload: close succeeds and the
    store has the right bytes, or close reports EIO and the data stays in the cache;
    once the faults stop the store gets the right bytes; retries are in the stats."""
    b = backend_memory.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["part_size=5m"], env=b.env)
    m.expect_errors(r"injected fault|upload of .* failed|multipart|part \d+ of")
    data = random.Random(spec).randbytes(40 * MIB + 333)
    # faults start after the open (a failed lookup would fail the open instead)
    werr, cerr = _write_file(Path(m.path) / "big.bin", data,
                             before_write=lambda: control(m, "fault", spec))
    control(m, "fault", "off")
    assert werr == 0
    assert cerr in (0, errno.EIO)
    if cerr == 0:
        assert stats(m)["pending_uploads"] == 0
    # EIO kept the data: a retry (background, or fsync now) uploads it
    fd = os.open(Path(m.path) / "big.bin", os.O_RDWR)
    os.fsync(fd)
    os.close(fd)
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 60, "retry")
    invalidate(m)
    assert (Path(m.path) / "big.bin").read_bytes() == data  # read from the store
    ops = stats(m)["store"]["ops"]
    assert sum(v["retries"] for v in ops.values()) > 0


def test_streaming_write_uploads_before_close(mounter, backend_memory):
    """A sequential writer streams: parts are in the store before close."""
    b = backend_memory.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["part_size=5m"], env=b.env)
    fd = os.open(Path(m.path) / "s.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    block = os.urandom(MIB)
    for i in range(40):
        os.write(fd, block)
    wait_for(lambda: stats(m)["parts"] >= 5, 30, "parts uploaded while writing")
    s = stats(m)
    assert s["streams"] == 1 and s["store"]["ops"]["mp_part"]["calls"] >= 5
    assert s["pending_uploads"] == 1 and s["files"][0]["uploaded"] > 0
    os.close(fd)
    s = stats(m)
    assert s["pending_uploads"] == 0
    assert s["store"]["ops"]["mp_complete"]["calls"] == 1
    assert s["store"]["ops"]["upload"]["calls"] == 0  # no whole-file upload
    assert os.stat(Path(m.path) / "s.bin").st_size == 40 * MIB


def _peak_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


@pytest.mark.parametrize("backend_name", ["memory", "local"])
def test_1gib_streaming_write_bounded_rss(mounter, request, backend_name):
    """1 GiB written sequentially starts uploading before close, and the daemon's
    peak RSS stays bounded: under 256 MiB of its own (the memory driver also holds
    the object itself, twice while it assembles the parts)."""
    b = request.getfixturevalue("backend_" + backend_name).fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["part_size=8m"], env=b.env)
    fd = os.open(Path(m.path) / "g.bin", os.O_WRONLY | os.O_CREAT, 0o644)
    block = os.urandom(MIB)
    parts_before_close = 0
    for i in range(1024):
        os.write(fd, block)
        if i == 512:
            parts_before_close = stats(m)["parts"]
    os.close(fd)
    assert parts_before_close > 0
    assert os.stat(Path(m.path) / "g.bin").st_size == 1024 * MIB
    peak_mib = _peak_rss_kib(m.proc.pid) / 1024
    own = peak_mib - (2048 if backend_name == "memory" else 0)
    print("peak RSS %s: %.0f MiB" % (backend_name, peak_mib))
    assert own < 256, "peak RSS %.0f MiB" % peak_mib
    with open(Path(m.path) / "g.bin", "rb") as f:
        f.seek(700 * MIB)
        assert f.read(MIB) == block


def test_random_write_model(mnt, tmp_path):
    """Thousands of random writes, truncates, reads, closes and reopens, checked
    after each step against a local reference file."""
    rng = random.Random(1234)
    path = Path(mnt.path) / "model.bin"
    ref_path = tmp_path / "ref.bin"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    rfd = os.open(ref_path, os.O_RDWR | os.O_CREAT, 0o644)
    limit = 3 * MIB
    for step in range(3000):
        op = rng.random()
        if op < 0.55:
            off = rng.randrange(limit)
            data = rng.randbytes(rng.choice([1, 17, 512, 4096, 65536, 200000]))
            assert os.pwrite(fd, data, off) == len(data)
            os.pwrite(rfd, data, off)
        elif op < 0.62:
            size = rng.randrange(limit)
            os.ftruncate(fd, size)
            os.ftruncate(rfd, size)
        elif op < 0.66:
            os.close(fd)
            fd = os.open(path, os.O_RDWR)
        elif op < 0.68:
            os.fsync(fd)
        off = rng.randrange(limit)
        n = rng.choice([1, 100, 4096, 100000])
        assert os.pread(fd, n, off) == os.pread(rfd, n, off), step
        assert os.fstat(fd).st_size == os.fstat(rfd).st_size, step
    os.close(fd)
    expect = ref_path.read_bytes()
    assert path.read_bytes() == expect
    invalidate(mnt)
    assert path.read_bytes() == expect  # the store has the same bytes
    os.close(rfd)


def test_concurrent_readers_and_writers(mnt):
    """Writers on disjoint blocks and readers at the same time: every block a reader
    sees is one the writers wrote whole; at the end the file is exactly right."""
    path = Path(mnt.path) / "shared.bin"
    nblocks, bs = 64, 64 * 1024
    path.write_bytes(b"\0" * nblocks * bs)
    errors = []

    def writer(wid):
        try:
            fd = os.open(path, os.O_WRONLY)
            try:
                for rnd in range(5):
                    for blk in range(wid, nblocks, 4):
                        os.pwrite(fd, bytes([1 + (blk + rnd) % 250]) * bs, blk * bs)
            finally:
                os.close(fd)  # in sync mode close uploads: its error counts too
        except OSError as e:
            errors.append(e)

    def reader():
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(200):
                blk = random.randrange(nblocks)
                data = os.pread(fd, bs, blk * bs)
                if len(data) != bs:
                    errors.append("short read %d" % len(data))
                # A block being rewritten may mix old and new bytes, but every
                # byte is one that was written there (or the initial zero).
                valid = {0} | {1 + (blk + rnd) % 250 for rnd in range(5)}
                if not set(data) <= valid:
                    errors.append("block %d holds bytes never written: %r"
                                  % (blk, sorted(set(data) - valid)[:5]))
        except OSError as e:
            errors.append(e)
        finally:
            os.close(fd)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    data = path.read_bytes()
    for blk in range(nblocks):
        assert data[blk * bs:(blk + 1) * bs] == bytes([1 + (blk + 4) % 250]) * bs, blk


# ---- the journal (format: the header of cache/journal.c) ------------------------

J_HDR = 64
R_MAGIC = 0x4A52434C


def journal_records(path):
    """The whole records of a journal file, in order: dicts with type ("put" or
    "drop"), id, key (PUT), off and end (the record's byte range)."""
    d = Path(path).read_bytes()
    assert d[:8] == b"LEXFSJN\0" and int.from_bytes(d[8:12], "little") == 1
    pos, out = int.from_bytes(d[12:16], "little"), []
    while pos + 12 <= len(d):
        magic, plen, crc = (int.from_bytes(d[pos + i:pos + i + 4], "little")
                            for i in (0, 4, 8))
        p = d[pos + 12:pos + 12 + plen]
        if magic != R_MAGIC or len(p) != plen or zlib.crc32(p) != crc:
            break
        rec = {"type": {1: "put", 2: "drop"}[p[0]], "id": int.from_bytes(p[4:12], "little"),
               "off": pos, "end": pos + 12 + plen}
        if p[0] == 1:
            klen = int.from_bytes(p[20:22], "little")
            rec["key"] = p[22:22 + klen].decode()
        out.append(rec)
        pos += 12 + plen
    return out


def live_keys(records):
    """Keys whose id's last record is a PUT (what a replay uploads)."""
    last = {}
    for r in records:
        last[r["id"]] = r
    return sorted(r["key"] for r in last.values() if r["type"] == "put")


def cache_snapshot(cache_dir):
    """{relative path: bytes} of every file in a cache directory."""
    root = Path(cache_dir)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def _write_pending_then_kill9(mounter, b, files):
    """A write-back mount that closes `files` ({name: bytes}) and is killed with -9
    before it uploads any: the journal names them all."""
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3600"], env=b.env)
    for name, data in files.items():
        (Path(m.path) / name).write_bytes(data)
    os.kill(m.proc.pid, signal.SIGKILL)
    m.proc.wait(10)
    m.proc = None
    subprocess.run(["fusermount3", "-uz", m.path], stderr=subprocess.DEVNULL)
    assert live_keys(journal_records(Path(m.cache_dir) / "journal")) == sorted(files)
    return m


def _files(n, size=3000):
    return {"j%d" % i: (b"journal file %d " % i) * (size // 16) for i in range(n)}


@pytest.mark.parametrize("damage", ["magic", "version"])
def test_unknown_journal_refuses_the_mount_and_changes_nothing(mounter, backend_local,
                                                               damage):
    """A journal with another magic or a newer version: the mount fails, names the
    file and says what to do, and the cache directory is byte-identical afterwards;
    with the journal put back, the next mount uploads every file."""
    b = backend_local.fresh()
    files = _files(4)
    m = _write_pending_then_kill9(mounter, b, files)
    jpath = Path(m.cache_dir) / "journal"
    good = jpath.read_bytes()
    bad = bytearray(good)
    if damage == "magic":
        bad[0:8] = b"NOTLEXFS"
    else:
        bad[8:12] = (2).to_bytes(4, "little")
    jpath.write_bytes(bytes(bad))
    before = cache_snapshot(m.cache_dir)
    assert len([k for k in before if k.startswith("data/")]) == len(files)

    env = dict(os.environ)
    env.update(m.env)
    try:
        r = subprocess.run(m.command(), capture_output=True, text=True, timeout=60, env=env)
    finally:
        if _is_mounted(m.path):
            subprocess.run(["fusermount3", "-uz", m.path], stderr=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert not re.search(r"AddressSanitizer|LeakSanitizer|runtime error:", out), out
    assert str(jpath) in out, out
    assert "nothing was changed" in out and "move it away" in out, out
    assert cache_snapshot(m.cache_dir) == before  # the journal and cache files as they were
    for name in files:
        assert b.storetool("info", name, check=False).returncode == errno.ENOENT

    jpath.write_bytes(good)
    m.start()
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 60, "journal replay uploads")
    m.unmount()
    for name, data in files.items():
        assert b.storetool("get", name).stdout == data


@pytest.mark.parametrize("damage", ["truncated", "bad_crc"])
def test_torn_journal_tail_uploads_every_whole_put(mounter, backend_local, damage):
    """The last record of the journal torn (cut short, or a CRC that does not match):
    the next mount uploads every file whose PUT is whole and not the torn one."""
    b = backend_local.fresh()
    files = _files(5)
    m = _write_pending_then_kill9(mounter, b, files)
    jpath = Path(m.cache_dir) / "journal"
    recs = journal_records(jpath)
    last = recs[-1]
    torn = last["key"]
    # the premise: no earlier record of that file would upload it anyway
    assert last["type"] == "put" and [r["id"] for r in recs].count(last["id"]) == 1
    data = bytearray(jpath.read_bytes())
    if damage == "truncated":
        del data[(last["off"] + last["end"]) // 2:]
    else:
        data[last["end"] - 1] ^= 0xFF
    jpath.write_bytes(bytes(data))

    m.start()
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 60, "journal replay uploads")
    assert "ends with a torn record" in m.log
    assert "%d file(s) from the journal" % (len(files) - 1) in m.log
    assert torn not in os.listdir(m.path)  # not promised, so not kept either
    m.unmount()
    for name, body in files.items():
        if name == torn:
            assert b.storetool("info", name, check=False).returncode == errno.ENOENT
        else:
            assert b.storetool("get", name).stdout == body, name
    # the replay compacted the journal to one PUT per whole file (then a DROP each
    # as it went up): the torn record is gone and nothing is left pending
    recs = journal_records(jpath)
    assert sorted(r["key"] for r in recs if r["type"] == "put") == sorted(
        n for n in files if n != torn)
    assert live_keys(recs) == []


@pytest.fixture
def switchable_root(tmp_path):
    """A local-driver root that is a bind mount of itself, so it can be switched
    read-only under a running daemon (EROFS: root cannot write through it either).
    Yields (root, set_read_only)."""
    root = tmp_path / "switchable-root"
    root.mkdir()
    run(["mount", "--bind", str(root), str(root)])

    def set_read_only(ro):
        run(["mount", "-o", "remount,%s,bind" % ("ro" if ro else "rw"), str(root)])

    try:
        yield root, set_read_only
    finally:
        subprocess.run(["mount", "-o", "remount,rw,bind", str(root)], capture_output=True)
        subprocess.run(["umount", "-l", str(root)], capture_output=True)


def test_unmount_leaves_what_it_cannot_upload_in_the_journal(switchable_root, mounter):
    """Uploads fail at unmount (the store became read-only): the unmount still ends
    promptly, logs its progress and what it left, the files stay in the journal, and
    the next mount uploads them with the right bytes."""
    root, set_read_only = switchable_root
    b = Backend("local", "local", str(root), settings={"root_dir": str(root)})
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3600", "part_size=5m"],
                env=b.env)
    m.expect_errors(r"upload of .* failed|multipart (upload|complete) of")
    files = {"small": b"a small file\n", "renamed": os.urandom(70000),
             "big.bin": random.Random(7).randbytes(12 * MIB + 5)}
    (Path(m.path) / "small").write_bytes(files["small"])
    (Path(m.path) / ".renamed.tmp").write_bytes(files["renamed"])
    os.chmod(Path(m.path) / ".renamed.tmp", 0o600)
    os.rename(Path(m.path) / ".renamed.tmp", Path(m.path) / "renamed")
    (Path(m.path) / "big.bin").write_bytes(files["big.bin"])  # streams parts meanwhile
    assert stats(m)["pending_uploads"] == 3

    set_read_only(True)
    t0 = time.monotonic()
    m.unmount()
    elapsed = time.monotonic() - t0
    print("unmount with a read-only store: %.1f s" % elapsed)
    assert elapsed < 20
    assert m.exit_codes[-1] == 0
    assert "still to upload" in m.log
    assert "3 of 3 file(s) could not be uploaded; they stay in the journal" in m.log
    for name in files:
        assert "%s not uploaded; kept for the next mount" % name in m.log
        assert b.storetool("info", name, check=False).returncode == errno.ENOENT
    assert live_keys(journal_records(Path(m.cache_dir) / "journal")) == sorted(files)

    set_read_only(False)
    m.start()
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 60, "journal replay uploads")
    assert "3 file(s) from the journal" in m.log
    assert oct(os.stat(Path(m.path) / "renamed").st_mode & 0o777) == oct(0o600)
    m.unmount()
    for name, body in files.items():
        assert b.storetool("get", name).stdout == body, name
    assert b.storetool("info", ".renamed.tmp", check=False).returncode == errno.ENOENT


def test_unmount_gives_up_after_the_store_retries(mounter, backend_memory):
    """Uploads failing with a retryable error at unmount: the uploads the drain
    starts (upload_concurrency of them, default 4) each get the store's retries
    (default policy) and are not requeued; the store is down, so the other files
    are not tried, and the unmount ends in seconds; the journal carries all the
    files to the next mount (a new memory store: the journal is all that is left of
    them), which uploads them."""
    b = backend_memory.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=3600", "log_level=info"],
                env=b.env)
    m.expect_errors(r"upload of .* failed")
    files = {"r%02d" % i: b"retry me %d\n" % i for i in range(12)}
    for name, data in files.items():
        (Path(m.path) / name).write_bytes(data)
    control(m, "fault", "error_rate=1")  # EIO: retryable
    t0 = time.monotonic()
    m.unmount()
    elapsed = time.monotonic() - t0
    print("unmount with retried failures: %.1f s" % elapsed)
    assert elapsed < 30
    assert m.exit_codes[-1] == 0
    assert "12 of 12 file(s) could not be uploaded" in m.log
    # the files tried: all retries, once; not one per file
    assert 1 <= m.log.count("retry 4/4") <= 4, m.log
    assert "unmount: the store looks down (Input/output error)" in m.log
    assert live_keys(journal_records(Path(m.cache_dir) / "journal")) == sorted(files)

    m.start()
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 60, "journal replay uploads")
    assert stats(m)["uploads"] == len(files)
    invalidate(m)
    for name, data in files.items():
        assert (Path(m.path) / name).read_bytes() == data


# ---- eviction and pending metadata ---------------------------------------------

def _downloads(s):
    return s["store"]["ops"].get("download", {}).get("calls", 0)


def test_eviction_is_least_recently_used(mounter, backend_memory):
    """-o cache_size= holds three 1 MiB files written through the mount as clean data;
    A is read again, then D is written: B (least recently used) is the one evicted,
    and only B is downloaded again when all four are read."""
    b = backend_memory.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["cache_size=%d" % (3 * MIB + MIB // 2)],
                env=b.env)
    body = {n: random.Random(n).randbytes(MIB) for n in "ABCD"}
    for n in "ABC":
        (Path(m.path) / n).write_bytes(body[n])
    m.settle()
    s = stats(m)
    assert s["cached_files"] == 3 and s["evictions"] == 0
    dl = _downloads(s)
    assert (Path(m.path) / "A").read_bytes() == body["A"]
    m.settle()
    assert _downloads(stats(m)) == dl  # from the cache's disk
    (Path(m.path) / "D").write_bytes(body["D"])
    m.settle()
    s = stats(m)
    assert s["evictions"] == 1 and s["cache_used"] <= 3 * MIB + MIB // 2
    for n in "ACDB":
        dl = _downloads(stats(m))
        assert (Path(m.path) / n).read_bytes() == body[n]
        m.settle()
        if n == "B":
            assert _downloads(stats(m)) > dl, "B was not evicted"
        else:
            assert _downloads(stats(m)) == dl, "%s was evicted" % n


def test_chown_of_a_pending_file_changes_its_upload(mounter, backend_local):
    """chown of a file not yet uploaded (write-back): the object arrives with the new
    uid and gid, in exactly one upload and with no copy or metadata update."""
    b = backend_local.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["writeback=4"], env=b.env)
    p = Path(m.path) / "owned"
    p.write_bytes(b"whose file is this?")
    before = stats(m)
    assert before["pending_uploads"] == 1
    os.chown(p, 4321, 8765)
    s = stats(m)
    assert s["pending_uploads"] == 1 and s["uploads"] == 0  # still only in the cache
    st = os.stat(p)
    assert (st.st_uid, st.st_gid) == (4321, 8765)
    wait_for(lambda: stats(m)["pending_uploads"] == 0, 60, "the write-back upload")
    after = stats(m)["store"]["ops"]

    def calls(op):
        return after.get(op, {}).get("calls", 0) - before["store"]["ops"].get(op, {}).get(
            "calls", 0)

    assert calls("upload") + calls("mp_complete") == 1
    assert calls("copy") == 0 and calls("move") == 0 and calls("set_meta") == 0
    meta = dict(json.loads(b.storetool("info", "owned").stdout)["meta"])
    assert (meta.get("uid"), meta.get("gid")) == ("4321", "8765")
    assert b.storetool("get", "owned").stdout == b"whose file is this?"
