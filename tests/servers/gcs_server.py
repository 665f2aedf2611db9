#!/usr/bin/python3
"""A small Google Cloud Storage server for lexfs's tests (JSON API + V4 signed URLs).

No GCS emulator can be installed on the test machines, so this server implements
the part of Google's public API reference that lexfs uses, and checks what Google
checks:

  * OAuth2: POST /token takes a JWT-bearer assertion; its RS256 signature is
    verified against the public half of the service-account key, and iss, aud (the
    token URI), iat and exp (at most one hour) are checked. The refresh-token grant
    of an authorized_user file is accepted for the client id/secret/refresh token
    given on the command line. Every JSON-API call needs a valid, unexpired bearer
    token (401 otherwise).
    The GCE metadata server's token endpoint answers requests carrying
    Metadata-Flavor: Google.
  * Objects: media, multipart and resumable uploads; resumable sessions check that
    a chunk starts at or before the committed offset (overlapping bytes must match)
    and that every non-final chunk is a multiple of 256 KiB; status queries answer
    308 with the committed Range.
  * Reads with Range (alt=media), objects.get/list (prefix, delimiter, pageToken,
    maxResults, fields mask), delete, patch (JSON merge of metadata), rewrite (in
    steps, with rewrite tokens bound to source, destination and source generation).
  * Preconditions: ifGenerationMatch / ifGenerationNotMatch / ifMetagenerationMatch
    / ifSourceGenerationMatch -> 412 conditionNotMet.
  * V4 signed URLs (XML API path style, /BUCKET/OBJECT): the canonical request is
    rebuilt from what arrived, the RSA signature verified with the public key, and
    expired URLs refused.

Test-only controls (no auth, loopback only): GET /_test/stats, POST /_test/control
(JSON: {"fail_chunks": N} makes the next N resumable chunks commit only part of
their bytes and then fail with 503; {"token_ttl": S}; {"reset": true}),
POST /_test/bucket/NAME creates a bucket.

Run: gcs_server.py --key SERVICE_ACCOUNT.json [--port 0]; prints "PORT <n>" once
listening on 127.0.0.1.
"""
import argparse
import base64
import binascii
import calendar
import hashlib
import json
import secrets
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

try:
    import crcmod.predefined
    _crc32c_fun = crcmod.predefined.mkPredefinedCrcFun("crc-32c")
except ImportError:  # pure Python fallback (slow, but correct)
    _crc32c_fun = None

CHUNK_ALIGN = 256 * 1024
REWRITE_STEP = 1024 * 1024  # bytes per rewrite call: large objects need tokens
MAX_SIGNED_EXPIRES = 604800
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
METADATA_TOKEN_PATH = "/computeMetadata/v1/instance/service-accounts/default/token"


def _crc32c_py(data, crc=0):
    table = _crc32c_py.table
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _mk_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        t.append(c)
    return t


_crc32c_py.table = _mk_table()


def crc32c(data):
    return _crc32c_fun(data) if _crc32c_fun else _crc32c_py(data)


def b64(data):
    return base64.b64encode(data).decode()


def rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)


