"""Server-side encryption through the mount, on the RADOS Gateway.

tests/servers/radosgw.sh lets radosgw take SSE-C keys over plain HTTP on loopback
and gives it a test KMS with the key "testkey-1". What a user checks: files written
through the mount read back equal; with SSE-C another client cannot read them
without the key and can with it; with SSE-KMS the objects say aws:kms and the key
id. Rename and chmod stay server-side (radosgw cannot CopyObject an encrypted
object, so lexfs copies it as parts there). SSE-S3 (AES256) is accepted by this
radosgw without encrypting anything, so its header is checked on the scripted
server in test_s3_http.py instead.
"""
import hashlib
import os
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from conftest import invalidate
from test_s3_mount import mount_s3 as mount, s3  # noqa: F401 (s3 is a fixture)

MiB = 1024 * 1024
KMS_KEY = "testkey-1"


@pytest.fixture
def key_file(tmp_path):
    key = os.urandom(32)
    p = tmp_path / "sse-c.key"
    p.write_bytes(key)
    p.chmod(0o600)
    return p, key


def big_data(n_mib):
    return b"".join(hashlib.sha256(b"%d" % i).digest() * (MiB // 32) for i in range(n_mib))


def ssec(key):
    return {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": key}


def test_sse_c_small_file_reads_back_and_needs_the_key(s3, mounter, key_file):
    kf, key = key_file
    m = mount(mounter, s3, ["sse_customer_key_file=" + str(kf)])
    data = os.urandom(300000)
    Path(m.path, "secret.bin").write_bytes(data)
    invalidate(m)
    assert Path(m.path, "secret.bin").read_bytes() == data
    c = s3.client
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=s3.bucket, Key="secret.bin")
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(ClientError) as e:
        c.get_object(Bucket=s3.bucket, Key="secret.bin", **ssec(os.urandom(32)))
    # AWS says 403 for a wrong key, radosgw 400: either way, no bytes.
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    got = c.get_object(Bucket=s3.bucket, Key="secret.bin", **ssec(key))
    assert got["SSECustomerAlgorithm"] == "AES256"
    assert got["Body"].read() == data


def test_sse_c_streamed_multipart_file_reads_back_and_needs_the_key(s3, mounter, key_file):
    kf, key = key_file
    m = mount(mounter, s3, ["sse_customer_key_file=" + str(kf)])
    data = big_data(40)  # five 8 MiB parts: CreateMultipartUpload, UploadPart, Complete
    with open(Path(m.path, "big.bin"), "wb") as f:
        for i in range(0, len(data), MiB):
            f.write(data[i:i + MiB])
    invalidate(m)
    assert hashlib.sha256(Path(m.path, "big.bin").read_bytes()).digest() == \
        hashlib.sha256(data).digest()
    c = s3.client
    head = c.head_object(Bucket=s3.bucket, Key="big.bin", **ssec(key))
    assert head["ETag"].strip('"').endswith("-5")
    with pytest.raises(ClientError):
        c.head_object(Bucket=s3.bucket, Key="big.bin")
    body = c.get_object(Bucket=s3.bucket, Key="big.bin", **ssec(key))["Body"].read()
    assert body == data


def test_sse_c_rename_and_chmod_keep_the_data_and_the_key(s3, mounter, key_file):
    kf, key = key_file
    m = mount(mounter, s3, ["sse_customer_key_file=" + str(kf)])
    data = os.urandom(123457)
    Path(m.path, "a.bin").write_bytes(data)
    Path(m.path, "empty").write_bytes(b"")
    os.chmod(Path(m.path, "a.bin"), 0o640)
    os.rename(Path(m.path, "a.bin"), Path(m.path, "b.bin"))
    os.rename(Path(m.path, "empty"), Path(m.path, "empty2"))
    c = s3.client
    keys = sorted(o["Key"] for o in c.list_objects_v2(Bucket=s3.bucket)["Contents"])
    assert keys == ["b.bin", "empty2"]
    assert c.get_object(Bucket=s3.bucket, Key="b.bin", **ssec(key))["Body"].read() == data
    with pytest.raises(ClientError):
        c.get_object(Bucket=s3.bucket, Key="b.bin")
    m.remount()
    assert os.stat(Path(m.path, "b.bin")).st_mode & 0o777 == 0o640
    assert Path(m.path, "b.bin").read_bytes() == data
    assert Path(m.path, "empty2").read_bytes() == b""


def test_mount_without_the_key_cannot_read_sse_c_files(s3, mounter, key_file):
    kf, key = key_file
    s3.client.put_object(Bucket=s3.bucket, Key="locked.txt", Body=b"locked", **ssec(key))
    m = mount(mounter, s3, [])
    m.expect_errors(r"InvalidArgument|HTTP 400|LEXFS-00[16]")
    with pytest.raises(OSError):
        Path(m.path, "locked.txt").read_bytes()


def test_sse_kms_objects_carry_aws_kms_and_the_key_id(s3, mounter):
    m = mount(mounter, s3, ["sse=aws:kms", "kms_key_id=" + KMS_KEY])
    small = os.urandom(4096)
    big = big_data(20)
    Path(m.path, "small.bin").write_bytes(small)
    with open(Path(m.path, "big.bin"), "wb") as f:
        for i in range(0, len(big), MiB):
            f.write(big[i:i + MiB])
    os.rename(Path(m.path, "small.bin"), Path(m.path, "moved.bin"))
    c = s3.client
    for key in ("moved.bin", "big.bin"):
        head = c.head_object(Bucket=s3.bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms", key
        assert head["SSEKMSKeyId"] == KMS_KEY, key
    invalidate(m)
    assert Path(m.path, "moved.bin").read_bytes() == small
    assert Path(m.path, "big.bin").read_bytes() == big
    assert c.get_object(Bucket=s3.bucket, Key="big.bin")["Body"].read() == big
