"""lexfs doctor: a passing run on every backend, and failing checks with their exit
status and what-to-do messages (unreachable local root, unwritable cache directory,
bad configuration, wrong credentials where the backend has any, an endpoint nothing
listens on, a server whose clock is two hours ahead, stale multipart uploads)."""
import hashlib
import http.server
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse
from email.utils import formatdate

import pytest

from conftest import Backend, lexfs_bin

LINE = re.compile(r"^(pass|warn|fail|skip) ([a-z-]+): (.+)$")
ORDER = ["config", "credentials", "driver", "endpoint", "clock", "probe-put", "probe-info",
         "probe-get", "probe-list", "probe-copy", "probe-presign", "probe-remove",
         "multipart", "stale-uploads", "cache-dir", "fuse"]
# Which backends have a server clock to compare with, and which can list incomplete
# multipart uploads; the others skip those checks with the reason.
CLOCKED = {"s3", "r2", "azure", "gcs"}
LISTS_UPLOADS = {"s3", "r2", "local"}


def doctor(backend, cache_dir, *extra, source=None, env=None, settings=None):
    cmd = [lexfs_bin(), "doctor", source or backend.source]
    sets = dict(backend.settings)
    sets.update(settings or {})
    for k, v in sets.items():
        cmd += ["-o", "%s=%s" % (k, v)]
    cmd += ["-o", "cache_dir=%s" % cache_dir, "-o", "config=none"]
    cmd += list(extra)
    e = dict(os.environ)
    e.update(backend.env)
    e.update(env or {})
    return subprocess.run(cmd, capture_output=True, text=True, env=e, timeout=120)


def parse(stdout):
    """{check: (status, message)} in order, and the summary line."""
    checks = {}
    lines = stdout.strip().splitlines()
    for line in lines[:-1]:
        m = LINE.match(line)
        assert m, "not a doctor line: %r" % line
        checks[m.group(2)] = (m.group(1), m.group(3))
    return checks, lines[-1]


def expected_skips(backend):
    """The checks that do not apply to this backend (and say why)."""
    skips = set()
    if backend.name not in CLOCKED:
        skips.add("clock")
    if backend.name not in LISTS_UPLOADS:
        skips.add("stale-uploads")
    return skips


def test_doctor_passes(backend, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    r = doctor(backend.fresh(), cache)
    assert r.returncode == 0, r.stdout + r.stderr
    checks, summary = parse(r.stdout)
    assert list(checks) == ORDER
    skips = expected_skips(backend)
    for name, (st, msg) in checks.items():
        assert (st == "skip") == (name in skips), r.stdout
        assert st in ("pass", "warn", "skip"), r.stdout
    for name in ("config", "driver", "endpoint", "probe-put", "probe-info", "probe-get",
                 "probe-list", "probe-copy", "probe-remove", "multipart", "cache-dir",
                 "fuse"):
        assert checks[name][0] == "pass", r.stdout
    assert checks["probe-get"][1] == "bytes match"
    assert str(cache) in checks["cache-dir"][1]
    # The real servers' clocks are this machine's: the skew is measured and small.
    if backend.name in CLOCKED:
        assert checks["clock"][0] == "pass", r.stdout
        assert re.match(r"skew -?[01] s against the server's Date$", checks["clock"][1])
    else:
        assert checks["clock"][1] == ("driver %s has no server clock to compare with (it "
                                      "signs and checks with this machine's clock)"
                                      % backend.driver)
    if backend.name in LISTS_UPLOADS:
        assert checks["stale-uploads"] == (
            "pass", 'no incomplete multipart upload older than 24 h under "" (0 in progress)')
    else:
        assert checks["stale-uploads"][1] == \
            "driver %s cannot list incomplete multipart uploads" % backend.driver
    assert re.match(r"\d+ passed, \d+ warnings, 0 failed, %d skipped$" % len(skips), summary)


def test_doctor_leaves_no_probe(persistent_backend, tmp_path):
    be = persistent_backend.fresh()
    r = doctor(be, tmp_path)
    assert r.returncode == 0, r.stdout
    listing = be.storetool("list", "", "--recursive").stdout.decode()
    assert ".lexfs-doctor/probe-" not in listing


def test_doctor_json(backend, tmp_path):
    r = doctor(backend.fresh(), tmp_path, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    doc = json.loads(r.stdout)
    assert doc["ok"] is True
    assert [c["check"] for c in doc["checks"]] == ORDER
    assert doc["summary"]["fail"] == 0
    assert doc["summary"]["skip"] == len(expected_skips(backend))
    assert doc["summary"]["pass"] + doc["summary"]["warn"] + doc["summary"]["skip"] == len(ORDER)
    for c in doc["checks"]:
        assert c["status"] in ("pass", "warn", "skip")
        assert isinstance(c["message"], str) and c["message"]


def test_doctor_unreachable_local_root(backend_local, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    root = blocker / "root"
    r = doctor(backend_local, tmp_path, source=str(root), settings={"root_dir": str(root)})
    assert r.returncode == 1, r.stdout
    checks, summary = parse(r.stdout)
    assert checks["driver"][0] == "fail"
    assert str(root) in checks["driver"][1]
    assert "-- fix: " in checks["driver"][1]
    for name in ("endpoint", "clock", "probe-put", "multipart", "stale-uploads"):
        assert checks[name][0] == "skip", r.stdout
    # The local checks still ran.
    assert checks["cache-dir"][0] == "pass"
    assert checks["fuse"][0] == "pass"
    assert re.search(r" 1 failed, 11 skipped$", summary), summary


@pytest.fixture
def unwritable_dir(tmp_path):
    """A directory nobody can write: a read-only tmpfs as root, mode 0555 otherwise."""
    d = tmp_path / "ro-cache"
    d.mkdir()
    if os.geteuid() == 0:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(d)],
                       check=True)
        yield d
        subprocess.run(["umount", str(d)], check=True)
    else:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)