def b64url_decode(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def v4_quote(s, safe=""):
    return urllib.parse.quote(s, safe="-_.~" + safe)


class ApiError(Exception):
    def __init__(self, code, reason, message, xml_code=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.xml_code = xml_code or reason


class Obj:
    def __init__(self, bucket, name, data, generation, content_type, metadata, kms):
        self.bucket = bucket
        self.name = name
        self.data = data
        self.generation = generation
        self.metageneration = 1
        self.content_type = content_type or "application/octet-stream"
        self.metadata = dict(metadata or {})
        self.kms = kms
        self.created = time.time()
        self.updated = self.created
        self.md5 = b64(hashlib.md5(data).digest())
        self.crc = b64(crc32c(data).to_bytes(4, "big"))

    def resource(self):
        r = {
            "kind": "storage#object",
            "id": "%s/%s/%d" % (self.bucket, self.name, self.generation),
            "name": self.name,
            "bucket": self.bucket,
            "generation": str(self.generation),
            "metageneration": str(self.metageneration),
            "contentType": self.content_type,
            "size": str(len(self.data)),
            "md5Hash": self.md5,
            "crc32c": self.crc,
            "etag": b64(("%d/%d" % (self.generation, self.metageneration)).encode()),
            "timeCreated": rfc3339(self.created),
            "updated": rfc3339(self.updated),
            "storageClass": "STANDARD",
        }
        if self.metadata:
            r["metadata"] = dict(self.metadata)
        if self.kms:
            r["kmsKeyName"] = self.kms
        return r


def parse_fields(spec):
    """Parse a fields mask ("a,b(c,d)") into {name: submask or None}."""
    pos = 0

    def parse_list():
        nonlocal pos
        out = {}
        while pos < len(spec):
            start = pos
            while pos < len(spec) and spec[pos] not in ",()":
                pos += 1
            name = spec[start:pos].strip()
            sub = None
            if pos < len(spec) and spec[pos] == "(":
                pos += 1
                sub = parse_list()
                if pos >= len(spec) or spec[pos] != ")":
                    raise ApiError(400, "invalidParameter", "bad fields mask")
                pos += 1
            if name:
                out[name] = sub
            if pos < len(spec) and spec[pos] == ",":
                pos += 1
                continue
            break
        return out

    mask = parse_list()
    if pos != len(spec):
        raise ApiError(400, "invalidParameter", "bad fields mask")
    return mask


def apply_fields(value, mask):
    if mask is None:
        return value
    if isinstance(value, list):
        return [apply_fields(v, mask) for v in value]
    if not isinstance(value, dict):
        return value
    return {k: apply_fields(value[k], mask[k]) for k in mask if k in value}


class State:
    def __init__(self, key_info, refresh_client):
        self.lock = threading.Lock()
        self.key_info = key_info
        self.public_key = serialization.load_pem_private_key(
            key_info["private_key"].encode(), password=None).public_key()
        self.refresh_client = refresh_client
        self.buckets = {}
        self.tokens = {}
        self.token_ttl = 3600
        self.sessions = {}
        self.rewrites = {}
        self.fail_chunks = 0
        # Scripted JSON API failures: [{"status", "count", "method", "path"}], each
        # answering `count` matching requests with `status` (see inject()).
        self.faults = []
        self.public = set()  # buckets allUsers may read (roles/storage.objectViewer)
        self.race_rewrite = None
        self.session_log = []  # per session: what arrived, for the tests
        self.next_gen = int(time.time() * 1000000)
        self.stats = {}
        self.token_uri = None

    def count(self, name, n=1):
        self.stats[name] = self.stats.get(name, 0) + n

    def generation(self):
        self.next_gen += 1
        return self.next_gen


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lexfs-gcs-test/1"

    def setup(self):
        super().setup()
        # Headers and body go out in separate writes: without this, Nagle plus
        # delayed ACKs cost ~40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    # -- plumbing ---------------------------------------------------------------------
    @property
    def st(self):
        return self.server.state

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def send(self, code, body=b"", ctype="application/json", headers=None):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        self.send_response(code)
        if body or code not in (204, 304):
            self.send_header("Content-Type", ctype)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error_json(self, e):
        self.send(e.code, {"error": {"code": e.code, "message": e.message, "errors": [
            {"domain": "global", "reason": e.reason, "message": e.message}]}})

    def send_error_xml(self, e):
        body = ("<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code>"
                "<Message>%s</Message></Error>" % (e.xml_code, e.message)).encode()
        self.send(e.code, body, "application/xml; charset=UTF-8")

    def dispatch(self):
        # One handler serves every request of a keep-alive connection: whether this
        # request's body was read must not carry over from the previous one.
        self._body_read = False
        raw_path, _, raw_query = self.path.partition("?")
        self.raw_path = raw_path
        self.raw_query = raw_query
        self.q = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))
        xml = False
        try:
            if raw_path.startswith("/_test/"):
                return self.test_control(raw_path[len("/_test/"):])
            if raw_path == "/token":
                return self.token()
            if raw_path == METADATA_TOKEN_PATH:
                return self.metadata_token()
            if raw_path.startswith("/storage/v1/") or raw_path.startswith("/upload/storage/v1/"):
                if not self.public_read(raw_path):
                    self.check_bearer()
                self.inject(raw_path)
                return self.json_api(raw_path)
            xml = True
            return self.xml_api(raw_path)
        except ApiError as e:
            if self.command in ("PUT", "POST", "PATCH"):
                # Drain an unread body so the connection stays usable.
                if not getattr(self, "_body_read", False):
                    try:
                        self.body()
                    except OSError:
                        pass
            if xml:
                self.send_error_xml(e)
            else:
                self.send_error_json(e)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_HEAD = dispatch

    def read_body(self):
        self._body_read = True
        return self.body()

    # -- test controls ------------------------------------------------------------------
    def test_control(self, what):
        st = self.st
        if what == "stats" and self.command == "GET":
            with st.lock:
                return self.send(200, dict(st.stats))
        if what == "control" and self.command == "POST":
            ctl = json.loads(self.read_body() or b"{}")
            with st.lock:
                if ctl.get("reset"):
                    st.stats.clear()
                    st.fail_chunks = 0
                    st.faults = []
                if "fail_requests" in ctl:
                    # [{"status": 408, "count": 1, "method": "GET", "path": P}]: the
                    # next `count` JSON API requests with that method and path
                    # (no query) are answered with that status.
                    st.faults = [dict(f) for f in ctl["fail_requests"]]
                if "public" in ctl:
                    st.public.add(ctl["public"])
                if "fail_chunks" in ctl:
                    st.fail_chunks = int(ctl["fail_chunks"])
                if "token_ttl" in ctl:
                    st.token_ttl = int(ctl["token_ttl"])
                if "corrupt" in ctl:
                    # Flip a byte of the stored data, keep the recorded hashes.
                    bucket, name = ctl["corrupt"]
                    o = self.get_obj(bucket, name)
                    o.data = bytes([o.data[0] ^ 0xFF]) + o.data[1:]
                if "race_rewrite" in ctl:
                    # The next finished rewrite from this source is followed by a
                    # concurrent writer's new version of the source.
                    st.race_rewrite = tuple(ctl["race_rewrite"])
                if "populate" in ctl:
                    bucket, prefix, count = ctl["populate"]
                    b = self.bucket(bucket)
                    for i in range(int(count)):
                        name = "%s%05d" % (prefix, i)
                        b[name] = Obj(bucket, name, name.encode(), st.generation(), "text/plain",
                                      None, None)
            return self.send(200, {"ok": True})
        if what.startswith("bucket/") and self.command == "POST":
            self.read_body()
            name = what[len("bucket/"):]
            with st.lock:
                st.buckets.setdefault(name, {})
            return self.send(200, {"name": name})
        if what == "sessions" and self.command == "GET":
            with st.lock:
                return self.send(200, list(st.session_log))
        if what.startswith("resource/") and self.command == "GET":
            bucket, _, name = what[len("resource/"):].partition("/")
            with st.lock:
                o = self.get_obj(bucket, urllib.parse.unquote(name))
                return self.send(200, o.resource())
        if what.startswith("object/") and self.command == "GET":
            # Raw object bytes, for tests that compare what the store holds.
            bucket, _, name = what[len("object/"):].partition("/")
            with st.lock:
                o = st.buckets.get(bucket, {}).get(urllib.parse.unquote(name))
            if not o:
                raise ApiError(404, "notFound", "no such object")
            return self.send(200, o.data, "application/octet-stream")
        raise ApiError(404, "notFound", "no such control")

    # -- OAuth2 -------------------------------------------------------------------------
    def token(self):
        st = self.st
        if self.command != "POST":
            raise ApiError(405, "methodNotAllowed", "POST only")
        form = dict(urllib.parse.parse_qsl(self.read_body().decode()))
        grant = form.get("grant_type", "")
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            err = self.check_jwt(form.get("assertion", ""))
        elif grant == "refresh_token":
            rc = st.refresh_client
            ok = rc and all(form.get(k) == rc[k]
                            for k in ("client_id", "client_secret", "refresh_token"))
            err = None if ok else "refresh token rejected"
        else:
            err = "unsupported grant_type"
        if err:
            with st.lock:
                st.count("token_rejected")
            return self.send(400, {"error": "invalid_grant", "error_description": err})
        tok = "ya29.test-" + secrets.token_urlsafe(24)
        with st.lock:
            ttl = st.token_ttl
            st.tokens[tok] = time.time() + ttl
            st.count("tokens_issued")
            st.count("token_" + ("jwt" if grant != "refresh_token" else "refresh"))
        return self.send(200, {"access_token": tok, "expires_in": ttl, "token_type": "Bearer"})

    def metadata_token(self):
        # The GCE metadata server: no credentials, but the Metadata-Flavor header.
        st = self.st
        if self.command != "GET" or self.headers.get("Metadata-Flavor") != "Google":
            raise ApiError(403, "forbidden", "Metadata-Flavor: Google required")
        tok = "ya29.metadata-" + secrets.token_urlsafe(24)
        with st.lock:
            ttl = st.token_ttl
            st.tokens[tok] = time.time() + ttl
            st.count("tokens_issued")
            st.count("token_metadata")
        return self.send(200, {"access_token": tok, "expires_in": ttl, "token_type": "Bearer"})

    def check_jwt(self, jwt):
        st = self.st
        parts = jwt.split(".")
        if len(parts) != 3:
            return "malformed JWT"
        try:
            header = json.loads(b64url_decode(parts[0]))
            claims = json.loads(b64url_decode(parts[1]))
            sig = b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return "malformed JWT"
        if header.get("alg") != "RS256":
            return "alg must be RS256"
        try:
            st.public_key.verify(sig, (parts[0] + "." + parts[1]).encode(),
                                 padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return "invalid JWT signature"
        now = time.time()
        if claims.get("iss") != st.key_info["client_email"]:
            return "iss does not match the service account"
        if claims.get("aud") != st.token_uri:
            return "aud must be the token URI"
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return "iat/exp missing"
        if iat > now + 60 or exp <= now or exp - iat > 3600:
            return "JWT expired or lifetime invalid"
        if not str(claims.get("scope", "")).startswith(SCOPE_PREFIX):
            return "scope missing"
        return None

    def public_read(self, raw_path):
        """An anonymous read (no Authorization) of a public bucket's objects: what
        allUsers gets from roles/storage.objectViewer (objects.get and .list, not
        the bucket's own metadata, and nothing that writes)."""
        if "Authorization" in self.headers or self.command not in ("GET", "HEAD"):
            return False
        segs = raw_path.split("/")  # "", "storage", "v1", "b", B, "o", ...
        if len(segs) < 6 or segs[1] != "storage" or segs[3] != "b" or segs[5] != "o":
            return False
        with self.st.lock:
            ok = urllib.parse.unquote(segs[4]) in self.st.public
            if ok:
                self.st.count("anonymous_reads")
        return ok

    def inject(self, raw_path):
        st = self.st
        with st.lock:
            st.count("requests %s %s" % (self.command, raw_path))
            for f in st.faults:
                if f["count"] > 0 and f["method"] == self.command and f["path"] == raw_path:
                    f["count"] -= 1
                    st.count("faults_injected")
                    status = int(f["status"])
                    break
            else:
                return
        reason = {408: "requestTimeout", 412: "conditionNotMet",
                  429: "rateLimitExceeded"}.get(status, "backendError")
        raise ApiError(status, reason, "injected %d" % status)

    def check_bearer(self):
        st = self.st
        auth = self.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else None
        with st.lock:
            exp = st.tokens.get(tok) if tok else None
            ok = exp is not None and exp > time.time()
            if not ok:
                st.count("unauthorized")
        if not ok:
            raise ApiError(401, "authError", "Invalid Credentials")

    # -- helpers --------------------------------------------------------------------------
    def bucket(self, name):
        b = self.st.buckets.get(name)
        if b is None:
            raise ApiError(404, "notFound", "The specified bucket does not exist.")
        return b

    def check_pre(self, obj, q, prefix="if"):
        def num(k):
            try:
                return int(q[k])
            except ValueError:
                raise ApiError(400, "invalid", "bad precondition " + k) from None

        gen = obj.generation if obj else 0
        k = prefix + "GenerationMatch"
        if k in q and num(k) != gen:
            raise ApiError(412, "conditionNotMet", "At least one of the pre-conditions "
                           "you specified did not hold.")
        k = prefix + "GenerationNotMatch"
        if k in q and num(k) == gen:
            raise ApiError(412, "conditionNotMet", "generation matches")
        k = prefix + "MetagenerationMatch"
        if k in q and (not obj or num(k) != obj.metageneration):
            raise ApiError(412, "conditionNotMet", "metageneration does not match")

    def store(self, bucket, name, data, ctype, meta, kms, q):
        st = self.st
        if not name:
            raise ApiError(400, "required", "Required object name")
        with st.lock:
            b = self.bucket(bucket)
            self.check_pre(b.get(name), q)
            o = Obj(bucket, name, data, st.generation(), ctype, meta, kms)
            b[name] = o
            st.count("objects_stored")
            return o.resource()

    def get_obj(self, bucket, name):
        o = self.bucket(bucket).get(name)
        if o is None:
            raise ApiError(404, "notFound", "No such object: %s/%s" % (bucket, name))
        return o

    def send_media(self, o, xml=False):
        data = o.data
        hdrs = {"x-goog-generation": str(o.generation),
                "x-goog-hash": "crc32c=%s,md5=%s" % (o.crc, o.md5),
                "Accept-Ranges": "bytes"}
        rng = self.headers.get("Range")
        if rng:
            if not rng.startswith("bytes=") or "," in rng:
                raise ApiError(400, "invalid", "bad Range")
            a, _, b = rng[6:].partition("-")
            size = len(data)
            if a == "":
                start, end = max(0, size - int(b)), size - 1
            else:
                start = int(a)
                end = min(int(b), size - 1) if b else size - 1
            if start >= size:
                raise ApiError(416, "requestedRangeNotSatisfiable",
                               "Request range not satisfiable", "InvalidRange")
            hdrs["Content-Range"] = "bytes %d-%d/%d" % (start, end, size)
            return self.send(206, data[start:end + 1], o.content_type, hdrs)
        return self.send(200, data, o.content_type, hdrs)

    # -- JSON API -------------------------------------------------------------------------
    def json_api(self, raw_path):
        upload = raw_path.startswith("/upload/")
        segs = raw_path.split("/")[4 if upload else 3:]  # after /[upload/]storage/v1/
        st = self.st
        m = self.command
        if segs == ["b"] and m == "POST":
            res = json.loads(self.read_body() or b"{}")
            with st.lock:
                if res.get("name") in st.buckets:
                    raise ApiError(409, "conflict", "bucket exists")
                st.buckets[res["name"]] = {}
            return self.send(200, {"kind": "storage#bucket", "name": res["name"]})
        if len(segs) < 2 or segs[0] != "b":
            raise ApiError(404, "notFound", "unknown path")
        bucket = urllib.parse.unquote(segs[1])
        if upload:
            if segs[2:] != ["o"]:
                raise ApiError(404, "notFound", "unknown upload path")
            return self.upload(bucket)
        if len(segs) == 2:
            if m != "GET":
                raise ApiError(405, "methodNotAllowed", "bucket: GET only")
            with st.lock:
                self.bucket(bucket)
            return self.send(200, {"kind": "storage#bucket", "name": bucket, "id": bucket,
                                   "location": "US", "storageClass": "STANDARD"})
        if segs[2] != "o":
            raise ApiError(404, "notFound", "unknown path")
        if len(segs) == 3:
            if m == "GET":
                return self.list_objects(bucket)
            raise ApiError(405, "methodNotAllowed", "objects: GET only")
        if "rewriteTo" in segs:
            i = segs.index("rewriteTo")
            if i != 4 or len(segs) != 9 or segs[5] != "b" or segs[7] != "o" or m != "POST":
                raise ApiError(400, "invalid", "bad rewrite path")
            return self.rewrite(bucket, urllib.parse.unquote(segs[3]),
                                urllib.parse.unquote(segs[6]), urllib.parse.unquote(segs[8]))
        name = urllib.parse.unquote("/".join(segs[3:]))
        if m == "GET" or m == "HEAD":
            with st.lock:
                o = self.get_obj(bucket, name)
                self.check_pre(o, self.q)
            if self.q.get("alt") == "media":
                st.count("downloads")
                return self.send_media(o)
            return self.send(200, o.resource())
        if m == "DELETE":
            with st.lock:
                o = self.get_obj(bucket, name)
                self.check_pre(o, self.q)
                del self.bucket(bucket)[name]
                st.count("deletes")
            return self.send(204)
        if m == "PATCH":
            patch = json.loads(self.read_body() or b"{}")
            with st.lock:
                o = self.get_obj(bucket, name)
                self.check_pre(o, self.q)
                if "contentType" in patch:
                    o.content_type = patch["contentType"] or "application/octet-stream"
                if "metadata" in patch:
                    if patch["metadata"] is None:
                        o.metadata = {}
                    else:
                        for k, v in patch["metadata"].items():
                            if v is None:
                                o.metadata.pop(k, None)
                            else:
                                o.metadata[k] = str(v)
                o.metageneration += 1
                o.updated = time.time()
                st.count("patches")
                return self.send(200, o.resource())
        raise ApiError(405, "methodNotAllowed", "unsupported method")

    def list_objects(self, bucket):
        q = self.q
        prefix = q.get("prefix", "")
        delim = q.get("delimiter", "")
        try:
            max_results = min(int(q.get("maxResults", "1000")), 1000)
        except ValueError:
            raise ApiError(400, "invalid", "bad maxResults") from None
        after = ""
        if q.get("pageToken"):
            try:
                after = base64.urlsafe_b64decode(q["pageToken"]).decode()
            except (ValueError, binascii.Error):
                raise ApiError(400, "invalid", "bad pageToken") from None
        mask = parse_fields(q["fields"]) if q.get("fields") else None
        with self.st.lock:
            b = self.bucket(bucket)
            names = sorted(n for n in b if n.startswith(prefix))
            entries = []
            seen = set()
            for n in names:
                if delim:
                    i = n.find(delim, len(prefix))
                    if i >= 0:
                        p = n[:i + len(delim)]
                        if p not in seen:
                            seen.add(p)
                            entries.append((p, None))
                        continue
                entries.append((n, b[n].resource()))
            self.st.count("lists")
        entries = [e for e in entries if e[0] > after]
        page, rest = entries[:max_results], entries[max_results:]
        res = {"kind": "storage#objects"}
        items = [r for _, r in page if r is not None]
        prefixes = [n for n, r in page if r is None]
        if items:
            res["items"] = items
        if prefixes:
            res["prefixes"] = prefixes
        if rest:
            res["nextPageToken"] = base64.urlsafe_b64encode(page[-1][0].encode()).decode()
        self.send(200, apply_fields(res, mask))

    def rewrite(self, sbucket, sname, dbucket, dname):
        st = self.st
        q = self.q
        body = self.read_body()
        res = json.loads(body) if body else None
        with st.lock:
            src = self.get_obj(sbucket, sname)
            self.check_pre(src, q, "ifSource")
            self.bucket(dbucket)
            tok = q.get("rewriteToken")
            if tok:
                state = st.rewrites.get(tok)
                if not state or state["key"] != (sbucket, sname, dbucket, dname):
                    raise ApiError(400, "invalid", "Invalid rewrite token")
                if state["generation"] != src.generation:
                    raise ApiError(412, "conditionNotMet", "source changed during rewrite")
                done = state["done"]
                del st.rewrites[tok]
            else:
                done = 0
            step = int(q.get("maxBytesRewrittenPerCall", REWRITE_STEP))
            size = len(src.data)
            done = min(size, done + max(step, REWRITE_STEP))
            st.count("rewrite_calls")
            if done < size:
                tok = secrets.token_urlsafe(16)
                st.rewrites[tok] = {"key": (sbucket, sname, dbucket, dname), "done": done,
                                    "generation": src.generation}
                return self.send(200, {"kind": "storage#rewriteResponse",
                                       "totalBytesRewritten": str(done),
                                       "objectSize": str(size), "done": False,
                                       "rewriteToken": tok})
            self.check_pre(self.bucket(dbucket).get(dname), q)
            if res:
                ctype = res.get("contentType", src.content_type)
                meta = res.get("metadata") or {}
            else:
                ctype, meta = src.content_type, src.metadata
            o = Obj(dbucket, dname, src.data, st.generation(), ctype, meta,
                    q.get("destinationKmsKeyName") or src.kms)
            self.bucket(dbucket)[dname] = o
            st.count("rewrites_done")
            race = st.race_rewrite
            if race and race[:2] == (sbucket, sname):
                st.race_rewrite = None
                self.bucket(sbucket)[sname] = Obj(sbucket, sname, race[2].encode(),
                                                  st.generation(), src.content_type,
                                                  src.metadata, src.kms)
            return self.send(200, {"kind": "storage#rewriteResponse",
                                   "totalBytesRewritten": str(size), "objectSize": str(size),
                                   "done": True, "resource": o.resource()})

    def upload(self, bucket):
        st = self.st
        q = self.q
        kind = q.get("uploadType", "")
        if kind == "resumable" and "upload_id" in q:
            return self.resumable_chunk(bucket, q["upload_id"])
        if self.command != "POST":
            raise ApiError(405, "methodNotAllowed", "uploads start with POST")
        if kind == "media":
            data = self.read_body()
            res = self.store(bucket, q.get("name", ""), data,
                             self.headers.get("Content-Type"), None, q.get("kmsKeyName"), q)
            st.count("uploads_media")
            return self.send(200, res)
        if kind == "multipart":
            meta, data, ctype = self.parse_multipart(self.read_body())
            res = self.store(bucket, meta.get("name") or q.get("name", ""), data,
                             meta.get("contentType") or ctype, meta.get("metadata"),
                             q.get("kmsKeyName") or meta.get("kmsKeyName"), q)
            st.count("uploads_multipart")
            return self.send(200, res)
        if kind == "resumable":
            body = self.read_body()
            meta = json.loads(body) if body else {}
            name = meta.get("name") or q.get("name", "")
            if not name:
                raise ApiError(400, "required", "Required object name")
            sid = secrets.token_urlsafe(18)
            with st.lock:
                self.bucket(bucket)
                st.sessions[sid] = {"bucket": bucket, "name": name, "data": bytearray(),
                                    "meta": meta, "q": dict(q), "done": False,
                                    "ctype": meta.get("contentType") or
                                    self.headers.get("X-Upload-Content-Type"),
                                    "log": {"name": name, "chunks": 0, "chunk_bytes": 0,
                                            "failures": 0, "status_queries": 0,
                                            "completed": False}}
                st.session_log.append(st.sessions[sid]["log"])
                st.count("sessions_started")
            host = self.headers.get("Host")
            loc = "http://%s/upload/storage/v1/b/%s/o?uploadType=resumable&upload_id=%s" % (
                host, urllib.parse.quote(bucket, safe=""), sid)
            return self.send(200, b"", "text/plain", {"Location": loc})
        raise ApiError(400, "invalid", "unknown uploadType")

    def parse_multipart(self, body):
        ctype = self.headers.get("Content-Type", "")
        if not ctype.startswith("multipart/related") or "boundary=" not in ctype:
            raise ApiError(400, "invalid", "multipart/related with a boundary expected")
        boundary = ctype.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
        parts = body.split(b"--" + boundary)
        if len(parts) < 4 or not parts[3].startswith(b"--"):
            raise ApiError(400, "invalid", "multipart body needs two parts")

        def split(p):
            p = p[2:] if p.startswith(b"\r\n") else p
            head, sep, data = p.partition(b"\r\n\r\n")
            if not sep:
                raise ApiError(400, "invalid", "malformed multipart part")
            if data.endswith(b"\r\n"):
                data = data[:-2]
            hdrs = {}
            for line in head.decode().split("\r\n"):
                k, _, v = line.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            return hdrs, data

        _, meta = split(parts[1])
        h2, data = split(parts[2])
        return json.loads(meta), data, h2.get("content-type")

    def resumable_chunk(self, bucket, sid):
        st = self.st
        with st.lock:
            s = st.sessions.get(sid)
        if not s or s["bucket"] != bucket:
            raise ApiError(404, "notFound", "No such upload session")
        if self.command == "DELETE":
            with st.lock:
                st.sessions.pop(sid, None)
                st.count("sessions_cancelled")
            return self.send(499, b"", "text/plain")
        if self.command not in ("PUT", "POST"):
            raise ApiError(405, "methodNotAllowed", "chunks are PUT")
        data = self.read_body()
        cr = self.headers.get("Content-Range", "")
        if not cr.startswith("bytes "):
            if cr == "" and not data:
                cr = "bytes */*"
            else:
                raise ApiError(400, "invalid", "Content-Range required")
        spec, _, total = cr[6:].partition("/")
        with st.lock:
            committed = len(s["data"])
            if s["done"]:
                return self.send(200, s["result"])
            if spec == "*":
                if data:
                    raise ApiError(400, "invalid", "status query carries no body")
                if total == "*":
                    st.count("status_queries")
                    s["log"]["status_queries"] += 1
                    return self.send_308(committed)
                # Finalize with no more bytes.
                if int(total) != committed:
                    raise ApiError(400, "invalid", "total does not match committed size")
                return self.finish_session(s, sid)
            a, _, b = spec.partition("-")
            start, end = int(a), int(b)
            if end - start + 1 != len(data):
                raise ApiError(400, "invalid", "Content-Range does not match the body")
            if start > committed:
                raise ApiError(400, "invalid", "chunk starts at %d beyond committed %d"
                               % (start, committed))
            final = total != "*"
            if not final and len(data) % CHUNK_ALIGN:
                raise ApiError(400, "invalid", "non-final chunk not a multiple of 256 KiB")
            if final and int(total) != end + 1:
                raise ApiError(400, "invalid", "total does not match the last byte")
            overlap = committed - start
            if overlap and bytes(s["data"][start:committed]) != data[:overlap]:
                raise ApiError(400, "invalid", "resent bytes differ from committed bytes")
            st.count("chunks")
            st.count("chunk_bytes", len(data))
            s["log"]["chunks"] += 1
            s["log"]["chunk_bytes"] += len(data)
            fresh = data[overlap:]
            if st.fail_chunks > 0 and len(fresh) >= 2 * CHUNK_ALIGN:
                # Commit an aligned part of the chunk, then fail: the client has
                # to ask for the committed size and send only the rest.
                st.fail_chunks -= 1
                keep = (len(fresh) // 2) // CHUNK_ALIGN * CHUNK_ALIGN
                s["data"] += fresh[:keep]
                st.count("chunk_failures_injected")
                s["log"]["failures"] += 1
                raise ApiError(503, "backendError", "injected chunk failure")
            s["data"] += fresh
            if final:
                return self.finish_session(s, sid)
            return self.send_308(len(s["data"]))

    def send_308(self, committed):
        hdrs = {"Range": "bytes=0-%d" % (committed - 1)} if committed else {}
        self.send(308, b"", "text/plain", hdrs)

    def finish_session(self, s, sid):
        # Called with the state lock held.
        st = self.st
        b = self.bucket(s["bucket"])
        self.check_pre(b.get(s["name"]), s["q"])
        meta = s["meta"]
        o = Obj(s["bucket"], s["name"], bytes(s["data"]), st.generation(), s["ctype"],
                meta.get("metadata"), s["q"].get("kmsKeyName") or meta.get("kmsKeyName"))
        b[s["name"]] = o
        s["done"] = True
        s["log"]["completed"] = True
        s["log"]["size"] = len(o.data)
        s["result"] = o.resource()
        s["data"] = bytearray()
        st.count("sessions_completed")
        st.count("objects_stored")
        return self.send(200, s["result"])

    # -- XML API (V4 signed URLs) ---------------------------------------------------------
    def xml_api(self, raw_path):
        st = self.st
        if "X-Goog-Signature" not in self.q:
            raise ApiError(403, "forbidden", "anonymous access denied", "AccessDenied")
        self.check_v4()
        bucket, _, name = urllib.parse.unquote(raw_path[1:]).partition("/")
        st.count("signed_" + self.command.lower())
        if self.command in ("GET", "HEAD"):
            with st.lock:
                o = self.get_obj(bucket, name)
            return self.send_media(o, xml=True)
        if self.command == "PUT":
            data = self.read_body()
            self.store(bucket, name, data, self.headers.get("Content-Type"), None, None, {})
            return self.send(200, b"", "text/plain")
        raise ApiError(405, "MethodNotAllowed", "unsupported", "MethodNotAllowed")

    def check_v4(self):
        st = self.st
        q = self.q
        if q.get("X-Goog-Algorithm") != "GOOG4-RSA-SHA256":
            raise ApiError(400, "invalid", "unsupported algorithm", "InvalidArgument")
        cred = q.get("X-Goog-Credential", "").split("/")
        stamp = q.get("X-Goog-Date", "")
        try:
            expires = int(q.get("X-Goog-Expires", ""))
            t0 = calendar.timegm(time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        except ValueError:
            raise ApiError(400, "invalid", "bad X-Goog-Date/Expires", "InvalidArgument") \
                from None
        if len(cred) != 5 or cred[0] != st.key_info["client_email"] or \
                cred[1] != stamp[:8] or cred[2:] != ["auto", "storage", "goog4_request"]:
            raise ApiError(400, "invalid", "bad X-Goog-Credential", "AuthorizationQueryParametersError")
        if not 1 <= expires <= MAX_SIGNED_EXPIRES:
            raise ApiError(400, "invalid", "bad X-Goog-Expires", "AuthorizationQueryParametersError")
        now = time.time()
        if now > t0 + expires:
            raise ApiError(400, "invalid", "Request has expired", "ExpiredToken")
        if t0 > now + 900:
            raise ApiError(400, "invalid", "Request is not yet valid", "RequestNotYetValid")
        # Canonical query: every parameter but the signature, re-encoded and sorted.
        pairs = []
        for part in self.raw_query.split("&"):
            if not part:
                continue
            k, _, v = part.partition("=")
            k, v = urllib.parse.unquote(k), urllib.parse.unquote(v)
            if k != "X-Goog-Signature":
                pairs.append((v4_quote(k), v4_quote(v)))
        query = "&".join("%s=%s" % kv for kv in sorted(pairs))
        signed = q.get("X-Goog-SignedHeaders", "").split(";")
        if "host" not in signed:
            raise ApiError(400, "invalid", "host must be signed", "AuthorizationQueryParametersError")
        canon_hdrs = ""
        for h in signed:
            if h == "host":
                v = self.headers.get("Host", "")
                v = v.rsplit(":", 1)[0] if not v.startswith("[") else v.split("]")[0] + "]"
            else:
                v = self.headers.get(h)
                if v is None:
                    raise ApiError(403, "forbidden", "signed header %s missing" % h,
                                   "SignatureDoesNotMatch")
            canon_hdrs += "%s:%s\n" % (h, " ".join(v.split()))
        payload = self.headers.get("x-goog-content-sha256", "UNSIGNED-PAYLOAD") \
            if "x-goog-content-sha256" in signed else "UNSIGNED-PAYLOAD"
        path = v4_quote(urllib.parse.unquote(self.raw_path), "/")
        canonical = "\n".join([self.command, path, query, canon_hdrs, ";".join(signed), payload])
        sts = "\n".join(["GOOG4-RSA-SHA256", stamp, "/".join(cred[1:]),
                         hashlib.sha256(canonical.encode()).hexdigest()])
        try:
            sig = bytes.fromhex(q.get("X-Goog-Signature", ""))
            st.public_key.verify(sig, sts.encode(), padding.PKCS1v15(), hashes.SHA256())
        except (ValueError, InvalidSignature):
            with st.lock:
                st.count("signature_mismatch")
            raise ApiError(403, "forbidden", "The request signature we calculated does not "
                           "match the signature you provided.", "SignatureDoesNotMatch") from None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--key", required=True, help="service-account JSON whose key signs JWTs")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--refresh-client", help="client_id:client_secret:refresh_token accepted "
                    "by the refresh-token grant")
    args = ap.parse_args()
    with open(args.key, encoding="utf-8") as f:
        key_info = json.load(f)
    rc = None
    if args.refresh_client:
        cid, csec, rtok = args.refresh_client.split(":", 2)
        rc = {"client_id": cid, "client_secret": csec, "refresh_token": rtok}
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    srv.state = State(key_info, rc)
    port = srv.server_address[1]
    srv.state.token_uri = "http://127.0.0.1:%d/token" % port
    print("PORT %d" % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
