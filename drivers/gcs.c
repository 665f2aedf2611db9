/* gcs.c - Google Cloud Storage driver (JSON API, jansson, src/http.c).
 *
 * Settings (group storage.gcs): bucket (required), credentials_file, endpoint
 * (default: STORAGE_EMULATOR_HOST, else https://storage.googleapis.com),
 * kms_key_name (CMEK for new objects), project, anonymous.
 *
 * Requests:
 *   health    GET    /storage/v1/b/B?fields=name (anonymous: GET /storage/v1/b/B/o?maxResults=1)
 *   upload    POST   /upload/storage/v1/b/B/o?uploadType=multipart (small)
 *             POST   ...?uploadType=resumable, then PUT chunks (large)
 *   download  GET    /storage/v1/b/B/o/K?alt=media  (+ Range); a full read is
 *             checked against x-goog-hash (crc32c or md5): mismatch -> EIO
 *   info      GET    /storage/v1/b/B/o/K
 *   list      GET    /storage/v1/b/B/o?prefix&delimiter&pageToken&maxResults&fields
 *   remove    DELETE /storage/v1/b/B/o/K
 *   copy      POST   /storage/v1/b/B/o/S/rewriteTo/b/B/o/D, looping on rewriteToken
 *   move      info(S) -> rewrite with ifSourceGenerationMatch=G -> DELETE S with
 *             ifGenerationMatch=G, so a concurrent writer's new S is not removed
 *   set_meta  PATCH  /storage/v1/b/B/o/K?ifMetagenerationMatch=M
 *   presign   V4 signed URL on the endpoint's host (src/gcs_sign.c)
 *
 * Retries are the HTTP layer's (429, 5xx, connection errors, with capped jittered
 * back-off) plus 408; a 412 is never re-sent as it was (set_meta reads the object
 * again first). Upload chunks are resumed instead (gcs_upload.c).
 *
 * Uploads and resumable sessions live in gcs_upload.c; shared pieces in gcs_int.h.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/evp.h>

#include "drivers/builtin.h"
#include "drivers/driver.h"
#include "drivers/gcs_int.h"
#include "src/buf.h"
#include "src/crypto.h"
#include "src/gcs_auth.h"
#include "src/gcs_sign.h"
#include "src/http.h"
#include "src/log.h"

#define GCS_MAX_EXPIRES 604800
#define GCS_LIST_FIELDS "nextPageToken,prefixes,items(name,size,updated,etag,contentType,metadata)"
#define GCS_REWRITE_MAX_CALLS 100000

/* ---------- small helpers ---------- */

char *gcs_enc(const char *s)
{
	return http_uri_encode(s, false);
}

/* URL of an object (or of the bucket's objects when key is NULL) under prefix
 * "/storage/v1" or "/upload/storage/v1"; caller frees. */
char *gcs_obj_url(const struct lexfs_drv *d, const char *api, const char *key, const char *query)
{
	struct buf b = BUF_INIT(0);
	char *k = NULL;
	int ret;

	if (key) {
		k = gcs_enc(key);
		if (!k)
			return NULL;
	}
	ret = buf_addf(&b, "%s%s/b/%s/o%s%s%s%s", d->base, api, d->bucket_enc, k ? "/" : "",
		       k ? k : "", query ? "?" : "", query ? query : "");
	free(k);
	if (ret) {
		buf_free(&b);
		return NULL;
	}
	return buf_steal(&b);
}

/* Statuses Google asks clients to retry beyond the HTTP layer's 429 and 5xx: 408
 * Request Timeout. 412 is not among them: a failed precondition is an answer (the
 * callers that set one read the object again and decide). */
static bool gcs_retryable_reply(const struct http_resp *resp)
{
	return resp->status == 408;
}

/* Perform with the bearer token; one more try with a fresh token after a 401. */
int gcs_perform(struct lexfs_drv *d, struct http_req *req, struct http_resp *resp,
		struct lexfs_err *err)
{
	for (int attempt = 0;; attempt++) {
		char *auth = NULL;
		int ret = gcs_auth_header(d->auth, &auth, err);

		if (ret)
			return ret;
		if (auth) {
			ret = http_headers_set(&req->headers, "Authorization", auth);
			free(auth);
			if (ret)
				return ret;
		}
		ret = http_perform(d->http, req, resp, gcs_retryable_reply, err);
		if (ret)
			return ret;
		if (resp->status == 401 && attempt == 0 &&
		    gcs_auth_kind(d->auth) != GCS_AUTH_ANONYMOUS) {
			gcs_auth_invalidate(d->auth);
			http_resp_free(resp);
			http_resp_init(resp);
			continue;
		}
		return 0;
	}
}

