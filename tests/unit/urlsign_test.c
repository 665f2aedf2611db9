/* urlsign_test.c - presigned URL make / verify / tamper / expiry (src/urlsign.c). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/crypto.h"
#include "src/urlsign.h"

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static const char skey[] = "unit-test-signing-key";

static char *make(const char *base, const char *key, enum lexfs_method m, int64_t exp)
{
	char *url = NULL;
	int rc = urlsign_make(base, key, m, exp, skey, strlen(skey), &url);

	CHECK(rc == 0 && url != NULL);
	return url;
}

/* The signature is HMAC-SHA256 over "METHOD\nKEY\nEXPIRES": recompute it here. */
static void test_known_signature(void)
{
	uint8_t mac[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1], want[512];
	const char *msg = "GET\na/b c.txt\n2000000000";
	char *url = make("http://localhost:8000/storage", "a/b c.txt", LEXFS_GET, 2000000000);

	crypto_hmac_sha256(skey, strlen(skey), msg, strlen(msg), mac);
	crypto_hex(mac, sizeof(mac), hex);
	snprintf(want, sizeof(want),
		 "http://localhost:8000/storage/a/b%%20c.txt?X-Lexfs-Method=GET"
		 "&X-Lexfs-Expires=2000000000&X-Lexfs-Signature=%s",
		 hex);
	CHECK(url && strcmp(url, want) == 0);
	free(url);
}

static void test_roundtrip(void)
{
	static const char *const keys[] = { "plain.txt",    "dir/sub/file",      "with space",
					    "plus+and%pct", "uni/\xc3\xa9t\xc3\xa9", "x~y=z&w?q#h" };
	static const char *const bases[] = { "http://localhost:8000/storage", "mem://",
					     "https://h/a/b/" };

	for (size_t b = 0; b < 3; b++) {
		for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
			enum lexfs_method m = i % 2 ? LEXFS_PUT : LEXFS_GET, got_m = LEXFS_GET;
			char *url = make(bases[b], keys[i], m, 1000), *got = NULL;
			int rc = urlsign_verify(url, skey, strlen(skey), 999, &got, &got_m);

			CHECK(rc == 0);
			CHECK(got && strcmp(got, keys[i]) == 0);
			CHECK(got_m == m);
			free(got);
			free(url);
		}
	}
}

static void test_tamper(void)
{
	char *url = make("mem://", "a/b", LEXFS_GET, 1000), *p;
	char *copy;

	/* signature changed */
	copy = strdup(url);
	p = strstr(copy, "Signature=") + 10;
	*p = *p == '0' ? '1' : '0';
	CHECK(urlsign_verify(copy, skey, strlen(skey), 10, NULL, NULL) == -EACCES);
	free(copy);

	/* key changed */
	copy = strdup(url);
	p = strstr(copy, "a/b");
	p[2] = 'c';
	CHECK(urlsign_verify(copy, skey, strlen(skey), 10, NULL, NULL) == -EACCES);
	free(copy);

	/* expiry extended */
	copy = strdup(url);
	p = strstr(copy, "Expires=1000");
	p[8] = '9';
	CHECK(urlsign_verify(copy, skey, strlen(skey), 10, NULL, NULL) == -EACCES);
	free(copy);

	/* method changed */
	copy = strdup(url);
	p = strstr(copy, "Method=GET");
	memcpy(p + 7, "PUT", 3);
	CHECK(urlsign_verify(copy, skey, strlen(skey), 10, NULL, NULL) == -EACCES);
	free(copy);

	/* other signing key */
	CHECK(urlsign_verify(url, "other", 5, 10, NULL, NULL) == -EACCES);

	/* malformed */
	CHECK(urlsign_verify("mem://a/b", skey, strlen(skey), 10, NULL, NULL) == -EINVAL);
	CHECK(urlsign_verify("mem://a/b?X-Lexfs-Method=GET", skey, strlen(skey), 10, NULL, NULL) ==
	      -EINVAL);
	free(url);
}

static void test_expiry(void)
{
	char *url = make("mem://", "k", LEXFS_GET, 1000);

	CHECK(urlsign_verify(url, skey, strlen(skey), 999, NULL, NULL) == 0);
	CHECK(urlsign_verify(url, skey, strlen(skey), 1000, NULL, NULL) == -ETIMEDOUT);
	CHECK(urlsign_verify(url, skey, strlen(skey), 5000, NULL, NULL) == -ETIMEDOUT);
	free(url);
}

static void test_encode(void)
{
	char *e = urlsign_encode_key("a b/c+d%e~f_g.h-i/\xc3\xa9");

	CHECK(e && strcmp(e, "a%20b/c%2Bd%25e~f_g.h-i/%C3%A9") == 0);
	free(e);
	e = urlsign_plain_url("mem://", "x y");
	CHECK(e && strcmp(e, "mem://x%20y") == 0);
	free(e);
	e = urlsign_plain_url("http://h/s", "x");
	CHECK(e && strcmp(e, "http://h/s/x") == 0);
	free(e);
}

int main(void)
{
	test_known_signature();
	test_roundtrip();
	test_tamper();
	test_expiry();
	test_encode();
	if (failures) {
		fprintf(stderr, "urlsign_test: %d failure(s)\n", failures);
		return 1;
	}
	printf("urlsign_test: all passed\n");
	return 0;
}
