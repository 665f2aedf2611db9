"""The Azure Blob driver on Azurite: what only Azure has (Shared Key refusals, SAS URLs,
block uploads, server-side copy, metadata names, SAS-only and anonymous access).

The POSIX and conformance suites run on Azure as well, through BACKEND_NAMES. Here the
checks go around lexfs where they can: blobs are looked at with the Azure SDK for
Python and presigned URLs are fetched with curl.
"""
import datetime
import hashlib
import json
import os
import re
import subprocess
import time
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import invalidate, lexfs_bin, stats
from servers.azurite import ACCOUNT, KEY, WRONG_KEY, AzureBackend
from storetool_session import Session

MIB = 1024 * 1024


@pytest.fixture
def az(backend_azure):
    """A fresh, empty container."""
    return backend_azure.fresh()


@pytest.fixture
def amnt(mounter, az):
    m = mounter(az.source, opts=az.mount_opts(), env=az.env)
    m.backend = az
    return m


def curl(*args):
    return subprocess.run(["curl", "-sS", "--noproxy", "*", "--max-time", "60"] + list(args),
                          capture_output=True, timeout=90)


def curl_status(url, *extra):
    r = curl("-o", "/dev/null", "-w", "%{http_code}", *extra, url)
    return int(r.stdout or b"0")


def store_op(m, op, field):
    return stats(m)["store"]["ops"][op][field]


# ---- credentials ----

