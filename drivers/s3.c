/* s3.c - the Amazon S3 and Cloudflare R2 drivers (lexfs_driver_s3, lexfs_driver_r2).
 *
 * Both tables share every operation; R2 differs only in its defaults (endpoint
 * from account_id, region "auto") and the equal-parts capability.
 *
 * Requests: one struct http_client (pooled connections, retries with back-off in
 * src/http.c); each attempt is signed again with SigV4 (src/sigv4.c), so a retry
 * carries a fresh date. A RequestTimeTooSkewed reply teaches the signer the
 * server's clock and the request is sent once more.
 *
 * Integrity: every PUT and part carries Content-MD5, so the server rejects
 * corrupted bodies (BadDigest). Bodies in memory are signed with their SHA-256;
 * bodies read from a file are sent with UNSIGNED-PAYLOAD (the file would be read a
 * third time otherwise) unless sign_payload=true. A whole-object download of a
 * single-part object is checked against its MD5 ETag (ChecksumMismatch -> EIO).
 *
 * Multipart: ETags of parts are kept in the upload handle; Complete's response
 * body is not trusted for the ETag (radosgw sends it empty): a HEAD follows.
 * Every failure after Create aborts the upload, so none is left behind; the
 * uploads a crashed writer left anyway are listed and aborted by s3_mpu.c.
 *
 * Encryption (SSE-S3, SSE-KMS, SSE-C) is drivers/s3_sse.c: which headers go on which
 * request is listed there.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/evp.h>

#include "drivers/builtin.h"
#include "drivers/s3_creds.h"
#include "drivers/s3_int.h"
#include "drivers/s3_sse.h"
#include "drivers/s3_xml.h"
#include "src/crypto.h"
#include "src/http.h"
#include "src/log.h"
#include "src/sigv4.h"

#define MiB (1024ULL * 1024)
#define GiB (1024 * MiB)
#define S3_MIN_PART (5 * MiB)
#define S3_MAX_PART (5 * GiB)
#define S3_MAX_PARTS 10000
#define S3_MAX_OBJECT (5 * 1024 * GiB)
#define SKEW_LIMIT_S 600

struct lexfs_drv {
	bool r2;
	char *bucket;
	char *endpoint;      /* scheme://host[:port], no trailing slash */
	char *host_vhost;    /* scheme://bucket.host[:port] when virtual-host style */
	bool path_style;
	bool anonymous;
	bool sign_payload;
	struct s3_sse sse; /* server-side encryption (drivers/s3_sse.h) */
	uint64_t copy_threshold;
	uint64_t copy_part_size;
	unsigned copy_concurrency;
	bool verify_md5;
	bool meta_dot;       /* '_' in metadata names travels as '.' (see open) */
	struct http_client *http;
	struct sigv4 sig;
	bool sig_ready;
	pthread_mutex_t cred_lock; /* guards creds */
	struct s3_creds creds;
	/* counters, updated atomically; shown in trace lines */
	uint64_t n_part_copy;
	uint64_t n_complete;
	uint64_t n_abort;
	/* test fault injection (control "fault"): parts that may still succeed
	 * before UploadPart fails with EIO; -1 when off */
	int64_t fault_parts_left;
};

struct lexfs_mpu {
	char *key;
	char *upload_id;
	pthread_mutex_t lock; /* guards etags / netags */
	char (*etags)[96];
	unsigned netags;
};

/* ---------- small helpers ---------- */

static const char *drv_name(const struct lexfs_drv *d)
{
	return d->r2 ? "r2" : "s3";
}

/* URL of key (NULL: the bucket itself) with an optional encoded query. Caller frees. */
static char *obj_url(const struct lexfs_drv *d, const char *key, const char *query)
{
	struct buf b = BUF_INIT(0);
	char *ek = NULL;
	int rc;

	if (key) {
		ek = http_uri_encode(key, true);
		if (!ek)
			return NULL;
	}
	if (d->path_style)
		rc = buf_addf(&b, "%s/%s%s%s", d->endpoint, d->bucket, key ? "/" : "",
			      key ? ek : "");
	else
		rc = buf_addf(&b, "%s/%s", d->host_vhost, key ? ek : "");
	if (!rc && query && *query)
		rc = buf_addf(&b, "?%s", query);
	free(ek);
	if (rc) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* Refresh temporary credentials that expire within 5 minutes. Call with
 * cred_lock held. A failed refresh keeps the old ones (the server will say when
 * they no longer work). */
static void creds_fresh(struct lexfs_drv *d)
{
	char eb[256];
	int rc;

	if (!d->creds.expiry || (int64_t)time(NULL) + 300 < d->creds.expiry)
		return;
	rc = s3_creds_refresh(&d->creds, eb, sizeof(eb));
	if (rc)
		log_warn("%s: refreshing the temporary credentials failed: %s", drv_name(d), eb);
	else
		log_info("%s: temporary credentials refreshed (%s), valid for %lld s",
			 drv_name(d), d->creds.source,
			 (long long)(d->creds.expiry ? d->creds.expiry - (int64_t)time(NULL) : 0));
}

struct sign_ctx {
	struct lexfs_drv *d;
	const char *payload;
};

static int sign_cb(void *arg, struct http_req *req)
{
	struct sign_ctx *sc = arg;
	struct lexfs_drv *d = sc->d;
	struct sigv4_creds cr;
	int rc;

	if (d->anonymous)
		return 0;
	pthread_mutex_lock(&d->cred_lock);
	creds_fresh(d);
	cr.access_key = d->creds.access_key;
	cr.secret_key = d->creds.secret_key;
	cr.session_token = d->creds.session_token;
	rc = sigv4_sign_request(&d->sig, &cr, req, sc->payload, sigv4_now(&d->sig), NULL);
	pthread_mutex_unlock(&d->cred_lock);
	return rc;
}

/* Throttling or transient codes that S3 may send in any status (even 200). */
static bool retryable_body(const struct http_resp *resp)
{
	static const char *const codes[] = { "<Code>SlowDown</Code>",
					     "<Code>InternalError</Code>",
					     "<Code>ServiceUnavailable</Code>",
					     "<Code>RequestTimeout</Code>", NULL };
	const char *b = resp->body.data;

	if (!b || resp->body.len == 0 || resp->body.len > 65536)
		return false;
	if (resp->status >= 200 && resp->status < 300 && !strstr(b, "<Error>"))
		return false;
	for (int i = 0; codes[i]; i++)
		if (strstr(b, codes[i]))
			return true;
	return false;
}

/* Payload hash of the body for SigV4 (see the top of this file). */
static int payload_hash(const struct lexfs_drv *d, const struct lexfs_src *src, char hex[65])
{
	uint8_t h[SHA256_LEN];

	if (!src || src->len == 0) {
		snprintf(hex, 65, "%s", SIGV4_EMPTY_SHA256);
		return 0;
	}
	if (src->buf) {
		crypto_sha256(src->buf, (size_t)src->len, h);
	} else if (d->sign_payload) {
		int rc = crypto_sha256_fd(src->fd, src->off, src->len, h);
		if (rc)
			return rc;
	} else {
		snprintf(hex, 65, "%s", SIGV4_UNSIGNED_PAYLOAD);
		return 0;
	}
	crypto_hex(h, SHA256_LEN, hex);
	return 0;
}

/* Content-MD5 (base64) of a body into hdrs. */
static int set_content_md5(struct http_headers *hdrs, const struct lexfs_src *src,
			   char hexmd5[33])
{
	uint8_t md5[MD5_LEN];
	char *b64;
	int rc = 0;

	if (!src || src->len == 0)
		crypto_md5("", 0, md5);
	else if (src->buf)
		crypto_md5(src->buf, (size_t)src->len, md5);
	else
		rc = crypto_md5_fd(src->fd, src->off, src->len, md5);
	if (rc)
		return rc;
	if (hexmd5)
		crypto_hex(md5, MD5_LEN, hexmd5);
	b64 = crypto_base64(md5, MD5_LEN);
	if (!b64)
		return -ENOMEM;
	rc = http_headers_set(hdrs, "Content-MD5", b64);
	free(b64);
	return rc;
}

/* Run one S3 request (s3_int.h). */
int s3_perform(struct lexfs_drv *d, struct s3_call *call, struct http_resp *resp,
	       struct lexfs_err *err)
{
	struct http_req req;
	struct sign_ctx sc = { d, NULL };
	char hash[65];
	char *url;
	int rc;

	rc = payload_hash(d, call->body, hash);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, -rc, "cannot read the upload source: %s",
				  strerror(-rc));
	sc.payload = hash;
	url = obj_url(d, call->key, call->query);
	if (!url)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");

	for (int skew_try = 0;; skew_try++) {
		http_req_init(&req, call->method, url);
		req.headers = call->headers;
		req.body = call->body;
		req.sink = call->sink;
		req.sink_arg = call->sink_arg;
		req.sign = sign_cb;
		req.sign_arg = &sc;
		req.no_retry = call->no_retry;
		req.trace_key = call->trace ? call->trace : call->key;
		http_resp_free(resp);
		http_resp_init(resp);
		rc = http_perform(d->http, &req, resp, retryable_body, err);
		/* Keep url and headers for another attempt; they belong to call. */
		call->headers = req.headers;
		req.headers.v = NULL;
		req.headers.n = 0;
		req.url = NULL;
		http_req_free(&req);
		if (rc || skew_try > 0 || resp->status != 403 || d->anonymous)
			break;
		/* Clock skew: the server says so in the body, or (HEAD) only its Date
		 * header tells. */
		{
			int64_t now = sigv4_now(&d->sig);
			bool skewed = resp->body.data &&
				      strstr(resp->body.data, "RequestTimeTooSkewed") != NULL;
			if (!skewed && resp->server_date > 0 &&
			    (resp->server_date - now > SKEW_LIMIT_S ||
			     now - resp->server_date > SKEW_LIMIT_S))
				skewed = true;
			if (!skewed || resp->server_date <= 0)
				break;
			log_warn("%s: the local clock is %lld s off the server's; correcting "
				 "signatures",
				 drv_name(d), (long long)(now - resp->server_date));
			sigv4_set_skew(&d->sig, resp->server_date);
		}
	}
	free(url);
	return rc;
}

