#!/usr/bin/python3
"""s3_bench.py - lexfs against s3fs, rclone mount and a direct client (boto3), on one
throwaway Ceph RADOS Gateway (tests/servers/radosgw.sh) on 127.0.0.1.

    /usr/bin/python3 contrib/bench/s3_bench.py [--mib 1024] [--small 1000] [--keys 10000]
                                       [--rename-mib 256] [--tools lexfs,s3fs,rclone]

Tools: the direct client, lexfs in its default sync mode (close returns when the
object is durable), lexfs in write-back mode (-o writeback=1), s3fs and rclone
mount. Rows: sequential write and read of one big file, create of many small files,
`ls -l` of a directory of many keys (cold: a fresh mount), rename of a big file,
`rsync -a` of a source tree. Every mount is fresh before a row, so no row reads
what an earlier row left in a cache. Prints a table of seconds, throughput ratios
to the direct client and lexfs's ratio to each peer, and the store calls lexfs
made per row (from `getfattr -n user.lexfs.stats`). Needs root (FUSE) and the
Debian packages radosgw ceph-mon ceph-osd s3fs rclone python3-boto3.
"""
import argparse
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from servers.s3 import ACCESS_KEY, SECRET_KEY, RadosGW  # noqa: E402

MiB = 1024 * 1024


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def wait_mounted(path, proc, what):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if is_mounted(path):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited before mounting" % what)
        time.sleep(0.05)
    raise RuntimeError("%s did not mount" % what)


class Tool:
    """A mount of one bucket by one tool (or the direct client, which mounts nothing)."""

    def __init__(self, name, gw, bucket, work, build):
        self.name, self.gw, self.bucket, self.work, self.build = name, gw, bucket, work, build
        self.mnt = work / ("mnt-" + name)
        self.mnt.mkdir(exist_ok=True)
        self.proc = None
        self.n = 0

    def env(self):
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        env.pop("AWS_CA_BUNDLE", None)
        return env

    def mount(self):
        self.n += 1
        log = open(self.work / ("%s.log" % self.name), "a")
        if self.name.startswith("lexfs"):
            cache = self.work / ("cache-%s-%d" % (self.name, self.n))
            cache.mkdir()
            opts = "endpoint=%s,cache_dir=%s" % (self.gw.endpoint, cache)
            if self.name == "lexfs-wb":
                # write-back: close returns at once, the upload follows 1 s later
                # (rclone's --vfs-cache-mode writes also uploads after close)
                opts += ",writeback=1"
            cmd = [str(self.build / "lexfs"), "s3://" + self.bucket, str(self.mnt), "-f", "-o",
                   opts]
        elif self.name == "s3fs":
            pw = self.work / "s3fs.passwd"
            pw.write_text("%s:%s\n" % (ACCESS_KEY, SECRET_KEY))
            os.chmod(pw, 0o600)
            cmd = ["s3fs", self.bucket, str(self.mnt), "-f", "-o",
                   "url=%s,use_path_request_style,sigv4,endpoint=us-east-1,passwd_file=%s"
                   % (self.gw.endpoint, pw)]
        elif self.name == "rclone":
            cmd = ["rclone", "mount", "bench:" + self.bucket, str(self.mnt),
                   "--vfs-cache-mode", "writes",
                   "--cache-dir", str(self.work / ("cache-rclone-%d" % self.n))]
        else:
            return
        env = self.env()
        env.update(RCLONE_CONFIG_BENCH_TYPE="s3", RCLONE_CONFIG_BENCH_PROVIDER="Ceph",
                   RCLONE_CONFIG_BENCH_ENDPOINT=self.gw.endpoint,
                   RCLONE_CONFIG_BENCH_ACCESS_KEY_ID=ACCESS_KEY,
                   RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY=SECRET_KEY)
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        wait_mounted(self.mnt, self.proc, self.name)

    def unmount(self):
        if self.proc is None:
            return
        subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
        try:
            self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def remount(self):
        self.unmount()
        self.mount()

    def store_calls(self):
        if not self.name.startswith("lexfs"):
            return None
        r = subprocess.run(["getfattr", "--only-values", "-n", "user.lexfs.stats",
                            str(self.mnt)], capture_output=True, text=True)
        try:
            ops = json.loads(r.stdout)["store"]["ops"]
        except (ValueError, KeyError, TypeError):
            return None
        return sum(v.get("calls", 0) for v in ops.values() if isinstance(v, dict))