/* Map a non-2xx response: the JSON error's first reason (or XML <Code>) and message
 * go through lexfs_http_error. Returns -errno. */
int gcs_error(const struct http_resp *resp, const char *what, const char *key,
	      struct lexfs_err *err)
{
	char reason[64] = "", msg[200] = "";
	json_t *j = NULL, *e;
	const char *s;
	int ret;

	if (resp->body.len)
		j = json_loadb(resp->body.data, resp->body.len, 0, NULL);
	e = json_object_get(j, "error");
	if (json_is_object(e)) {
		s = json_string_value(
		    json_object_get(json_array_get(json_object_get(e, "errors"), 0), "reason"));
		if (s)
			snprintf(reason, sizeof(reason), "%s", s);
		s = json_string_value(json_object_get(e, "message"));
		if (s)
			snprintf(msg, sizeof(msg), "%s", s);
	} else if (resp->body.len && resp->body.data) {
		const char *c = strstr(resp->body.data, "<Code>");
		const char *ce = c ? strstr(c, "</Code>") : NULL;

		if (c && ce && ce - c - 6 < (long)sizeof(reason))
			snprintf(reason, sizeof(reason), "%.*s", (int)(ce - c - 6), c + 6);
	}
	json_decref(j);
	if (resp->status >= 200 && resp->status < 300)
		return lexfs_fail(err, LEXFS_E_STORAGE, EIO, "gcs: %s %.100s: unexpected reply",
				  what, key ? key : "");
	ret = lexfs_http_error(resp->status, reason, msg, err);
	if (!ret)
		ret = -EIO;
	if (err)
		snprintf(err->message, sizeof(err->message), "gcs: %s %.100s: HTTP %d %s%s%s", what,
			 key ? key : "", resp->status, reason, *msg ? ": " : "", msg);
	log_debug("gcs: %s %.100s -> HTTP %d %s %s", what, key ? key : "", resp->status, reason,
		  msg);
	return ret;
}

json_t *gcs_resp_json(const struct http_resp *resp)
{
	if (!resp->body.len)
		return NULL;
	return json_loadb(resp->body.data, resp->body.len, 0, NULL);
}

uint64_t gcs_json_u64(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	const char *s = json_string_value(v);

	if (json_is_integer(v))
		return (uint64_t)json_integer_value(v);
	return s ? strtoull(s, NULL, 10) : 0;
}

/* Object resource -> objinfo (key not set). 0 or -ENOMEM. */
int gcs_fill_info(json_t *r, struct lexfs_objinfo *out)
{
	const char *s, *name;
	json_t *meta, *v;
	int64_t t;

	out->size = gcs_json_u64(r, "size");
	s = json_string_value(json_object_get(r, "updated"));
	t = s ? http_parse_iso8601(s) : -1;
	out->mtime = t > 0 ? t : 0;
	s = json_string_value(json_object_get(r, "etag"));
	snprintf(out->etag, sizeof(out->etag), "%s", s ? s : "");
	s = json_string_value(json_object_get(r, "contentType"));
	snprintf(out->content_type, sizeof(out->content_type), "%s", s ? s : "");
	meta = json_object_get(r, "metadata");
	json_object_foreach (meta, name, v) {
		s = json_string_value(v);
		if (s && meta_set(&out->meta, name, s))
			return -ENOMEM;
	}
	out->has_meta = true;
	return 0;
}

/* {"name":..., "contentType":..., "metadata":{...}} as text; caller frees. */
char *gcs_resource_json(const char *key, const struct lexfs_put_opts *opts, bool with_meta)
{
	json_t *o = json_object(), *m;
	char *s = NULL;

	if (!o)
		return NULL;
	if (key && json_object_set_new(o, "name", json_string(key)))
		goto out;
	if (opts && opts->content_type &&
	    json_object_set_new(o, "contentType", json_string(opts->content_type)))
		goto out;
	if (with_meta) {
		m = json_object();
		if (!m || json_object_set_new(o, "metadata", m))
			goto out;
		for (size_t i = 0; opts && opts->meta && i < opts->meta->n; i++)
			if (json_object_set_new(m, opts->meta->kv[i].name,
						json_string(opts->meta->kv[i].value)))
				goto out;
	}
	s = json_dumps(o, JSON_COMPACT);
out:
	json_decref(o);
	return s;
}