static void call_free(struct s3_call *call)
{
	http_headers_free(&call->headers);
}

/* Replace err's message (long names are cut, never overflow). */
static void __attribute__((format(printf, 2, 3)))
set_msg(struct lexfs_err *err, const char *fmt, ...)
{
	char tmp[sizeof(err->message)];
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	memcpy(err->message, tmp, sizeof(tmp));
}

/* Map a non-2xx response (or a 200 carrying <Error>) to -errno (s3_int.h). */
int s3_status_error(struct lexfs_drv *d, const struct http_resp *resp, const char *op,
		    const char *key, struct lexfs_err *err)
{
	char code[64], msg[200];
	int rc;

	if (s3_xml_error(resp->body.data, resp->body.len, code, sizeof(code), msg, sizeof(msg)))
		code[0] = msg[0] = '\0';
	if (!code[0] && resp->status == 404)
		snprintf(code, sizeof(code), "%s", key ? "NoSuchKey" : "NoSuchBucket");
	rc = lexfs_http_error(resp->status ? resp->status : 500, code, msg, err);
	if (rc == 0)
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EIO, "unexpected reply");
	if (err)
		set_msg(err, "%s %s%s%s: %s", op, d->bucket, key ? "/" : "", key ? key : "",
			err->message);
	return rc;
}

static bool ok2xx(const struct http_resp *resp)
{
	return resp->status >= 200 && resp->status < 300;
}

/* A 200 reply whose body is an <Error> (CopyObject, CompleteMultipartUpload). */
static bool error_in_200(const struct http_resp *resp)
{
	char code[64], msg[16];
	return resp->body.len > 0 &&
	       s3_xml_error(resp->body.data, resp->body.len, code, sizeof(code), msg,
			    sizeof(msg)) == 0;
}

/* x-amz-meta-*, Content-Type and encryption headers of an upload / copy. */
static int put_headers(const struct lexfs_drv *d, struct http_headers *h,
		       const struct lexfs_put_opts *opts, bool with_sse)
{
	int rc = 0;
	char name[300];

	if (opts && opts->content_type && *opts->content_type)
		rc = http_headers_set(h, "Content-Type", opts->content_type);
	for (size_t i = 0; !rc && opts && opts->meta && i < opts->meta->n; i++) {
		snprintf(name, sizeof(name), "x-amz-meta-%s", opts->meta->kv[i].name);
		if (d->meta_dot)
			for (char *p = name + 11; *p; p++)
				if (*p == '_')
					*p = '.';
		rc = http_headers_set(h, name, opts->meta->kv[i].value);
	}
	if (!rc && with_sse)
		rc = s3_sse_create_headers(&d->sse, h);
	return rc;
}

static void fill_info_from_headers(const struct http_resp *resp, struct lexfs_objinfo *out)
{
	const char *v;
	char *end;

	v = http_headers_get(&resp->headers, "content-length");
	if (v) {
		errno = 0;
		out->size = strtoull(v, &end, 10);
		if (errno || end == v)
			out->size = 0;
	}
	v = http_headers_get(&resp->headers, "last-modified");
	out->mtime = v ? http_parse_date(v) : 0;
	if (out->mtime < 0)
		out->mtime = 0;
	s3_etag_unquote(http_headers_get(&resp->headers, "etag"), out->etag, sizeof(out->etag));
	v = http_headers_get(&resp->headers, "content-type");
	snprintf(out->content_type, sizeof(out->content_type), "%s", v ? v : "");
}

/* ---------- operations ---------- */

static int s3_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out,
		   struct lexfs_err *err)
{
	struct s3_call call = { .method = "HEAD", .key = key };
	struct http_resp resp;
	int rc;

	memset(out, 0, sizeof(*out));
	http_resp_init(&resp);
	if (s3_sse_key_headers(&d->sse, &call.headers)) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp)) {
		rc = s3_status_error(d, &resp, "HEAD", key, err);
		goto out;
	}
	fill_info_from_headers(&resp, out);
	meta_init(&out->meta);
	for (size_t i = 0; i < resp.headers.n; i++) {
		const char *n = resp.headers.v[i].name;
		if (strncmp(n, "x-amz-meta-", 11) == 0 && n[11]) {
			char mn[256];
			snprintf(mn, sizeof(mn), "%s", n + 11);
			if (d->meta_dot)
				for (char *p = mn; *p; p++)
					if (*p == '.')
						*p = '_';
			rc = meta_set(&out->meta, mn, resp.headers.v[i].value);
			if (rc) {
				rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
				objinfo_free(out);
				goto out;
			}
		}
	}
	out->has_meta = true;
