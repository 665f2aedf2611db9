/* urlsign.c - HMAC-SHA256 presigned URLs (format and rules in urlsign.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/buf.h"
#include "src/crypto.h"
#include "src/urlsign.h"

#define URLSIGN_MAX_URL (64 * 1024)

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int add_encoded(struct buf *b, const char *key)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;
	int rc = 0;

	for (p = (const unsigned char *)key; *p && rc == 0; p++) {
		if (unreserved(*p) || *p == '/') {
			rc = buf_add(b, p, 1);
		} else {
			char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			rc = buf_add(b, esc, 3);
		}
	}
	return rc;
}

char *urlsign_encode_key(const char *key)
{
	struct buf b = BUF_INIT(URLSIGN_MAX_URL);

	if (!*key)
		return strdup("");
	if (add_encoded(&b, key) != 0) {
		buf_free(&b);
		return NULL;
	}
	buf_cstr(&b);
	return buf_steal(&b);
}

static int add_base(struct buf *b, const char *base_url)
{
	size_t n = strlen(base_url);
	int rc = buf_adds(b, base_url);

	if (rc == 0 && (n == 0 || base_url[n - 1] != '/'))
		rc = buf_adds(b, "/");
	return rc;
}

char *urlsign_plain_url(const char *base_url, const char *key)
{
	struct buf b = BUF_INIT(URLSIGN_MAX_URL);

	if (add_base(&b, base_url) != 0 || add_encoded(&b, key) != 0) {
		buf_free(&b);
		return NULL;
	}
	buf_cstr(&b);
	return buf_steal(&b);
}

static const char *method_name(enum lexfs_method m)
{
	return m == LEXFS_PUT ? "PUT" : "GET";
}

/* hex (65 bytes) of HMAC-SHA256(key, METHOD\nKEY\nEXPIRES). */
static int signature(const void *skey, size_t skeylen, const char *method, const char *objkey,
		     size_t objkeylen, int64_t expires, char hex[2 * SHA256_LEN + 1])
{
	struct buf b = BUF_INIT(URLSIGN_MAX_URL);
	uint8_t mac[SHA256_LEN];
	int rc;

	rc = buf_addf(&b, "%s\n", method);
	if (rc == 0)
		rc = buf_add(&b, objkey, objkeylen);
	if (rc == 0)
		rc = buf_addf(&b, "\n%" PRId64, expires);
	if (rc == 0) {
		crypto_hmac_sha256(skey, skeylen, b.data, b.len, mac);
		crypto_hex(mac, sizeof(mac), hex);
	}
	buf_free(&b);
	return rc;
}

int urlsign_make(const char *base_url, const char *objkey, enum lexfs_method method,
		 int64_t expires_at, const void *signing_key, size_t keylen, char **url_out)
{
	struct buf b = BUF_INIT(URLSIGN_MAX_URL);
	char sig[2 * SHA256_LEN + 1];
	int rc;

	*url_out = NULL;
	if (!objkey || !*objkey || !signing_key || keylen == 0 || !base_url)
		return -EINVAL;
	rc = signature(signing_key, keylen, method_name(method), objkey, strlen(objkey),
		       expires_at, sig);
	if (rc == 0)
		rc = add_base(&b, base_url);
	if (rc == 0)
		rc = add_encoded(&b, objkey);
	if (rc == 0)
		rc = buf_addf(&b, "?X-Lexfs-Method=%s&X-Lexfs-Expires=%" PRId64
				  "&X-Lexfs-Signature=%s",
			      method_name(method), expires_at, sig);
	if (rc != 0) {
		buf_free(&b);
		return rc == -E2BIG ? -EINVAL : rc;
	}
	*url_out = buf_steal(&b);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode [s, s+n) into a new string. Caller frees. -EINVAL on a bad escape or
 * an encoded NUL. */
static int pct_decode(const char *s, size_t n, char **out, size_t *outlen)
{
	char *d = malloc(n + 1);
	size_t i, j = 0;

	if (!d)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi, lo;

			if (i + 2 >= n) {
				free(d);
				return -EINVAL;
			}
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(d);
				return -EINVAL;
			}
			d[j++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			d[j++] = s[i];
		}
	}
	d[j] = '\0';
	*out = d;
	*outlen = j;
	return 0;
}

struct query {
	const char *method, *expires, *sig;
	size_t method_len, expires_len, sig_len;
};