/* "&kmsKeyName=..." for uploads when CMEK is configured (into out, may be ""). */
int gcs_kms_query(const struct lexfs_drv *d, const char *param, struct buf *out)
{
	char *k;
	int ret;

	if (!d->kms)
		return 0;
	k = gcs_enc(d->kms);
	if (!k)
		return -ENOMEM;
	ret = buf_addf(out, "&%s=%s", param, k);
	free(k);
	return ret;
}

void gcs_sleep_backoff(int attempt)
{
	unsigned r = 0;
	long cap = 100L << (attempt < 6 ? attempt : 6);
	struct timespec ts;

	if (cap > 5000)
		cap = 5000;
	crypto_random(&r, sizeof(r));
	cap = cap / 2 + (long)(r % (unsigned)(cap / 2 + 1));
	ts.tv_sec = cap / 1000;
	ts.tv_nsec = (cap % 1000) * 1000000L;
	nanosleep(&ts, NULL);
}

/* ---------- CRC32C (Castagnoli), for x-goog-hash ---------- */

static void crc32c_table(uint32_t t[256])
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		t[i] = c;
	}
}

static uint32_t crc32c_update(const uint32_t t[256], uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;

	crc = ~crc;
	while (len--)
		crc = t[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ---------- open / close / health ---------- */

static void gcs_close(lexfs_drv *d)
{
	if (!d)
		return;
	gcs_auth_destroy(d->auth);
	http_client_destroy(d->http);
	free(d->bucket);
	free(d->bucket_enc);
	free(d->base);
	free(d->kms);
	free(d);
}

static int gcs_open(const struct lexfs_driver_conf *conf, lexfs_drv **out, struct lexfs_err *err)
{
	const struct settings *s = conf->settings;
	const char *bucket, *endpoint, *creds, *kms, *emu;
	struct gcs_auth_conf ac = {0};
	struct http_conf hc = {0};
	struct lexfs_drv *d;
	char why[256];
	bool anonymous = false;
	struct buf b = BUF_INIT(0);
	int ret;

	*out = NULL;
	bucket = s ? settings_get(s, "bucket") : NULL;
	endpoint = s ? settings_get(s, "endpoint") : NULL;
	creds = s ? settings_get(s, "credentials_file") : NULL;
	kms = s ? settings_get(s, "kms_key_name") : NULL;
	if (s)
		settings_get(s, "project"); /* only needed to create buckets; accepted */
	if (s && settings_get_bool(s, "anonymous", false, &anonymous, why, sizeof(why)))
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "gcs: %s", why);
	if (!bucket || !*bucket)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "gcs: no bucket: mount gs://BUCKET or set storage.gcs.bucket");
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	emu = getenv("STORAGE_EMULATOR_HOST");
	if (gcs_endpoint_resolve(endpoint, emu, &d->ep)) {
		ret =
		    lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
			       "gcs: endpoint \"%.100s\" (%s) is not [http[s]://]host[:port]",
			       endpoint ? endpoint : emu,
			       endpoint ? settings_origin(s, "endpoint") : "STORAGE_EMULATOR_HOST");
		goto fail;
	}
	ret = -ENOMEM;
	d->bucket = strdup(bucket);
	d->bucket_enc = gcs_enc(bucket);
	d->kms = kms && *kms ? strdup(kms) : NULL;
	if (!d->bucket || !d->bucket_enc || (kms && *kms && !d->kms) ||
	    buf_addf(&b, "%s://%s", d->ep.scheme, d->ep.authority))
		goto fail;
	d->base = buf_steal(&b);
	if (!d->base)
		goto fail;
	d->max_retries = conf->max_retries > 0 ? conf->max_retries : 5;
	hc.timeout_ms = conf->timeout_ms;
	hc.max_retries = d->max_retries;
	hc.trace_comp = LOGC_GCS;
	ret = http_client_create(&hc, &d->http);
	if (ret)
		goto fail;
	ac.credentials_file = creds && *creds ? creds : NULL;
	ac.anonymous = anonymous;
	ac.emulator = !(endpoint && *endpoint) && emu && *emu;
	ac.http = d->http;
	ret = gcs_auth_create(&ac, &d->auth, err);
	if (ret)
		goto fail;
	*out = d;
	return 0;
