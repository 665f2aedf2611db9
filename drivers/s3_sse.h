/* s3_sse.h - server-side encryption of the S3 and R2 drivers.
 *
 * Settings (group storage.s3 / storage.r2), the seed's EncryptionConfig names:
 *   sse (or encryption) = "AES256"     SSE-S3: the service's own keys
 *   sse = "aws:kms", kms_key_id = ID   SSE-KMS (no kms_key_id: the bucket's default key)
 *   sse_customer_key_file = PATH       SSE-C: a 32-byte AES-256 key, raw or base64, in a
 *                                      file only its owner may read
 *
 * Which request carries what (as S3 requires; it refuses the others):
 *
 *   request                         SSE-S3 / SSE-KMS     SSE-C
 *   PUT, CreateMultipartUpload      x-amz-server-side-   customer algorithm, key, key MD5
 *   CopyObject (destination)          encryption (+ id)
 *   UploadPart, UploadPartCopy,     -                    customer algorithm, key, key MD5
 *   CompleteMultipartUpload,
 *   GET, HEAD
 *   CopyObject, UploadPartCopy      -                    x-amz-copy-source-... the same key
 *     (source)                                           (every object of the mount has it)
 *
 * The SSE-C key is a secret: it is never logged, and it is refused over plain HTTP
 * unless the endpoint is on loopback.
 */
#ifndef LEXFS_S3_SSE_H
#define LEXFS_S3_SSE_H

#include "drivers/driver.h"
#include "src/http.h"

enum s3_sse_mode {
	S3_SSE_NONE = 0,
	S3_SSE_S3,  /* AES256 */
	S3_SSE_KMS, /* aws:kms */
	S3_SSE_C,   /* customer-provided key */
};

struct s3_sse {
	enum s3_sse_mode mode;
	char *kms_key_id;     /* SSE-KMS only; NULL: the bucket's default key */
	char key_b64[48];     /* SSE-C: base64 of the 32-byte key ("" otherwise) */
	char key_md5_b64[32]; /* SSE-C: base64 of the key's MD5 */
};

/* Read the encryption settings of driver `name` ("s3" or "r2") whose endpoint is
 * `endpoint` (scheme://host[:port]). 0, or -errno with err naming the setting and
 * its origin (never the key). Free with s3_sse_free, also after a failure. */
int s3_sse_open(struct s3_sse *sse, const struct settings *s, const char *name,
		const char *endpoint, struct lexfs_err *err);
/* Wipe the key; sse may be zeroed or half-opened. */
void s3_sse_free(struct s3_sse *sse);
/* "none", "AES256", "aws:kms" or "SSE-C", for log lines. */
const char *s3_sse_name(const struct s3_sse *sse);

/* Headers of a request that creates an object (PUT, CreateMultipartUpload, the
 * destination of CopyObject). 0 or -ENOMEM. */
int s3_sse_create_headers(const struct s3_sse *sse, struct http_headers *h);
/* Headers of a request on an existing object's data (GET, HEAD, UploadPart,
 * UploadPartCopy, CompleteMultipartUpload): the SSE-C key, nothing otherwise. */
int s3_sse_key_headers(const struct s3_sse *sse, struct http_headers *h);
/* The copy-source variant of the SSE-C key (CopyObject, UploadPartCopy). */
int s3_sse_copy_source_headers(const struct s3_sse *sse, struct http_headers *h);

#endif