def test_doctor_unwritable_cache_dir(backend, tmp_path, unwritable_dir):
    r = doctor(backend.fresh(), unwritable_dir)
    assert r.returncode == 1, r.stdout
    checks, summary = parse(r.stdout)
    st, msg = checks["cache-dir"]
    assert st == "fail"
    assert "%s is not writable" % unwritable_dir in msg
    assert "-- fix: make it writable" in msg
    # Only that check failed; the backend checks passed.
    assert [n for n, (s, _) in checks.items() if s == "fail"] == ["cache-dir"]
    assert checks["probe-put"][0] == "pass"
    assert re.search(r" 1 failed, %d skipped$" % len(expected_skips(backend)), summary)


def test_doctor_cache_dir_not_a_directory(backend, tmp_path):
    f = tmp_path / "plain"
    f.write_text("x")
    r = doctor(backend.fresh(), f, "--json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["ok"] is False
    cache = [c for c in doc["checks"] if c["check"] == "cache-dir"][0]
    assert cache["status"] == "fail"
    assert cache["message"] == "%s is not a directory" % f
    assert cache["fix"] == "point cache_dir at a directory"


def test_doctor_bad_config(backend, tmp_path):
    r = doctor(backend.fresh(), tmp_path, settings={"no_such_setting_xyz": "1"})
    assert r.returncode == 1, r.stdout
    checks, _ = parse(r.stdout)
    st, msg = checks["driver"]
    assert st == "fail"
    assert "unknown option no_such_setting_xyz (from -o no_such_setting_xyz)" in msg


def test_doctor_config_file_error(backend, tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("storage = { driver = ; };\n")
    conf.chmod(0o600)
    cmd = [lexfs_bin(), "doctor", backend.source, "-o", "config=%s" % conf,
           "-o", "cache_dir=%s" % tmp_path]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stdout
    checks, summary = parse(r.stdout)
    assert checks["config"][0] == "fail"
    assert str(conf) in checks["config"][1]
    assert checks["driver"] == ("skip", "configuration did not load")
    assert checks["fuse"][0] == "pass"


def test_doctor_wrong_credentials(backend, tmp_path):
    """Backends with credentials: a wrong secret of the right shape fails the endpoint
    check (access denied), the credentials line names where they came from, and no
    secret appears in the output. Backends without any report that none are needed."""
    be = backend.fresh()
    wrong = be.wrong_credentials(tmp_path)
    if wrong is None:
        r = doctor(be, tmp_path)
        assert r.returncode == 0
        checks, _ = parse(r.stdout)
        assert checks["credentials"] == ("pass", "driver %s needs none" % be.driver)
        return
    r = doctor(be, tmp_path, settings=wrong["settings"], env=wrong["env"])
    assert r.returncode == 1, r.stdout
    checks, _ = parse(r.stdout)
    assert checks["endpoint"][0] == "fail", r.stdout
    assert "access denied" in checks["endpoint"][1]
    for v in wrong["secrets"]:
        assert v not in r.stdout and v not in r.stderr
    for name in wrong["names"]:
        assert name in checks["credentials"][1]


def test_doctor_usage_error():
    r = subprocess.run([lexfs_bin(), "doctor", "--bogus"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 1
    assert "unknown option --bogus" in r.stderr


# ---- an endpoint nothing listens on -------------------------------------------------


@pytest.fixture
def closed_port():
    """A loopback port that refuses connections: bound, never listening."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("name", sorted(CLOCKED))
def test_doctor_unreachable_endpoint(request, name, tmp_path, closed_port):
    """Every cloud backend pointed at a closed loopback port: the endpoint check fails
    (connection refused, named), quickly, and the checks that need it are skipped."""
    be = request.getfixturevalue("backend_" + name).fresh()
    url = "http://127.0.0.1:%d" % closed_port
    if name == "azure":
        url += "/devstoreaccount1"
    t0 = time.monotonic()
    r = doctor(be, tmp_path, settings={"endpoint": url, "timeout": "5"})
    assert time.monotonic() - t0 < 60
    assert r.returncode == 1, r.stdout + r.stderr
    checks, summary = parse(r.stdout)
    st, msg = checks["endpoint"]
    assert st == "fail", r.stdout
    assert msg.startswith("health check failed: ")
    assert "127.0.0.1:%d" % closed_port in msg and "onnect" in msg, msg
    assert msg.endswith("-- fix: check the endpoint setting, DNS, network, proxy and TLS "
                        "(ca_file)")
    assert [n for n, (s, _) in checks.items() if s == "fail"] == ["endpoint"]
    for n in ORDER[ORDER.index("clock"):ORDER.index("cache-dir")]:
        assert checks[n] == ("skip", "endpoint not reachable"), r.stdout
    assert checks["credentials"][0] == "pass" and checks["fuse"][0] == "pass"


# ---- a server whose clock is two hours ahead ----------------------------------------

SKEW_S = 7200
FAKE_BUCKET = "skewed-bucket"


class SkewedS3(http.server.BaseHTTPRequestHandler):
    """Enough of S3 for lexfs doctor, with a clock two hours ahead: its Date headers say
    so, and, as S3 does, it refuses a signature whose x-amz-date is more than 15 minutes
    off its clock (403 RequestTimeTooSkewed). Objects live in a dict."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def date_time_string(self, timestamp=None):
        return formatdate(time.time() + SKEW_S, usegmt=True)

    def _send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, code):
        self._send(status, ("<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>scripted"
                            "</Message></Error>" % code).encode(),
                   {"Content-Type": "application/xml"})

    def _in_time(self):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        amz = self.headers.get("x-amz-date") or (q.get("X-Amz-Date") or [""])[0]
        if not amz:
            return False
        t = time.mktime(time.strptime(amz, "%Y%m%dT%H%M%SZ")) - time.timezone
        return abs(t - (time.time() + SKEW_S)) <= 900

    def _key(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        parts = path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) > 1 else None

    def _query(self):
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query,
                                     keep_blank_values=True)

    def _check(self):
        if not self._in_time():
            self._error(403, "RequestTimeTooSkewed")
            return False
        return True

    def _body(self):
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_GET(self):
        if not self._check():
            return
        key, q, store = self._key(), self._query(), self.server.objects
        if key is None and "uploads" in q:
            return self._send(200, b"<ListMultipartUploadsResult><IsTruncated>false"
                                   b"</IsTruncated></ListMultipartUploadsResult>")
        if key is None:
            prefix = q.get("prefix", [""])[0]
            items = "".join("<Contents><Key>%s</Key><Size>%d</Size><ETag>\"%s\"</ETag>"
                            "</Contents>" % (urllib.parse.quote(k), len(v),
                                              hashlib.md5(v).hexdigest())
                            for k, v in sorted(store.items()) if k.startswith(prefix))
            return self._send(200, ("<ListBucketResult><EncodingType>url</EncodingType>"
                                    "<IsTruncated>false</IsTruncated>%s</ListBucketResult>"
                                    % items).encode())
        if key not in store:
            return self._error(404, "NoSuchKey")
        data = store[key]
        rng = self.headers.get("Range")
        if rng:
            a, b = rng[6:].split("-")
            b = int(b) if b else len(data) - 1
            return self._send(206, data[int(a):b + 1])
        self._send(200, data, {"ETag": '"%s"' % hashlib.md5(data).hexdigest()})

    def do_HEAD(self):
        if not self._check():
            return
        data = self.server.objects.get(self._key())
        if data is None:
            return self._send(404)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", '"%s"' % hashlib.md5(data).hexdigest())
        self.end_headers()

    def do_PUT(self):
        body = self._body()
        if not self._check():
            return
        key = self._key()
        src = self.headers.get("x-amz-copy-source")
        if src:
            data = self.server.objects[urllib.parse.unquote(src).lstrip("/").split("/", 1)[1]]
            self.server.objects[key] = data
            return self._send(200, ("<CopyObjectResult><ETag>\"%s\"</ETag></CopyObjectResult>"
                                    % hashlib.md5(data).hexdigest()).encode())
        self.server.objects[key] = body
        self._send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})

    def do_POST(self):
        self._body()
        if not self._check():
            return
        if "uploads" in self._query():
            return self._send(200, b"<InitiateMultipartUploadResult><UploadId>up-1</UploadId>"
                                   b"</InitiateMultipartUploadResult>")
        self._error(400, "InvalidRequest")

    def do_DELETE(self):
        if not self._check():
            return
        if "uploadId" not in self._query():
            self.server.objects.pop(self._key(), None)
        self._send(204)


