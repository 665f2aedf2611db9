"""The S3 driver mounted on a real S3 server (Ceph RADOS Gateway on 127.0.0.1).

What a user of `lexfs s3://bucket DIR` would check: a wrong key is refused at mount
time with a message that says so; presigned URLs from getfattr work with curl and
stop working when expired or altered; big files arrive byte for byte through
multipart; rename of a big file is a server-side multipart copy; a failed upload
leaves no multipart upload behind; a bucket written by another client reads right.
"""
import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import lexfs_bin, run
from servers.s3 import SCRIPT, _env

MiB = 1024 * 1024


def getfattr(path, name):
    r = run(["getfattr", "--only-values", "-n", name, path])
    return r.stdout


def setfattr(path, name, value):
    run(["setfattr", "-n", name, "-v", value, path])


def curl(args):
    return subprocess.run(["curl", "-s", "-S", "--max-time", "60"] + args, capture_output=True,
                          timeout=90)


def http_code(url, extra=()):
    r = curl(["-o", "/dev/null", "-w", "%{http_code}"] + list(extra) + [url])
    return r.stdout.decode()


@pytest.fixture
def s3(backend_s3):
    b = backend_s3.fresh()
    b.client = b.gateway.client()
    return b


def mount_s3(mounter, b, extra=()):
    m = mounter(b.source, opts=b.mount_opts() + list(extra), env=b.env)
    m.backend = b
    return m