out:
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

static int s3_exists(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct lexfs_objinfo oi;
	int rc = s3_info(d, key, &oi, err);

	if (rc == -ENOENT) {
		lexfs_err_clear(err);
		return 0;
	}
	if (rc)
		return rc;
	objinfo_free(&oi);
	return 1;
}

static int s3_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
		     const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		     struct lexfs_err *err)
{
	struct s3_call call = { .method = "PUT", .key = key, .body = src };
	struct http_resp resp;
	struct lexfs_src empty = { .buf = "", .len = 0 };
	char md5[33];
	int rc;

	if (!src)
		call.body = src = &empty;
	if (src->len > S3_MAX_PART)
		return lexfs_fail(err, LEXFS_E_QUOTA, EFBIG,
				  "%s: a single PUT is limited to 5 GiB (use multipart)", key);
	http_resp_init(&resp);
	rc = set_content_md5(&call.headers, src, md5);
	if (!rc)
		rc = put_headers(d, &call.headers, opts, true);
	if (!rc && opts && opts->if_match)
		rc = http_headers_set(&call.headers, "If-Match", opts->if_match);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, -rc, "%s: cannot prepare the upload: %s", key,
				strerror(-rc));
		goto out;
	}
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp)) {
		rc = s3_status_error(d, &resp, "PUT", key, err);
		goto out;
	}
	if (out) {
		memset(out, 0, sizeof(*out));
		out->size = src->len;
		s3_etag_unquote(http_headers_get(&resp.headers, "etag"), out->etag,
				sizeof(out->etag));
		if (!out->etag[0])
			snprintf(out->etag, sizeof(out->etag), "%s", md5);
	}
out:
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

struct dl_ctx {
	lexfs_sink_fn sink;
	void *arg;
	EVP_MD_CTX *md5; /* NULL: no check */
	uint64_t got;
};

static int dl_sink(void *arg, const void *data, size_t len)
{
	struct dl_ctx *c = arg;

	if (c->md5)
		EVP_DigestUpdate(c->md5, data, len);
	c->got += len;
	return c->sink(c->arg, data, len);
}

static bool is_md5_etag(const char *e)
{
	if (strlen(e) != 32)
		return false;
	for (const char *p = e; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static int s3_download(lexfs_drv *d, const char *key, uint64_t off, uint64_t len,
		       lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	struct dl_ctx dc = { .sink = sink, .arg = arg };
	struct http_resp resp;
	bool whole = off == 0 && len == UINT64_MAX;
	char etag[96] = "";
	int rc = 0;

	if (len == 0) {
		rc = s3_exists(d, key, err);
		return rc < 0 ? rc : rc == 0 ? lexfs_fail(err, LEXFS_E_NOTFOUND, ENOENT,
							   "%s: no such object", key) : 0;
	}
	if (whole && d->verify_md5) {
		dc.md5 = EVP_MD_CTX_new();
		if (!dc.md5)
			return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		EVP_DigestInit_ex(dc.md5, EVP_md5(), NULL);
	}
	http_resp_init(&resp);
	/* A transfer cut in the middle resumes from where it stopped (the HTTP layer
	 * cannot retry once the sink has bytes), pinned to the same object by ETag. */
	for (int resume = 0; resume < 4; resume++) {
		struct s3_call call = { .method = "GET", .key = key, .sink = dl_sink,
					.sink_arg = &dc };
		uint64_t from = off + dc.got;
		char range[64];
		struct lexfs_err e2;

		if (!whole || dc.got > 0) {
			if (len == UINT64_MAX || off + len < off)
				snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", from);
			else
				snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, from,
					 off + len - 1);
			rc = http_headers_set(&call.headers, "Range", range);
		}
		if (!rc)
			rc = s3_sse_key_headers(&d->sse, &call.headers);
		if (!rc && etag[0]) {
			char q[100];
			snprintf(q, sizeof(q), "\"%s\"", etag);
			rc = http_headers_set(&call.headers, "If-Match", q);
		}
		if (rc) {
			call_free(&call);
			rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
			break;
		}
		lexfs_err_clear(&e2);
		rc = s3_perform(d, &call, &resp, &e2);
		call_free(&call);
		if (!etag[0])
			s3_etag_unquote(http_headers_get(&resp.headers, "etag"), etag,
					sizeof(etag));
		if (rc) {
			if (err)
				*err = e2;
			if (resp.body_bytes > 0 && e2.code == LEXFS_E_UNAVAILABLE)
				continue; /* cut mid-stream: resume */
			break;
		}
		if (resp.status == 416) {
			/* A range past the end: the bytes that exist, none. */
			rc = 0;
			break;
		}
		if (!ok2xx(&resp)) {
			rc = s3_status_error(d, &resp, "GET", key, err);
			break;
		}
		break;
	}
	if (!rc && dc.md5 && is_md5_etag(etag) &&
	    !http_headers_get(&resp.headers, "x-amz-server-side-encryption-customer-algorithm") &&
	    !(http_headers_get(&resp.headers, "x-amz-server-side-encryption") &&
	      strcmp(http_headers_get(&resp.headers, "x-amz-server-side-encryption"), "aws:kms") ==
		      0)) {
		uint8_t md[MD5_LEN];
		unsigned mdlen = MD5_LEN;
		char hex[33];
		EVP_DigestFinal_ex(dc.md5, md, &mdlen);
		crypto_hex(md, MD5_LEN, hex);
		if (strcmp(hex, etag) != 0) {
			log_err("%s: %s/%s: downloaded bytes do not match the ETag (MD5 %s, ETag "
				"%s)",
				drv_name(d), d->bucket, key, hex, etag);
			rc = lexfs_fail(err, LEXFS_E_CHECKSUM, EIO,
					"%s: downloaded bytes do not match the object's MD5", key);
		}
	}
	if (dc.md5)
		EVP_MD_CTX_free(dc.md5);
	http_resp_free(&resp);
	return rc;
}

static int s3_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
		   unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	struct s3_call call = { .method = "GET", .key = NULL, .trace = "(list)" };
	struct http_resp resp;
	struct buf q = BUF_INIT(0);
	char *ep = NULL, *ed = NULL, *et = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (max_keys == 0 || max_keys > 1000)
		max_keys = 1000;
	ep = http_uri_encode(prefix ? prefix : "", false);
	ed = delim ? http_uri_encode(delim, false) : NULL;
	et = token ? http_uri_encode(token, false) : NULL;
	http_resp_init(&resp);
	if (!ep || (delim && !ed) || (token && !et)) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = buf_addf(&q, "list-type=2&encoding-type=url&max-keys=%u&prefix=%s", max_keys, ep);
	if (!rc && ed)
		rc = buf_addf(&q, "&delimiter=%s", ed);
	if (!rc && et)
		rc = buf_addf(&q, "&continuation-token=%s", et);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	call.query = buf_cstr(&q);
	call.trace = prefix && *prefix ? prefix : "(list)";
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp)) {
		rc = s3_status_error(d, &resp, "LIST", prefix, err);
		goto out;
	}
	rc = s3_xml_list(resp.body.data, resp.body.len, out);
	if (rc)
		rc = lexfs_fail(err, LEXFS_E_STORAGE, -rc,
				"LIST %s/%s: the server's listing could not be parsed", d->bucket,
				prefix ? prefix : "");
