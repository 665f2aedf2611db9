/* s3_sse.c - server-side encryption settings and headers of the S3 and R2 drivers
 * (see s3_sse.h for which request carries which header). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "drivers/s3_sse.h"
#include "src/crypto.h"

#define SSE_C_KEY_LEN 32
#define KEY_FILE_MAX 256

/* Is the host of scheme://host[:port] a loopback name or address? A copy of the
 * rule of src/conf.c (config_is_loopback), which a driver must not call: drivers
 * sit below the configuration layer. */
static bool endpoint_is_loopback(const char *url)
{
	const char *p = strstr(url, "://");
	char host[256];
	size_t n;

	p = p ? p + 3 : url;
	if (*p == '[') {
		p++;
		n = strcspn(p, "]");
	} else {
		n = strcspn(p, ":/?#");
	}
	if (n == 0 || n >= sizeof(host))
		return false;
	memcpy(host, p, n);
	host[n] = '\0';
	return strcasecmp(host, "localhost") == 0 || strcmp(host, "::1") == 0 ||
	       strncmp(host, "127.", 4) == 0;
}

/* Base64 characters, then at most a line end. */
static bool is_base64_text(const uint8_t *p, size_t len)
{
	while (len > 0 && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	for (size_t i = 0; i < len; i++)
		if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '+' || p[i] == '/' || p[i] == '='))
			return false;
	return len > 0;
}

/* Load the SSE-C key from path into sse (raw 32 bytes, or their base64 with an
 * optional trailing newline). The file is a secret: group or other access is
 * refused, as for a configuration file that holds one. */
static int load_key_file(struct s3_sse *sse, const char *path, const char *origin, const char *name,
			 struct lexfs_err *err)
{
	uint8_t raw[KEY_FILE_MAX + 1], md5[MD5_LEN];
	uint8_t *dec = NULL;
	const uint8_t *key = NULL;
	size_t declen = 0, len = 0;
	struct stat st;
	char *b64 = NULL;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		return lexfs_fail(err, LEXFS_E_STORAGE, e == ENOENT ? ENOENT : EACCES,
				  "%s: sse_customer_key_file %s (from %s): %s", name, path, origin,
				  strerror(e));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				"%s: sse_customer_key_file %s (from %s) is not a regular file",
				name, path, origin);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		rc = lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
				"%s: sse_customer_key_file %s (from %s) holds a key and group or "
				"others may read it: chmod 600 it",
				name, path, origin);
		goto out;
	}
	while (len <= KEY_FILE_MAX) {
		ssize_t r = read(fd, raw + len, sizeof(raw) - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EIO, "%s: reading %s: %s", name, path,
					strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	/* Text is base64 (a random raw key is all base64 characters once in 2^64). */
	if (len <= KEY_FILE_MAX && is_base64_text(raw, len)) {
		while (len > 0 && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
			len--;
		raw[len] = '\0';
		if (crypto_base64_decode((const char *)raw, &dec, &declen) == 0 &&
		    declen == SSE_C_KEY_LEN)
			key = dec;
	} else if (len == SSE_C_KEY_LEN) {
		key = raw;
	}
	if (!key) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				"%s: sse_customer_key_file %s (from %s) must hold a 32-byte "
				"AES-256 key: 32 raw bytes or their base64",
				name, path, origin);
		goto out;
	}
	crypto_md5(key, SSE_C_KEY_LEN, md5);
	b64 = crypto_base64(key, SSE_C_KEY_LEN);
	if (b64 && strlen(b64) < sizeof(sse->key_b64)) {
		memcpy(sse->key_b64, b64, strlen(b64) + 1);
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
		b64 = crypto_base64(md5, MD5_LEN);
	}
	if (!b64 || strlen(b64) >= sizeof(sse->key_md5_b64)) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	memcpy(sse->key_md5_b64, b64, strlen(b64) + 1);
out:
	free(b64);
	if (dec) {
		OPENSSL_cleanse(dec, declen);
		free(dec);
	}
	OPENSSL_cleanse(raw, sizeof(raw));
	close(fd);
	return rc;
}