fail:
	buf_free(&b);
	gcs_close(d);
	if (ret == -ENOMEM)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "gcs: out of memory");
	return ret;
}

static int gcs_health(lexfs_drv *d, int timeout_ms, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct buf b = BUF_INIT(0);
	int ret;

	/* Anonymous access to a public bucket (allUsers: objectViewer) may list its
	 * objects but not read the bucket's own metadata. */
	if (gcs_auth_kind(d->auth) == GCS_AUTH_ANONYMOUS)
		ret = buf_addf(&b, "%s/storage/v1/b/%s/o?maxResults=1&fields=nextPageToken",
			       d->base, d->bucket_enc);
	else
		ret = buf_addf(&b, "%s/storage/v1/b/%s?fields=name", d->base, d->bucket_enc);
	if (ret)
		return -ENOMEM;
	http_req_init(&req, "GET", buf_steal(&b));
	http_resp_init(&resp);
	req.trace_key = d->bucket;
	ret = gcs_perform(d, &req, &resp, err);
	if (!ret && resp.status != 200) {
		ret = gcs_error(&resp, "bucket", d->bucket, err);
		if (resp.status == 404 && err)
			snprintf(err->message, sizeof(err->message),
				 "gcs: bucket \"%.100s\" does not exist at %s", d->bucket, d->base);
	}
	http_req_free(&req);
	http_resp_free(&resp);
	return ret;
}

/* ---------- download ---------- */

struct dl_ctx {
	lexfs_sink_fn sink;
	void *arg;
	bool verify;
	EVP_MD_CTX *md5;
	uint32_t crc;
	uint32_t table[256];
};

static int dl_sink(void *arg, const void *data, size_t len)
{
	struct dl_ctx *c = arg;

	if (c->verify) {
		c->crc = crc32c_update(c->table, c->crc, data, len);
		if (EVP_DigestUpdate(c->md5, data, len) != 1)
			return -EIO;
	}
	return c->sink(c->arg, data, len);
}

/* Compare the bytes received with x-goog-hash ("crc32c=B64,md5=B64"). */
static int dl_verify(struct dl_ctx *c, const struct http_resp *resp, const char *key,
		     struct lexfs_err *err)
{
	const char *h = http_headers_get(&resp->headers, "x-goog-hash");
	uint8_t md5[MD5_LEN], crcb[4];
	unsigned int n = MD5_LEN;
	char *got_md5 = NULL, *got_crc = NULL, want[64];
	int ret = 0;

	if (!h)
		return 0;
	if (EVP_DigestFinal_ex(c->md5, md5, &n) != 1)
		return -EIO;
	crcb[0] = (uint8_t)(c->crc >> 24);
	crcb[1] = (uint8_t)(c->crc >> 16);
	crcb[2] = (uint8_t)(c->crc >> 8);
	crcb[3] = (uint8_t)c->crc;
	got_md5 = crypto_base64(md5, sizeof(md5));
	got_crc = crypto_base64(crcb, sizeof(crcb));
	if (!got_md5 || !got_crc) {
		ret = -ENOMEM;
		goto out;
	}
	for (const char *p = h; *p;) {
		size_t len = strcspn(p, ",");
		const char *eq = memchr(p, '=', len);

		while (*p == ' ')
			p++, len--;
		if (eq && (size_t)(eq - p) < len) {
			size_t vl = len - (size_t)(eq + 1 - p);

			snprintf(want, sizeof(want), "%.*s", (int)vl, eq + 1);
			if ((!strncmp(p, "crc32c=", 7) && strcmp(want, got_crc)) ||
			    (!strncmp(p, "md5=", 4) && strcmp(want, got_md5))) {
				ret = lexfs_fail(err, LEXFS_E_CHECKSUM, EIO,
						 "gcs: download of %.100s: %.*s mismatch (got %s)",
						 key, (int)(eq - p), p,
						 !strncmp(p, "md5", 3) ? got_md5 : got_crc);
				log_err("LEXFS-008 %s",
					err ? err->message : "gcs: checksum mismatch");
				goto out;
			}
		}
		p += len;
		if (*p == ',')
			p++;
	}
out:
	free(got_md5);
	free(got_crc);
	return ret;
}

