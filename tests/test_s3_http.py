"""The S3 driver's HTTP behaviour against a scripted server on 127.0.0.1.

A real S3 server never sends wrong bytes or a far-off clock on demand, so this
small server does: it checks what lexfs sends (Content-MD5, payload hash, dates)
and answers with throttling, skew, corrupted bodies and failing parts.
"""
import base64
import hashlib
import http.server
import json
import os
import subprocess
import threading
import time
from email.utils import formatdate

import pytest

from conftest import storetool_bin

BUCKET = "fake-bucket"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

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
            body = (b"<?xml version=\"1.0\"?><ListBucketResult><Name>fake-bucket</Name>"
                    b"<IsTruncated>false</IsTruncated></ListBucketResult>")
            return self._send(200, body)
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
        if self.path.split("?")[0].endswith("/good"):
            return self._send(200, b"", {"ETag": '"x"'})
        self._send(404)

    def _body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n)

    def do_PUT(self):
        self._record()
        body = self._body()
        if self.path == "/latest/api/token":
            if not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                return self._send(400)
            return self._send(200, b"imds-session")
        md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
        if self.headers.get("Content-MD5") != md5:
            return self._error(400, "BadDigest")
        sha = self.headers.get("x-amz-content-sha256")
        if sha not in (hashlib.sha256(body).hexdigest(), "UNSIGNED-PAYLOAD"):
            return self._error(400, "XAmzContentSHA256Mismatch")
        if "partNumber=" in self.path:
            return self._error(500, "InternalError")
        self.server.stored[self.path] = body
        self._send(200, b"", {"ETag": '"%s"' % hashlib.md5(body).hexdigest()})

    def do_POST(self):
        self._record()
        self._body()
        if self.path.endswith("?uploads"):
            return self._send(200, b"<InitiateMultipartUploadResult><UploadId>up-1</UploadId>"
                                   b"</InitiateMultipartUploadResult>")
        self._error(400, "InvalidRequest")

    def do_DELETE(self):
        self._record()
        self._send(204)


@pytest.fixture
def fake():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.lock = threading.Lock()
    srv.log = []
    srv.count = {}
    srv.stored = {}
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    srv.endpoint = "http://127.0.0.1:%d" % srv.server_address[1]
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
