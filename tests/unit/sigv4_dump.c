/* sigv4_dump.c - print what lexfs's SigV4 signs, for the botocore comparison
 * (tests/test_s3_sigv4.py).
 *
 *   sigv4_dump header  METHOD URL TIME REGION AKID SECRET TOKEN|- PAYLOAD [Name:Value]...
 *   sigv4_dump presign METHOD URL TIME REGION AKID SECRET TOKEN|- EXPIRES
 *
 * TIME is seconds since the epoch. Output sections, each introduced by a line
 * "--- NAME": canonical, sts, signature, result (Authorization or the URL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/sigv4.h"

static int64_t num(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end || end == s) {
		fprintf(stderr, "sigv4_dump: bad number %s\n", s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct sigv4 s;
	struct sigv4_trace tr;
	struct sigv4_creds cr;
	char *result = NULL;
	int rc;

	if (argc < 10) {
		fprintf(stderr, "usage: sigv4_dump header|presign METHOD URL TIME REGION AKID SECRET "
				"TOKEN|- PAYLOAD|EXPIRES [Name:Value]...\n");
		return 2;
	}
	cr.access_key = argv[6];
	cr.secret_key = argv[7];
	cr.session_token = strcmp(argv[8], "-") == 0 ? NULL : argv[8];
	if (sigv4_init(&s, argv[5], "s3"))
		return 2;
	sigv4_trace_init(&tr);
	if (strcmp(argv[1], "header") == 0) {
		struct http_req req;
		char *url = strdup(argv[3]);
		http_req_init(&req, argv[2], url);
		for (int i = 10; i < argc; i++) {
			char *colon = strchr(argv[i], ':');
			if (!colon)
				return 2;
			*colon = '\0';
			http_headers_set(&req.headers, argv[i], colon + 1);
		}
		rc = sigv4_sign_request(&s, &cr, &req, argv[9], num(argv[4]), &tr);
		if (!rc) {
			const char *a = http_headers_get(&req.headers, "authorization");
			result = strdup(a ? a : "");
		}
		http_req_free(&req);
	} else {
		rc = sigv4_presign(&s, &cr, argv[2], argv[3], num(argv[9]), num(argv[4]), &result,
				   &tr);
	}
	if (rc) {
		fprintf(stderr, "sigv4_dump: %s\n", strerror(-rc));
		sigv4_trace_free(&tr);
		sigv4_destroy(&s);
		return 1;
	}
	printf("--- canonical\n%s\n--- sts\n%s\n--- signature\n%s\n--- result\n%s\n",
	       buf_cstr(&tr.canonical_request), buf_cstr(&tr.string_to_sign), tr.signature,
	       result);
	free(result);
	sigv4_trace_free(&tr);
	sigv4_destroy(&s);
	return 0;
}