def test_wrong_key_refuses_the_mount_with_a_clear_message(az, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    cache = tmp_path / "cache"
    cache.mkdir()
    opts = ["cache_dir=%s" % cache, "account=" + ACCOUNT, "account_key=" + WRONG_KEY,
            "endpoint=" + az.server.endpoint]
    r = subprocess.run([lexfs_bin(), az.source, str(mnt), "-f", "-o", ",".join(opts)],
                       capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode != 0
    assert not os.path.ismount(mnt)
    assert "refused the credentials" in out
    assert "LEXFS-009" in out or "ermission denied" in out
    assert WRONG_KEY not in out


def test_wrong_key_is_eacces_in_storetool(az):
    bad = AzureBackend(az.server, az.container)
    bad.settings["account_key"] = WRONG_KEY
    for args in (["health"], ["info", "x"], ["list", ""]):
        r = bad.storetool(*args, check=False)
        assert r.returncode == 13, (args, r.stderr)  # EACCES
        assert WRONG_KEY.encode() not in r.stderr


def test_connection_string_from_environment_mounts(mounter, az):
    src = az.storetool("put", "hello.txt", "-", input=b"from a connection string\n")
    assert src.returncode == 0
    env = {"AZURE_STORAGE_CONNECTION_STRING": az.server.connection_string}
    m = mounter(az.source, opts=[], env=env)
    with open(os.path.join(m.path, "hello.txt"), "rb") as f:
        assert f.read() == b"from a connection string\n"


def test_missing_container_is_a_clear_error(az, tmp_path):
    bad = AzureBackend(az.server, "no-such-container")
    bad.settings["container"] = "no-such-container"
    r = bad.storetool("health", check=False)
    assert r.returncode == 2  # ENOENT
    assert b"no-such-container does not exist" in r.stderr


# ---- presigned URLs ----

def test_presigned_get_url_fetched_with_curl(amnt):
    data = os.urandom(300000)
    p = os.path.join(amnt.path, "dir", "pic one.bin")
    os.makedirs(os.path.dirname(p))
    with open(p, "wb") as f:
        f.write(data)
    url = os.getxattr(p, "user.lexfs.presigned_url").decode()
    assert url.startswith(amnt.backend.server.endpoint + "/")
    assert "sig=" in url and "sp=r" in url
    r = curl("-f", url)
    assert r.returncode == 0, r.stderr
    assert r.stdout == data


def test_presigned_url_does_not_grant_write(amnt):
    p = os.path.join(amnt.path, "ro.txt")
    with open(p, "wb") as f:
        f.write(b"keep me")
    url = os.getxattr(p, "user.lexfs.presigned_url").decode()
    st = curl_status(url, "-X", "PUT", "-H", "x-ms-blob-type: BlockBlob", "--data-binary",
                     "overwritten")
    assert st == 403
    assert amnt.backend.client().download_blob("ro.txt").readall() == b"keep me"


def test_expired_presigned_url_is_refused(amnt):
    p = os.path.join(amnt.path, "soon.txt")
    with open(p, "wb") as f:
        f.write(b"short-lived")
    url = os.getxattr(p, "user.lexfs.presigned_url.5").decode()
    assert curl("-f", url).stdout == b"short-lived"
    se = parse_qs(urlsplit(url).query)["se"][0]
    expiry = datetime.datetime.strptime(se, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    time.sleep(max(0.0, expiry - time.time()) + 1.5)
    assert curl_status(url) == 403


@pytest.mark.parametrize("how", ["signature", "blob", "permission"])
def test_tampered_presigned_url_is_refused(amnt, how):
    for name in ("a.txt", "b.txt"):
        with open(os.path.join(amnt.path, name), "wb") as f:
            f.write(name.encode())
    url = os.getxattr(os.path.join(amnt.path, "a.txt"), "user.lexfs.presigned_url").decode()
    assert curl("-f", url).stdout == b"a.txt"
    if how == "signature":
        i = url.index("sig=") + 4
        bad = url[:i] + ("A" if url[i] != "A" else "B") + url[i + 1:]
    elif how == "blob":
        bad = url.replace("/a.txt?", "/b.txt?")
    else:
        bad = url.replace("sp=r", "sp=rw")
    assert bad != url
    assert curl_status(bad) == 403


def test_presigned_put_url_uploads(amnt):
    p = os.path.join(amnt.path, "upload.bin")
    with open(p, "wb") as f:
        f.write(b"old")
    url = os.getxattr(p, "user.lexfs.presigned_put_url").decode()
    assert "sp=cw" in url
    data = os.urandom(123457)
    src = os.path.join(os.path.dirname(amnt.path), "put-src.bin")
    with open(src, "wb") as f:
        f.write(data)
    st = curl_status(url, "-X", "PUT", "-H", "x-ms-blob-type: BlockBlob", "--data-binary",
                     "@" + src)
    assert st == 201
    assert amnt.backend.client().download_blob("upload.bin").readall() == data
    invalidate(amnt)
    with open(p, "rb") as f:
        assert f.read() == data


def test_presign_through_storetool_and_sdk_agree_on_access(az):
    az.storetool("put", "k.txt", "-", input=b"storetool")
    url = az.storetool("presign", "k.txt", "GET", "300").stdout.decode().strip()
    assert curl("-f", url).stdout == b"storetool"


def test_presign_without_account_key_is_enotsup(az):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    az.storetool("put", "s.txt", "-", input=b"sas")
    sas = generate_container_sas(
        ACCOUNT, az.container, account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=True, list=True, delete=True,
                                           create=True),
        expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=1))
    sas_only = AzureBackend(az.server, az.container)
    del sas_only.settings["account_key"]
    sas_only.settings["sas_token"] = sas
    assert sas_only.storetool("get", "s.txt").stdout == b"sas"
    r = sas_only.storetool("presign", "s.txt", "GET", "60", check=False)
    assert r.returncode == 95  # ENOTSUP
    assert b"account key" in r.stderr


# ---- SAS-only and anonymous mounts ----

def test_mount_with_container_sas_token(mounter, az):
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas
    sas = generate_container_sas(
        ACCOUNT, az.container, account_key=KEY,
        permission=ContainerSasPermissions(read=True, write=True, list=True, delete=True,
                                           create=True, add=True),
        expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=1))
    opts = ["account=" + ACCOUNT, "sas_token=" + sas, "endpoint=" + az.server.endpoint]
    m = mounter(az.source, opts=opts)
    p = os.path.join(m.path, "via-sas.txt")
    with open(p, "wb") as f:
        f.write(b"written with a SAS token")
    assert az.client().download_blob("via-sas.txt").readall() == b"written with a SAS token"
    assert "via-sas.txt" in os.listdir(m.path)
    with pytest.raises(OSError):
        os.getxattr(p, "user.lexfs.presigned_url")
    assert "presigned URLs need the account key" in m.log


