"""lexfs's SigV4 against botocore (Debian's python3-botocore), offline, byte for byte.

For fixed requests and a fixed time, the canonical request, the string to sign, the
signature and the final Authorization header / presigned URL that lexfs computes
(tests/unit/sigv4_dump, linked with liblexfs) must equal botocore's exactly.
"""
import datetime
import hashlib
import os
import subprocess
import types
from unittest import mock
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

BUILD = os.environ.get("LEXFS_BUILD", os.path.join(os.path.dirname(__file__), ".."))
DUMP = os.path.join(BUILD, "tests", "unit", "sigv4_dump")

WHEN = datetime.datetime(2015, 8, 30, 12, 36, 0)
EPOCH = 1440938160
AKID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+token=="

TRICKY_KEYS = [
    "plain.txt",
    "dir/sub dir/file with spaces.txt",
    "a+b=c&d.txt",
    "100%/pct%20literal",
    "caf\u00e9/\u65e5\u672c\u8a9e/\U0001F600.bin",
    "tilde~star*paren()!'quote",
    "semi;colon:at@comma,dollar$hash#q?",
    "double//slash/./dot/../up",
]


def enc_key(key):
    # What the driver puts on the wire: RFC 3986 unreserved kept, '/' kept.
    return quote(key, safe="/~")


def enc(s):
    return quote(s, safe="-_.~")


class Recording:
    def string_to_sign(self, request, canonical_request):
        self.canonical = canonical_request
        self.sts = super().string_to_sign(request, canonical_request)
        return self.sts

    def signature(self, string_to_sign, request):
        self.sig = super().signature(string_to_sign, request)
        return self.sig


class RecordingS3Auth(Recording, S3SigV4Auth):
    pass


class RecordingQueryAuth(Recording, S3SigV4QueryAuth):
    pass


def botocore_header(method, url, region, token, headers, body, unsigned):
    creds = Credentials(AKID, SECRET, token)
    req = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    if unsigned:
        req.context["client_config"] = types.SimpleNamespace(
            s3={"payload_signing_enabled": False})
        req.context["has_streaming_input"] = True
    auth = RecordingS3Auth(creds, "s3", region)
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = WHEN
        dt.datetime.strptime = datetime.datetime.strptime
        auth.add_auth(req)
    return auth.canonical, auth.sts, auth.sig, req.headers["Authorization"]


def botocore_presign(method, url, region, token, expires):
    creds = Credentials(AKID, SECRET, token)
    req = AWSRequest(method=method, url=url)
    auth = RecordingQueryAuth(creds, "s3", region, expires=expires)
    with mock.patch("botocore.auth.datetime") as dt:
        dt.datetime.utcnow.return_value = WHEN
        auth.add_auth(req)
    return auth.canonical, auth.sts, auth.sig, req.url