static int gcs_download(lexfs_drv *d, const char *key, uint64_t off, uint64_t len,
			lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	struct dl_ctx c = {.sink = sink, .arg = arg};
	struct http_req req;
	struct http_resp resp;
	char range[64], *url;
	int ret;

	if (len == 0)
		return 0;
	url = gcs_obj_url(d, "/storage/v1", key, "alt=media");
	if (!url)
		return -ENOMEM;
	http_req_init(&req, "GET", url);
	http_resp_init(&resp);
	req.trace_key = key;
	req.sink = dl_sink;
	req.sink_arg = &c;
	c.verify = off == 0 && len == UINT64_MAX;
	if (c.verify) {
		crc32c_table(c.table);
		c.md5 = EVP_MD_CTX_new();
		if (!c.md5 || EVP_DigestInit_ex(c.md5, EVP_md5(), NULL) != 1) {
			ret = -ENOMEM;
			goto out;
		}
	}
	ret = 0;
	if (off > 0 || len != UINT64_MAX) {
		if (len == UINT64_MAX || off + len < off)
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", off);
		else
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off,
				 off + len - 1);
		ret = http_headers_set(&req.headers, "Range", range);
	}
	if (!ret)
		ret = gcs_perform(d, &req, &resp, err);
	if (ret)
		goto out;
	if (resp.status == 416)
		goto out; /* range starts past the end: no bytes */
	if (resp.status != 200 && resp.status != 206) {
		ret = gcs_error(&resp, "download", key, err);
		goto out;
	}
	if (c.verify && resp.status == 200)
		ret = dl_verify(&c, &resp, key, err);
out:
	EVP_MD_CTX_free(c.md5);
	http_req_free(&req);
	http_resp_free(&resp);
	return ret;
}

/* ---------- info / list / remove / url ---------- */

/* objects.get; *res: the resource (caller decrefs). */
static int get_resource(struct lexfs_drv *d, const char *key, json_t **res, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	char *url = gcs_obj_url(d, "/storage/v1", key, NULL);
	int ret;

	*res = NULL;
	if (!url)
		return -ENOMEM;
	http_req_init(&req, "GET", url);
	http_resp_init(&resp);
	req.trace_key = key;
	ret = gcs_perform(d, &req, &resp, err);
	if (!ret && resp.status != 200)
		ret = gcs_error(&resp, "info", key, err);
	if (!ret) {
		*res = gcs_resp_json(&resp);
		if (!*res)
			ret = lexfs_fail(err, LEXFS_E_STORAGE, EIO, "gcs: info %.100s: bad JSON",
					 key);
	}
	http_req_free(&req);
	http_resp_free(&resp);
	return ret;
}

static int gcs_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out, struct lexfs_err *err)
{
	json_t *res;
	int ret = get_resource(d, key, &res, err);

	if (ret)
		return ret;
	ret = gcs_fill_info(res, out);
	json_decref(res);
	return ret;
}

static int item_cmp(const void *a, const void *b)
{
	const struct lexfs_objinfo *x = a, *y = b;

	return strcmp(x->key, y->key);
}

