/* urlsign.h - HMAC-SHA256 presigned URLs for the local and memory drivers.
 *
 * A presigned URL grants one method on one key until a time, without credentials:
 *
 *   BASE_URL/KEY?X-Lexfs-Method=GET&X-Lexfs-Expires=UNIXTIME&X-Lexfs-Signature=HEX
 *
 *  - KEY is the object key percent-encoded: every byte except A-Z a-z 0-9 - . _ ~ and
 *    '/' becomes %XX (upper-case hex). BASE_URL and KEY are joined with one '/'
 *    unless BASE_URL already ends with '/' ("mem://" + "a/b" = "mem://a/b").
 *  - The method is GET or PUT; UNIXTIME is the expiry, seconds since the epoch.
 *  - HEX is the lower-case hex of HMAC-SHA256(signing key, STRING_TO_SIGN) where
 *
 *        STRING_TO_SIGN = METHOD "\n" KEY "\n" UNIXTIME
 *
 *    with KEY the raw (decoded) key and UNIXTIME in decimal, e.g. "GET\na/b.txt\n1700000000".
 *    The signing key is used as the bytes given (the local driver's generated key is
 *    64 hex characters, used as those characters).
 *
 * Verification does not need to know BASE_URL: it tries each '/'-boundary of the URL's
 * path as the start of the key and accepts the one whose signature matches (a signature
 * made for another key cannot match). A URL that has expired fails with -ETIMEDOUT,
 * whatever its signature: expiry is checked after the signature, so -ETIMEDOUT is only
 * reported for genuine URLs; a forged or tampered URL is -EACCES.
 */
#ifndef LEXFS_URLSIGN_H
#define LEXFS_URLSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/driver.h"

/* Percent-encode key (keeping '/'). Caller frees; NULL on ENOMEM. */
char *urlsign_encode_key(const char *key);

/* base_url joined with the encoded key ("BASE/KEY"). Caller frees; NULL on ENOMEM. */
char *urlsign_plain_url(const char *base_url, const char *key);

/* Build a presigned URL valid until expires_at (seconds since the epoch).
 * *url_out: caller frees. 0, -EINVAL (empty key or signing key) or -ENOMEM. */
int urlsign_make(const char *base_url, const char *objkey, enum lexfs_method method,
		 int64_t expires_at, const void *signing_key, size_t keylen, char **url_out);

/* Check a presigned URL against signing key `key` at time `now`.
 * Returns 0 when valid, and then (if not NULL) *key_out (caller frees) is the decoded
 * object key and *method_out the method; -EINVAL when the URL is malformed (missing
 * or repeated parameters, bad escape); -EACCES when no key position matches the
 * signature; -ETIMEDOUT when the signature is good but now >= expiry. */
int urlsign_verify(const char *url, const char *key, size_t keylen, int64_t now, char **key_out,
		   enum lexfs_method *method_out);

/* Read the local driver's generated key file (ROOT/.lexfs/signing.key) for a root
 * directory, for `lexfs verify-url`. *key_out: caller frees (NUL-terminated, no
 * newline). 0, -ENOENT or another -errno. */
int urlsign_read_key_file(const char *root_dir, char **key_out, size_t *keylen);

#endif
