/* crypto.h - hashing, HMAC, base64 and hex on OpenSSL. */
#ifndef LEXFS_CRYPTO_H
#define LEXFS_CRYPTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SHA256_LEN 32
#define MD5_LEN 16

void crypto_sha256(const void *data, size_t len, uint8_t out[SHA256_LEN]);
void crypto_md5(const void *data, size_t len, uint8_t out[MD5_LEN]);
void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			uint8_t out[SHA256_LEN]);
/* Hash len bytes of fd from off (pread; fd offset untouched). 0 or -errno. */
int crypto_sha256_fd(int fd, off_t off, uint64_t len, uint8_t out[SHA256_LEN]);
int crypto_md5_fd(int fd, off_t off, uint64_t len, uint8_t out[MD5_LEN]);

/* Lower-case hex into out (2*len+1 bytes). */
void crypto_hex(const uint8_t *in, size_t len, char *out);
/* Base64 (standard alphabet, padded). Caller frees; NULL on ENOMEM. */
char *crypto_base64(const void *in, size_t len);
/* Decode base64 (standard; whitespace not allowed). Caller frees *out.
 * Returns 0 or -EINVAL / -ENOMEM. */
int crypto_base64_decode(const char *in, uint8_t **out, size_t *outlen);
/* URL-safe base64 without padding (JWT). Caller frees. */
char *crypto_base64url(const void *in, size_t len);
/* Constant-time compare of two equal-length strings; 0 when equal. */
int crypto_memeq(const void *a, const void *b, size_t len);
/* Fill with cryptographically random bytes. 0 or -EIO. */
int crypto_random(void *out, size_t len);

#endif
