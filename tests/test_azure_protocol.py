"""Azure protocol paths Azurite never takes, against a small scripted server.

Azurite copies synchronously, never throttles and always sends well-formed XML, so the
asynchronous Copy Blob poll, ServerBusy retries with Retry-After, error-code mapping
and garbage answers are checked here against a scripted HTTP server on 127.0.0.1,
through lexfs-storetool with anonymous access (nothing to sign).
"""
import base64
import http.server
import re
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from conftest import Backend

ACCOUNT = "acct"


class Script(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=None):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def error(self, status, code, message="scripted"):
        body = ('<?xml version="1.0" encoding="utf-8"?><Error><Code>%s</Code>'
                '<Message>%s\nRequestId:1</Message></Error>' % (code, message)).encode()
        self.reply(status, body, {"x-ms-error-code": code,
                                  "Content-Type": "application/xml"})

    def handle_any(self):
        u = urlsplit(self.path)
        q = parse_qs(u.query)
        srv = self.server
        with srv.lock:
            srv.seen.append((self.command, u.path, dict(self.headers), q))
            n = sum(1 for m, p, _, _ in srv.seen if (m, p) == (self.command, u.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if q.get("comp") == ["blocklist"]:
            with srv.lock:
                srv.blocklists[u.path] = body
        parts = u.path.split("/")  # "", acct, container, blob...
        container = parts[2] if len(parts) > 2 else ""
        blob = "/".join(parts[3:])
        if container == "nocont":
            return self.error(404, "ContainerNotFound")
        if container == "denied":
            return self.error(403, "AuthenticationFailed", "Signature did not match")
        if q.get("comp") == ["list"]:
            if (q.get("prefix") or [""])[0].startswith("garbage"):
                return self.reply(200, b"<<this is not xml", {"Content-Type": "application/xml"})
            return self.reply(200, b'<?xml version="1.0"?><EnumerationResults><Blobs/>'
                                   b'<NextMarker/></EnumerationResults>')
        if self.command == "PUT" and "x-ms-copy-source" in self.headers:
            return self.reply(202, headers={"x-ms-copy-status": "pending",
                                            "x-ms-copy-id": "copy-1"})
        if self.command == "HEAD" and blob.startswith("dst"):
            if blob == "dst-fails" and n >= 2:
                return self.reply(200, headers={
                    "x-ms-copy-status": "failed", "x-ms-copy-id": "copy-1",
                    "x-ms-copy-status-description": "500 InternalError scripted failure",
                    "Content-Length": "0"})
            status = "pending" if n < 3 else "success"
            return self.reply(200, headers={"x-ms-copy-status": status,
                                            "x-ms-copy-id": "copy-1"})
        if self.command == "GET" and blob == "busy":
            if n == 1:
                return self.error(503, "ServerBusy", "The server is busy")
            return self.reply(200, b"after the retry")
        if self.command == "GET" and blob == "always-busy":
            return self.error(503, "ServerBusy")
        if self.command == "GET" and blob == "past-end":
            return self.error(416, "InvalidRange")
        if self.command in ("GET", "HEAD"):
            return self.error(404, "BlobNotFound")
        if self.command == "DELETE":
            return self.error(404, "BlobNotFound")
        return self.reply(201)

    do_GET = do_PUT = do_HEAD = do_DELETE = handle_any


@pytest.fixture(scope="module")
def script():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Script)
    srv.lock = threading.Lock()
    srv.seen = []
    srv.blocklists = {}
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def backend(script, container="cont"):
    endpoint = "http://127.0.0.1:%d/%s" % (script.server_address[1], ACCOUNT)
    return Backend("azure-script", "azure", "az://" + container,
                   settings={"container": container, "account": ACCOUNT,
                             "anonymous": "true", "endpoint": endpoint,
                             "block_size": "1k"})


def requests(script, method, path):
    with script.lock:
        return [h for m, p, h, _ in script.seen if m == method and p == path]


def test_async_copy_is_polled_until_success(script):
    r = backend(script).storetool("cp", "src", "dst-ok", check=False)
    assert r.returncode == 0, r.stderr
    heads = requests(script, "HEAD", "/acct/cont/dst-ok")
    assert len(heads) == 3  # pending, pending, success
    put = requests(script, "PUT", "/acct/cont/dst-ok")[0]
    assert put["x-ms-copy-source"].endswith("/acct/cont/src")


def test_failed_async_copy_is_eio(script):
    r = backend(script).storetool("cp", "src", "dst-fails", check=False)
    assert r.returncode == 5  # EIO
    assert b"failed" in r.stderr


def test_server_busy_is_retried(script):
    r = backend(script).storetool("get", "busy", check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"after the retry"
    assert len(requests(script, "GET", "/acct/cont/busy")) == 2


def test_persistent_server_busy_gives_up_with_eio(script):
    r = backend(script).storetool("get", "always-busy", check=False)
    assert r.returncode == 5
    assert b"ServerBusy" in r.stderr
    assert len(requests(script, "GET", "/acct/cont/always-busy")) > 1


def test_error_codes_map_to_errno(script):
    assert backend(script, "nocont").storetool("health", check=False).returncode == 2
    r = backend(script, "denied").storetool("info", "x", check=False)
    assert r.returncode == 13
    assert b"AuthenticationFailed" in r.stderr
    assert backend(script).storetool("info", "missing", check=False).returncode == 2


def test_range_past_the_end_reads_nothing(script):
    r = backend(script).storetool("get", "past-end", "100", "10", check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""


def test_remove_of_a_missing_blob_succeeds(script):
    assert backend(script).storetool("rm", "never-was", check=False).returncode == 0


def test_garbage_listing_is_eio_not_a_crash(script):
    r = backend(script).storetool("list", "garbage/", check=False)
    assert r.returncode == 5
    assert b"EnumerationResults" in r.stderr


def test_large_upload_goes_as_blocks_with_fixed_length_ids(script, tmp_path):
    f = tmp_path / "blocks.bin"
    f.write_bytes(bytes(range(256)) * 40)  # 10240 bytes
    b = backend(script)
    b.settings["single_put_max"] = "4k"
    r = b.storetool("put", "blocks.bin", str(f), check=False)
    assert r.returncode == 0, r.stderr
    with script.lock:
        qs = [q for m, p, _, q in script.seen if m == "PUT" and p == "/acct/cont/blocks.bin"]
    ids = [q["blockid"][0] for q in qs if q.get("comp") == ["block"]]
    assert len(ids) == 10  # 10 KiB in blocks of 1 KiB
    assert len(set(ids)) == 10
    assert len({len(i) for i in ids}) == 1  # one length for every block id
    assert [q.get("comp") for q in qs].count(["blocklist"]) == 1
    # the block list names the blocks in part order, whatever order they went up in
    latest = re.findall(rb"<Latest>([^<]+)</Latest>", script.blocklists["/acct/cont/blocks.bin"])
    parts = [int(base64.b64decode(i).decode().rsplit("-", 1)[1]) for i in latest]
    assert parts == list(range(1, 11))
    assert sorted(i.decode() for i in latest) == sorted(ids)