static int parse_query(const char *q, struct query *out)
{
	memset(out, 0, sizeof(*out));
	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		const char *eq = memchr(q, '=', len);
		const char **slot = NULL;
		size_t *slot_len = NULL;

		if (eq) {
			size_t nlen = (size_t)(eq - q);

			if (nlen == 14 && memcmp(q, "X-Lexfs-Method", 14) == 0) {
				slot = &out->method;
				slot_len = &out->method_len;
			} else if (nlen == 15 && memcmp(q, "X-Lexfs-Expires", 15) == 0) {
				slot = &out->expires;
				slot_len = &out->expires_len;
			} else if (nlen == 17 && memcmp(q, "X-Lexfs-Signature", 17) == 0) {
				slot = &out->sig;
				slot_len = &out->sig_len;
			}
		}
		if (slot) {
			if (*slot)
				return -EINVAL; /* repeated parameter */
			*slot = eq + 1;
			*slot_len = len - (size_t)(eq + 1 - q);
		}
		if (!amp)
			break;
		q = amp + 1;
	}
	if (!out->method || !out->expires || !out->sig)
		return -EINVAL;
	return 0;
}

int urlsign_verify(const char *url, const char *key, size_t keylen, int64_t now, char **key_out,
		   enum lexfs_method *method_out)
{
	char expbuf[32], *end = NULL, *objkey = NULL;
	const char *qmark, *path, *p;
	enum lexfs_method method;
	struct query q;
	int64_t expires;
	int rc, found = 0;

	if (key_out)
		*key_out = NULL;
	if (!url || !key || keylen == 0 || strlen(url) > URLSIGN_MAX_URL)
		return -EINVAL;
	qmark = strchr(url, '?');
	if (!qmark)
		return -EINVAL;
	rc = parse_query(qmark + 1, &q);
	if (rc)
		return rc;
	if (q.method_len == 3 && memcmp(q.method, "GET", 3) == 0)
		method = LEXFS_GET;
	else if (q.method_len == 3 && memcmp(q.method, "PUT", 3) == 0)
		method = LEXFS_PUT;
	else
		return -EINVAL;
	if (q.expires_len == 0 || q.expires_len >= sizeof(expbuf) || q.sig_len != 2 * SHA256_LEN)
		return -EINVAL;
	memcpy(expbuf, q.expires, q.expires_len);
	expbuf[q.expires_len] = '\0';
	if (expbuf[0] == '-' || expbuf[0] == '+')
		return -EINVAL;
	errno = 0;
	expires = strtoll(expbuf, &end, 10);
	if (errno || *end)
		return -EINVAL;

	/* The path starts after "scheme://" when there is one. */
	path = strstr(url, "://");
	path = (path && path < qmark) ? path + 3 : url;

	/* Try each '/'-boundary as the start of the key. */
	for (p = path; p < qmark && !found; p++) {
		char sig[2 * SHA256_LEN + 1];
		size_t dlen;

		if (p != path && p[-1] != '/')
			continue;
		if (p == qmark)
			break;
		rc = pct_decode(p, (size_t)(qmark - p), &objkey, &dlen);
		if (rc == -ENOMEM)
			return rc;
		if (rc) {
			/* A bad escape in this suffix is in every later one too, unless
			 * it lies before p; keep looking. */
			objkey = NULL;
			continue;
		}
		if (signature(key, keylen, method == LEXFS_PUT ? "PUT" : "GET", objkey, dlen,
			      expires, sig) == 0 &&
		    crypto_memeq(sig, q.sig, 2 * SHA256_LEN) == 0)
			found = 1;
		else {
			free(objkey);
			objkey = NULL;
		}
	}
	if (!found)
		return -EACCES;
	if (now >= expires) {
		free(objkey);
		return -ETIMEDOUT;
	}
	if (method_out)
		*method_out = method;
	if (key_out)
		*key_out = objkey;
	else
		free(objkey);
	return 0;
}

int urlsign_read_key_file(const char *root_dir, char **key_out, size_t *keylen)
{
	struct buf b = BUF_INIT(4096);
	char path[4096], chunk[512];
	ssize_t n;
	int fd, rc = 0;

	*key_out = NULL;
	*keylen = 0;
	if (snprintf(path, sizeof(path), "%s/.lexfs/signing.key", root_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		rc = buf_add(&b, chunk, (size_t)n);
		if (rc)
			break;
	}
	if (n < 0)
		rc = -errno;
	close(fd);
	while (rc == 0 && b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.len--;
	if (rc == 0 && b.len == 0)
		rc = -EINVAL;
	if (rc) {
		buf_free(&b);
		return rc;
	}
	b.data[b.len] = '\0';
	*keylen = b.len;
	*key_out = buf_steal(&b);
	return 0;
}
