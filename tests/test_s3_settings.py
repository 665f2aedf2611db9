"""S3 and R2 settings that are decided before any request: the R2 endpoint derived
from the account id, and the server-side encryption options (SSE-S3, SSE-KMS, SSE-C
key files). No server is contacted: `url` and `presign` are computed locally, and a
refused setting stops the driver before its first request.
"""
import base64
import os
import subprocess
import time

from conftest import storetool_bin

ACCOUNT = "0123456789abcdef0123456789abcdef"
SECRET = "r2-test-secret-0123456789abcdefghij"


def tool(driver, *args, settings=()):
    cmd = [storetool_bin(), "--driver", driver, "-v", "--set", "access_key_id=R2KEYID",
           "--set", "secret_access_key=" + SECRET]
    for s in settings:
        cmd += ["--set", s]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null",
               AWS_EC2_METADATA_DISABLED="true")
    return subprocess.run(cmd + list(args), capture_output=True, timeout=60, env=env)


# ---- R2 ----

def test_r2_endpoint_comes_from_the_account_id():
    r = tool("r2", "url", "dir/photo 1.jpg", settings=["bucket=photos", "account_id=" + ACCOUNT])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == \
        "https://%s.r2.cloudflarestorage.com/photos/dir/photo%%201.jpg" % ACCOUNT
    assert ("r2: bucket photos at https://%s.r2.cloudflarestorage.com (path style, region auto"
            % ACCOUNT).encode() in r.stderr


def test_r2_presigned_url_is_on_the_account_endpoint_with_region_auto():
    r = tool("r2", "presign", "a.txt", "GET", "600",
             settings=["bucket=photos", "account_id=" + ACCOUNT])
    assert r.returncode == 0, r.stderr
    url = r.stdout.decode().strip()
    assert url.startswith("https://%s.r2.cloudflarestorage.com/photos/a.txt?" % ACCOUNT)
    day = time.strftime("%Y%m%d", time.gmtime())
    assert "X-Amz-Credential=R2KEYID%%2F%s%%2Fauto%%2Fs3%%2Faws4_request" % day in url
    assert SECRET not in url


def test_r2_without_account_id_or_endpoint_is_refused():
    r = tool("r2", "url", "a.txt", settings=["bucket=photos"])
    assert r.returncode == 22, r.stderr  # EINVAL
    assert b"storage.r2.account_id" in r.stderr


def test_r2_explicit_endpoint_wins_over_the_account_id():
    r = tool("r2", "url", "a.txt", settings=["bucket=photos", "account_id=" + ACCOUNT,
                                             "endpoint=https://r2.internal.example"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().strip() == "https://r2.internal.example/photos/a.txt"


# ---- server-side encryption settings ----

def _key_file(tmp_path, data, mode=0o600):
    p = tmp_path / "sse-c.key"
    p.write_bytes(data)
    p.chmod(mode)
    return str(p)


S3 = ["bucket=b-b-b", "endpoint=http://127.0.0.1:9"]


def test_sse_c_key_file_raw_or_base64_is_accepted(tmp_path):
    key = os.urandom(32)
    for data in (key, base64.b64encode(key) + b"\n"):
        r = tool("s3", "url", "a", settings=S3 + ["sse_customer_key_file=" +
                                                   _key_file(tmp_path, data)])
        assert r.returncode == 0, r.stderr
        assert b"encryption SSE-C" in r.stderr
        assert base64.b64encode(key) not in r.stderr


def test_sse_c_key_file_that_others_may_read_is_refused(tmp_path):
    key = os.urandom(32)
    r = tool("s3", "url", "a", settings=S3 + ["sse_customer_key_file=" +
                                               _key_file(tmp_path, key, 0o644)])
    assert r.returncode == 13, r.stderr  # EACCES
    assert b"chmod 600" in r.stderr
    assert base64.b64encode(key) not in r.stderr


def test_sse_c_key_of_the_wrong_size_is_refused(tmp_path):
    for data in (os.urandom(16), base64.b64encode(os.urandom(24))):
        r = tool("s3", "url", "a", settings=S3 + ["sse_customer_key_file=" +
                                                   _key_file(tmp_path, data)])
        assert r.returncode == 22, r.stderr
        assert b"32-byte AES-256 key" in r.stderr


def test_sse_c_over_plain_http_off_loopback_is_refused(tmp_path):
    kf = _key_file(tmp_path, os.urandom(32))
    r = tool("s3", "url", "a", settings=["bucket=b-b-b", "endpoint=http://s3.storage.invalid",
                                         "sse_customer_key_file=" + kf])
    assert r.returncode == 22, r.stderr
    assert b"needs an https:// endpoint" in r.stderr
    r = tool("s3", "url", "a", settings=["bucket=b-b-b", "endpoint=https://s3.storage.invalid",
                                         "sse_customer_key_file=" + kf])
    assert r.returncode == 0, r.stderr


def test_sse_c_and_sse_kms_exclude_each_other(tmp_path):
    kf = _key_file(tmp_path, os.urandom(32))
    r = tool("s3", "url", "a", settings=S3 + ["sse=aws:kms", "sse_customer_key_file=" + kf])
    assert r.returncode == 22, r.stderr
    assert b"exclude each other" in r.stderr


def test_sse_values_follow_the_encryption_config_names():
    for v, shown in (("AES256", b"encryption AES256"), ("aws:kms", b"encryption aws:kms")):
        r = tool("s3", "url", "a", settings=S3 + ["sse=" + v])
        assert r.returncode == 0, r.stderr
        assert shown in r.stderr
    r = tool("s3", "url", "a", settings=S3 + ["encryption=aws:kms", "kms_key_id=k-1"])
    assert r.returncode == 0, r.stderr
    r = tool("s3", "url", "a", settings=S3 + ["sse=aes256"])
    assert r.returncode == 22 and b"must be AES256 or aws:kms" in r.stderr
    r = tool("s3", "url", "a", settings=S3 + ["kms_key_id=k-1"])
    assert r.returncode == 22 and b"needs sse=aws:kms" in r.stderr