def test_anonymous_mount_of_a_public_container_reads(mounter, az):
    az.client().set_container_access_policy(signed_identifiers={}, public_access="container")
    az.storetool("put", "pub.txt", "-", input=b"public bytes")
    opts = ["account=" + ACCOUNT, "anonymous=true", "endpoint=" + az.server.endpoint]
    m = mounter(az.source, opts=opts)
    with open(os.path.join(m.path, "pub.txt"), "rb") as f:
        assert f.read() == b"public bytes"
    m.expect_errors(r"upload of .* failed|HTTP 40[134]")
    with pytest.raises(OSError):
        with open(os.path.join(m.path, "new.txt"), "wb") as f:
            f.write(b"x")


# ---- blocks, copy, metadata ----

def test_large_file_goes_up_as_blocks(amnt):
    size = 200 * MIB + 12345
    p = os.path.join(amnt.path, "big.bin")
    h = hashlib.sha256()
    chunk = os.urandom(MIB)
    with open(p, "wb") as f:
        left = size
        i = 0
        while left:
            piece = chunk[: min(left, MIB)]
            piece = bytes([i & 255]) + piece[1:]
            f.write(piece)
            h.update(piece)
            left -= len(piece)
            i += 1
    blob = amnt.backend.client().get_blob_client("big.bin")
    committed, _ = blob.get_block_list("committed")
    assert len(committed) > 1
    assert sum(b.size for b in committed) == size
    assert len({len(b.id) for b in committed}) == 1  # ids of one length
    assert blob.get_blob_properties().size == size
    d = hashlib.sha256()
    for c in blob.download_blob(max_concurrency=4).chunks():
        d.update(c)
    assert d.hexdigest() == h.hexdigest()


