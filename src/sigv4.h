/* sigv4.h - AWS Signature Version 4 (header auth and presigned query auth).
 *
 * What is signed, exactly as AWS (and botocore) compute it:
 *  - canonical URI: the request path as sent (S3 does not normalise it); the caller
 *    encodes each key with http_uri_encode(key, true);
 *  - canonical query: every name and value decoded and re-encoded with the
 *    RFC 3986 unreserved set, "name=" for a bare name, sorted by name then value;
 *  - canonical headers: host (from the URL, default port dropped) and every header
 *    of the request except authorization / expect / user-agent / x-amzn-trace-id,
 *    lower-cased, values trimmed with inner runs of white space collapsed;
 *  - payload: the hex SHA-256 given by the caller, or UNSIGNED-PAYLOAD (never
 *    aws-chunked). Presigned URLs always use UNSIGNED-PAYLOAD and sign only host.
 *
 * A struct sigv4 is shared by all threads of a driver: the derived signing key is
 * cached per day, region, service and secret, and a clock-skew correction learned
 * from a RequestTimeTooSkewed reply applies to every later signature.
 */
#ifndef LEXFS_SIGV4_H
#define LEXFS_SIGV4_H

#include <pthread.h>
#include <stdint.h>
#include "src/buf.h"
#include "src/http.h"

#define SIGV4_UNSIGNED_PAYLOAD "UNSIGNED-PAYLOAD"
#define SIGV4_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SIGV4_PRESIGN_MAX_S (7 * 24 * 3600)

struct sigv4_creds {
	const char *access_key;
	const char *secret_key;
	const char *session_token; /* NULL or "" when none */
};

struct sigv4 {
	char region[64];
	char service[32];
	pthread_mutex_t lock; /* guards the fields below */
	char key_scope[128];  /* "YYYYMMDD/region/service" of key[] */
	uint8_t key_secret[32]; /* SHA-256 of the secret key[] was derived from */
	uint8_t key[32];
	int64_t skew_s;       /* server time - local time */
};

/* Optional output of a signing: what went into the signature (for tests and
 * -o trace=s3 at debug level; contains no secret). Free with sigv4_trace_free. */
struct sigv4_trace {
	struct buf canonical_request;
	struct buf string_to_sign;
	char signature[65];
};

int sigv4_init(struct sigv4 *s, const char *region, const char *service);
void sigv4_destroy(struct sigv4 *s);
/* Current time corrected by the learned skew. */
int64_t sigv4_now(struct sigv4 *s);
/* Learn the skew from a server Date (seconds since the epoch). */
void sigv4_set_skew(struct sigv4 *s, int64_t server_time);

/* Header auth: sets x-amz-date, x-amz-content-sha256 (payload_hash: hex SHA-256 or
 * SIGV4_UNSIGNED_PAYLOAD), x-amz-security-token (when a token is given) and
 * Authorization in req->headers, replacing earlier values (so it can run again
 * before each retry). now: seconds since the epoch (use sigv4_now). tr may be NULL. */
int sigv4_sign_request(struct sigv4 *s, const struct sigv4_creds *cr, struct http_req *req,
		       const char *payload_hash, int64_t now, struct sigv4_trace *tr);

/* Query auth: *out is url with X-Amz-* parameters and X-Amz-Signature appended
 * (caller frees). expires_s must be 1..SIGV4_PRESIGN_MAX_S (else -EINVAL). */
int sigv4_presign(struct sigv4 *s, const struct sigv4_creds *cr, const char *method,
		  const char *url, int64_t expires_s, int64_t now, char **out,
		  struct sigv4_trace *tr);

void sigv4_trace_init(struct sigv4_trace *tr);
void sigv4_trace_free(struct sigv4_trace *tr);

#endif