def timed(fn):
    t0 = time.monotonic()
    fn()
    return time.monotonic() - t0


def write_file(path, src):
    with open(src, "rb") as s, open(path, "wb") as d:
        while True:
            b = s.read(8 * MiB)
            if not b:
                break
            d.write(b)
        d.flush()
        os.fsync(d.fileno())


def read_file(path):
    with open(path, "rb") as f:
        while f.read(8 * MiB):
            pass


def run_rows(tool, args, data, tree, client):
    """{row: (seconds, store calls or None)} for one tool."""
    out = {}
    mnt = tool.mnt
    direct = tool.name == "direct"
    b = tool.bucket

    def count(prefix):
        n = 0
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=b, Prefix=prefix):
            n += len(page.get("Contents", []))
        return n

    def size_of(key):
        try:
            return client.head_object(Bucket=b, Key=key)["ContentLength"]
        except Exception:
            return -1

    def row(name, prep, fn, durable=None):
        """Time fn, and (for a mount) until its result is in the bucket: a tool that
        uploads after close (rclone's write-back) is timed until the data is there."""
        if prep:
            prep()
        if not direct:
            tool.remount()
        before = tool.store_calls()

        def whole():
            fn()
            if durable and not direct:
                deadline = time.monotonic() + 600
                while not durable() and time.monotonic() < deadline:
                    time.sleep(0.05)
        secs = timed(whole)
        after = tool.store_calls()
        out[name] = (secs, after - before if before is not None and after is not None else None)
        print("  %-7s %-28s %8.2f s" % (tool.name, name, secs), flush=True)

    big = "write %d MiB" % args.mib
    if direct:
        row(big, None, lambda: client.upload_file(str(data), b, "big.bin"))
        row("read %d MiB" % args.mib, None,
            lambda: client.download_file(b, "big.bin", str(tool.work / "dl.bin")))
    else:
        row(big, None, lambda: write_file(mnt / "big.bin", data),
            lambda: size_of("big.bin") == args.mib * MiB)
        row("read %d MiB" % args.mib, None, lambda: read_file(mnt / "big.bin"))
    client.delete_object(Bucket=b, Key="big.bin")

    small = os.urandom(4096)
    if direct:
        def create():
            for i in range(args.small):
                client.put_object(Bucket=b, Key="small/f%05d" % i, Body=small)
    else:
        def create():
            (mnt / "small").mkdir()
            for i in range(args.small):
                (mnt / "small" / ("f%05d" % i)).write_bytes(small)
    row("create %d x 4 KiB" % args.small, None, create,
        lambda: count("small/") >= args.small)

    def fill_keys():
        with concurrent.futures.ThreadPoolExecutor(16) as ex:
            list(ex.map(lambda i: client.put_object(Bucket=b, Key="many/k%06d" % i, Body=b"x"),
                        range(args.keys)))
    if direct:
        def ls():
            n = 0
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=b,
                                                                        Prefix="many/"):
                n += len(page.get("Contents", []))
            assert n == args.keys
    else:
        def ls():
            r = sh(["ls", "-l", str(mnt / "many")], text=True)
            assert len(r.stdout.splitlines()) == args.keys + 1
    row("ls -l %d keys (cold)" % args.keys, fill_keys, ls)

    rdata = tool.work / "rename.bin"
    if not rdata.exists():
        with open(rdata, "wb") as f:
            f.write(os.urandom(args.rename_mib * MiB))

    def put_rename_src():
        client.upload_file(str(rdata), b, "ren/src.bin")
    if direct:
        def rename():
            client.copy({"Bucket": b, "Key": "ren/src.bin"}, b, "ren/dst.bin")
            client.delete_object(Bucket=b, Key="ren/src.bin")
    else:
        def rename():
            os.rename(mnt / "ren" / "src.bin", mnt / "ren" / "dst.bin")
    row("rename %d MiB" % args.rename_mib, put_rename_src, rename,
        lambda: size_of("ren/dst.bin") == args.rename_mib * MiB and size_of("ren/src.bin") < 0)

    if direct:
        def rsync():
            files = [p for p in tree.rglob("*") if p.is_file()]
            with concurrent.futures.ThreadPoolExecutor(4) as ex:
                list(ex.map(lambda p: client.upload_file(
                    str(p), b, "tree/" + str(p.relative_to(tree))), files))
    else:
        def rsync():
            sh(["rsync", "-a", str(tree) + "/", str(mnt / "tree") + "/"])
    nfiles = sum(1 for p in tree.rglob("*") if p.is_file())
    row("rsync -a tree", None, rsync, lambda: count("tree/") >= nfiles)
    tool.unmount()
    return out