def test_wrong_secret_refuses_the_mount_with_a_clear_message(s3, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ)
    env.update(s3.env)
    env["AWS_SECRET_ACCESS_KEY"] = "not-the-right-secret-0123456789abcdefgh"
    opts = ",".join(s3.mount_opts() + ["cache_dir=" + str(tmp_path / "cache")])
    r = subprocess.run([lexfs_bin(), s3.source, str(mnt), "-f", "-o", opts], env=env,
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert not os.path.ismount(mnt)
    assert "secret access key" in out and "SignatureDoesNotMatch" in out, out
    assert "not-the-right-secret" not in out


def test_unknown_access_key_refuses_the_mount(s3, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    env = dict(os.environ)
    env.update(s3.env)
    env["AWS_ACCESS_KEY_ID"] = "NOSUCHKEY0000000000"
    opts = ",".join(s3.mount_opts() + ["cache_dir=" + str(tmp_path / "cache")])
    r = subprocess.run([lexfs_bin(), s3.source, str(mnt), "-f", "-o", opts], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "InvalidAccessKeyId" in r.stdout + r.stderr


def test_revoked_key_on_a_live_mount_gives_eacces(backend_s3, mounter):
    gw = backend_s3.gateway
    uid, akey, skey = "revokee%d" % os.getpid(), "REVOKEEKEY%010d" % os.getpid(), "revokee-secret-0123456789abcdefghijklmn"
    subprocess.run(["sh", str(SCRIPT), "user", str(gw.dir), uid, akey, skey], check=True,
                   timeout=60)
    import boto3
    from botocore.config import Config
    c = boto3.client("s3", endpoint_url=gw.endpoint, aws_access_key_id=akey,
                     aws_secret_access_key=skey, region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"}))
    bucket = "revokee-%d" % os.getpid()
    c.create_bucket(Bucket=bucket)
    c.put_object(Bucket=bucket, Key="later.txt", Body=b"read me later")
    env = _env()
    env.update({"AWS_ACCESS_KEY_ID": akey, "AWS_SECRET_ACCESS_KEY": skey})
    m = mounter("s3://" + bucket, opts=["bucket=" + bucket, "endpoint=" + gw.endpoint],
                env=env)
    m.expect_errors(r"AccessDenied|denied|LEXFS-009|EACCES|Permission")
    Path(m.path, "before.txt").write_bytes(b"written while the key was valid")
    subprocess.run(["sh", str(SCRIPT), "suspend", str(gw.dir), uid], check=True, timeout=60)
    setfattr(m.path, "user.lexfs.invalidate", "1")
    with pytest.raises(PermissionError):
        Path(m.path, "later.txt").read_bytes()
    with pytest.raises(PermissionError):
        Path(m.path, "new.txt").write_bytes(b"x")
        os.sync()


def test_presigned_get_from_getfattr_fetches_the_same_bytes(s3, mounter):
    m = mount_s3(mounter, s3)
    data = os.urandom(777777)
    p = Path(m.path, "dir with space", "caf\u00e9 + x=1&y.bin")
    p.parent.mkdir()
    p.write_bytes(data)
    url = getfattr(str(p), "user.lexfs.presigned_url").strip()
    assert url.startswith(s3.settings["endpoint"]) and "X-Amz-Signature=" in url
    r = curl([url])
    assert r.returncode == 0
    assert r.stdout == data


def test_presigned_url_expired_or_tampered_is_refused(s3, mounter):
    m = mount_s3(mounter, s3)
    p = Path(m.path, "secret.txt")
    p.write_bytes(b"not for everyone")
    good = getfattr(str(p), "user.lexfs.presigned_url").strip()
    assert http_code(good) == "200"
    sig_at = good.index("X-Amz-Signature=") + len("X-Amz-Signature=")
    flipped = "0" if good[sig_at] != "0" else "1"
    assert http_code(good[:sig_at] + flipped + good[sig_at + 1:]) == "403"
    assert http_code(good.replace("secret.txt", "secret.tx%74x")) in ("403", "404")
    assert http_code(good.replace("X-Amz-Expires=", "X-Amz-Expires=9")) == "403"
    short = getfattr(str(p), "user.lexfs.presigned_url.1").strip()
    assert "X-Amz-Expires=1&" in short
    time.sleep(2.5)
    assert http_code(short) == "403"


def test_presigned_put_uploads(s3, mounter):
    m = mount_s3(mounter, s3)
    p = Path(m.path, "upload target.bin")
    p.write_bytes(b"")
    url = getfattr(str(p), "user.lexfs.presigned_put_url").strip()
    data = os.urandom(123456)
    src = Path(m.path).parent / "put-src.bin"
    src.write_bytes(data)
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-T", str(src), url])
    assert r.stdout.decode() == "200", r.stderr
    got = s3.client.get_object(Bucket=s3.bucket, Key="upload target.bin")["Body"].read()
    assert got == data
    # A fresh mount sees it (the kernel may keep the old size of a live mount's file
    # for its attribute timeout).
    m.remount()
    assert p.read_bytes() == data
    # A GET URL does not allow a PUT.
    get_url = getfattr(str(p), "user.lexfs.presigned_url").strip()
    r = curl(["-o", "/dev/null", "-w", "%{http_code}", "-T", str(src), get_url])
    assert r.stdout.decode() == "403"


def _block(i):
    return hashlib.sha256(b"block %d" % i).digest() * (MiB // 32)


def test_large_file_streams_as_multipart_and_is_byte_identical(s3, mounter):
    size_mib = int(os.environ.get("LEXFS_S3_BIG_MIB", "300"))
    m = mount_s3(mounter, s3)
    key = "big/stream.bin"
    Path(m.path, "big").mkdir()
    h = hashlib.sha256()
    parts_before_close = 0
    with open(Path(m.path, key), "wb") as f:
        for i in range(size_mib):
            blk = _block(i)
            h.update(blk)
            f.write(blk)
            if i == 64:
                # Parts go up while the writer keeps writing.
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and parts_before_close == 0:
                    ups = s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
                    for u in ups:
                        if u["Key"] == key:
                            lp = s3.client.list_parts(Bucket=s3.bucket, Key=key,
                                                      UploadId=u["UploadId"])
                            parts_before_close = len(lp.get("Parts", []))
                    time.sleep(0.2)
    assert parts_before_close >= 1
    head = s3.client.head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentLength"] == size_mib * MiB
    assert "-" in head["ETag"], "not a multipart object: %s" % head["ETag"]
    body = s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"]
    g = hashlib.sha256()
    for chunk in iter(lambda: body.read(8 * MiB), b""):
        g.update(chunk)
    assert g.hexdigest() == h.hexdigest()
    assert s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", []) == []
    # And through the mount, after dropping caches.
    setfattr(m.path, "user.lexfs.invalidate", "1")
    r = hashlib.sha256()
    with open(Path(m.path, key), "rb") as f:
        for chunk in iter(lambda: f.read(8 * MiB), b""):
            r.update(chunk)
    assert r.hexdigest() == h.hexdigest()


def test_rename_above_copy_threshold_uses_upload_part_copy(s3, mounter):
    m = mount_s3(mounter, s3, ["copy_threshold=5m", "copy_part_size=5m", "trace=s3"])
    data = os.urandom(12 * MiB + 3)
    Path(m.path, "src.bin").write_bytes(data)
    os.chmod(Path(m.path, "src.bin"), 0o640)
    meta_before = s3.client.head_object(Bucket=s3.bucket, Key="src.bin")["Metadata"]
    os.rename(Path(m.path, "src.bin"), Path(m.path, "dst.bin"))
    copies = [l for l in m.log.splitlines() if "UploadPartCopy dst.bin part" in l]
    assert len(copies) == 3, m.log
    head = s3.client.head_object(Bucket=s3.bucket, Key="dst.bin")
    assert head["ETag"].strip('"').endswith("-3")
    assert head["Metadata"] == meta_before
    assert s3.client.get_object(Bucket=s3.bucket, Key="dst.bin")["Body"].read() == data
    names = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
    assert names == ["dst.bin"]
    m.remount()
    st = os.stat(Path(m.path, "dst.bin"))
    assert st.st_mode & 0o777 == 0o640
    assert Path(m.path, "dst.bin").read_bytes() == data


def test_rename_below_copy_threshold_is_a_single_copy(s3, mounter):
    m = mount_s3(mounter, s3, ["trace=s3"])
    data = os.urandom(6 * MiB)
    Path(m.path, "a.bin").write_bytes(data)
    os.rename(Path(m.path, "a.bin"), Path(m.path, "b.bin"))
    assert "UploadPartCopy" not in m.log
    assert s3.client.get_object(Bucket=s3.bucket, Key="b.bin")["Body"].read() == data


def test_failure_mid_upload_leaves_no_multipart_upload(s3, mounter):
    m = mount_s3(mounter, s3)
    m.expect_errors(r"injected fault|LEXFS-00[17]|upload")
    setfattr(m.path, "user.lexfs.control.fault", "fail_part_after=2")
    with pytest.raises(OSError):
        with open(Path(m.path, "doomed.bin"), "wb") as f:
            for i in range(48):
                f.write(_block(i))
    deadline = time.monotonic() + 20
    ups = None
    while time.monotonic() < deadline:
        ups = s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])
        if not ups:
            break
        time.sleep(0.2)
    assert ups == []
    keys = [o["Key"] for o in s3.client.list_objects_v2(Bucket=s3.bucket).get("Contents", [])]
    assert "doomed.bin" not in keys
    setfattr(m.path, "user.lexfs.control.fault", "off")
    Path(m.path, "fine.bin").write_bytes(_block(1) * 20)
    assert s3.client.get_object(Bucket=s3.bucket, Key="fine.bin")["Body"].read() == _block(1) * 20


ODD_KEYS = [
    "plain.txt",
    "with space.txt",
    "plus+sign.txt",
    "percent%20literal.txt",
    "amp&eq=q.txt",
    "tilde~.txt",
    "caf\u00e9/\u65e5\u672c\u8a9e.txt",
    "emoji \U0001F600.txt",
    "quote'dbl\".txt",
    "a/b/c/deep.txt",
    "semi;colon,comma.txt",
    "hash#and?q.txt",
]


def test_foreign_bucket_with_odd_keys_lists_and_reads(s3, mounter):
    c = s3.client
    for k in ODD_KEYS:
        c.put_object(Bucket=s3.bucket, Key=k, Body=("content of " + k).encode())
    for i in range(2500):
        c.put_object(Bucket=s3.bucket, Key="many/f%05d" % i, Body=b"%d" % i)
    m = mount_s3(mounter, s3)
    top = sorted(os.listdir(m.path))
    expect_top = sorted({k.split("/")[0] for k in ODD_KEYS} | {"many"})
    assert top == expect_top
    many = os.listdir(Path(m.path, "many"))
    assert sorted(many) == ["f%05d" % i for i in range(2500)]
    for i in (0, 999, 1000, 1001, 2499):
        assert Path(m.path, "many", "f%05d" % i).read_bytes() == b"%d" % i
        assert os.stat(Path(m.path, "many", "f%05d" % i)).st_size == len(b"%d" % i)
    for k in ODD_KEYS:
        p = Path(m.path, k)
        assert p.is_file(), k
        assert p.read_bytes() == ("content of " + k).encode(), k
    assert os.path.isdir(Path(m.path, "a", "b", "c"))
    assert os.listdir(Path(m.path, "a", "b")) == ["c"]


def test_rm_rf_of_a_directory_removes_every_key(s3, mounter):
    c = s3.client
    for i in range(1200):
        c.put_object(Bucket=s3.bucket, Key="tree/sub%d/f%04d" % (i % 3, i), Body=b"x")
    c.put_object(Bucket=s3.bucket, Key="keep.txt", Body=b"keep")
    m = mount_s3(mounter, s3)
    run(["rm", "-rf", str(Path(m.path, "tree"))])
    keys = []
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket):
        keys += [o["Key"] for o in page.get("Contents", [])]
    assert keys == ["keep.txt"]


def test_r2_driver_mounts_with_region_auto(backend_r2, mounter):
    b = backend_r2.fresh()
    m = mounter(b.source, opts=b.mount_opts() + ["trace=s3"], env=b.env)
    Path(m.path, "hello.txt").write_bytes(b"hello r2")
    assert "region auto" in m.log
    c = b.gateway.client()
    assert c.get_object(Bucket=b.bucket, Key="hello.txt")["Body"].read() == b"hello r2"


def test_rename_of_a_directory_of_1050_keys_deletes_in_two_batches(s3, mounter):
    c = s3.client
    want = {}
    for i in range(1050):
        body = b"file %d" % i
        c.put_object(Bucket=s3.bucket, Key="src/f%04d" % i, Body=body)
        want["dst/f%04d" % i] = hashlib.md5(body).hexdigest()
    m = mount_s3(mounter, s3, ["trace=s3"])
    ops0 = json.loads(os.getxattr(m.path, "user.lexfs.stats"))["store"]["ops"]
    os.rename(Path(m.path, "src"), Path(m.path, "dst"))
    ops = json.loads(os.getxattr(m.path, "user.lexfs.stats"))["store"]["ops"]
    # DeleteObjects takes at most 1,000 keys: 1,050 sources are two calls.
    assert ops["remove_many"]["calls"] - ops0["remove_many"]["calls"] == 2
    assert ops["remove"]["calls"] == ops0["remove"]["calls"]
    assert len(re.findall(r"http POST \S+ key=\(delete\) -> 200", m.log)) == 2, m.log
    got = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket):
        for o in page.get("Contents", []):
            got[o["Key"]] = o["ETag"].strip('"')
    assert got == want  # no source left, every destination with its bytes
    for i in (0, 999, 1000, 1049):
        assert Path(m.path, "dst", "f%04d" % i).read_bytes() == b"file %d" % i
    assert not os.path.exists(Path(m.path, "src"))
