/* test_http_util.c - URI encoding and date helpers of src/http.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/http.h"

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static void check_enc(const char *in, bool keep_slash, const char *want)
{
	char *got = http_uri_encode(in, keep_slash);
	CHECK(got != NULL);
	if (got && strcmp(got, want) != 0) {
		fprintf(stderr, "encode(\"%s\", %d) = \"%s\", want \"%s\"\n", in, keep_slash, got,
			want);
		failures++;
	}
	free(got);
}

static void check_dec(const char *in, bool plus, const char *want)
{
	char *got = http_uri_decode(in, plus);
	if (!want) {
		CHECK(got == NULL);
	} else if (!got || strcmp(got, want) != 0) {
		fprintf(stderr, "decode(\"%s\") = \"%s\", want \"%s\"\n", in, got ? got : "(null)",
			want);
		failures++;
	}
	free(got);
}

static void test_uri(void)
{
	check_enc("abc-._~XYZ019", false, "abc-._~XYZ019");
	check_enc("a b+c%d", false, "a%20b%2Bc%25d");
	check_enc("dir/sub/f=1&x", true, "dir/sub/f%3D1%26x");
	check_enc("dir/sub", false, "dir%2Fsub");
	check_enc("\xc3\xa9t\xc3\xa9", true, "%C3%A9t%C3%A9");
	check_enc("", true, "");
	check_enc("*'()!$,;:@", false, "%2A%27%28%29%21%24%2C%3B%3A%40");
	check_dec("a%20b%2Bc", false, "a b+c");
	check_dec("a+b", true, "a b");
	check_dec("a+b", false, "a+b");
	check_dec("%C3%a9", false, "\xc3\xa9");
	check_dec("bad%2", false, NULL);
	check_dec("bad%zz", false, NULL);
	check_dec("nul%00", false, NULL);
}

static void test_dates(void)
{
	char d[32], iso[20];

	http_date(784111777, d);
	CHECK(strcmp(d, "Sun, 06 Nov 1994 08:49:37 GMT") == 0);
	CHECK(http_parse_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777);
	CHECK(http_parse_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777);
	CHECK(http_parse_date("Sun Nov  6 08:49:37 1994") == 784111777);
	CHECK(http_parse_date("garbage") == -1);
	CHECK(http_parse_date("Sun, 06 Foo 1994 08:49:37 GMT") == -1);
	CHECK(http_parse_date("") == -1);

	http_iso8601(1440938160, iso);
	CHECK(strcmp(iso, "20150830T123600Z") == 0);
	http_iso8601(0, iso);
	CHECK(strcmp(iso, "19700101T000000Z") == 0);
	CHECK(http_parse_iso8601("20150830T123600Z") == 1440938160);
	CHECK(http_parse_iso8601("2015-08-30T12:36:00Z") == 1440938160);
	CHECK(http_parse_iso8601("2015-08-30T12:36:00.123Z") == 1440938160);
	CHECK(http_parse_iso8601("2015-08-30T14:36:00+02:00") == 1440938160);
	CHECK(http_parse_iso8601("2015-08-30T07:36:00-0500") == 1440938160);
	CHECK(http_parse_iso8601("2015-08-30") == 1440892800);
	CHECK(http_parse_iso8601("2015-13-30T12:36:00Z") == -1);
	CHECK(http_parse_iso8601("2015-08-30T12:36:00Zjunk") == -1);
	CHECK(http_parse_iso8601("nope") == -1);
	for (int64_t t = 0; t < 4000000000LL; t += 86400 * 37 + 3601) {
		http_date(t, d);
		http_iso8601(t, iso);
		CHECK(http_parse_date(d) == t);
		CHECK(http_parse_iso8601(iso) == t);
	}
}

static void test_headers(void)
{
	struct http_headers h = { 0 };

	CHECK(http_headers_set(&h, "Content-Type", "text/plain") == 0);
	CHECK(http_headers_set(&h, "x-amz-date", "1") == 0);
	CHECK(http_headers_set(&h, "content-type", "a/b") == 0);
	CHECK(h.n == 2);
	CHECK(strcmp(http_headers_get(&h, "CONTENT-TYPE"), "a/b") == 0);
	CHECK(http_headers_get(&h, "missing") == NULL);
	http_headers_free(&h);
	CHECK(h.n == 0 && h.v == NULL);
}

int main(void)
{
	test_uri();
	test_dates();
	test_headers();
	if (failures) {
		fprintf(stderr, "test_http_util: %d failure(s)\n", failures);
		return 1;
	}
	printf("test_http_util: ok\n");
	return 0;
}
