"""Session fixtures `backend_s3` and `backend_r2`: a Ceph RADOS Gateway on 127.0.0.1.

The gateway (tests/servers/radosgw.sh) starts once per session; every .fresh() is a
new, empty bucket made with boto3. The s3 backend mounts s3://BUCKET; the r2 backend
mounts r2://BUCKET with the r2 driver, an explicit endpoint and region "auto" (the
gateway does not check the signing region; tests/test_s3_sigv4.py checks it offline).
Credentials reach lexfs through AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.
A gateway that does not start is a test failure, never a skip.
"""
import itertools
import os
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import register_secret

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "radosgw.sh"
ACCESS_KEY = "lexfsTESTACCESSKEY01"
SECRET_KEY = "lexfsTESTsecretKEY0123456789abcdefghijkl"
WRONG_SECRET_KEY = "Wr0ng" + SECRET_KEY[::-1]

register_secret(SECRET_KEY)
register_secret(WRONG_SECRET_KEY)


def _free_port_block(n=42):
    """A port p such that p..p+n look free on 127.0.0.1."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base + n >= 65000:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free block of ports on 127.0.0.1")


class RadosGW:
    def __init__(self, tmp):
        self.dir = Path(tmp) / "radosgw"
        self.port = None
        self.endpoint = None
        self._names = itertools.count(1)

    def start(self):
        last = ""
        for _ in range(3):
            self.port = _free_port_block()
            r = subprocess.run(["sh", str(SCRIPT), "start", str(self.dir), str(self.port),
                                ACCESS_KEY, SECRET_KEY],
                               capture_output=True, text=True, timeout=180)
            if r.returncode == 0:
                self.endpoint = "http://127.0.0.1:%d" % self.port
                return
            last = r.stdout + r.stderr
            self.stop()
        pytest.fail("radosgw did not start:\n" + last)

    def stop(self):
        subprocess.run(["sh", str(SCRIPT), "stop", str(self.dir)], capture_output=True,
                       timeout=120)

    def client(self, region="us-east-1"):
        import boto3
        from botocore.config import Config
        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=ACCESS_KEY,
                            aws_secret_access_key=SECRET_KEY, region_name=region,
                            config=Config(s3={"addressing_style": "path"},
                                          retries={"max_attempts": 2}))

    def new_bucket(self, prefix):
        name = "%s-%d-%d" % (prefix, os.getpid(), next(self._names))
        self.client().create_bucket(Bucket=name)
        return name


def _env():
    # Only the gateway's credentials: no profile or region of the user leaks in.
    return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_REGION": "",
            "AWS_DEFAULT_REGION": "", "AWS_ENDPOINT_URL": "", "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"}


@pytest.fixture(scope="session")
def radosgw(tmp_path_factory):
    gw = RadosGW(tmp_path_factory.mktemp("rgw"))
    gw.start()
    yield gw
    gw.stop()


def _wrong_s3_credentials(backend, tmp_path):
    return {"settings": {}, "env": {"AWS_SECRET_ACCESS_KEY": WRONG_SECRET_KEY},
            "secrets": [SECRET_KEY, WRONG_SECRET_KEY],
            "names": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]}


def _s3_backend(gw, driver):
    from conftest import Backend

    def fresh():
        bucket = gw.new_bucket("lexfs-" + driver)
        b = Backend(driver, driver, "%s://%s" % (driver, bucket),
                    settings={"bucket": bucket, "endpoint": gw.endpoint},
                    env=_env(), persistent=True, fresh=fresh,
                    wrong_credentials=_wrong_s3_credentials)
        b.bucket = bucket
        b.gateway = gw
        return b
    return fresh()


@pytest.fixture(scope="session")
def backend_s3(radosgw):
    return _s3_backend(radosgw, "s3")


@pytest.fixture(scope="session")
def backend_r2(radosgw):
    return _s3_backend(radosgw, "r2")
