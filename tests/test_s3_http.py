"""The S3 driver's HTTP behaviour against a scripted server on 127.0.0.1.

A real S3 server never sends wrong bytes or a far-off clock on demand, so this
small server does: it checks what lexfs sends (Content-MD5 on every PUT and part,
payload hash, dates, encryption headers) and answers with throttling, skew,
corrupted bodies, failing parts, resets and stalls.

Besides the fixed paths below, it is a small object store (PUT, GET with Range,
HEAD, multipart, CopyObject, UploadPartCopy, ListObjectsV2) so that a mount can run
on it, and `fake.script(method, key, [action, ...])` makes the next requests of one
method on one key misbehave, one action each: an HTTP status ("429", "502", ...),
"reset" (the connection is dropped before any answer), "reset_mid" (half the body,
then a TCP reset), "stall" (no answer for STALL_S seconds) or "ok".
"""
import base64
import hashlib
import http.server
import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
import urllib.parse
from email.utils import formatdate
from pathlib import Path

import pytest

from conftest import storetool_bin

BUCKET = "fake-bucket"
STALL_S = 10


class Dropped(Exception):
    """The scripted action closed the connection: nothing more to send."""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (Dropped, OSError, ValueError):
            self.close_connection = True

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def _key(self):
        path = urllib.parse.unquote(self.path.split("?")[0])
        pre = "/%s/" % BUCKET
        return path[len(pre):] if path.startswith(pre) else None

    def _query(self):
        return dict(urllib.parse.parse_qsl(self.path.partition("?")[2],
                                           keep_blank_values=True))

    def _reset(self):
        # SO_LINGER 0: close sends a TCP reset, as a crashed peer would.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.connection.close()
        raise Dropped()

    def _scripted(self, body=None):
        """Run the next scripted action for this method and key; True when it
        answered (the caller stops), False for "ok" or no script."""
        srv = self.server
        with srv.lock:
            todo = srv.scripts.get((self.command, self._key()))
            action = todo.pop(0) if todo else None
        if action is None or action == "ok":
            return False
        if action == "reset":
            self._reset()
        if action == "stall":
            time.sleep(STALL_S)
            self._reset()
        if action == "reset_mid":
            data = srv.stored["/%s/%s" % (BUCKET, self._key())]
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("ETag", '"%s"' % hashlib.md5(data).hexdigest())
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.wfile.flush()
            time.sleep(0.3)  # let the client take the first half
            self._reset()
        if self.command in ("PUT", "POST"):
            self._body()  # answer a whole request, as a server behind a proxy does
        self._error(int(action), {"429": "SlowDown", "502": "BadGateway",
                                  "504": "GatewayTimeout"}.get(action, "InternalError"))
        return True

    def _object(self, data, head=False):
        tag = '"%s"' % hashlib.md5(data).hexdigest()
        hdrs = {"ETag": tag, "Last-Modified": formatdate(time.time(), usegmt=True)}
        if self.headers.get("If-Match") not in (None, tag):
            return self._error(412, "PreconditionFailed")
        rng = self.headers.get("Range")
        if rng and not head:
            m = re.match(r"bytes=(\d+)-(\d*)$", rng)
            a = int(m.group(1))
            b = min(int(m.group(2)), len(data) - 1) if m.group(2) else len(data) - 1
            if a >= len(data):
                return self._error(416, "InvalidRange")
            hdrs["Content-Range"] = "bytes %d-%d/%d" % (a, b, len(data))
            return self._send(206, data[a:b + 1], hdrs)
        if head:
            self.send_response(200)
            for k, v in hdrs.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return None
        return self._send(200, data, hdrs)

    def _list(self):
        q = self._query()
        prefix, delim = q.get("prefix", ""), q.get("delimiter", "")
        keys, prefixes = [], set()
        for path in sorted(self.server.stored):
            k = path[len(BUCKET) + 2:]
            if not path.startswith("/%s/" % BUCKET) or not k.startswith(prefix):
                continue
            rest = k[len(prefix):]
            if delim and delim in rest:
                prefixes.add(prefix + rest.split(delim)[0] + delim)
            else:
                keys.append(k)
        body = "<?xml version=\"1.0\"?><ListBucketResult><Name>%s</Name>" % BUCKET
        body += "<IsTruncated>false</IsTruncated>"
        for k in keys:
            data = self.server.stored["/%s/%s" % (BUCKET, k)]
            body += ("<Contents><Key>%s</Key><Size>%d</Size><ETag>&quot;%s&quot;</ETag>"
                     "<LastModified>2024-01-01T00:00:00.000Z</LastModified></Contents>"
                     % (urllib.parse.quote(k), len(data), hashlib.md5(data).hexdigest()))
        for p in sorted(prefixes):
            body += "<CommonPrefixes><Prefix>%s</Prefix></CommonPrefixes>" % \
                urllib.parse.quote(p)
        return self._send(200, (body + "</ListBucketResult>").encode())

    def _send(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status, code, extra_headers=None):
        body = ("<?xml version=\"1.0\"?><Error><Code>%s</Code><Message>scripted</Message>"
                "</Error>" % code).encode()
        self._send(status, body, dict({"Content-Type": "application/xml"},
                                      **(extra_headers or {})))

    def _record(self):
        srv = self.server
        with srv.lock:
            srv.log.append((self.command, self.path, dict(self.headers)))
            srv.count[self.path.split("?")[0]] = srv.count.get(self.path.split("?")[0], 0) + 1
            return srv.count[self.path.split("?")[0]]

    def _auth_ok(self):
        a = self.headers.get("Authorization", "")
        return a.startswith("AWS4-HMAC-SHA256 Credential=FAKEKEY/") and \
            "x-amz-date" in a and "x-amz-content-sha256" in a

    def _temp_creds(self, n, fmt):
        # The first credentials expire within lexfs's 5-minute margin: the next
        # signature must come from refreshed ones.
        exp = time.time() + (200 if n == 1 else 3600)
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(exp))
        tok = "tok-%d" % n
        if fmt == "json":
            return json.dumps({"AccessKeyId": "FAKEKEY", "SecretAccessKey": "temp-secret-%d" % n,
                               "Token": tok, "Expiration": iso}).encode()
        return ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                "<Credentials><AccessKeyId>FAKEKEY</AccessKeyId><SecretAccessKey>temp-%d"
                "</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>%s"
                "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                "</AssumeRoleWithWebIdentityResponse>" % (n, tok, iso)).encode()

    def do_GET(self):
        n = self._record()
        path = self.path.split("?")[0]
        if path == "/ecs-creds":
            if self.headers.get("Authorization") != "ecs-auth-token":
                return self._send(401)
            return self._send(200, self._temp_creds(n, "json"))
        if path == "/latest/meta-data/iam/security-credentials/":
            if self.headers.get("X-aws-ec2-metadata-token") != "imds-session":
                return self._send(401)
            return self._send(200, b"lexfs-role\n")
        if path == "/latest/meta-data/iam/security-credentials/lexfs-role":
            if self.headers.get("X-aws-ec2-metadata-token") != "imds-session":
                return self._send(401)
            return self._send(200, self._temp_creds(n, "json"))
        if path == "/sts/":
            q = self.path.split("?", 1)[1]
            if "Action=AssumeRoleWithWebIdentity" not in q or \
                    "WebIdentityToken=the-oidc-token" not in q or \
                    "RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Flexfs" not in q:
                return self._error(400, "InvalidIdentityToken")
            return self._send(200, self._temp_creds(n, "xml"))
        if not self._auth_ok():
            return self._error(403, "AccessDenied")
        if path == "/%s" % BUCKET:
            return self._list()
        if self._scripted():
            return None
        if path.endswith("/corrupt"):
            body = b"hello world, these are not the bytes the etag promises"
            rng = self.headers.get("Range")
            tag = '"%s"' % hashlib.md5(b"other bytes").hexdigest()
            if rng:
                a, b = rng[6:].split("-")
                part = body[int(a):int(b) + 1]
                return self._send(206, part, {"ETag": tag})
            return self._send(200, body, {"ETag": tag})
        if path.endswith("/good"):
            body = b"good bytes"
            return self._send(200, body, {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        if path.endswith("/slow"):
            if n <= 2:
                return self._error(503, "SlowDown")
            return self._send(200, b"finally")
        if path.endswith("/retry-after"):
            if n == 1:
                self.server.first_at = time.monotonic()
                return self._error(503, "SlowDown", {"Retry-After": "2"})
            self.server.second_at = time.monotonic()
            return self._send(200, b"waited")
        if path in self.server.stored:
            return self._object(self.server.stored[path])
        if path.endswith("/bad"):
            return self._error(400, "InvalidArgument")
        if path.endswith("/skew"):
            server_now = time.time() + 7200
            date = formatdate(server_now, usegmt=True)
            amz = self.headers.get("x-amz-date", "")
            t = time.mktime(time.strptime(amz, "%Y%m%dT%H%M%SZ")) - time.timezone if amz else 0
            if abs(t - server_now) > 120:
                return self._error(403, "RequestTimeTooSkewed", {"Date": date})
            return self._send(200, b"in sync", {"Date": date})
        return self._error(404, "NoSuchKey")

    def do_HEAD(self):
        self._record()
        path = self.path.split("?")[0]
        if self._scripted():
            return None
        if path in self.server.stored:
            return self._object(self.server.stored[path], head=True)
        if path.endswith("/good"):
            return self._send(200, b"", {"ETag": '"x"'})
        self._send(404)

    def _body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n)

    def do_PUT(self):
        self._record()
        srv = self.server
        if self._key() == srv.shrink_key and srv.shrink_file:
            # The upload's source file loses its bytes while they are on the way;
            # the rest of the body can then never arrive.
            os.truncate(srv.shrink_file, 0)
        if self._scripted():
            return None
        body = self._body()
        if self.path == "/latest/api/token":
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._send(400)
            return self._send(200, b"imds-session")
        q = self._query()
        src = self.headers.get("x-amz-copy-source")
        if src:
            data = srv.stored.get(urllib.parse.unquote(src))
            if data is None:
                return self._error(404, "NoSuchKey")
            rng = self.headers.get("x-amz-copy-source-range")
            if rng:
                a, b = map(int, rng[6:].split("-"))
                data = data[a:b + 1]
            tag = hashlib.md5(data).hexdigest()
            if "partNumber" in q:
                srv.parts[(self._key(), q["uploadId"])][int(q["partNumber"])] = data
                return self._send(200, ("<CopyPartResult><ETag>&quot;%s&quot;</ETag>"
                                        "</CopyPartResult>" % tag).encode())
            srv.stored[self.path.split("?")[0]] = data
            return self._send(200, ("<CopyObjectResult><ETag>&quot;%s&quot;</ETag>"
                                    "</CopyObjectResult>" % tag).encode())
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        if self.headers.get("Content-MD5") != md5:
            return self._error(400, "BadDigest")
        sha = self.headers.get("x-amz-content-sha256")
        if sha not in (hashlib.sha256(body).hexdigest(), "UNSIGNED-PAYLOAD"):
            return self._error(400, "XAmzContentSHA256Mismatch")
        if "partNumber" in q:
            if self._key() == "mp":
                return self._error(500, "InternalError")
            parts = srv.parts.get((self._key(), q.get("uploadId")))
            if parts is None:
                return self._error(404, "NoSuchUpload")
            parts[int(q["partNumber"])] = body
            srv.part_md5.append((self._key(), int(q["partNumber"]),
                                 self.headers.get("Content-MD5"), md5))
            return self._send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})
        srv.stored[self.path] = body
        self._send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})

    def do_POST(self):
        self._record()
        srv = self.server
        body = self._body()
        q = self._query()
        if self.path.endswith("?uploads"):
            srv.next_upload += 1
            uid = "up-%d" % srv.next_upload
            srv.parts[(self._key(), uid)] = {}
            return self._send(200, ("<InitiateMultipartUploadResult><UploadId>%s</UploadId>"
                                    "</InitiateMultipartUploadResult>" % uid).encode())
        if "uploadId" in q:
            parts = srv.parts.pop((self._key(), q["uploadId"]), None)
            if parts is None:
                return self._error(404, "NoSuchUpload")
            nums = [int(n) for n in re.findall(rb"<PartNumber>(\d+)</PartNumber>", body)]
            srv.stored[self.path.split("?")[0]] = b"".join(parts[n] for n in nums)
            return self._send(200, b"<CompleteMultipartUploadResult>"
                                   b"</CompleteMultipartUploadResult>")
        self._error(400, "InvalidRequest")

    def do_DELETE(self):
        self._record()
        q = self._query()
        if "uploadId" in q:
            self.server.parts.pop((self._key(), q["uploadId"]), None)
        else:
            self.server.stored.pop(self.path.split("?")[0], None)
        self._send(204)


