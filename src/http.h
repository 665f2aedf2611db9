/* http.h - the one HTTP layer of the cloud drivers (libcurl).
 *
 * A client keeps a pool of curl easy handles (connections are reused) sharing DNS,
 * TLS session and connection caches. http_perform() runs one request with retries:
 * capped exponential backoff with full jitter on connection errors, timeouts,
 * 500/502/503/504, 429 and provider throttling codes (SlowDown, ServerBusy ...),
 * honouring Retry-After. A body is re-sent from its source (buffer, or fd range read
 * with pread) on every attempt; a body that cannot be read in full again (the file
 * shrank or failed under the upload) ends the request unretried, as does no_retry.
 * Before every attempt the request's sign callback runs again, so a signature
 * always carries the attempt's time.
 *
 * Tracing (-o trace=http) logs method, URL without its query string, status, bytes
 * and latency: never a header value, a signature or a credential.
 */
#ifndef LEXFS_HTTP_H
#define LEXFS_HTTP_H

#include <stdbool.h>
#include <stdint.h>
#include "drivers/driver.h"
#include "src/buf.h"

struct http_conf {
	int timeout_ms;         /* whole request without progress; default 30000 */
	int connect_timeout_ms; /* default 10000 */
	int max_retries;        /* default 5 */
	int retry_base_ms;      /* default 100 */
	int retry_max_ms;       /* default 10000 */
	const char *ca_file;    /* NULL: system store */
	bool insecure;          /* skip TLS verification (only by explicit option) */
	unsigned trace_comp;    /* LOGC_* of the owning driver, for trace lines */
	int pool_size;          /* idle handles kept; default 16 */
};

struct http_header {
	char *name;
	char *value;
};

struct http_headers {
	struct http_header *v;
	size_t n;
};

/* Set (replace, case-insensitive name) / get / free. */
int http_headers_set(struct http_headers *h, const char *name, const char *value);
const char *http_headers_get(const struct http_headers *h, const char *name);
void http_headers_free(struct http_headers *h);

struct http_req;
/* Called before each attempt: add or replace auth headers (Authorization, x-amz-date
 * ...) in req->headers. 0 or -errno (stops the request). */
typedef int (*http_sign_fn)(void *arg, struct http_req *req);

struct http_req {
	const char *method;          /* "GET", "PUT", ... */
	char *url;                   /* full URL, already percent-encoded */
	struct http_headers headers; /* request headers (owned by the request) */
	const struct lexfs_src *body; /* NULL: no body (Content-Length: 0 for PUT/POST) */
	lexfs_sink_fn sink;          /* 2xx response body goes here; NULL: into resp->body */
	void *sink_arg;
	http_sign_fn sign;
	void *sign_arg;
	bool no_retry;               /* e.g. non-idempotent POST */
	bool head;                   /* HEAD: no body expected */
	const char *trace_key;       /* key to show in trace lines (no query strings) */
};

struct http_resp {
	int status;
	struct http_headers headers; /* response headers, names lower-cased */
	struct buf body;             /* body when no sink, or the error body (max 1 MiB) */
	uint64_t body_bytes;         /* bytes delivered to the sink */
	int retries;                 /* attempts - 1 */
	int64_t server_date;         /* parsed Date header, 0 when absent */
};

struct http_client;

int http_client_create(const struct http_conf *conf, struct http_client **out);
void http_client_destroy(struct http_client *c);

void http_req_init(struct http_req *req, const char *method, char *url /* taken */);
void http_req_free(struct http_req *req);
void http_resp_init(struct http_resp *resp);
void http_resp_free(struct http_resp *resp);

/* Perform with retries. Returns 0 when the transfer completed (any HTTP status:
 * the caller maps non-2xx with its provider's error parser and lexfs_http_error),
 * or -errno for transport failure after retries (ETIMEDOUT, ECONNREFUSED ->
 * LEXFS_E_UNAVAILABLE, filled in err). A retryable HTTP status is retried here
 * and, if it persists, returned as a completed transfer with that status.
 * `is_retryable_body` (may be NULL) lets the driver say that an error body is a
 * throttling or transient code (S3's SlowDown in a 200/400/503 body). */
int http_perform(struct http_client *c, struct http_req *req, struct http_resp *resp,
		 bool (*is_retryable_body)(const struct http_resp *resp),
		 struct lexfs_err *err);

/* The Date header of the most recent response this client received (any status,
 * any attempt) in *server, and this machine's clock when it arrived in *local_at,
 * both seconds since the epoch: the server's clock as of a moment ago, without a
 * request of its own. -ENODATA when no response carried a usable Date yet.
 * Thread-safe. */
int http_last_date(struct http_client *c, int64_t *server, int64_t *local_at);

/* Percent-encoding per RFC 3986 unreserved set (A-Z a-z 0-9 - . _ ~); keep_slash
 * leaves '/' as is. Caller frees. */
char *http_uri_encode(const char *s, bool keep_slash);
/* Decode %XX (and '+' as space when plus_space). Caller frees; NULL on bad input. */
char *http_uri_decode(const char *s, bool plus_space);
/* RFC 7231 date (IMF-fixdate) of t into out (30 bytes); parse returns -1 on error. */
void http_date(int64_t t, char out[32]);
int64_t http_parse_date(const char *s);
/* ISO 8601 basic (20060102T150405Z) and parse of ISO 8601 / RFC 3339 times. */
void http_iso8601(int64_t t, char out[20]);
int64_t http_parse_iso8601(const char *s);

#endif
