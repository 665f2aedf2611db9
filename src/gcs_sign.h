/* gcs_sign.h - Google Cloud Storage signing: service-account keys, RS256, V4 URLs.
 *
 * OpenSSL only, no network: the pieces of Google's auth that can be checked
 * byte for byte (Google's signingV4Tests conformance vectors, see
 * tests/test_gcs_vectors.py). The token flows that use HTTP live in gcs_auth.c.
 *
 * A V4 signed URL (GOOG4-RSA-SHA256):
 *   canonical request = METHOD \n path \n canonical query \n canonical headers \n
 *                       signed headers \n payload hash
 *   string to sign    = "GOOG4-RSA-SHA256" \n YYYYMMDDTHHMMSSZ \n scope \n
 *                       hex(sha256(canonical request))
 *   URL               = scheme://authority path ? canonical query &X-Goog-Signature=hex(RSA)
 * The host header signed is the authority without its port, as Google's clients do.
 */
#ifndef LEXFS_GCS_SIGN_H
#define LEXFS_GCS_SIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A service account's RSA private key and e-mail. Immutable once loaded, so it can be
 * used by several threads at once. */
struct gcs_key;

/* Load a PEM private key (PKCS#8 or PKCS#1) for client_email. 0, -EINVAL (bad key)
 * or -ENOMEM. *out: caller frees with gcs_key_free. */
int gcs_key_load_pem(const char *pem, const char *client_email, struct gcs_key **out);
void gcs_key_free(struct gcs_key *k);
const char *gcs_key_email(const struct gcs_key *k);

/* RSASSA-PKCS1-v1_5 with SHA-256 (JWT "RS256", GOOG4-RSA-SHA256). *sig: caller frees.
 * 0, -EIO or -ENOMEM. */
int gcs_rs256_sign(const struct gcs_key *k, const void *data, size_t len, uint8_t **sig,
		   size_t *siglen);

/* The OAuth2 JWT-bearer assertion of a service account: header {"alg":"RS256",
 * "typ":"JWT"}, claims iss=email, scope, aud, iat=now, exp=now+lifetime.
 * *jwt: caller frees. 0 or -errno. */
int gcs_jwt_assertion(const struct gcs_key *k, const char *scope, const char *aud, int64_t now,
		      int64_t lifetime, char **jwt);

/* An endpoint as written by a user: "host", "host:port" or "scheme://host[:port][/]". */
struct gcs_endpoint {
	char scheme[8];	     /* "https" or "http" */
	char authority[256]; /* host[:port] as it appears in URLs */
	char host[256];	     /* authority without the port (the signed host header) */
};

/* Parse spec; default_scheme applies when spec has none. 0 or -EINVAL. */
int gcs_endpoint_parse(const char *spec, const char *default_scheme, struct gcs_endpoint *out);

/* The endpoint lexfs talks to, in the order Google's clients use: the endpoint
 * setting (default scheme https), else STORAGE_EMULATOR_HOST (value passed in,
 * default scheme http), else https://storage.googleapis.com. Signed URLs use it too.
 * 0 or -EINVAL (a malformed value). */
int gcs_endpoint_resolve(const char *setting, const char *emulator_host, struct gcs_endpoint *out);

struct gcs_kv {
	const char *name;
	const char *value;
};

struct gcs_v4_req {
	const char *method;	       /* "GET", "PUT", "POST", ... */
	const struct gcs_endpoint *ep; /* where the URL points */
	const char *path;	       /* unencoded, starting with '/': "/bucket/object" */
	const struct gcs_kv *headers;  /* extra headers the user of the URL must send */
	size_t nheaders;
	const struct gcs_kv *query; /* extra query parameters (unencoded) */
	size_t nquery;
	int64_t now;	 /* signing time, seconds since the epoch */
	int64_t expires; /* validity in seconds, 1..604800 */
};

struct gcs_v4_out {
	char *url;
	char *canonical_request;
	char *string_to_sign;
};

/* Sign; fills out (free with gcs_v4_out_free). 0, -EINVAL (bad expiry or time),
 * -ENOMEM or -EIO. */
int gcs_v4_sign(const struct gcs_key *k, const struct gcs_v4_req *req, struct gcs_v4_out *out);
void gcs_v4_out_free(struct gcs_v4_out *o);

#endif