@pytest.fixture
def fake():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.lock = threading.Lock()
    srv.log = []
    srv.count = {}
    srv.stored = {}
    srv.scripts = {}
    srv.parts = {}
    srv.part_md5 = []
    srv.next_upload = 0
    srv.shrink_key = srv.shrink_file = None
    srv.daemon_threads = True
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.endpoint = "http://127.0.0.1:%d" % srv.server_address[1]

    def script(method, key, actions):
        with srv.lock:
            srv.scripts[(method, key)] = list(actions)
    srv.script = script
    yield srv
    srv.shutdown()
    srv.server_close()


def tool(fake, *args, extra=()):
    cmd = [storetool_bin(), "--driver", "s3", "--set", "bucket=" + BUCKET,
           "--set", "endpoint=" + fake.endpoint, "--set", "access_key_id=FAKEKEY",
           "--set", "secret_access_key=fake-secret-0123456789"]
    for e in extra:
        cmd += ["--set", e]
    env = dict(os.environ, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return subprocess.run(cmd + list(args), capture_output=True, timeout=60, env=env)


def test_whole_download_with_wrong_md5_is_eio_checksum_mismatch(fake):
    r = tool(fake, "get", "corrupt")
    assert r.returncode == 5, r.stderr
    assert b"LEXFS-008" in r.stderr


def test_ranged_download_is_not_md5_checked(fake):
    r = tool(fake, "get", "corrupt", "0", "5")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"hello"


def test_whole_download_with_right_md5_passes(fake):
    r = tool(fake, "get", "good")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"good bytes"


def test_slowdown_is_retried_with_backoff(fake):
    r = tool(fake, "get", "slow")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"finally"
    assert fake.count["/%s/slow" % BUCKET] == 3


def test_retry_after_is_honoured(fake):
    r = tool(fake, "get", "retry-after")
    assert r.returncode == 0, r.stderr
    assert fake.second_at - fake.first_at >= 1.9


def test_client_error_is_not_retried(fake):
    r = tool(fake, "get", "bad")
    assert r.returncode == 22, r.stderr
    assert fake.count["/%s/bad" % BUCKET] == 1


def test_clock_skew_is_corrected_from_the_server_date(fake):
    r = tool(fake, "get", "skew")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"in sync"
    assert fake.count["/%s/skew" % BUCKET] == 2


def test_put_carries_content_md5_and_payload_hash(fake, tmp_path):
    data = os.urandom(300000)
    f = tmp_path / "f"
    f.write_bytes(data)
    r = tool(fake, "put", "obj", str(f))
    assert r.returncode == 0, r.stderr
    assert fake.stored["/%s/obj" % BUCKET] == data
    r = tool(fake, "put", "obj2", str(f), extra=["sign_payload=true"])
    assert r.returncode == 0, r.stderr
    put = [h for (m, p, h) in fake.log if m == "PUT" and p.endswith("/obj2")][0]
    assert put["x-amz-content-sha256"] == hashlib.sha256(data).hexdigest()


def test_failed_part_aborts_the_upload(fake, tmp_path):
    f = tmp_path / "big"
    f.write_bytes(os.urandom(11 * 1024 * 1024))
    r = tool(fake, "mpu", "mp", str(5 * 1024 * 1024), str(f))
    assert r.returncode != 0
    deletes = [p for (m, p, h) in fake.log if m == "DELETE"]
    assert deletes == ["/%s/mp?uploadId=up-1" % BUCKET]


def test_unreachable_endpoint_names_the_problem(tmp_path):
    env = dict(os.environ, AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    r = subprocess.run([storetool_bin(), "--driver", "s3", "--set", "bucket=b-b-b",
                        "--set", "endpoint=http://127.0.0.1:9", "--set", "access_key_id=K",
                        "--set", "secret_access_key=S", "health"],
                       capture_output=True, timeout=120, env=env)
    assert r.returncode != 0
    assert b"127.0.0.1" in r.stderr and b"onnect" in r.stderr


def test_no_credentials_is_refused_with_where_we_looked(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               HOME=str(tmp_path))
    r = subprocess.run([storetool_bin(), "--driver", "s3", "--set", "bucket=b-b-b",
                        "--set", "endpoint=http://127.0.0.1:9", "health"],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 13
    assert b"AWS_ACCESS_KEY_ID" in r.stderr and b"credentials" in r.stderr


def test_profile_credentials_from_shared_files(fake, tmp_path):
    (tmp_path / "credentials").write_text(
        "[other]\naws_access_key_id = FAKEKEY\naws_secret_access_key = from-profile-0123\n")
    (tmp_path / "config").write_text("[profile other]\nregion = eu-west-3\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE=str(tmp_path / "config"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"), AWS_PROFILE="other")
    r = subprocess.run([storetool_bin(), "--driver", "s3", "--set", "bucket=" + BUCKET,
                        "--set", "endpoint=" + fake.endpoint, "get", "good"],
                       capture_output=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    auth = [h for (m, p, h) in fake.log if p.endswith("/good")][0]["Authorization"]
    assert "/eu-west-3/s3/aws4_request" in auth


def _no_aws_env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true", HOME=str(tmp_path))
    env.update(extra)
    return env


def _get_good(fake, env, *extra):
    cmd = [storetool_bin(), "--driver", "s3", "--set", "bucket=" + BUCKET,
           "--set", "endpoint=" + fake.endpoint]
    for e in extra:
        cmd += ["--set", e]
    return subprocess.run(cmd + ["get", "good"], capture_output=True, timeout=60, env=env)


def _s3_token(fake):
    return [h for (m, p, h) in fake.log if p.endswith("/good")][0].get("x-amz-security-token")


def test_ecs_container_credentials_are_used_and_refreshed(fake, tmp_path):
    env = _no_aws_env(tmp_path, AWS_CONTAINER_CREDENTIALS_FULL_URI=fake.endpoint + "/ecs-creds",
                      AWS_CONTAINER_AUTHORIZATION_TOKEN="ecs-auth-token")
    r = _get_good(fake, env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"good bytes"
    assert fake.count["/ecs-creds"] == 2
    assert _s3_token(fake) == "tok-2"


def test_imds_v2_credentials_with_token_flow(fake, tmp_path):
    env = _no_aws_env(tmp_path, AWS_EC2_METADATA_SERVICE_ENDPOINT=fake.endpoint)
    env.pop("AWS_EC2_METADATA_DISABLED")
    r = _get_good(fake, env)
    assert r.returncode == 0, r.stderr
    assert fake.count["/latest/api/token"] == 2
    assert _s3_token(fake) == "tok-2"


def test_imds_is_not_asked_unless_enabled(fake, tmp_path):
    env = _no_aws_env(tmp_path)
    env.pop("AWS_EC2_METADATA_DISABLED")
    r = _get_good(fake, env)
    assert r.returncode == 13
    assert "/latest/api/token" not in fake.count


def test_web_identity_through_sts(fake, tmp_path):
    (tmp_path / "token").write_text("the-oidc-token\n")
    env = _no_aws_env(tmp_path, AWS_WEB_IDENTITY_TOKEN_FILE=str(tmp_path / "token"),
                      AWS_ROLE_ARN="arn:aws:iam::123456789012:role/lexfs",
                      AWS_ENDPOINT_URL_STS=fake.endpoint + "/sts")
    r = _get_good(fake, env)
    assert r.returncode == 0, r.stderr
    assert fake.count["/sts/"] == 2
    assert _s3_token(fake) == "tok-2"


# ---- retries: each failure once, then the request succeeds ----

def _stored(fake, key, data):
    fake.stored["/%s/%s" % (BUCKET, key)] = data


def _requests(fake, method, key):
    return [h for (m, p, h) in fake.log if m == method and p.split("?")[0] == "/%s/%s"
            % (BUCKET, key)]


def test_429_on_get_is_retried(fake):
    data = os.urandom(100000)
    _stored(fake, "obj", data)
    fake.script("GET", "obj", ["429"])
    r = tool(fake, "get", "obj")
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
    assert len(_requests(fake, "GET", "obj")) == 2


def test_502_on_put_is_retried_with_the_same_body(fake, tmp_path):
    data = os.urandom(300000)
    (tmp_path / "f").write_bytes(data)
    fake.script("PUT", "obj", ["502"])
    r = tool(fake, "put", "obj", str(tmp_path / "f"))
    assert r.returncode == 0, r.stderr
    assert fake.stored["/%s/obj" % BUCKET] == data
    puts = _requests(fake, "PUT", "obj")
    assert len(puts) == 2
    assert puts[0]["Content-MD5"] == puts[1]["Content-MD5"]


def test_504_on_head_is_retried(fake):
    _stored(fake, "obj", b"x" * 4321)
    fake.script("HEAD", "obj", ["504"])
    r = tool(fake, "info", "obj")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["size"] == 4321
    assert len(_requests(fake, "HEAD", "obj")) == 2


def test_connection_reset_before_an_answer_is_retried(fake, tmp_path):
    data = os.urandom(2 * 1024 * 1024)
    (tmp_path / "f").write_bytes(data)
    fake.script("PUT", "obj", ["reset"])
    r = tool(fake, "put", "obj", str(tmp_path / "f"))
    assert r.returncode == 0, r.stderr
    assert fake.stored["/%s/obj" % BUCKET] == data
    assert len(_requests(fake, "PUT", "obj")) == 2


def test_connection_reset_mid_response_resumes_after_the_bytes_received(fake):
    data = os.urandom(1024 * 1024)
    _stored(fake, "obj", data)
    fake.script("GET", "obj", ["reset_mid"])
    r = tool(fake, "get", "obj")
    assert r.returncode == 0, r.stderr
    assert r.stdout == data
    gets = _requests(fake, "GET", "obj")
    assert len(gets) == 2
    # The second request asks only for what did not arrive, of the same object.
    start = int(re.match(r"bytes=(\d+)-$", gets[1]["Range"]).group(1))
    assert 0 < start <= len(data) // 2
    assert gets[1]["If-Match"] == '"%s"' % hashlib.md5(data).hexdigest()


def test_request_timeout_is_retried_through_the_mount(fake, mounter):
    data = os.urandom(200000)
    _stored(fake, "slow.bin", data)
    fake.script("GET", "slow.bin", ["stall"])
    env = dict(AWS_ACCESS_KEY_ID="FAKEKEY", AWS_SECRET_ACCESS_KEY="fake-secret-0123456789",
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_REGION="", AWS_PROFILE="", AWS_SESSION_TOKEN="")
    m = mounter("s3://" + BUCKET, opts=["endpoint=" + fake.endpoint, "timeout=1",
                                        "trace=http"], env=env)
    t0 = time.monotonic()
    assert Path(m.path, "slow.bin").read_bytes() == data
    # The stalled GET was given up after the 1 s timeout, long before the server's
    # stall ended, and sent again.
    assert time.monotonic() - t0 < STALL_S
    assert len(_requests(fake, "GET", "slow.bin")) >= 2
    assert re.search(r"GET \S+/slow.bin .*curl: .*(too slow|timed out)", m.log), m.log
    # ... and given up about when timeout= says: 1 s without a byte (the check runs
    # about once a second), not the several more seconds curl's speed average takes
    first = re.search(r"GET \S+/slow.bin .*curl: .* (\d+)ms try=1", m.log)
    assert first and int(first.group(1)) < 2600, m.log


def test_put_whose_source_shrinks_during_the_upload_is_not_retried(fake, tmp_path):
    # The body can no longer be sent as it was hashed and announced: a second
    # attempt could only send other bytes, so there is none.
    f = tmp_path / "f"
    f.write_bytes(os.urandom(48 * 1024 * 1024))
    fake.shrink_key, fake.shrink_file = "shrinks", str(f)
    r = tool(fake, "put", "shrinks", str(f))
    assert r.returncode == 5, r.stderr  # EIO
    assert b"not retried" in r.stderr
    assert len(_requests(fake, "PUT", "shrinks")) == 1
    assert "/%s/shrinks" % BUCKET not in fake.stored


def test_every_upload_part_carries_its_content_md5(fake, tmp_path):
    data = os.urandom(12 * 1024 * 1024 + 5)
    (tmp_path / "f").write_bytes(data)
    r = tool(fake, "mpu", "parts.bin", str(5 * 1024 * 1024), str(tmp_path / "f"))
    assert r.returncode == 0, r.stderr
    assert fake.stored["/%s/parts.bin" % BUCKET] == data
    parts = sorted(p for p in fake.part_md5 if p[0] == "parts.bin")
    assert [p[1] for p in parts] == [1, 2, 3]
    assert all(sent == want for (_, _, sent, want) in parts)


# ---- server-side encryption headers (radosgw takes AES256 without encrypting) ----

def _lower(h):
    return {k.lower(): v for k, v in h.items()}


def test_sse_s3_header_goes_on_creating_requests_only(fake, tmp_path):
    (tmp_path / "small").write_bytes(b"small")
    (tmp_path / "big").write_bytes(os.urandom(11 * 1024 * 1024))
    sse = ["sse=AES256"]
    for args in (["put", "e1", str(tmp_path / "small")],
                 ["mpu", "e2", str(5 * 1024 * 1024), str(tmp_path / "big")],
                 ["cp", "e1", "e3"], ["get", "e1"], ["info", "e1"]):
        r = tool(fake, *args, extra=sse)
        assert r.returncode == 0, (args, r.stderr)
    creating = [h for (m, p, h) in fake.log
                if (m == "PUT" and p in ("/%s/e1" % BUCKET, "/%s/e3" % BUCKET))
                or (m == "POST" and p == "/%s/e2?uploads" % BUCKET)]
    assert len(creating) == 3
    assert all(_lower(h).get("x-amz-server-side-encryption") == "AES256" for h in creating)
    others = [h for (m, p, h) in fake.log
              if m in ("GET", "HEAD") or "partNumber=" in p or "uploadId=" in p]
    assert others and all("x-amz-server-side-encryption" not in _lower(h) for h in others)


def test_sse_c_key_goes_on_every_request_of_the_data(fake, tmp_path):
    key = os.urandom(32)
    kf = tmp_path / "sse-c.key"
    kf.write_bytes(key)
    kf.chmod(0o600)
    (tmp_path / "small").write_bytes(b"small")
    (tmp_path / "big").write_bytes(os.urandom(11 * 1024 * 1024))
    extra = ["sse_customer_key_file=" + str(kf), "copy_threshold=5m", "copy_part_size=5m"]
    for args in (["put", "c1", str(tmp_path / "small")],
                 ["mpu", "c2", str(5 * 1024 * 1024), str(tmp_path / "big")],
                 ["get", "c1"], ["info", "c1"],
                 ["cp", "c1", "c3"],    # CopyObject
                 ["cp", "c2", "c4"]):   # UploadPartCopy
        r = tool(fake, *args, extra=extra)
        assert r.returncode == 0, (args, r.stderr)
        assert base64.b64encode(key) not in r.stderr
    want = {"x-amz-server-side-encryption-customer-algorithm": "AES256",
            "x-amz-server-side-encryption-customer-key": base64.b64encode(key).decode(),
            "x-amz-server-side-encryption-customer-key-md5":
                base64.b64encode(hashlib.md5(key).digest()).decode()}
    data_reqs = [(m, p, _lower(h)) for (m, p, h) in fake.log if m != "DELETE"]
    assert len(data_reqs) >= 12
    for m, p, h in data_reqs:
        for k, v in want.items():
            assert h.get(k) == v, (m, p, k)
        assert "x-amz-server-side-encryption" not in h
    copies = [(p, h) for (m, p, h) in data_reqs if "x-amz-copy-source" in h]
    assert len(copies) == 4  # one CopyObject, three UploadPartCopy
    for p, h in copies:
        for k, v in want.items():
            assert h.get(k.replace("x-amz-", "x-amz-copy-source-")) == v, (p, k)
    assert fake.stored["/%s/c4" % BUCKET] == (tmp_path / "big").read_bytes()
