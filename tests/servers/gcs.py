"""Session fixture `backend_gcs`: lexfs's GCS driver against tests/servers/gcs_server.py.

The server runs once per session on 127.0.0.1 with Google's published dummy service
account key (tests/vectors/gcs/test_service_account.not-a-test.json). The fixture
writes a copy of that key whose token_uri points at the server, so the driver does
the real OAuth2 JWT-bearer exchange against it. A server that does not start is a
test failure, never a skip.
"""
import json
import os
import subprocess
import time
import urllib.request
import uuid

import pytest

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.dirname(HERE)
KEYFILE = os.path.join(TESTS, "vectors", "gcs", "test_service_account.not-a-test.json")
REFRESH_CLIENT = ("lexfs-test-client.apps", "test-client-secret", "1//test-refresh-token")


def _register_secrets():
    from conftest import register_secret

    with open(KEYFILE, encoding="utf-8") as f:
        register_secret(json.load(f)["private_key"])
    register_secret(REFRESH_CLIENT[1])
    register_secret(REFRESH_CLIENT[2])


_register_secrets()


class GcsServer:
    """Handle on the running test server (its URL, controls and counters)."""

    def __init__(self, proc, port, workdir, log_path):
        self.proc = proc
        self.port = port
        self.url = "http://127.0.0.1:%d" % port
        self.workdir = workdir
        self.log_path = log_path

    def _post(self, path, obj):
        req = urllib.request.Request(self.url + path, data=json.dumps(obj).encode(),
                                     method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"{}")

    def stats(self):
        with urllib.request.urlopen(self.url + "/_test/stats", timeout=10) as r:
            return json.loads(r.read())

    def sessions(self):
        with urllib.request.urlopen(self.url + "/_test/sessions", timeout=10) as r:
            return json.loads(r.read())

    def resource(self, bucket, name):
        url = "%s/_test/resource/%s/%s" % (self.url, bucket,
                                           urllib.request.quote(name, safe=""))
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.loads(r.read())

    def control(self, **kw):
        return self._post("/_test/control", kw)

    def create_bucket(self, name):
        return self._post("/_test/bucket/" + name, {})

    def object_bytes(self, bucket, name):
        url = "%s/_test/object/%s/%s" % (self.url, bucket,
                                         urllib.request.quote(name, safe=""))
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.read()

    def write_service_account(self, path):
        """A service-account JSON for this server (token_uri on loopback)."""
        with open(KEYFILE, encoding="utf-8") as f:
            info = json.load(f)
        info["token_uri"] = self.url + "/token"
        with open(path, "w", encoding="utf-8") as f:
            json.dump(info, f)
        os.chmod(path, 0o600)
        return path

    def write_authorized_user(self, path):
        cid, csec, rtok = REFRESH_CLIENT
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"type": "authorized_user", "client_id": cid, "client_secret": csec,
                       "refresh_token": rtok, "token_uri": self.url + "/token"}, f)
        os.chmod(path, 0o600)
        return path


def _wrong_gcs_credentials(backend, tmp_path):
    """The same service account with another private key: well-formed, so the
    driver opens, and the server's JWT signature check refuses it."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with open(backend.settings["credentials_file"], encoding="utf-8") as f:
        info = json.load(f)
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()).decode()
    from conftest import register_secret
    register_secret(info["private_key"])
    bad = os.path.join(str(tmp_path), "wrong-service-account.json")
    with open(bad, "w", encoding="utf-8") as f:
        json.dump(info, f)
    os.chmod(bad, 0o600)
    return {"settings": {"credentials_file": bad}, "env": {},
            "secrets": [info["private_key"].splitlines()[1]], "names": ["credentials_file"]}


def make_backend(server, creds, bucket=None):
    """A conftest Backend on a new, empty bucket of the test server."""
    from conftest import Backend  # the contract's backend object

    bucket = bucket or "lexfs-" + uuid.uuid4().hex[:12]
    server.create_bucket(bucket)

    def fresh():
        return make_backend(server, creds)

    b = Backend("gcs", "gcs", "gs://" + bucket,
                settings={"bucket": bucket, "credentials_file": creds,
                          "endpoint": server.url},
                persistent=True, fresh=fresh, wrong_credentials=_wrong_gcs_credentials)
    b.server = server
    b.bucket = bucket
    return b


def start_gcs_server(workdir):
    os.makedirs(workdir, exist_ok=True)
    log_path = os.path.join(workdir, "gcs_server.log")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [PY, os.path.join(HERE, "gcs_server.py"), "--key", KEYFILE, "--port", "0",
         "--refresh-client", ":".join(REFRESH_CLIENT)],
        stdout=subprocess.PIPE, stderr=log, cwd=workdir)
    log.close()
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("PORT "):
        proc.kill()
        proc.wait()
        with open(log_path, encoding="utf-8", errors="replace") as f:
            pytest.fail("GCS test server did not start: %s" % f.read()[-2000:])
    server = GcsServer(proc, int(line.split()[1]), workdir, log_path)
    deadline = time.time() + 10
    while True:
        try:
            server.stats()
            break
        except OSError:
            if time.time() > deadline:
                proc.kill()
                pytest.fail("GCS test server is not answering on %s" % server.url)
            time.sleep(0.05)
    return server


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory):
    server = start_gcs_server(str(tmp_path_factory.mktemp("gcs-server")))
    yield server
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def backend_gcs(gcs_server):
    creds = gcs_server.write_service_account(
        os.path.join(gcs_server.workdir, "service_account.json"))
    return make_backend(gcs_server, creds, "lexfs-test")
