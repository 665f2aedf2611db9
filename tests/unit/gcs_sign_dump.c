/* gcs_sign_dump.c - run the GCS V4 signer on one conformance vector.
 *
 *   gcs_sign_dump KEYFILE < vector.json
 *
 * KEYFILE is a service-account JSON key; stdin is one object of Google's
 * signingV4Tests (bucket, object, method, expiration, timestamp, headers,
 * queryParameters, scheme, urlStyle, bucketBoundHostname, hostname, clientEndpoint,
 * emulatorHostname, universeDomain). Prints {"canonical_request", "string_to_sign",
 * "url"} as JSON. tests/test_gcs_vectors.py compares them with the vector.
 *
 * Endpoint choice mirrors the client options the vectors exercise: a per-call
 * hostname wins, then the client endpoint (lexfs: storage.gcs.endpoint), then the
 * emulator host (STORAGE_EMULATOR_HOST), then the universe domain, then Google's.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "src/gcs_sign.h"

static const char *jstr(json_t *o, const char *name)
{
	return json_string_value(json_object_get(o, name));
}

static int collect(json_t *obj, struct gcs_kv **out, size_t *n)
{
	const char *name;
	json_t *v;

	*out = calloc(json_object_size(obj) + 1, sizeof(**out));
	*n = 0;
	if (!*out)
		return -ENOMEM;
	json_object_foreach (obj, name, v) {
		(*out)[*n].name = name;
		(*out)[*n].value = json_string_value(v);
		if (!(*out)[*n].value)
			return -EINVAL;
		(*n)++;
	}
	return 0;
}

int main(int argc, char **argv)
{
	json_error_t jerr;
	json_t *keyj, *vec, *res;
	struct gcs_key *key = NULL;
	struct gcs_endpoint ep;
	struct gcs_v4_req req = {0};
	struct gcs_v4_out out;
	struct gcs_kv *hdrs = NULL, *qry = NULL;
	const char *style, *scheme, *bucket, *object;
	char spec[1024], path[2048], host[600];
	struct tm tm = {0};
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: gcs_sign_dump KEYFILE < vector.json\n");
		return 2;
	}
	keyj = json_load_file(argv[1], 0, &jerr);
	vec = json_loadf(stdin, 0, &jerr);
	if (!keyj || !vec) {
		fprintf(stderr, "gcs_sign_dump: bad JSON: %s\n", jerr.text);
		return 2;
	}
	ret = gcs_key_load_pem(jstr(keyj, "private_key"), jstr(keyj, "client_email"), &key);
	if (ret) {
		fprintf(stderr, "gcs_sign_dump: key: %s\n", strerror(-ret));
		return 1;
	}

	scheme = jstr(vec, "scheme") ? jstr(vec, "scheme") : "https";
	if (jstr(vec, "hostname")) {
		ret = gcs_endpoint_parse(jstr(vec, "hostname"), scheme, &ep);
	} else if (jstr(vec, "clientEndpoint") || jstr(vec, "emulatorHostname")) {
		ret = gcs_endpoint_resolve(jstr(vec, "clientEndpoint"),
					   jstr(vec, "emulatorHostname"), &ep);
	} else if (jstr(vec, "universeDomain")) {
		snprintf(spec, sizeof(spec), "storage.%s", jstr(vec, "universeDomain"));
		ret = gcs_endpoint_parse(spec, scheme, &ep);
	} else {
		ret = gcs_endpoint_resolve(NULL, NULL, &ep);
	}
	if (ret) {
		fprintf(stderr, "gcs_sign_dump: bad endpoint\n");
		return 1;
	}

	bucket = jstr(vec, "bucket");
	object = jstr(vec, "object");
	style = jstr(vec, "urlStyle") ? jstr(vec, "urlStyle") : "PATH_STYLE";
	if (!strcmp(style, "VIRTUAL_HOSTED_STYLE") || !strcmp(style, "BUCKET_BOUND_HOSTNAME")) {
		if (!strcmp(style, "VIRTUAL_HOSTED_STYLE"))
			snprintf(host, sizeof(host), "%s.%s", bucket, ep.authority);
		else
			snprintf(host, sizeof(host), "%s", jstr(vec, "bucketBoundHostname"));
		snprintf(spec, sizeof(spec), "%s://%s", scheme, host);
		if (gcs_endpoint_parse(spec, scheme, &ep))
			return 1;
		snprintf(path, sizeof(path), "/%s", object ? object : "");
	} else if (object) {
		snprintf(path, sizeof(path), "/%s/%s", bucket, object);
	} else {
		snprintf(path, sizeof(path), "/%s", bucket);
	}

	if (!strptime(jstr(vec, "timestamp"), "%Y-%m-%dT%H:%M:%SZ", &tm))
		return 1;
	if (collect(json_object_get(vec, "headers"), &hdrs, &req.nheaders) ||
	    collect(json_object_get(vec, "queryParameters"), &qry, &req.nquery))
		return 1;
	req.method = jstr(vec, "method");
	req.ep = &ep;
	req.path = path;
	req.headers = hdrs;
	req.query = qry;
	req.now = (int64_t)timegm(&tm);
	req.expires = (int64_t)json_integer_value(json_object_get(vec, "expiration"));
	ret = gcs_v4_sign(key, &req, &out);
	if (ret) {
		fprintf(stderr, "gcs_sign_dump: sign: %s\n", strerror(-ret));
		return 1;
	}
	res = json_pack("{s:s, s:s, s:s}", "canonical_request", out.canonical_request,
			"string_to_sign", out.string_to_sign, "url", out.url);
	json_dumpf(res, stdout, JSON_INDENT(1));
	fputc('\n', stdout);
	json_decref(res);
	gcs_v4_out_free(&out);
	free(hdrs);
	free(qry);
	gcs_key_free(key);
	json_decref(vec);
	json_decref(keyj);
	return 0;
}