out:
	call_free(&call);
	http_resp_free(&resp);
	buf_free(&q);
	free(ep);
	free(ed);
	free(et);
	return rc;
}

static int s3_remove(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct s3_call call = { .method = "DELETE", .key = key };
	struct http_resp resp;
	int rc;

	http_resp_init(&resp);
	rc = s3_perform(d, &call, &resp, err);
	if (!rc && !ok2xx(&resp) && resp.status != 404)
		rc = s3_status_error(d, &resp, "DELETE", key, err);
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

static int s3_remove_many(lexfs_drv *d, const char *const *keys, size_t n,
			  struct lexfs_err *err)
{
	struct buf body = BUF_INIT(0);
	struct http_resp resp;
	int rc = 0;

	for (size_t start = 0; start < n && !rc; start += 1000) {
		size_t end = start + 1000 < n ? start + 1000 : n;
		struct s3_call call = { .method = "POST", .query = "delete", .trace = "(delete)" };
		struct lexfs_src src;
		char bkey[256], bcode[64];

		buf_reset(&body);
		rc = buf_adds(&body, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
				     "<Delete><Quiet>true</Quiet>");
		for (size_t i = start; i < end && !rc; i++) {
			rc = buf_adds(&body, "<Object><Key>");
			if (!rc)
				rc = s3_xml_escape(&body, keys[i]);
			if (!rc)
				rc = buf_adds(&body, "</Key></Object>");
		}
		if (!rc)
			rc = buf_adds(&body, "</Delete>");
		src = (struct lexfs_src){ .buf = body.data, .len = body.len };
		if (!rc)
			rc = set_content_md5(&call.headers, &src, NULL);
		if (!rc)
			rc = http_headers_set(&call.headers, "Content-Type", "application/xml");
		if (rc) {
			call_free(&call);
			rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
			break;
		}
		call.body = &src;
		http_resp_init(&resp);
		rc = s3_perform(d, &call, &resp, err);
		call_free(&call);
		if (!rc && !ok2xx(&resp))
			rc = s3_status_error(d, &resp, "DeleteObjects", NULL, err);
		if (!rc && s3_xml_delete_errors(resp.body.data, resp.body.len, bkey, sizeof(bkey),
						bcode, sizeof(bcode))) {
			rc = lexfs_http_error(bcode[0] ? 400 : 500, bcode, "", err);
			if (!rc)
				rc = -EIO;
			set_msg(err, "DeleteObjects %s: %s failed: %s", d->bucket, bkey, bcode);
		}
		http_resp_free(&resp);
	}
	buf_free(&body);
	return rc;
}

static int s3_get_url(lexfs_drv *d, const char *key, char **url, struct lexfs_err *err)
{
	*url = obj_url(d, key, NULL);
	return *url ? 0 : lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
}

static int s3_presign(lexfs_drv *d, const char *key, enum lexfs_method method,
		      int64_t expires_s, char **url, struct lexfs_err *err)
{
	struct sigv4_creds cr;
	char *base;
	int rc;

	*url = NULL;
	if (expires_s < 1 || expires_s > SIGV4_PRESIGN_MAX_S)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "presigned URL expiry must be 1 s to 7 days (got %lld)",
				  (long long)expires_s);
	if (d->anonymous)
		return s3_get_url(d, key, url, err);
	base = obj_url(d, key, NULL);
	if (!base)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	pthread_mutex_lock(&d->cred_lock);
	creds_fresh(d);
	cr.access_key = d->creds.access_key;
	cr.secret_key = d->creds.secret_key;
	cr.session_token = d->creds.session_token;
	rc = sigv4_presign(&d->sig, &cr, method == LEXFS_PUT ? "PUT" : "GET", base, expires_s,
			   sigv4_now(&d->sig), url, NULL);
	pthread_mutex_unlock(&d->cred_lock);
	free(base);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, -rc, "cannot presign %s", key);
	return 0;
}

/* ---------- multipart ---------- */

static void mpu_free(struct lexfs_mpu *m)
{
	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	free(m->key);
	free(m->upload_id);
	free(m->etags);
	free(m);
}

static char *upload_query(const char *upload_id, unsigned partno)
{
	char *eid = http_uri_encode(upload_id, false);
	struct buf b = BUF_INIT(0);
	int rc;

	if (!eid)
		return NULL;
	if (partno)
		rc = buf_addf(&b, "partNumber=%u&uploadId=%s", partno, eid);
	else
		rc = buf_addf(&b, "uploadId=%s", eid);
	free(eid);
	if (rc) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

static int s3_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
		       lexfs_mpu **mpu, struct lexfs_err *err)
{
	struct s3_call call = { .method = "POST", .key = key, .query = "uploads" };
	struct http_resp resp;
	struct lexfs_mpu *m;
	char *id = NULL;
	int rc;

	*mpu = NULL;
	m = calloc(1, sizeof(*m));
	if (!m || !(m->key = strdup(key))) {
		free(m);
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	}
	pthread_mutex_init(&m->lock, NULL);
	http_resp_init(&resp);
	rc = put_headers(d, &call.headers, opts, true);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp)) {
		rc = s3_status_error(d, &resp, "CreateMultipartUpload", key, err);
		goto out;
	}
	if (s3_xml_find(resp.body.data, resp.body.len, "UploadId", &id) || !id || !*id) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EIO,
				"CreateMultipartUpload %s: no UploadId in the reply", key);
		goto out;
	}
	m->upload_id = id;
	id = NULL;
	log_trace(LOGC_S3, "%s: CreateMultipartUpload %s", drv_name(d), key);
	*mpu = m;
	m = NULL;
out:
	free(id);
	mpu_free(m);
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

static int mpu_set_etag(struct lexfs_mpu *m, unsigned partno, const char *etag)
{
	int rc = 0;

	pthread_mutex_lock(&m->lock);
	if (partno > m->netags) {
		unsigned n = partno > 2 * m->netags ? partno : 2 * m->netags;
		char(*v)[96] = realloc(m->etags, (size_t)n * sizeof(*v));
		if (!v) {
			rc = -ENOMEM;
			goto out;
		}
		memset(v + m->netags, 0, (size_t)(n - m->netags) * sizeof(*v));
		m->etags = v;
		m->netags = n;
	}
	snprintf(m->etags[partno - 1], sizeof(m->etags[0]), "%s", etag);
out:
	pthread_mutex_unlock(&m->lock);
	return rc;
}

static int s3_mp_part(lexfs_drv *d, lexfs_mpu *m, unsigned partno, const struct lexfs_src *src,
		      struct lexfs_err *err)
{
	struct s3_call call = { .method = "PUT", .key = m->key, .body = src };
	struct http_resp resp;
	char md5[33], etag[96], trace[64];
	char *q;
	int rc;