static int gcs_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
		    unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct buf q = BUF_INIT(0);
	json_t *j = NULL, *items, *prefixes, *v;
	char *e;
	size_t i, n = 0;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (max_keys == 0 || max_keys > 1000)
		max_keys = 1000;
	if (buf_addf(&q, "maxResults=%u&fields=", max_keys))
		return -ENOMEM;
	e = gcs_enc(GCS_LIST_FIELDS);
	if (!e || buf_adds(&q, e))
		goto fail_q;
	free(e);
	e = NULL;
	if (prefix && *prefix) {
		e = gcs_enc(prefix);
		if (!e || buf_addf(&q, "&prefix=%s", e))
			goto fail_q;
		free(e);
		e = NULL;
	}
	if (delim && *delim) {
		e = gcs_enc(delim);
		if (!e || buf_addf(&q, "&delimiter=%s", e))
			goto fail_q;
		free(e);
		e = NULL;
	}
	if (token && *token) {
		e = gcs_enc(token);
		if (!e || buf_addf(&q, "&pageToken=%s", e))
			goto fail_q;
		free(e);
		e = NULL;
	}
	http_req_init(&req, "GET", gcs_obj_url(d, "/storage/v1", NULL, buf_cstr(&q)));
	buf_free(&q);
	http_resp_init(&resp);
	if (!req.url)
		goto out;
	req.trace_key = prefix;
	ret = gcs_perform(d, &req, &resp, err);
	if (!ret && resp.status != 200)
		ret = gcs_error(&resp, "list", prefix, err);
	if (ret)
		goto out;
	j = gcs_resp_json(&resp);
	if (!json_is_object(j)) {
		ret = lexfs_fail(err, LEXFS_E_STORAGE, EIO, "gcs: list %.100s: bad JSON",
				 prefix ? prefix : "");
		goto out;
	}
	items = json_object_get(j, "items");
	prefixes = json_object_get(j, "prefixes");
	ret = -ENOMEM;
	out->items =
	    calloc(json_array_size(items) + json_array_size(prefixes) + 1, sizeof(*out->items));
	if (!out->items)
		goto out;
	json_array_foreach (items, i, v) {
		const char *name = json_string_value(json_object_get(v, "name"));

		if (!name)
			continue;
		out->items[n].key = strdup(name);
		n++;
		out->n = n;
		if (!out->items[n - 1].key || gcs_fill_info(v, &out->items[n - 1]))
			goto out;
	}
	json_array_foreach (prefixes, i, v) {
		const char *name = json_string_value(v);

		if (!name)
			continue;
		out->items[n].key = strdup(name);
		out->items[n].is_prefix = true;
		n++;
		out->n = n;
		if (!out->items[n - 1].key)
			goto out;
	}
	qsort(out->items, n, sizeof(*out->items), item_cmp);
	v = json_object_get(j, "nextPageToken");
	if (json_string_value(v) && *json_string_value(v)) {
		out->next_token = strdup(json_string_value(v));
		if (!out->next_token)
			goto out;
	}
	ret = 0;
out:
	if (ret)
		list_page_free(out);
	json_decref(j);
	http_req_free(&req);
	http_resp_free(&resp);
	return ret;
fail_q:
	free(e);
	buf_free(&q);
	return -ENOMEM;
}

/* DELETE with an optional generation precondition (0: none). */
static int delete_obj(struct lexfs_drv *d, const char *key, uint64_t generation,
		      struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	char q[64], *url;
	int ret;

	snprintf(q, sizeof(q), "ifGenerationMatch=%" PRIu64, generation);
	url = gcs_obj_url(d, "/storage/v1", key, generation ? q : NULL);
	if (!url)
		return -ENOMEM;
	http_req_init(&req, "DELETE", url);
	http_resp_init(&resp);
	req.trace_key = key;
	ret = gcs_perform(d, &req, &resp, err);
	if (!ret && resp.status != 204 && resp.status != 200 && resp.status != 404)
		ret = gcs_error(&resp, "delete", key, err);
	http_req_free(&req);
	http_resp_free(&resp);
	return ret;
}

static int gcs_remove(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	return delete_obj(d, key, 0, err);
}

static int gcs_get_url(lexfs_drv *d, const char *key, char **url, struct lexfs_err *err)
{
	struct buf b = BUF_INIT(0);
	char *k = http_uri_encode(key, true);

	*url = NULL;
	if (!k || buf_addf(&b, "%s/%s/%s", d->base, d->bucket_enc, k)) {
		free(k);
		buf_free(&b);
		return -ENOMEM;
	}
	free(k);
	*url = buf_steal(&b);
	return *url ? 0 : -ENOMEM;
}

/* ---------- copy / move / set_meta ---------- */

/* objects.rewrite src -> dst until done. src_generation 0: any. */
static int rewrite(struct lexfs_drv *d, const char *src, const char *dst,
		   const struct lexfs_put_opts *opts, uint64_t src_generation,
		   struct lexfs_err *err)
{
	struct lexfs_src body = {0};
	char *token = NULL, *json = NULL, *s = NULL, *dk = NULL;
	int ret = -ENOMEM;