@pytest.fixture
def skewed_s3():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SkewedS3)
    srv.objects = {}
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield "http://127.0.0.1:%d" % srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_doctor_skewed_server_clock(skewed_s3, tmp_path):
    """A server two hours ahead: lexfs's own S3 requests get through (the driver learns
    the server's clock from RequestTimeTooSkewed), but the clock check fails with the
    skew and what to do, and doctor exits 1."""
    be = Backend("s3", "s3", "s3://" + FAKE_BUCKET,
                 settings={"bucket": FAKE_BUCKET, "endpoint": skewed_s3},
                 env={"AWS_ACCESS_KEY_ID": "FAKEKEY",
                      "AWS_SECRET_ACCESS_KEY": "fake-secret-0123456789abcdef",
                      "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"})
    r = doctor(be, tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    checks, summary = parse(r.stdout)
    assert checks["endpoint"][0] == "pass", r.stdout
    st, msg = checks["clock"]
    assert st == "fail", r.stdout
    assert re.match(r"local clock is (719[89]|720[012]) s \(2 h\) behind the server's Date "
                    r"-- fix: synchronise the clock \(chrony, systemd-timesyncd or ntpd\): "
                    r"signed requests \(SigV4, Shared Key, SAS\) are refused more than 15 "
                    r"minutes off", msg), msg
    # Only the clock failed: the rest of the probe went through the corrected signer.
    assert [n for n, (s, _) in checks.items() if s == "fail"] == ["clock"], r.stdout
    assert checks["probe-get"] == ("pass", "bytes match")
    assert re.search(r" 1 failed, 0 skipped$", summary), summary

    r = doctor(be, tmp_path, "--json")
    assert r.returncode == 1
    clock = [c for c in json.loads(r.stdout)["checks"] if c["check"] == "clock"][0]
    assert clock["status"] == "fail" and clock["fix"].startswith("synchronise the clock")


# ---- incomplete multipart uploads ---------------------------------------------------


def begin_upload(be, key):
    """Begin a multipart upload and leave it, as a writer that dies would: with boto3
    on S3 (independent of lexfs), with lexfs-storetool elsewhere."""
    if be.driver in ("s3", "r2"):
        return be.gateway.client().create_multipart_upload(Bucket=be.bucket,
                                                           Key=key)["UploadId"]
    r = be.storetool("mp-begin", key)
    assert r.stdout == b"begun\n"
    return None


def uploads(be):
    """(key, upload id) of every incomplete upload, as the backend's own tool sees it."""
    if be.driver in ("s3", "r2"):
        got = be.gateway.client().list_multipart_uploads(Bucket=be.bucket).get("Uploads", [])
        return sorted((u["Key"], u["UploadId"]) for u in got)
    out = be.storetool("mp-list", "").stdout.decode().splitlines()
    return sorted((j["key"], j["upload_id"]) for j in map(json.loads, out))


@pytest.fixture(params=sorted(LISTS_UPLOADS))
def mpu_backend(request):
    return request.getfixturevalue("backend_" + request.param).fresh()


def test_doctor_stale_uploads_warn_then_abort(mpu_backend, tmp_path):
    be = mpu_backend
    begin_upload(be, "big/left-behind.bin")
    begin_upload(be, "other.bin")
    assert len(uploads(be)) == 2
    # A day is the default age: fresh uploads are not stale.
    r = doctor(be, tmp_path)
    assert r.returncode == 0, r.stdout
    checks, _ = parse(r.stdout)
    assert checks["stale-uploads"] == (
        "pass", 'no incomplete multipart upload older than 24 h under "" (2 in progress)')
    # --stale-age 0 (for tests) makes them stale: a warning with the fix.
    r = doctor(be, tmp_path, "--stale-age", "0")
    assert r.returncode == 0, r.stdout
    checks, summary = parse(r.stdout)
    st, msg = checks["stale-uploads"]
    assert st == "warn", r.stdout
    assert re.match(r'2 incomplete multipart uploads older than 0 s under "" \(of 2 in '
                    r'progress\); the oldest, \d+ s old, is for (big/left-behind|other)\.bin '
                    r'-- fix: lexfs doctor --abort-stale$', msg), msg
    assert " 0 failed" in summary
    assert len(uploads(be)) == 2  # a warning changes nothing
    r = doctor(be, tmp_path, "--stale-age", "0", "--abort-stale")
    assert r.returncode == 0, r.stdout
    checks, _ = parse(r.stdout)
    assert checks["stale-uploads"] == (
        "pass", 'aborted 2 incomplete multipart uploads older than 0 s under ""')
    assert uploads(be) == []


def test_doctor_stale_uploads_only_under_the_prefix(mpu_backend, tmp_path):
    """A mount of a prefix looks after its own uploads, not the rest of the bucket's."""
    be = mpu_backend
    begin_upload(be, "mine/a.bin")
    begin_upload(be, "theirs/b.bin")
    r = doctor(be, tmp_path, "--stale-age", "0", "--abort-stale", settings={"prefix": "mine"})
    assert r.returncode == 0, r.stdout
    checks, _ = parse(r.stdout)
    assert checks["stale-uploads"] == (
        "pass", 'aborted 1 incomplete multipart upload older than 0 s under "mine/"')
    assert [k for k, _ in uploads(be)] == ["theirs/b.bin"]


def test_mp_list_pages_through_every_upload(mpu_backend):
    """The driver's listing goes on after each page (S3: key and upload-id markers),
    two uploads of one key included, and aborting one by id leaves the others."""
    be = mpu_backend
    for key in ("a.bin", "b.bin", "b.bin", "c d/é.bin"):
        begin_upload(be, key)
    want = uploads(be)
    assert len(want) == 4
    lines = be.storetool("mp-list", "", "--max-keys", "1", "--pages").stdout.decode()
    rows = [json.loads(l) for l in lines.splitlines()]
    pages = [r for r in rows if "page" in r]
    got = sorted((r["key"], r["upload_id"]) for r in rows if "key" in r)
    assert got == want
    assert [p["count"] for p in pages] == [1, 1, 1, 1]
    for r in rows:
        if "key" in r:
            assert abs(r["initiated"] - time.time()) < 120
    key, uid = want[1]
    be.storetool("mp-abort", key, uid)
    be.storetool("mp-abort", key, uid)  # gone already: still success
    assert uploads(be) == [u for u in want if u != (key, uid)]
