/* crypto.c - hashing, HMAC, base64 and hex on OpenSSL (no hand-written crypto). */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "src/crypto.h"

void crypto_sha256(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

void crypto_md5(const void *data, size_t len, uint8_t out[MD5_LEN])
{
	unsigned int n = MD5_LEN;

	EVP_Digest(data, len, out, &n, EVP_md5(), NULL);
}

void crypto_hmac_sha256(const void *key, size_t keylen, const void *data, size_t len,
			uint8_t out[SHA256_LEN])
{
	unsigned int n = SHA256_LEN;

	HMAC(EVP_sha256(), key, (int)keylen, data, len, out, &n);
}

static int digest_fd(const EVP_MD *md, int fd, off_t off, uint64_t len, uint8_t *out)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t chunk = 1 << 20;
	char *buf = NULL;
	int ret = 0;

	if (!ctx)
		return -ENOMEM;
	buf = malloc(chunk);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	EVP_DigestInit_ex(ctx, md, NULL);
	while (len > 0) {
		size_t want = len < chunk ? (size_t)len : chunk;
		ssize_t n = pread(fd, buf, want, off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0) {
			ret = -EIO; /* file shorter than promised */
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, (size_t)n);
		off += n;
		len -= (uint64_t)n;
	}
	EVP_DigestFinal_ex(ctx, out, NULL);
out:
	free(buf);
	EVP_MD_CTX_free(ctx);
	return ret;
}

int crypto_sha256_fd(int fd, off_t off, uint64_t len, uint8_t out[SHA256_LEN])
{
	return digest_fd(EVP_sha256(), fd, off, len, out);
}

int crypto_md5_fd(int fd, off_t off, uint64_t len, uint8_t out[MD5_LEN])
{
	return digest_fd(EVP_md5(), fd, off, len, out);
}

void crypto_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

char *crypto_base64(const void *in, size_t len)
{
	size_t outlen = 4 * ((len + 2) / 3) + 1;
	char *out = malloc(outlen);

	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

int crypto_base64_decode(const char *in, uint8_t **out, size_t *outlen)
{
	size_t len = strlen(in);
	uint8_t *buf;
	int n, pad = 0;

	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0)
		return -EINVAL;
	buf = malloc(len / 4 * 3 + 1);
	if (!buf)
		return -ENOMEM;
	n = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
	if (n < 0) {
		free(buf);
		return -EINVAL;
	}
	if (len >= 1 && in[len - 1] == '=')
		pad++;
	if (len >= 2 && in[len - 2] == '=')
		pad++;
	*out = buf;
	*outlen = (size_t)n - (size_t)pad;
	return 0;
}

char *crypto_base64url(const void *in, size_t len)
{
	char *s = crypto_base64(in, len);
	size_t n;

	if (!s)
		return NULL;
	for (char *p = s; *p; p++) {
		if (*p == '+')
			*p = '-';
		else if (*p == '/')
			*p = '_';
	}
	n = strlen(s);
	while (n > 0 && s[n - 1] == '=')
		s[--n] = '\0';
	return s;
}

int crypto_memeq(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0 ? 0 : 1;
}

int crypto_random(void *out, size_t len)
{
	return RAND_bytes(out, (int)len) == 1 ? 0 : -EIO;
}