def test_rename_of_a_200mib_streamed_file_is_a_server_side_copy(amnt):
    # The file streams up as blocks while it is written; its rename is Copy Blob:
    # no byte of it comes back down, none goes up again.
    size = 200 * MIB
    src = os.path.join(amnt.path, "before.bin")
    h = hashlib.sha256()
    chunk = os.urandom(MIB)
    with open(src, "wb") as f:
        for i in range(size // MIB):
            piece = bytes([i & 255]) + chunk[1:]
            f.write(piece)
            h.update(piece)
    os.chmod(src, 0o640)
    invalidate(amnt)
    ops0 = stats(amnt)["store"]["ops"]
    assert ops0["mp_part"]["calls"] >= 20  # it did go up as streamed blocks
    os.rename(src, os.path.join(amnt.path, "after.bin"))
    ops = stats(amnt)["store"]["ops"]
    for op in ("download", "upload", "mp_part"):
        assert ops[op]["calls"] == ops0[op]["calls"], op
        assert ops[op]["bytes"] == ops0[op]["bytes"], op
    assert ops["move"]["calls"] + ops["copy"]["calls"] == \
        ops0["move"]["calls"] + ops0["copy"]["calls"] + 1
    client = amnt.backend.client()
    names = [b.name for b in client.list_blobs()]
    assert names == ["after.bin"]
    props = client.get_blob_client("after.bin").get_blob_properties()
    assert props.size == size
    assert int(props.metadata["mode"], 0) & 0o777 == 0o640  # metadata carried over
    d = hashlib.sha256()
    for c in client.download_blob("after.bin", max_concurrency=4).chunks():
        d.update(c)
    assert d.hexdigest() == h.hexdigest()


def test_storetool_mv_and_cp_download_nothing(az, tmp_path):
    # One storetool process for all of it, so its store statistics cover every step.
    data = os.urandom(3 * MIB)
    (tmp_path / "x.bin").write_bytes(data)
    s = Session(az)
    try:
        s.ok("put", "x.bin", tmp_path / "x.bin")
        s.ok("cp", "x.bin", "y.bin")
        s.ok("mv", "y.bin", "z.bin")
        ops = s.ok("stats").json()["ops"]
    finally:
        s.close()
    assert ops["download"]["calls"] == 0 and ops["download"]["bytes"] == 0
    assert ops["upload"]["calls"] == 1 and ops["upload"]["bytes"] == len(data)
    assert ops["copy"]["calls"] == 1 and ops["move"]["calls"] == 1
    names = sorted(b.name for b in az.client().list_blobs())
    assert names == ["x.bin", "z.bin"]
    assert az.client().download_blob("z.bin").readall() == data


def test_chmod_and_xattr_persist_as_blob_metadata(amnt):
    p = os.path.join(amnt.path, "m.txt")
    with open(p, "wb") as f:
        f.write(b"meta")
    os.chmod(p, 0o604)
    os.setxattr(p, "user.color", b"blue")
    props = amnt.backend.client().get_blob_client("m.txt").get_blob_properties()
    assert int(props.metadata["mode"], 0) & 0o777 == 0o604
    assert props.size == 4
    amnt.remount()
    assert os.stat(p).st_mode & 0o777 == 0o604
    assert os.getxattr(p, "user.color") == b"blue"


def test_metadata_names_that_are_not_identifiers_round_trip(az):
    az.storetool("put", "n.txt", "-", "--meta", "user-tag=v1", "--meta", "9lives=v2",
                 "--meta", "plain_name=v3", input=b"n")
    info = json.loads(az.storetool("info", "n.txt").stdout)
    assert info["meta"] == {"user-tag": "v1", "9lives": "v2", "plain_name": "v3"}
    raw = az.client().get_blob_client("n.txt").get_blob_properties().metadata
    assert raw["plain_name"] == "v3"
    assert raw["lexfs_h_757365722d746167"] == "v1"
    assert raw["lexfs_h_396c69766573"] == "v2"
    listed = [json.loads(l) for l in az.storetool("list", "", "--recursive").stdout.splitlines()]
    assert listed[0]["meta"] == info["meta"]


def test_ranged_reads(az):
    data = os.urandom(1 * MIB + 7)
    az.storetool("put", "r.bin", "-", input=data)
    assert az.storetool("get", "r.bin", "1000", "5000").stdout == data[1000:6000]
    assert az.storetool("get", "r.bin", str(len(data) - 3), "100").stdout == data[-3:]
    assert az.storetool("get", "r.bin", str(len(data) + 10), "100").stdout == b""
    r = az.storetool("get", "missing.bin", "0", "10", check=False)
    assert r.returncode == 2


def test_listing_pages_with_markers(az):
    for i in range(7):
        az.storetool("put", "p/f%02d" % i, "-", input=b"%d" % i)
    r = az.storetool("list", "p/", "--recursive", "--max-keys", "3", "--pages")
    lines = [json.loads(l) for l in r.stdout.splitlines() if l.strip()]
    pages = [l for l in lines if "page" in l]
    keys = [l["key"] for l in lines if "key" in l]
    assert keys == ["p/f%02d" % i for i in range(7)]
    assert [p["count"] for p in pages] == [3, 3, 1]


# ---- encryption options ----

def test_encryption_scope_is_sent_and_signed_into_sas(az):
    # Azurite accepts x-ms-encryption-scope on writes but, in strict mode, not a SAS
    # carrying ses=: the SAS string itself is checked against the SDK in
    # test_azure_signing.py::test_blob_sas_with_encryption_scope_matches.
    scoped = AzureBackend(az.server, az.container)
    scoped.settings["encryption_scope"] = "scope1"
    scoped.storetool("put", "e.txt", "-", input=b"scoped")
    scoped.storetool("cp", "e.txt", "f.txt")
    scoped.storetool("set-meta", "f.txt", "--meta", "k=v")
    assert az.client().download_blob("f.txt").readall() == b"scoped"
    url = scoped.storetool("presign", "e.txt", "GET", "60").stdout.decode().strip()
    assert "&ses=scope1&sig=" in url


def test_customer_provided_key_needs_https(az):
    import base64
    cpk = AzureBackend(az.server, az.container)
    cpk.settings["encryption_key"] = base64.b64encode(os.urandom(32)).decode()
    r = cpk.storetool("health", check=False)
    assert r.returncode == 22  # EINVAL
    assert b"needs an https:// endpoint" in r.stderr
    assert cpk.settings["encryption_key"].encode() not in r.stderr


def test_bad_customer_provided_key_is_refused(az):
    cpk = AzureBackend(az.server, az.container)
    cpk.settings["encryption_key"] = "c2hvcnQ="
    r = cpk.storetool("health", check=False)
    assert r.returncode == 22
    assert b"AES-256 key" in r.stderr


def test_presigned_url_is_stable_between_size_probe_and_read(amnt):
    # getxattr(2) is called twice (size, then value): the URL must not change length
    # in between, or rsync -X and cp -a fail with ERANGE.
    p = os.path.join(amnt.path, "stable.txt")
    with open(p, "wb") as f:
        f.write(b"x")
    urls = {os.getxattr(p, "user.lexfs.presigned_url") for _ in range(20)}
    assert len(urls) <= 2  # at most one window boundary crossed
    assert curl("-f", urls.pop().decode()).stdout == b"x"


def test_large_file_streams_as_blocks_before_close(amnt):
    # A sequential writer's completed parts go up as blocks while it writes: before
    # close the blob has uncommitted blocks and no committed content; close commits
    # the block list.
    size = 200 * MIB
    p = os.path.join(amnt.path, "stream.bin")
    blob = amnt.backend.client().get_blob_client("stream.bin")
    h = hashlib.sha256()
    chunk = os.urandom(MIB)
    with open(p, "wb") as f:
        for i in range(size // MIB):
            piece = bytes([i & 255]) + chunk[1:]
            f.write(piece)
            h.update(piece)
        f.flush()
        deadline = time.time() + 60
        while True:
            _, uncommitted = blob.get_block_list("uncommitted")
            if len(uncommitted) >= 10 or time.time() > deadline:
                break
            time.sleep(0.2)
        assert len(uncommitted) >= 10  # parts were uploaded before close
        assert not blob.exists() or blob.get_blob_properties().size == 0
    committed, _ = blob.get_block_list("committed")
    assert len(committed) > 10
    assert sum(b.size for b in committed) == size
    d = hashlib.sha256()
    for c in blob.download_blob(max_concurrency=4).chunks():
        d.update(c)
    assert d.hexdigest() == h.hexdigest()


# ---- parallel blocks, seen by the server ----

_START = re.compile(r"^(\S+) (\S+) info: BlobStorageContextMiddleware: RequestMethod=PUT "
                    r"RequestURL=\S+?/([^/?]+)/([^/?]+)\?comp=block&blockid=")
_END = re.compile(r"^(\S+) (\S+) info: EndMiddleware: End response\. .*StatusCode=201")


def _ts(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def put_block_intervals(server, container, blob, want):
    """[start, end] of each Put Block of one blob, from Azurite's own debug log (by
    request id); waits until `want` of them have ended (the log is written
    asynchronously)."""
    path = os.path.join(server.workdir, "azurite-debug.log")
    deadline = time.monotonic() + 30
    while True:
        starts, ends = {}, {}
        with open(path, errors="replace") as f:
            for line in f:
                m = _START.match(line)
                if m and m.group(3) == container and m.group(4) == blob:
                    starts[m.group(2)] = _ts(m.group(1))
                    continue
                m = _END.match(line)
                if m and m.group(2) in starts:
                    ends[m.group(2)] = _ts(m.group(1))
        done = [(starts[r], ends[r]) for r in starts if r in ends]
        if len(done) >= want or time.monotonic() > deadline:
            return sorted(done)
        time.sleep(0.05)


def most_at_once(intervals):
    """The largest number of requests the server was handling at one moment. A
    request that starts only after another ended does not overlap it, so a client
    that sends one block at a time scores 1 however fast or slow it is."""
    best = 0
    for s, _ in intervals:
        best = max(best, sum(1 for a, b in intervals if a <= s < b))
    return best


def test_blocks_of_one_upload_go_up_concurrently(az, tmp_path):
    data = os.urandom(48 * MIB)  # 6 blocks of 8 MiB, block_parallel 4
    (tmp_path / "p.bin").write_bytes(data)
    az.storetool("put", "p.bin", tmp_path / "p.bin")
    iv = put_block_intervals(az.server, az.container, "p.bin", 6)
    assert len(iv) == 6
    assert most_at_once(iv) >= 2, iv
    assert az.client().download_blob("p.bin").readall() == data


def test_streamed_blocks_of_one_file_go_up_concurrently(amnt):
    chunk = os.urandom(MIB)
    with open(os.path.join(amnt.path, "s.bin"), "wb") as f:
        for i in range(96):
            f.write(bytes([i]) + chunk[1:])
    iv = put_block_intervals(amnt.backend.server, amnt.backend.container, "s.bin", 12)
    assert len(iv) >= 12
    assert most_at_once(iv) >= 2, iv
    got = amnt.backend.client().download_blob("s.bin").readall()
    assert len(got) == 96 * MIB and got[95 * MIB] == 95