	if (opts) {
		json = gcs_resource_json(NULL, opts, true);
		if (!json)
			return -ENOMEM;
		body.buf = json;
		body.len = strlen(json);
	}
	s = gcs_enc(src);
	dk = gcs_enc(dst);
	if (!s || !dk)
		goto out;
	for (int calls = 0; calls < GCS_REWRITE_MAX_CALLS; calls++) {
		struct http_req req;
		struct http_resp resp;
		struct buf u = BUF_INIT(0);
		json_t *j;
		const char *t;
		char *te = token ? gcs_enc(token) : NULL;

		ret = -ENOMEM;
		if ((token && !te) ||
		    buf_addf(&u, "%s/storage/v1/b/%s/o/%s/rewriteTo/b/%s/o/%s?x=1", d->base,
			     d->bucket_enc, s, d->bucket_enc, dk) ||
		    (te && buf_addf(&u, "&rewriteToken=%s", te)) ||
		    (src_generation &&
		     buf_addf(&u, "&ifSourceGenerationMatch=%" PRIu64, src_generation)) ||
		    gcs_kms_query(d, "destinationKmsKeyName", &u)) {
			free(te);
			buf_free(&u);
			goto out;
		}
		free(te);
		http_req_init(&req, "POST", buf_steal(&u));
		http_resp_init(&resp);
		req.trace_key = src;
		if (json) {
			req.body = &body;
			ret = http_headers_set(&req.headers, "Content-Type",
					       "application/json; charset=UTF-8");
		} else {
			ret = 0;
		}
		if (!ret)
			ret = gcs_perform(d, &req, &resp, err);
		if (!ret && resp.status != 200)
			ret = gcs_error(&resp, "copy", src, err);
		j = ret ? NULL : gcs_resp_json(&resp);
		http_req_free(&req);
		http_resp_free(&resp);
		if (ret)
			goto out;
		if (json_is_true(json_object_get(j, "done"))) {
			json_decref(j);
			ret = 0;
			goto out;
		}
		t = json_string_value(json_object_get(j, "rewriteToken"));
		free(token);
		token = t ? strdup(t) : NULL;
		json_decref(j);
		if (!token) {
			ret = lexfs_fail(err, LEXFS_E_STORAGE, EIO,
					 "gcs: copy %.100s: rewrite not done and no rewriteToken",
					 src);
			goto out;
		}
	}
	ret =
	    lexfs_fail(err, LEXFS_E_STORAGE, EIO, "gcs: copy %.100s: rewrite never finished", src);
out:
	free(token);
	free(json);
	free(s);
	free(dk);
	return ret;
}

static int gcs_copy(lexfs_drv *d, const char *src, const char *dst,
		    const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	return rewrite(d, src, dst, opts, 0, err);
}

static int gcs_move(lexfs_drv *d, const char *src, const char *dst, struct lexfs_err *err)
{
	struct lexfs_err e;
	json_t *res;
	uint64_t gen;
	int ret;

	ret = get_resource(d, src, &res, err);
	if (ret)
		return ret;
	gen = gcs_json_u64(res, "generation");
	json_decref(res);
	ret = rewrite(d, src, dst, NULL, gen, err);
	if (ret)
		return ret;
	lexfs_err_clear(&e);
	ret = delete_obj(d, src, gen, &e);
	if (ret && e.http_status == 412) {
		/* Someone wrote a new src meanwhile: theirs stays, ours moved. */
		log_notice("gcs: %.100s changed during rename; the new version was kept", src);
		return 0;
	}
	if (ret && err)
		*err = e;
	return ret;
}

static int gcs_set_meta(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
			struct lexfs_err *err)
{
	int ret = 0;

	for (int attempt = 0; attempt < 4; attempt++) {
		struct http_req req;
		struct http_resp resp;
		struct lexfs_src body = {0};
		json_t *res, *patch, *m, *old, *v;
		const char *name;
		char q[64], *json, *url;
		bool changed;

		ret = get_resource(d, key, &res, err);
		if (ret)
			return ret;
		snprintf(q, sizeof(q), "ifMetagenerationMatch=%" PRIu64,
			 gcs_json_u64(res, "metageneration"));
		patch = json_object();
		m = json_object();
		if (!patch || !m) {
			json_decref(m);
			goto nomem;
		}
		if (json_object_set_new(patch, "metadata", m))
			goto nomem; /* set_new dropped m */
		old = json_object_get(res, "metadata");
		json_object_foreach (old, name, v) {
			/* Names not in the new set are removed (null in a patch). */
			if (json_object_set_new(m, name, json_null()))
				goto nomem;
		}
		for (size_t i = 0; opts && opts->meta && i < opts->meta->n; i++)
			if (json_object_set_new(m, opts->meta->kv[i].name,
						json_string(opts->meta->kv[i].value)))
				goto nomem;
		if (opts && opts->content_type &&
		    json_object_set_new(patch, "contentType", json_string(opts->content_type)))
			goto nomem;
		json = json_dumps(patch, JSON_COMPACT);
		json_decref(patch);
		json_decref(res);
		url = gcs_obj_url(d, "/storage/v1", key, q);
		if (!json || !url) {
			free(json);
			free(url);
			return -ENOMEM;
		}
		http_req_init(&req, "PATCH", url);
		http_resp_init(&resp);
		req.trace_key = key;
		body.buf = json;
		body.len = strlen(json);
		req.body = &body;
		ret = http_headers_set(&req.headers, "Content-Type",
				       "application/json; charset=UTF-8");
		if (!ret)
			ret = gcs_perform(d, &req, &resp, err);
		if (!ret && resp.status != 200)
			ret = gcs_error(&resp, "set metadata", key, err);
		changed = resp.status == 412;
		http_req_free(&req);
		http_resp_free(&resp);
		free(json);
		if (!ret || !changed)
			return ret;
		/* Changed under us (metageneration moved on): read it again. */
		continue;
	nomem:
		json_decref(patch);
		json_decref(res);
		return -ENOMEM;
	}
	return ret;
}