def lexfs(args):
    p = subprocess.run([DUMP] + args, capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr.decode()
    out = p.stdout.decode("utf-8")
    parts = {}
    cur = None
    for line in out.split("\n"):
        if line.startswith("--- "):
            cur = line[4:]
            parts[cur] = []
        elif cur is not None:
            parts[cur].append(line)
    res = {k: "\n".join(v) for k, v in parts.items()}
    res["result"] = res["result"].rstrip("\n")
    return res["canonical"], res["sts"], res["signature"], res["result"]


def lexfs_header(method, url, region, token, headers, payload_hash):
    args = ["header", method, url, str(EPOCH), region, AKID, SECRET, token or "-",
            payload_hash]
    args += ["%s:%s" % (k, v) for k, v in headers.items()]
    return lexfs(args)


def lexfs_presign(method, url, region, token, expires):
    return lexfs(["presign", method, url, str(EPOCH), region, AKID, SECRET, token or "-",
                  str(expires)])


def compare(mine, theirs):
    names = ["canonical request", "string to sign", "signature", "result"]
    for name, a, b in zip(names, mine, theirs):
        assert a == b, "%s differs:\nlexfs:\n%s\nbotocore:\n%s" % (name, a, b)


HOSTS = [
    # (id, base URL for a key, region)
    ("path-local", "http://127.0.0.1:7480/my-bucket/", "us-east-1"),
    ("path-aws", "https://s3.eu-west-1.amazonaws.com/my-bucket/", "eu-west-1"),
    ("vhost-aws", "https://my-bucket.s3.us-west-2.amazonaws.com/", "us-west-2"),
    ("r2-auto", "https://0123456789abcdef.r2.cloudflarestorage.com/my-bucket/", "auto"),
    ("vhost-port", "http://my-bucket.localhost:9000/", "us-east-1"),
]


@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
@pytest.mark.parametrize("key", TRICKY_KEYS)
def test_header_get_range(host, key):
    url = host[1] + enc_key(key)
    headers = {"Range": "bytes=0-1023"}
    theirs = botocore_header("GET", url, host[2], None, headers, b"", False)
    mine = lexfs_header("GET", url, host[2], None, headers, hashlib.sha256(b"").hexdigest())
    compare(mine, theirs)


@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
@pytest.mark.parametrize("token", [None, TOKEN], ids=["keys", "token"])
def test_header_put_with_metadata(host, token):
    body = b"hello, world\n" * 100
    url = host[1] + enc_key("dir/a b+c=d&e\u00e9.txt")
    headers = {
        "Content-MD5": "ZajifYh5KDgxtmS9i38K1A==",
        "Content-Type": "text/plain; charset=utf-8",
        "x-amz-meta-mode": "33188",
        "x-amz-meta-note": "  spaced   out\tvalue  ",
        "x-amz-server-side-encryption": "AES256",
    }
    theirs = botocore_header("PUT", url, host[2], token, headers, body, False)
    mine = lexfs_header("PUT", url, host[2], token, headers, hashlib.sha256(body).hexdigest())
    compare(mine, theirs)


@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
def test_header_unsigned_payload(host):
    url = "https://" + host[1].split("://", 1)[1] + enc_key("big/part file")
    url += "?partNumber=3&uploadId=" + enc("2~abc/def+ghi=")
    headers = {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}
    theirs = botocore_header("PUT", url, host[2], None, headers, b"x" * 10, True)
    assert "UNSIGNED-PAYLOAD" in theirs[0]
    mine = lexfs_header("PUT", url, host[2], None, headers, "UNSIGNED-PAYLOAD")
    compare(mine, theirs)


LIST_QUERIES = [
    "list-type=2&prefix=" + enc("dir/a b+c=&d/") + "&delimiter=" + enc("/") +
    "&encoding-type=url&max-keys=1000",
    "list-type=2&continuation-token=" + enc("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=") +
    "&prefix=&encoding-type=url",
    "uploads",
    "delete",
    "uploads&prefix=" + enc("\u00e9t\u00e9/"),
    "tagging&versionId=" + enc("3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo"),
]


@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
@pytest.mark.parametrize("query", LIST_QUERIES)
def test_header_queries(host, query):
    base = host[1]
    url = base + "?" + query
    method = "POST" if query in ("uploads", "delete") else "GET"
    body = b"<Delete><Object><Key>a&amp;b</Key></Object></Delete>" if query == "delete" else b""
    headers = {"Content-MD5": "abc=="} if query == "delete" else {}
    theirs = botocore_header(method, url, host[2], None, headers, body, False)
    mine = lexfs_header(method, url, host[2], None, headers, hashlib.sha256(body).hexdigest())
    compare(mine, theirs)


@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
@pytest.mark.parametrize("method", ["GET", "PUT"])
@pytest.mark.parametrize("key", TRICKY_KEYS[:6])
@pytest.mark.parametrize("expires", [1, 3600, 604800])
def test_presign(host, method, key, expires):
    url = host[1] + enc_key(key)
    theirs = botocore_presign(method, url, host[2], None, expires)
    mine = lexfs_presign(method, url, host[2], None, expires)
    compare(mine, theirs)


@pytest.mark.parametrize("host", HOSTS, ids=[h[0] for h in HOSTS])
def test_presign_with_token_and_query(host):
    url = host[1] + enc_key("x/y z.bin") + "?response-content-disposition=" + \
        enc('attachment; filename="y z.bin"')
    theirs = botocore_presign("GET", url, host[2], TOKEN, 900)
    mine = lexfs_presign("GET", url, host[2], TOKEN, 900)
    compare(mine, theirs)


@pytest.mark.parametrize("expires", [0, -5, 604801])
def test_presign_expiry_out_of_range_refused(expires):
    p = subprocess.run([DUMP, "presign", "GET", "http://127.0.0.1:1/b/k", str(EPOCH),
                        "us-east-1", AKID, SECRET, "-", str(expires)],
                       capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"Invalid argument" in p.stderr