def make_tree(root):
    import random
    rnd = random.Random(7)
    for d in range(20):
        for f in range(15):
            p = root / ("d%02d" % d) / ("sub%d" % (f % 3)) / ("f%03d.dat" % f)
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(rnd.choice([200, 3000, 40000, 300000, 1500000])))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=1024)
    ap.add_argument("--small", type=int, default=1000)
    ap.add_argument("--keys", type=int, default=10000)
    ap.add_argument("--rename-mib", type=int, default=256)
    ap.add_argument("--tools", default="lexfs,lexfs-wb,s3fs,rclone")
    ap.add_argument("--build", default=os.environ.get("LEXFS_BUILD", str(ROOT)))
    args = ap.parse_args()

    tools = ["direct"]
    for t in args.tools.split(","):
        if t.startswith("lexfs") or shutil.which(t):
            tools.append(t)
        else:
            print("note: %s is not installed; its column is left out" % t)
    work = Path(tempfile.mkdtemp(prefix="lexfs-bench-"))
    gw = RadosGW(work)
    try:
        gw.start()
    except BaseException as e:  # pytest.fail raises outside pytest too
        sys.exit("radosgw did not start: %s" % e)
    try:
        client = gw.client()
        data = work / "data.bin"
        with open(data, "wb") as f:
            for _ in range(args.mib):
                f.write(os.urandom(MiB))
        tree = work / "tree"
        make_tree(tree)
        results = {}
        for name in tools:
            bucket = "bench-%s-%d" % (name, os.getpid())
            client.create_bucket(Bucket=bucket)
            print("== %s" % name, flush=True)
            results[name] = run_rows(Tool(name, gw, bucket, work, Path(args.build)), args,
                                     data, tree, client)
    finally:
        gw.stop()
        shutil.rmtree(work, ignore_errors=True)

    rows = list(results["direct"].keys())
    mine = [t for t in tools if t.startswith("lexfs")]
    others = [t for t in tools if not t.startswith("lexfs")]
    head = ["row"] + ["%s s" % t for t in tools] + \
        ["%s/%s" % (m, o) for m in mine for o in others] + ["%s calls" % m for m in mine]
    print()
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r] + ["%.2f" % results[t][r][0] for t in tools]
        # Ratios are speed ratios: > 1 means lexfs is faster.
        cells += ["%.2f" % (results[o][r][0] / results[m][r][0]) for m in mine for o in others]
        for m in mine:
            calls = results[m][r][1]
            cells.append(str(calls) if calls is not None else "-")
        print("| " + " | ".join(cells) + " |")
    print("\nRatios are speed ratios (time of the other / time of lexfs): above 1, lexfs "
          "is faster.")


if __name__ == "__main__":
    main()
