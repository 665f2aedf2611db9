"""Session fixture `backend_azure`: lexfs's Azure Blob driver against Azurite.

Azurite (npm package azurite@3, installed by tests/run.sh into tests/.node) runs once
per session: blob service only, on 127.0.0.1 and a free port, with its workspace in a
temporary directory, telemetry off (its default would send data off the machine) and
strict mode (no --loose), so unknown headers or parameters are errors as on Azure.
Azurite checks Shared Key and SAS signatures with its well-known development account.
A server that does not start is a test failure, never a skip.

Containers are created with the Azure SDK for Python (Debian's python3-azure) through
its own Shared Key signing, independent of lexfs's.
"""
import base64
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from conftest import ROOT, Backend, register_secret

ACCOUNT = "devstoreaccount1"
# Azurite's published development-account key (not a secret: it is in Azure's docs).
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
       "KBHBeksoGMGw==")
register_secret(KEY)
# The wrong key of the same shape the tests hand out (_wrong_azure_credentials).
WRONG_KEY = base64.b64encode(bytes(b ^ 0x5A for b in base64.b64decode(KEY))).decode()
register_secret(WRONG_KEY)
AZURITE_BIN = ROOT / "tests" / ".node" / "node_modules" / ".bin" / "azurite-blob"
START_TIMEOUT_S = 30


def _free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Azurite:
    def __init__(self, proc, port, workdir, log_path):
        self.proc = proc
        self.port = port
        self.workdir = workdir
        self.log_path = log_path
        self.endpoint = "http://127.0.0.1:%d/%s" % (port, ACCOUNT)
        self.connection_string = (
            "DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;"
            % (ACCOUNT, KEY, self.endpoint))

    def service(self):
        from azure.storage.blob import BlobServiceClient
        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name):
        self.service().create_container(name)

    def container(self, name):
        return self.service().get_container_client(name)

    def log(self):
        try:
            return Path(self.log_path).read_text(errors="replace")
        except OSError:
            return ""


def _wrong_azure_credentials(backend, tmp_path):
    """Another account key of the same shape (valid base64 of the same length), so
    the driver opens and Azurite's Shared Key check refuses it."""
    return {"settings": {"account_key": WRONG_KEY}, "env": {}, "secrets": [KEY, WRONG_KEY],
            "names": ["account_key"]}


class AzureBackend(Backend):
    def __init__(self, server, container):
        self.server = server
        self.container = container
        super().__init__(
            "azure", "azure", "az://" + container,
            settings={"container": container, "account": ACCOUNT, "account_key": KEY,
                      "endpoint": server.endpoint},
            env={}, persistent=True, fresh=self._new,
            wrong_credentials=_wrong_azure_credentials)

    def _new(self):
        name = "lexfs-" + uuid.uuid4().hex[:12]
        self.server.create_container(name)
        return AzureBackend(self.server, name)

    def client(self):
        """The Azure SDK's ContainerClient of this container (independent of lexfs)."""
        return self.server.container(self.container)


def start_azurite(workdir, port=None):
    """Azurite serving workdir/data on 127.0.0.1: a free port, or `port` (a restart on
    the port and data of an earlier run: the tests of a server outage)."""
    if not AZURITE_BIN.exists():
        pytest.fail("Azurite is not installed: tests/run.sh installs it "
                    "(npm install --prefix tests/.node azurite@3)")
    location = os.path.join(workdir, "data")
    os.makedirs(location, exist_ok=True)
    log_path = os.path.join(workdir, "azurite.log")
    fixed = port
    for _attempt in range(3):
        port = fixed or _free_port()
        log = open(log_path, "ab")
        proc = subprocess.Popen(
            [str(AZURITE_BIN), "--blobHost", "127.0.0.1", "--blobPort", str(port),
             "--location", location, "--disableTelemetry",
             "--debug", os.path.join(workdir, "azurite-debug.log")],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
        log.close()
        server = Azurite(proc, port, workdir, log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=2)
            except urllib.error.HTTPError:
                return server  # any HTTP answer: it is serving
            except OSError:
                time.sleep(0.1)
                continue
            return server
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    pytest.fail("Azurite did not start on 127.0.0.1:\n%s" % server.log()[-3000:])


def stop_azurite(server):
    server.proc.terminate()
    try:
        server.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    server = start_azurite(str(tmp_path_factory.mktemp("azurite")))
    yield server
    stop_azurite(server)


@pytest.fixture(scope="session")
def backend_azure(azurite):
    name = "lexfs-test"
    azurite.create_container(name)
    return AzureBackend(azurite, name)