	if (partno < 1 || partno > S3_MAX_PARTS)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "part number %u out of range",
				  partno);
	if (__atomic_load_n(&d->fault_parts_left, __ATOMIC_RELAXED) >= 0 &&
	    __atomic_sub_fetch(&d->fault_parts_left, 1, __ATOMIC_RELAXED) < 0) {
		__atomic_store_n(&d->fault_parts_left, 0, __ATOMIC_RELAXED);
		return lexfs_fail(err, LEXFS_E_UNAVAILABLE, EIO,
				  "UploadPart %s part %u: injected fault", m->key, partno);
	}
	q = upload_query(m->upload_id, partno);
	if (!q)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	call.query = q;
	snprintf(trace, sizeof(trace), "(part %u)", partno);
	call.trace = trace;
	http_resp_init(&resp);
	rc = set_content_md5(&call.headers, src, md5);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, -rc, "cannot read part %u: %s", partno,
				strerror(-rc));
		goto out;
	}
	if (s3_sse_key_headers(&d->sse, &call.headers)) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp)) {
		rc = s3_status_error(d, &resp, "UploadPart", m->key, err);
		goto out;
	}
	s3_etag_unquote(http_headers_get(&resp.headers, "etag"), etag, sizeof(etag));
	if (!etag[0])
		snprintf(etag, sizeof(etag), "%s", md5);
	if (mpu_set_etag(m, partno, etag))
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
out:
	free(q);
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

/* AbortMultipartUpload of one upload (s3_int.h): NoSuchUpload (404) means someone
 * completed or aborted it meanwhile, which is success. */
int s3_mp_abort_id(struct lexfs_drv *d, const char *key, const char *upload_id,
		   struct lexfs_err *err)
{
	struct s3_call call = { .method = "DELETE", .key = key };
	struct http_resp resp;
	char *q = upload_query(upload_id, 0);
	int rc;

	if (!q)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	call.query = q;
	http_resp_init(&resp);
	rc = s3_perform(d, &call, &resp, err);
	if (!rc && !ok2xx(&resp) && resp.status != 404)
		rc = s3_status_error(d, &resp, "AbortMultipartUpload", key, err);
	log_trace(LOGC_S3, "%s: AbortMultipartUpload %s -> %d", drv_name(d), key, rc);
	free(q);
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

/* Abort the upload on the server (without freeing m). */
static int mp_abort_remote(struct lexfs_drv *d, struct lexfs_mpu *m, struct lexfs_err *err)
{
	__atomic_add_fetch(&d->n_abort, 1, __ATOMIC_RELAXED);
	return s3_mp_abort_id(d, m->key, m->upload_id, err);
}

static int mp_complete_remote(struct lexfs_drv *d, struct lexfs_mpu *m, unsigned nparts,
			      struct lexfs_err *err)
{
	struct s3_call call = { .method = "POST", .key = m->key };
	struct http_resp resp;
	struct buf body = BUF_INIT(0);
	struct lexfs_src src;
	char *q = NULL;
	int rc = 0;

	http_resp_init(&resp);
	if (nparts < 1 || nparts > m->netags) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				"CompleteMultipartUpload %s: %u parts announced, %u sent", m->key,
				nparts, m->netags);
		goto out;
	}
	rc = buf_adds(&body, "<CompleteMultipartUpload>");
	for (unsigned i = 0; i < nparts && !rc; i++) {
		if (!m->etags[i][0]) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
					"CompleteMultipartUpload %s: part %u was never sent",
					m->key, i + 1);
			goto out;
		}
		rc = buf_addf(&body, "<Part><PartNumber>%u</PartNumber><ETag>\"%s\"</ETag></Part>",
			      i + 1, m->etags[i]);
	}
	if (!rc)
		rc = buf_adds(&body, "</CompleteMultipartUpload>");
	q = upload_query(m->upload_id, 0);
	if (rc || !q) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	call.query = q;
	src = (struct lexfs_src){ .buf = body.data, .len = body.len };
	call.body = &src;
	rc = http_headers_set(&call.headers, "Content-Type", "application/xml");
	/* SSE-C: a bucket policy may demand the key on Complete too. */
	if (!rc)
		rc = s3_sse_key_headers(&d->sse, &call.headers);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp) || error_in_200(&resp)) {
		rc = s3_status_error(d, &resp, "CompleteMultipartUpload", m->key, err);
		goto out;
	}
	__atomic_add_fetch(&d->n_complete, 1, __ATOMIC_RELAXED);
	log_trace(LOGC_S3, "%s: CompleteMultipartUpload %s (%u parts)", drv_name(d), m->key,
		  nparts);
out:
	free(q);
	buf_free(&body);
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

static int s3_mp_complete(lexfs_drv *d, lexfs_mpu *m, unsigned nparts,
			  struct lexfs_objinfo *out, struct lexfs_err *err)
{
	int rc = mp_complete_remote(d, m, nparts, err);

	if (rc) {
		mp_abort_remote(d, m, NULL);
	} else if (out) {
		/* The ETag of the Complete reply may be empty (radosgw): ask HEAD. */
		struct lexfs_objinfo oi;
		memset(out, 0, sizeof(*out));
		if (s3_info(d, m->key, &oi, NULL) == 0) {
			out->size = oi.size;
			out->mtime = oi.mtime;
			memcpy(out->etag, oi.etag, sizeof(out->etag));
			objinfo_free(&oi);
		}
	}
	mpu_free(m);
	return rc;
}

static int s3_mp_abort(lexfs_drv *d, lexfs_mpu *m, struct lexfs_err *err)
{
	int rc = mp_abort_remote(d, m, err);
	mpu_free(m);
	return rc;
}

/* ---------- copy ---------- */

static char *copy_source(const struct lexfs_drv *d, const char *src)
{
	char *ek = http_uri_encode(src, true);
	struct buf b = BUF_INIT(0);

	if (!ek)
		return NULL;
	if (buf_addf(&b, "/%s/%s", d->bucket, ek)) {
		free(ek);
		buf_free(&b);
		return NULL;
	}
	free(ek);
	return buf_steal(&b);
}

static int copy_object(struct lexfs_drv *d, const char *src, const char *dst,
		       const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	struct s3_call call = { .method = "PUT", .key = dst };
	struct http_resp resp;
	char *cs = copy_source(d, src);
	int rc;

	http_resp_init(&resp);
	if (!cs) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = http_headers_set(&call.headers, "x-amz-copy-source", cs);
	if (!rc)
		rc = http_headers_set(&call.headers, "x-amz-metadata-directive",
				      opts ? "REPLACE" : "COPY");
	if (!rc)
		rc = put_headers(d, &call.headers, opts, true);
	if (!rc)
		rc = s3_sse_copy_source_headers(&d->sse, &call.headers);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp) || error_in_200(&resp))
		rc = s3_status_error(d, &resp, "CopyObject", dst, err);
out:
	free(cs);
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

struct pcopy {
	struct lexfs_drv *d;
	struct lexfs_mpu *m;
	const char *cs;
	uint64_t size, part;
	unsigned nparts;
	pthread_mutex_t lock; /* guards next, rc, err */
	unsigned next;
	int rc;
	struct lexfs_err err;
};