int s3_sse_open(struct s3_sse *sse, const struct settings *s, const char *name,
		const char *endpoint, struct lexfs_err *err)
{
	const char *v, *key_file, *sse_key;

	memset(sse, 0, sizeof(*sse));
	sse_key = settings_get(s, "sse") ? "sse" : "encryption";
	v = settings_get(s, sse_key);
	key_file = settings_get(s, "sse_customer_key_file");
	if (v && *v) {
		if (strcmp(v, "AES256") == 0)
			sse->mode = S3_SSE_S3;
		else if (strcmp(v, "aws:kms") == 0)
			sse->mode = S3_SSE_KMS;
		else
			return lexfs_fail(
			    err, LEXFS_E_STORAGE, EINVAL,
			    "%s: %s '%s' (%s) must be AES256 or aws:kms (for a key of "
			    "your own: sse_customer_key_file)",
			    name, sse_key, v, settings_origin(s, sse_key));
	}
	v = settings_get(s, "kms_key_id");
	if (v && *v) {
		if (sse->mode != S3_SSE_KMS)
			return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
					  "%s: kms_key_id (%s) needs sse=aws:kms", name,
					  settings_origin(s, "kms_key_id"));
		sse->kms_key_id = strdup(v);
		if (!sse->kms_key_id)
			return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	}
	if (!key_file || !*key_file)
		return 0;
	if (sse->mode != S3_SSE_NONE)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "%s: sse_customer_key_file (%s) and %s=%s exclude each other: an "
				  "object has one kind of encryption",
				  name, settings_origin(s, "sse_customer_key_file"), sse_key,
				  s3_sse_name(sse));
	if (strncmp(endpoint, "https://", 8) != 0 && !endpoint_is_loopback(endpoint))
		/* The key rides in every request's headers: over plain HTTP anyone on
		 * the path could read it and then the data (S3 refuses it too). */
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "%s: sse_customer_key_file (%s) needs an https:// endpoint: the "
				  "key is sent with every request (plain http only on loopback)",
				  name, settings_origin(s, "sse_customer_key_file"));
	sse->mode = S3_SSE_C;
	return load_key_file(sse, key_file, settings_origin(s, "sse_customer_key_file"), name, err);
}

void s3_sse_free(struct s3_sse *sse)
{
	free(sse->kms_key_id);
	OPENSSL_cleanse(sse, sizeof(*sse));
}

const char *s3_sse_name(const struct s3_sse *sse)
{
	switch (sse->mode) {
	case S3_SSE_S3:
		return "AES256";
	case S3_SSE_KMS:
		return "aws:kms";
	case S3_SSE_C:
		return "SSE-C";
	default:
		return "none";
	}
}

/* The three SSE-C headers, with their names after `prefix`. */
static int customer_headers(const struct s3_sse *sse, struct http_headers *h, const char *prefix)
{
	char name[96];
	int rc;

	snprintf(name, sizeof(name), "%sserver-side-encryption-customer-algorithm", prefix);
	rc = http_headers_set(h, name, "AES256");
	snprintf(name, sizeof(name), "%sserver-side-encryption-customer-key", prefix);
	if (!rc)
		rc = http_headers_set(h, name, sse->key_b64);
	snprintf(name, sizeof(name), "%sserver-side-encryption-customer-key-MD5", prefix);
	if (!rc)
		rc = http_headers_set(h, name, sse->key_md5_b64);
	return rc;
}

int s3_sse_create_headers(const struct s3_sse *sse, struct http_headers *h)
{
	int rc;

	switch (sse->mode) {
	case S3_SSE_S3:
		return http_headers_set(h, "x-amz-server-side-encryption", "AES256");
	case S3_SSE_KMS:
		rc = http_headers_set(h, "x-amz-server-side-encryption", "aws:kms");
		if (!rc && sse->kms_key_id)
			rc = http_headers_set(h, "x-amz-server-side-encryption-aws-kms-key-id",
					      sse->kms_key_id);
		return rc;
	case S3_SSE_C:
		return customer_headers(sse, h, "x-amz-");
	default:
		return 0;
	}
}

int s3_sse_key_headers(const struct s3_sse *sse, struct http_headers *h)
{
	return sse->mode == S3_SSE_C ? customer_headers(sse, h, "x-amz-") : 0;
}

int s3_sse_copy_source_headers(const struct s3_sse *sse, struct http_headers *h)
{
	return sse->mode == S3_SSE_C ? customer_headers(sse, h, "x-amz-copy-source-") : 0;
}
