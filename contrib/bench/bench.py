#!/usr/bin/python3
"""bench.py - lexfs beside tmpfs and beside the FUSE ceiling of this machine.

Prints a table: sequential write and read of 1 GiB (1 MiB requests), create of
1,000 small files, `ls -l` of 10,000 entries; measured on tmpfs, on libfuse's
passthrough_ll example over tmpfs (the FUSE ceiling: compiled here from the
libfuse3-dev package), and on lexfs with the memory driver (cache on tmpfs).
The last column is lexfs / ceiling (1.0 = as fast as FUSE allows).

Run as root (it mounts a tmpfs):  /usr/bin/python3 contrib/bench/bench.py
Environment: LEXFS_BUILD (build directory, default the repo root), BENCH_GIB
(size of the sequential test in GiB, default 1).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

MIB = 1024 * 1024
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("LEXFS_BUILD", ROOT)
GIB = float(os.environ.get("BENCH_GIB", "1"))
EXAMPLES = "/usr/share/doc/libfuse3-dev/examples"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def wait_mounted(path, proc):
    for _ in range(400):
        if mounted(path):
            return
        if proc.poll() is not None:
            sys.exit("mount of %s failed" % path)
        time.sleep(0.025)
    sys.exit("mount of %s timed out" % path)


def umount(path, proc):
    subprocess.run(["fusermount3", "-u", path], capture_output=True)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def seq_write(d, size):
    block = os.urandom(MIB)
    fd = os.open(os.path.join(d, "big"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for _ in range(size // MIB):
        os.write(fd, block)
    os.close(fd)  # lexfs (sync mode): the object is durable when close returns


def seq_read(d, size):
    fd = os.open(os.path.join(d, "big"), os.O_RDONLY)
    n = 0
    while True:
        b = os.read(fd, MIB)
        if not b:
            break
        n += len(b)
    os.close(fd)
    assert n == size, n


def create_small(d, n=1000):
    os.mkdir(os.path.join(d, "small"))
    data = b"x" * 4096
    for i in range(n):
        with open(os.path.join(d, "small", "f%05d" % i), "wb") as f:
            f.write(data)


def make_many(d, n=10000):
    os.mkdir(os.path.join(d, "many"))
    for i in range(n):
        with open(os.path.join(d, "many", "e%05d" % i), "wb"):
            pass


def ls_l(d):
    r = subprocess.run(["ls", "-l", os.path.join(d, "many")], capture_output=True)
    assert r.returncode == 0


def bench(d, drop=None):
    size = int(GIB * 1024) * MIB
    res = {}
    res["write"] = size / MIB / timed(lambda: seq_write(d, size))
    if drop:
        drop()
    res["read"] = size / MIB / timed(lambda: seq_read(d, size))
    os.unlink(os.path.join(d, "big"))
    res["create"] = 1000 / timed(lambda: create_small(d))
    make_many(d)
    if drop:
        drop()
    res["ls"] = timed(lambda: ls_l(d))
    return res


def main():
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root (it mounts a tmpfs)")
    lexfs = os.path.join(BUILD, "lexfs")
    if not os.access(lexfs, os.X_OK):
        sys.exit("bench.py: build lexfs first (%s)" % lexfs)
    work = tempfile.mkdtemp(prefix="lexfs-bench-")
    tmpfs = os.path.join(work, "tmpfs")
    os.mkdir(tmpfs)
    sh(["mount", "-t", "tmpfs", "-o", "size=%dm" % int(GIB * 1024 * 3 + 512), "tmpfs", tmpfs])
    procs = []
    try:
        # the ceiling: passthrough_ll over tmpfs
        pt = os.path.join(work, "passthrough_ll")
        cflags = sh(["pkg-config", "--cflags", "--libs", "fuse3"]).stdout.split()
        sh(["gcc", "-O2", "-o", pt, os.path.join(EXAMPLES, "passthrough_ll.c")] + cflags)
        pt_src, pt_mnt = os.path.join(tmpfs, "pt"), os.path.join(work, "pt")
        os.mkdir(pt_src)
        os.mkdir(pt_mnt)
        p = subprocess.Popen([pt, "-f", "-o", "source=" + pt_src, pt_mnt],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append((pt_mnt, p))
        wait_mounted(pt_mnt, p)

        lx_mnt, lx_cache = os.path.join(work, "lx"), os.path.join(tmpfs, "cache")
        os.mkdir(lx_mnt)
        p = subprocess.Popen([lexfs, "mem://", lx_mnt, "-f", "-o",
                              "config=none,cache_dir=" + lx_cache],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append((lx_mnt, p))
        wait_mounted(lx_mnt, p)

        plain = os.path.join(tmpfs, "plain")
        os.mkdir(plain)
        results = {
            "tmpfs": bench(plain),
            "ceiling": bench(pt_mnt),
            "lexfs": bench(lx_mnt, drop=lambda: os.setxattr(lx_mnt, "user.lexfs.invalidate",
                                                              b"1")),
        }
    finally:
        for mnt, p in reversed(procs):
            umount(mnt, p)
        subprocess.run(["umount", "-l", tmpfs], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        ("sequential write %g GiB, 1 MiB writes (MiB/s)" % GIB, "write", True),
        ("sequential read %g GiB, 1 MiB reads (MiB/s)" % GIB, "read", True),
        ("create 1,000 files of 4 KiB (files/s)", "create", True),
        ("ls -l of 10,000 entries (s)", "ls", False),
    ]
    print("| %-46s | %10s | %16s | %10s | %14s |" % ("", "tmpfs", "passthrough_ll",
                                                    "lexfs mem", "lexfs/ceiling"))
    print("|%s|%s|%s|%s|%s|" % ("-" * 48, "-" * 12, "-" * 18, "-" * 12, "-" * 16))
    for label, k, higher_better in rows:
        t, c, lx = results["tmpfs"][k], results["ceiling"][k], results["lexfs"][k]
        ratio = lx / c if higher_better else c / lx
        fmt = "%10.0f" if higher_better else "%10.3f"
        print(("| %-46s | " + fmt + " | " + fmt.replace("10", "16") + " | " + fmt +
               " | %14.2f |") % (label, t, c, lx, ratio))


if __name__ == "__main__":
    main()