static int part_copy(struct pcopy *pc, unsigned partno, struct lexfs_err *err)
{
	struct lexfs_drv *d = pc->d;
	struct s3_call call = { .method = "PUT", .key = pc->m->key };
	struct http_resp resp;
	uint64_t a = (uint64_t)(partno - 1) * pc->part;
	uint64_t b = a + pc->part > pc->size ? pc->size - 1 : a + pc->part - 1;
	char range[80], trace[64];
	char *q = upload_query(pc->m->upload_id, partno), *etq = NULL;
	char etag[96];
	int rc;

	http_resp_init(&resp);
	if (!q) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	call.query = q;
	snprintf(trace, sizeof(trace), "(copy part %u)", partno);
	call.trace = trace;
	snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, a, b);
	rc = http_headers_set(&call.headers, "x-amz-copy-source", pc->cs);
	/* An empty source has no byte range: the part is the whole (empty) object. */
	if (!rc && pc->size > 0)
		rc = http_headers_set(&call.headers, "x-amz-copy-source-range", range);
	if (!rc)
		rc = s3_sse_copy_source_headers(&d->sse, &call.headers);
	if (!rc)
		rc = s3_sse_key_headers(&d->sse, &call.headers);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (!ok2xx(&resp) || error_in_200(&resp)) {
		rc = s3_status_error(d, &resp, "UploadPartCopy", pc->m->key, err);
		goto out;
	}
	if (s3_xml_find(resp.body.data, resp.body.len, "ETag", &etq) || !etq) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EIO, "UploadPartCopy %s: no ETag in reply",
				pc->m->key);
		goto out;
	}
	s3_etag_unquote(etq, etag, sizeof(etag));
	__atomic_add_fetch(&d->n_part_copy, 1, __ATOMIC_RELAXED);
	log_trace(LOGC_S3, "%s: UploadPartCopy %s part %u bytes %" PRIu64 "-%" PRIu64,
		  drv_name(d), pc->m->key, partno, a, b);
	if (mpu_set_etag(pc->m, partno, etag))
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
out:
	free(etq);
	free(q);
	call_free(&call);
	http_resp_free(&resp);
	return rc;
}

static void *pcopy_worker(void *arg)
{
	struct pcopy *pc = arg;

	for (;;) {
		struct lexfs_err e;
		unsigned p;
		int rc;

		pthread_mutex_lock(&pc->lock);
		p = pc->rc ? 0 : ++pc->next;
		pthread_mutex_unlock(&pc->lock);
		if (p == 0 || p > pc->nparts)
			break;
		lexfs_err_clear(&e);
		rc = part_copy(pc, p, &e);
		if (rc) {
			pthread_mutex_lock(&pc->lock);
			if (!pc->rc) {
				pc->rc = rc;
				pc->err = e;
			}
			pthread_mutex_unlock(&pc->lock);
			break;
		}
	}
	return NULL;
}

/* Multipart copy: Create, UploadPartCopy in parallel, Complete (abort on failure). */
static int multipart_copy(struct lexfs_drv *d, const char *src, const char *dst,
			  const struct lexfs_objinfo *si, const struct lexfs_put_opts *opts,
			  struct lexfs_err *err)
{
	struct lexfs_put_opts keep = { 0 };
	struct pcopy pc = { .d = d, .size = si->size };
	pthread_t th[32];
	unsigned nth, started = 0;
	int rc;

	if (!opts) {
		/* UploadPartCopy carries no metadata: Create gets the source's. */
		keep.content_type = si->content_type[0] ? si->content_type : NULL;
		keep.meta = &si->meta;
		opts = &keep;
	}
	pc.part = d->copy_part_size;
	if (pc.part < S3_MIN_PART)
		pc.part = S3_MIN_PART;
	while ((si->size + pc.part - 1) / pc.part > S3_MAX_PARTS)
		pc.part *= 2;
	if (pc.part > S3_MAX_PART)
		return lexfs_fail(err, LEXFS_E_QUOTA, EFBIG, "%s is too large to copy", src);
	pc.nparts = (unsigned)((si->size + pc.part - 1) / pc.part);
	if (pc.nparts == 0)
		pc.nparts = 1;
	pc.cs = copy_source(d, src);
	if (!pc.cs)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	rc = s3_mp_begin(d, dst, opts, &pc.m, err);
	if (rc) {
		free((char *)pc.cs);
		return rc;
	}
	pthread_mutex_init(&pc.lock, NULL);
	nth = d->copy_concurrency < pc.nparts ? d->copy_concurrency : pc.nparts;
	if (nth > 32)
		nth = 32;
	for (unsigned i = 0; i < nth; i++) {
		if (pthread_create(&th[i], NULL, pcopy_worker, &pc))
			break;
		started++;
	}
	if (started == 0)
		pcopy_worker(&pc);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&pc.lock);
	free((char *)pc.cs);
	log_trace(LOGC_S3, "%s: multipart copy %s -> %s: %u parts of %" PRIu64 " bytes, rc %d",
		  drv_name(d), src, dst, pc.nparts, pc.part, pc.rc);
	if (pc.rc) {
		if (err)
			*err = pc.err;
		s3_mp_abort(d, pc.m, NULL);
		return pc.rc;
	}
	return s3_mp_complete(d, pc.m, pc.nparts, NULL, err);
}

static int copy_impl(struct lexfs_drv *d, const char *src, const char *dst,
		     const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	struct lexfs_objinfo si = {0};
	bool have_si = false;
	struct lexfs_err e;
	int rc;

	/* The size chooses CopyObject or UploadPartCopy: a HEAD unless the caller
	 * knows it (chmod and rename of a file it has just looked up). */
	if (!opts || !opts->have_src_size || opts->src_size > d->copy_threshold) {
		rc = s3_info(d, src, &si, err);
		if (rc)
			return rc;
		have_si = true;
		if (si.size > d->copy_threshold) {
			rc = multipart_copy(d, src, dst, &si, opts, err);
			goto out;
		}
	}
	lexfs_err_clear(&e);
	rc = copy_object(d, src, dst, opts, &e);
	if (rc == -ENOTSUP && strcmp(e.provider_code, "NotImplemented") == 0) {
		/* Ceph's gateway (pacific) cannot CopyObject an encrypted object (SSE-C,
		 * SSE-KMS) but copies its parts: UploadPartCopy keeps rename and chmod
		 * server-side there. */
		log_debug("%s: CopyObject %s -> %s not implemented by the server: copying it "
			  "as one part",
			  drv_name(d), src, dst);
		rc = have_si ? 0 : s3_info(d, src, &si, err);
		if (rc == 0)
			rc = multipart_copy(d, src, dst, &si, opts, err);
	} else if (rc && err) {
		*err = e;
	}
out:
	objinfo_free(&si);
	return rc;
}

static int s3_copy(lexfs_drv *d, const char *src, const char *dst,
		   const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	return copy_impl(d, src, dst, opts, err);
}

static int s3_set_meta(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
		       struct lexfs_err *err)
{
	struct lexfs_put_opts none = { 0 };
	return copy_impl(d, key, key, opts ? opts : &none, err);
}

/* ---------- health, control ---------- */