/* ---------- presign ---------- */

static int gcs_presign(lexfs_drv *d, const char *key, enum lexfs_method method, int64_t expires_s,
		       char **url, struct lexfs_err *err)
{
	const struct gcs_key *k = gcs_auth_key(d->auth);
	struct gcs_v4_req req = {0};
	struct gcs_v4_out out;
	struct buf path = BUF_INIT(0);
	int ret;

	*url = NULL;
	if (!k) {
		log_warn("gcs: presigned URLs need a service-account key; this mount uses %s "
			 "credentials",
			 gcs_auth_kind_name(gcs_auth_kind(d->auth)));
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				  "gcs: presigned URLs need a service-account key (have %s)",
				  gcs_auth_kind_name(gcs_auth_kind(d->auth)));
	}
	if (expires_s < 1 || expires_s > GCS_MAX_EXPIRES)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "gcs: presigned URL expiry %lld s is outside 1..%d",
				  (long long)expires_s, GCS_MAX_EXPIRES);
	if (buf_addf(&path, "/%s/%s", d->bucket, key))
		return -ENOMEM;
	req.method = method == LEXFS_PUT ? "PUT" : "GET";
	req.ep = &d->ep;
	req.path = path.data;
	req.now = (int64_t)time(NULL);
	req.expires = expires_s;
	ret = gcs_v4_sign(k, &req, &out);
	buf_free(&path);
	if (ret)
		return lexfs_fail(err, LEXFS_E_STORAGE, -ret,
				  "gcs: signing a URL for %.100s failed", key);
	*url = out.url;
	out.url = NULL;
	gcs_v4_out_free(&out);
	return 0;
}

/* The Date of the latest response: the service checks signatures against its
 * clock (doctor's clock check, driver.h). */
static int gcs_server_time(lexfs_drv *d, int64_t *server, int64_t *local, struct lexfs_err *err)
{
	return http_last_date(d->http, server, local);
}

const struct lexfs_driver lexfs_driver_gcs = {
    .name = "gcs",
    .abi = LEXFS_DRIVER_ABI,
    .caps = LEXFS_CAP_SERVER_COPY | LEXFS_CAP_MULTIPART | LEXFS_CAP_RANGE_READ |
	    LEXFS_CAP_SET_META | LEXFS_CAP_PRESIGN | LEXFS_CAP_OWN_RETRY,
    .min_part_size = 8u * 1024 * 1024,
    .max_part_size = 256u * 1024 * 1024,
    .max_parts = 10000,
    .max_object_size = 5ull << 40,
    .open = gcs_open,
    .close = gcs_close,
    .health_check = gcs_health,
    .upload = gcs_upload,
    .download = gcs_download,
    .info = gcs_info,
    .list = gcs_list,
    .remove = gcs_remove,
    .get_url = gcs_get_url,
    .exists = NULL,
    .copy = gcs_copy,
    .move = gcs_move,
    .set_meta = gcs_set_meta,
    .remove_many = NULL,
    .mp_begin = gcs_mp_begin,
    .mp_part = gcs_mp_part,
    .mp_complete = gcs_mp_complete,
    .mp_abort = gcs_mp_abort,
    .presign = gcs_presign,
    .control = NULL,
    .server_time = gcs_server_time,
    .mp_list = NULL,
    .mp_abort_id = NULL,
};