static int s3_health_check(lexfs_drv *d, int timeout_ms, struct lexfs_err *err)
{
	struct lexfs_list_page page;
	struct lexfs_err e;
	int rc;

	lexfs_err_clear(&e);
	rc = s3_list(d, "", "/", NULL, 1, &page, &e);
	if (!rc) {
		list_page_free(&page);
		return 0;
	}
	if (err) {
		*err = e;
		if (!strcmp(e.provider_code, "SignatureDoesNotMatch"))
			snprintf(err->message, sizeof(err->message),
				 "%s: bucket %s at %s: the secret access key (from %s) is wrong "
				 "(SignatureDoesNotMatch)",
				 drv_name(d), d->bucket, d->endpoint, d->creds.source);
		else if (!strcmp(e.provider_code, "InvalidAccessKeyId"))
			snprintf(err->message, sizeof(err->message),
				 "%s: bucket %s at %s: the access key id (from %s) is unknown to "
				 "the server (InvalidAccessKeyId)",
				 drv_name(d), d->bucket, d->endpoint, d->creds.source);
		else if (!strcmp(e.provider_code, "NoSuchBucket"))
			snprintf(err->message, sizeof(err->message),
				 "%s: bucket %s does not exist at %s (NoSuchBucket)", drv_name(d),
				 d->bucket, d->endpoint);
		else if (rc == -EACCES)
			set_msg(err, "%s: access to bucket %s at %s denied (credentials from %s): %.120s",
				 drv_name(d), d->bucket, d->endpoint, d->creds.source, e.message);
	}
	return rc;
}

static int s3_server_time(lexfs_drv *d, int64_t *server, int64_t *local, struct lexfs_err *err)
{
	return http_last_date(d->http, server, local);
}

static int s3_control(lexfs_drv *d, const char *name, const char *value,
		      struct lexfs_err *err)
{
	if (strcmp(name, "stats") == 0) {
		log_notice("%s: part copies %" PRIu64 ", completes %" PRIu64 ", aborts %" PRIu64,
			   drv_name(d), __atomic_load_n(&d->n_part_copy, __ATOMIC_RELAXED),
			   __atomic_load_n(&d->n_complete, __ATOMIC_RELAXED),
			   __atomic_load_n(&d->n_abort, __ATOMIC_RELAXED));
		return 0;
	}
	if (strcmp(name, "fault") == 0) {
		/* "fail_part_after=N": N more parts succeed, then every part fails;
		 * "off" ends it. For tests of the abort paths. */
		const char *p = strstr(value ? value : "", "fail_part_after=");
		if (value && strcmp(value, "off") == 0) {
			__atomic_store_n(&d->fault_parts_left, -1, __ATOMIC_RELAXED);
			return 0;
		}
		if (p) {
			char *end;
			long long n;
			errno = 0;
			n = strtoll(p + 16, &end, 10);
			if (!errno && end != p + 16 && n >= 0) {
				__atomic_store_n(&d->fault_parts_left, (int64_t)n, __ATOMIC_RELAXED);
				return 0;
			}
		}
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "%s: fault takes fail_part_after=N or off", drv_name(d));
	}
	return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP, "%s: unknown control %s",
			  drv_name(d), name);
}

/* ---------- open / close ---------- */

static void s3_close(lexfs_drv *d)
{
	if (!d)
		return;
	http_client_destroy(d->http);
	if (d->sig_ready)
		sigv4_destroy(&d->sig);
	s3_creds_free(&d->creds);
	pthread_mutex_destroy(&d->cred_lock);
	free(d->bucket);
	free(d->endpoint);
	free(d->host_vhost);
	s3_sse_free(&d->sse);
	free(d);
}

static bool dns_bucket(const char *b)
{
	size_t n = strlen(b);
	if (n < 3 || n > 63)
		return false;
	for (const char *p = b; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-'))
			return false;
	return true;
}

/* Settings value: the first of several names that is set. */
static const char *setting(const struct settings *s, const char *a, const char *b)
{
	const char *v = settings_get(s, a);
	if (!v && b)
		v = settings_get(s, b);
	return v;
}

static int open_common(const struct lexfs_driver_conf *conf, bool r2, lexfs_drv **out,
		       struct lexfs_err *err)
{
	const struct settings *s = conf->settings;
	const char *name = r2 ? "r2" : "s3";
	struct lexfs_drv *d;
	struct http_conf hc = { 0 };
	char ebuf[512] = "";
	char *profile_region = NULL;
	const char *v, *region, *endpoint, *account;
	bool path_style_set = false, b;
	uint64_t u;
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	pthread_mutex_init(&d->cred_lock, NULL);
	d->r2 = r2;
	d->fault_parts_left = -1;

	v = settings_get(s, "bucket");
	if (!v || !*v) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				"%s: no bucket given (use %s://BUCKET or storage.%s.bucket)", name,
				r2 ? "r2" : "s3", name);
		goto fail;
	}
	d->bucket = strdup(v);

	/* Region: setting, environment, profile, default. */
	region = settings_get(s, "region");
	if (!region || !*region)
		region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (r2 && (!region || !*region || !settings_get(s, "region")))
		region = settings_get(s, "region") ? settings_get(s, "region") : "auto";
	if (!region || !*region) {
		profile_region = s3_profile_region(s);
		region = profile_region;
	}
	if (!region || !*region)
		region = "us-east-1";

	/* Endpoint. */
	endpoint = settings_get(s, "endpoint");
	account = settings_get(s, "account_id");
	if (!endpoint || !*endpoint)
		endpoint = r2 ? NULL : getenv("AWS_ENDPOINT_URL_S3");
	if (!endpoint || !*endpoint)
		endpoint = r2 ? NULL : getenv("AWS_ENDPOINT_URL");
	if (endpoint && *endpoint) {
		size_t n = strlen(endpoint);
		while (n > 0 && endpoint[n - 1] == '/')
			n--;
		if (strncmp(endpoint, "http://", 7) && strncmp(endpoint, "https://", 8)) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
					"%s: endpoint '%s' (%s) must start with http:// or https://",
					name, endpoint,
					settings_origin(s, "endpoint") ? settings_origin(s, "endpoint")
								       : "environment");
			goto fail;
		}
		d->endpoint = strndup(endpoint, n);
		d->path_style = true; /* custom endpoints: path style unless told */
	} else if (r2) {
		char ep[256];
		if (!account || !*account) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
					"r2: set storage.r2.account_id (or an explicit endpoint)");
			goto fail;
		}
		snprintf(ep, sizeof(ep), "https://%s.r2.cloudflarestorage.com", account);
		d->endpoint = strdup(ep);
		d->path_style = true;
	} else {
		char ep[256];
		snprintf(ep, sizeof(ep), "https://s3.%s.amazonaws.com", region);
		d->endpoint = strdup(ep);
		d->path_style = !dns_bucket(d->bucket);
	}
	if (!d->endpoint || !d->bucket) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto fail;
	}
	if (setting(s, "path_style", "s3_path_style")) {
		rc = settings_get_bool(s, settings_get(s, "path_style") ? "path_style" :
									   "s3_path_style",
				       d->path_style, &b, ebuf, sizeof(ebuf));
		if (rc)
			goto bad_setting;
		d->path_style = b;
		path_style_set = true;
	}
	if (!d->path_style) {
		const char *sep = strstr(d->endpoint, "://");
		char vh[512];
		if (!dns_bucket(d->bucket) && path_style_set)
			log_warn("%s: bucket '%s' is not a DNS name; virtual-host style may fail",
				 name, d->bucket);
		snprintf(vh, sizeof(vh), "%.*s://%s.%s", (int)(sep - d->endpoint), d->endpoint,
			 d->bucket, sep + 3);
		d->host_vhost = strdup(vh);
		if (!d->host_vhost) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
			goto fail;
		}
	}

	rc = settings_get_bool(s, "anonymous", false, &d->anonymous, ebuf, sizeof(ebuf));
	if (!rc)
		rc = settings_get_bool(s, "sign_payload", false, &d->sign_payload, ebuf,
				       sizeof(ebuf));
	if (!rc)
		rc = settings_get_bool(s, "verify_md5", true, &d->verify_md5, ebuf, sizeof(ebuf));
	/* Ceph's gateway (and the services built on it) turns '_' in header names
	 * into '-', so "mtime_ns" would come back as "mtime-ns" and collide. lexfs
	 * names never contain '.', which every server keeps: send '_' as '.'. */
	if (!rc)
		rc = settings_get_bool(s, "meta_underscore_as_dot", true, &d->meta_dot, ebuf,
				       sizeof(ebuf));
	if (!rc)
		rc = settings_get_size(s, "copy_threshold", S3_MAX_PART, &d->copy_threshold, ebuf,
				       sizeof(ebuf));
	if (!rc)
		rc = settings_get_size(s, "copy_part_size", 128 * MiB, &d->copy_part_size, ebuf,
				       sizeof(ebuf));
	if (!rc) {
		rc = settings_get_u64(s, "copy_concurrency", 8, &u, ebuf, sizeof(ebuf));
		d->copy_concurrency = u < 1 ? 1 : u > 32 ? 32 : (unsigned)u;
	}
	if (rc)
		goto bad_setting;
	if (d->copy_threshold > S3_MAX_PART)
		d->copy_threshold = S3_MAX_PART;

	rc = s3_sse_open(&d->sse, s, name, d->endpoint, err);
	if (rc)
		goto fail;

	/* Credentials (not needed for anonymous access); settings_get marks the
	 * keys used either way. */
	if (!d->anonymous) {
		rc = s3_creds_resolve(s, &d->creds, ebuf, sizeof(ebuf));
		if (rc) {
			rc = lexfs_fail(err, LEXFS_E_PERMISSION, rc == -ENOMEM ? ENOMEM : EACCES,
					"%s: %s", name, ebuf);
			goto fail;
		}
	} else {
		settings_get(s, "access_key_id");
		settings_get(s, "secret_access_key");
		settings_get(s, "session_token");
		settings_get(s, "profile");
		settings_get(s, "imds");
		settings_get(s, "sts_endpoint");
		snprintf(d->creds.source, sizeof(d->creds.source), "anonymous");
	}
	settings_get(s, "account_id");

	rc = sigv4_init(&d->sig, region, "s3");
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "%s: bad region '%s'", name, region);
		goto fail;
	}
	d->sig_ready = true;

	hc.timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 30000;
	hc.max_retries = conf->max_retries;
	hc.ca_file = settings_get(s, "ca_file");
	if (!hc.ca_file)
		hc.ca_file = getenv("AWS_CA_BUNDLE");
	rc = settings_get_bool(s, "insecure", false, &b, ebuf, sizeof(ebuf));
	if (rc)
		goto bad_setting;
	hc.insecure = b;
	hc.trace_comp = LOGC_S3;
	hc.pool_size = 32;
	rc = http_client_create(&hc, &d->http);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, -rc, "%s: cannot start the HTTP client", name);
		goto fail;
	}
	log_info("%s: bucket %s at %s (%s style, region %s, credentials from %s, encryption %s)",
		 name, d->bucket, d->endpoint, d->path_style ? "path" : "virtual-host", region,
		 d->creds.source, s3_sse_name(&d->sse));
	free(profile_region);
	*out = d;
	return 0;

bad_setting:
	rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "%s: %s", name, ebuf);
fail:
	free(profile_region);
	s3_close(d);
	return rc;
}

static int s3_open(const struct lexfs_driver_conf *conf, lexfs_drv **drv, struct lexfs_err *err)
{
	return open_common(conf, false, drv, err);
}

static int r2_open(const struct lexfs_driver_conf *conf, lexfs_drv **drv, struct lexfs_err *err)
{
	return open_common(conf, true, drv, err);
}

#define S3_CAPS                                                                                    \
	(LEXFS_CAP_SERVER_COPY | LEXFS_CAP_MULTIPART | LEXFS_CAP_PARALLEL_PARTS |                  \
	 LEXFS_CAP_RANGE_READ | LEXFS_CAP_SET_META | LEXFS_CAP_PRESIGN | LEXFS_CAP_OWN_RETRY)

const struct lexfs_driver lexfs_driver_s3 = {
	.name = "s3",
	.abi = LEXFS_DRIVER_ABI,
	.caps = S3_CAPS,
	.min_part_size = S3_MIN_PART,
	.max_part_size = S3_MAX_PART,
	.max_parts = S3_MAX_PARTS,
	.max_object_size = S3_MAX_OBJECT,
	.open = s3_open,
	.close = s3_close,
	.health_check = s3_health_check,
	.upload = s3_upload,
	.download = s3_download,
	.info = s3_info,
	.list = s3_list,
	.remove = s3_remove,
	.get_url = s3_get_url,
	.exists = s3_exists,
	.copy = s3_copy,
	.move = NULL,
	.set_meta = s3_set_meta,
	.remove_many = s3_remove_many,
	.mp_begin = s3_mp_begin,
	.mp_part = s3_mp_part,
	.mp_complete = s3_mp_complete,
	.mp_abort = s3_mp_abort,
	.presign = s3_presign,
	.control = s3_control,
	.server_time = s3_server_time,
	.mp_list = s3_mp_list,
	.mp_abort_id = s3_mp_abort_id,
};

const struct lexfs_driver lexfs_driver_r2 = {
	.name = "r2",
	.abi = LEXFS_DRIVER_ABI,
	.caps = S3_CAPS | LEXFS_CAP_EQUAL_PARTS,
	.min_part_size = S3_MIN_PART,
	.max_part_size = S3_MAX_PART,
	.max_parts = S3_MAX_PARTS,
	.max_object_size = S3_MAX_OBJECT,
	.open = r2_open,
	.close = s3_close,
	.health_check = s3_health_check,
	.upload = s3_upload,
	.download = s3_download,
	.info = s3_info,
	.list = s3_list,
	.remove = s3_remove,
	.get_url = s3_get_url,
	.exists = s3_exists,
	.copy = s3_copy,
	.move = NULL,
	.set_meta = s3_set_meta,
	.remove_many = s3_remove_many,
	.mp_begin = s3_mp_begin,
	.mp_part = s3_mp_part,
	.mp_complete = s3_mp_complete,
	.mp_abort = s3_mp_abort,
	.presign = s3_presign,
	.control = s3_control,
	.server_time = s3_server_time,
	.mp_list = s3_mp_list,
	.mp_abort_id = s3_mp_abort_id,
};
