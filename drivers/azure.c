/* azure.c - the Azure Blob Storage driver (block blobs, REST API AZURE_API_VERSION).
 *
 * Settings (group storage.azure): container (required; az://CONTAINER[/PREFIX]),
 * prefix, account, account_key, sas_token, connection_string, endpoint, anonymous,
 * encryption_scope, encryption_key (customer-provided AES-256 key, base64), ca_file,
 * insecure, single_put_max, block_size, block_parallel. Credentials not in the
 * settings come from the environment (see src/azure_auth.h).
 *
 * Operation        REST call
 *   upload         Put Blob up to single_put_max (default 32 MiB); larger objects go
 *                  up as blocks of block_size (default 8 MiB, grown so 50,000 cover
 *                  the object), block_parallel (default 4) at a time, then Put Block
 *                  List: a failed block is re-sent alone, never the whole object
 *   download       Get Blob, x-ms-range for partial reads (416 past the end -> no bytes)
 *   info           Get Blob Properties (HEAD)
 *   list           List Blobs (prefix, delimiter, marker, maxresults, include=metadata)
 *   remove         Delete Blob (404 is success)
 *   copy / move    Copy Blob (x-ms-copy-source), polling x-ms-copy-status while it is
 *                  "pending"; move = copy + delete (Azure has no rename for blobs)
 *   set_meta       Set Blob Metadata (+ Set Blob Properties for a new content type)
 *   multipart      Put Block per part (block id = base64("<upload id>-<part>"), all of
 *                  one length), Put Block List to commit; abort leaves the uncommitted
 *                  blocks to the service's garbage collection (one week; no API to drop
 *                  them)
 *   presign        service SAS for the blob ("r" for GET, "cw" for PUT); needs the
 *                  account key
 *
 * Retries are the HTTP layer's (LEXFS_CAP_OWN_RETRY): 429/5xx, connection errors
 * and the throttling codes ServerBusy, OperationTimedOut, InternalError.
 * The instance is immutable after open, so every operation is thread-safe; the
 * only shared object is the HTTP client, which locks itself.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "drivers/azure_int.h"
#include "drivers/builtin.h"
#include "drivers/driver.h"
#include "src/azure_auth.h"
#include "src/buf.h"
#include "src/crypto.h"
#include "src/errors.h"
#include "src/http.h"
#include "src/log.h"

#define MIB (1024ull * 1024ull)
#define DEFAULT_SINGLE_PUT_MAX (32 * MIB)
#define DEFAULT_BLOCK_SIZE (8 * MIB)
#define DEFAULT_BLOCK_PARALLEL 4
#define MAX_BLOCK_PARALLEL 64
#define MAX_BLOCKS 50000u
#define MAX_BLOCK_SIZE (4000 * MIB)
#define COPY_POLL_MAX_S 3600
#define LIST_BODY_MAX (32 * MIB)

struct lexfs_drv {
	struct azure_creds cr;
	char *container;
	char *prefix;           /* key prefix inside the container: "" or "dir/" */
	char *encryption_scope; /* NULL: account default */
	char *cpk_key;          /* customer-provided key (base64) or NULL */
	char *cpk_sha256;       /* its base64 SHA-256 */
	char *base;             /* endpoint "/" container */
	struct http_client *http;
	int timeout_ms;
	uint64_t single_put_max; /* larger whole-object uploads go up as blocks */
	uint64_t block_size;     /* block size of those */
	unsigned block_parallel; /* blocks in flight per such upload */
};

struct lexfs_mpu {
	char *key;
	char upload_id[17]; /* 16 hex chars: makes block ids unique per upload */
	char *content_type;
	struct lexfs_meta meta;
	bool has_meta;
};

/* ---- requests ---- */

/* The blob URL of key (NULL key: the container); query without '?' or NULL. The SAS
 * token (SAS mode) is appended. Caller frees. */
static char *az_url(const struct lexfs_drv *d, const char *key, const char *query)
{
	struct buf b = BUF_INIT(0);
	char *full = NULL, *enc = NULL;
	bool q = false;
	int rc;

	rc = buf_adds(&b, d->base);
	if (!rc && key) {
		struct buf k = BUF_INIT(0);

		rc = buf_adds(&k, d->prefix);
		if (!rc)
			rc = buf_adds(&k, key);
		full = rc ? NULL : buf_steal(&k);
		buf_free(&k);
		if (!full)
			rc = -ENOMEM;
		if (!rc) {
			enc = azure_quote(full);
			rc = enc ? buf_addf(&b, "/%s", enc) : -ENOMEM;
		}
	}
	if (!rc && query && *query) {
		rc = buf_addf(&b, "?%s", query);
		q = true;
	}
	if (!rc && d->cr.mode == AZURE_AUTH_SAS && d->cr.sas_token && *d->cr.sas_token)
		rc = buf_addf(&b, "%c%s", q ? '&' : '?', d->cr.sas_token);
	free(full);
	free(enc);
	if (rc) {
		buf_free(&b);
		return NULL;
	}
	buf_cstr(&b);
	return buf_steal(&b);
}

static int az_sign(void *arg, struct http_req *req)
{
	const struct lexfs_drv *d = arg;
	char date[32];
	int rc;

	http_date((int64_t)time(NULL), date);
	rc = http_headers_set(&req->headers, "x-ms-date", date);
	if (rc || d->cr.mode != AZURE_AUTH_SHARED_KEY)
		return rc;
	return azure_sharedkey_sign(d->cr.account, d->cr.key, d->cr.keylen, req->method, req->url,
				    &req->headers, req->body ? req->body->len : 0, NULL);
}

static bool az_retryable_body(const struct http_resp *resp)
{
	const char *c = http_headers_get(&resp->headers, "x-ms-error-code");

	return c && (strcmp(c, "ServerBusy") == 0 || strcmp(c, "OperationTimedOut") == 0 ||
		     strcmp(c, "InternalError") == 0);
}

/* Start a request: URL, x-ms-version and the customer-provided-key headers (which
 * every data and properties request on such a blob must carry). */
static int az_req(const struct lexfs_drv *d, struct http_req *req, const char *method,
		  const char *key, const char *query)
{
	char *url = az_url(d, key, query);
	int rc;

	if (!url)
		return -ENOMEM;
	http_req_init(req, method, url);
	req->sign = az_sign;
	req->sign_arg = (void *)d;
	req->trace_key = key;
	rc = http_headers_set(&req->headers, "x-ms-version", AZURE_API_VERSION);
	if (!rc && key && d->cpk_key) {
		rc = http_headers_set(&req->headers, "x-ms-encryption-key", d->cpk_key);
		if (!rc)
			rc = http_headers_set(&req->headers, "x-ms-encryption-key-sha256",
					      d->cpk_sha256);
		if (!rc)
			rc = http_headers_set(&req->headers, "x-ms-encryption-algorithm",
					      "AES256");
	}
	if (rc)
		http_req_free(req);
	return rc;
}

/* Map a non-2xx response to -errno through the one mapping in errors.c. */
static int az_fail(const struct http_resp *resp, const char *what, const char *key,
		   struct lexfs_err *err)
{
	char code[64] = "", msg[200] = "";
	const char *hc = http_headers_get(&resp->headers, "x-ms-error-code");
	struct lexfs_err tmp;
	int rc;

	azure_parse_error(resp->body.data, resp->body.len, code, sizeof(code), msg, sizeof(msg));
	if (hc && *hc)
		snprintf(code, sizeof(code), "%s", hc);
	rc = lexfs_http_error(resp->status, code, msg, err ? err : &tmp);
	if (rc == -ENOENT)
		log_debug("azure: %s %s: HTTP %d %s", what, key ? key : "", resp->status, code);
	else
		log_info("azure: %s %s: HTTP %d %s%s%s", what, key ? key : "", resp->status, code,
			 *msg ? ": " : "", msg);
	return rc;
}

/* Perform; 0 for a 2xx answer, else -errno (filled err). */
static int az_do(const struct lexfs_drv *d, struct http_req *req, struct http_resp *resp,
		 const char *what, struct lexfs_err *err)
{
	int rc = http_perform(d->http, req, resp, az_retryable_body, err);

	if (rc)
		return rc;
	if (resp->status >= 200 && resp->status < 300)
		return 0;
	return az_fail(resp, what, req->trace_key, err);
}

static int add_meta_headers(struct http_req *req, const struct lexfs_meta *m)
{
	for (size_t i = 0; m && i < m->n; i++) {
		char *enc = azure_meta_encode_name(m->kv[i].name);
		char name[512];
		int rc;

		if (!enc)
			return -ENOMEM;
		snprintf(name, sizeof(name), "x-ms-meta-%s", enc);
		free(enc);
		rc = http_headers_set(&req->headers, name, m->kv[i].value);
		if (rc)
			return rc;
	}
	return 0;
}

/* Headers of a write that creates a blob: content type, metadata, encryption scope,
 * precondition. */
static int add_put_headers(const struct lexfs_drv *d, struct http_req *req,
			   const char *content_type, const struct lexfs_meta *meta,
			   const char *if_match)
{
	int rc = 0;

	if (content_type && *content_type)
		rc = http_headers_set(&req->headers, "x-ms-blob-content-type", content_type);
	if (!rc)
		rc = add_meta_headers(req, meta);
	if (!rc && d->encryption_scope)
		rc = http_headers_set(&req->headers, "x-ms-encryption-scope", d->encryption_scope);
	if (!rc && if_match && *if_match) {
		char q[128];

		snprintf(q, sizeof(q), "\"%s\"", if_match);
		rc = http_headers_set(&req->headers, "If-Match", if_match[0] == '"' ? if_match : q);
	}
	return rc;
}

static void etag_from(const struct http_resp *resp, char *out, size_t outlen)
{
	const char *e = http_headers_get(&resp->headers, "etag");
	size_t n;

	out[0] = '\0';
	if (!e)
		return;
	if (*e == '"')
		e++;
	n = strlen(e);
	if (n && e[n - 1] == '"')
		n--;
	snprintf(out, outlen, "%.*s", (int)n, e);
}

static int64_t mtime_from(const struct http_resp *resp)
{
	const char *v = http_headers_get(&resp->headers, "last-modified");
	int64_t t = v ? http_parse_date(v) : -1;

	return t > 0 ? t : 0;
}

/* ---- open / close / health ---- */

static void az_close(lexfs_drv *d)
{
	if (!d)
		return;
	http_client_destroy(d->http);
	azure_creds_free(&d->cr);
	free(d->container);
	free(d->prefix);
	free(d->encryption_scope);
	if (d->cpk_key)
		memset(d->cpk_key, 0, strlen(d->cpk_key));
	free(d->cpk_key);
	free(d->cpk_sha256);
	free(d->base);
	free(d);
}

static bool valid_container(const char *c)
{
	size_t n = strlen(c);

	if (n < 3 || n > 63 || c[0] == '-' || c[n - 1] == '-')
		return strcmp(c, "$root") == 0 || strcmp(c, "$web") == 0;
	for (size_t i = 0; i < n; i++) {
		if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= '0' && c[i] <= '9') ||
		      c[i] == '-'))
			return false;
		if (c[i] == '-' && c[i + 1] == '-')
			return false;
	}
	return true;
}

static int az_open_cpk(struct lexfs_drv *d, const struct settings *s, struct lexfs_err *err)
{
	const char *v = settings_get(s, "encryption_key");
	uint8_t *raw = NULL, sum[SHA256_LEN];
	size_t rawlen = 0;
	int rc;

	if (!v)
		return 0;
	rc = crypto_base64_decode(v, &raw, &rawlen);
	if (rc || rawlen != 32) {
		free(raw);
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "encryption_key (from %s) must be a base64 AES-256 key "
				  "(32 bytes)",
				  settings_origin(s, "encryption_key"));
	}
	crypto_sha256(raw, rawlen, sum);
	memset(raw, 0, rawlen);
	free(raw);
	d->cpk_key = strdup(v);
	d->cpk_sha256 = crypto_base64(sum, sizeof(sum));
	if (!d->cpk_key || !d->cpk_sha256)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	return 0;
}

static int az_open(const struct lexfs_driver_conf *conf, lexfs_drv **out, struct lexfs_err *err)
{
	const struct settings *s = conf->settings;
	struct http_conf hc = { 0 };
	struct lexfs_drv *d;
	char msg[256];
	const char *v;
	bool insecure = false;
	struct buf b = BUF_INIT(0);
	int rc;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	rc = azure_creds_resolve(s, (const char *(*)(const char *))getenv, &d->cr, msg,
				 sizeof(msg));
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, rc == -ENOMEM ? ENOMEM : EINVAL, "azure: %s",
				msg);
		goto fail;
	}
	if (!d->cr.container || !*d->cr.container) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				"azure: no container: mount az://CONTAINER or set container");
		goto fail;
	}
	if (!valid_container(d->cr.container)) {
		rc = lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
				"azure: container name '%s' (from %s) is not valid: 3-63 "
				"characters a-z 0-9 and single dashes",
				d->cr.container, settings_origin(s, "container"));
		goto fail;
	}
	d->container = strdup(d->cr.container);

	/* prefix: no leading '/', one trailing '/' */
	v = settings_get(s, "prefix");
	while (v && *v == '/')
		v++;
	rc = buf_adds(&b, v ? v : "");
	while (!rc && b.len && b.data[b.len - 1] == '/')
		b.data[--b.len] = '\0';
	if (!rc && b.len)
		rc = buf_adds(&b, "/");
	if (!rc)
		rc = buf_add(&b, "", 0);
	buf_cstr(&b);
	d->prefix = rc ? NULL : buf_steal(&b);
	buf_free(&b);

	v = settings_get(s, "encryption_scope");
	if (v && *v)
		d->encryption_scope = strdup(v);
	if (!d->container || !d->prefix || (v && *v && !d->encryption_scope)) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto fail;
	}
	rc = az_open_cpk(d, s, err);
	if (rc)
		goto fail;
	if (d->cpk_key && strncmp(d->cr.endpoint, "https://", 8) != 0) {
		/* The service refuses a customer-provided key over plain HTTP, and the
		 * key must not cross the network in clear anyway. */
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				"azure: encryption_key (from %s) needs an https:// endpoint",
				settings_origin(s, "encryption_key"));
		goto fail;
	}
	rc = settings_get_bool(s, "insecure", false, &insecure, msg, sizeof(msg));
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "azure: %s", msg);
		goto fail;
	}
	{
		struct buf u = BUF_INIT(0);

		rc = buf_addf(&u, "%s/%s", d->cr.endpoint, d->container);
		buf_cstr(&u);
		d->base = rc ? NULL : buf_steal(&u);
		buf_free(&u);
		if (!d->base) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
			goto fail;
		}
	}

	rc = settings_get_size(s, "single_put_max", DEFAULT_SINGLE_PUT_MAX, &d->single_put_max,
			       msg, sizeof(msg));
	if (!rc)
		rc = settings_get_size(s, "block_size", DEFAULT_BLOCK_SIZE, &d->block_size, msg,
				       sizeof(msg));
	if (!rc) {
		uint64_t par;

		rc = settings_get_u64(s, "block_parallel", DEFAULT_BLOCK_PARALLEL, &par, msg,
				      sizeof(msg));
		d->block_parallel = par < 1 ? 1 : par > MAX_BLOCK_PARALLEL ? MAX_BLOCK_PARALLEL
									  : (unsigned)par;
	}
	if (!rc && (d->block_size < 1 || d->block_size > MAX_BLOCK_SIZE)) {
		snprintf(msg, sizeof(msg), "block_size (from %s) must be 1 byte to 4000 MiB",
			 settings_origin(s, "block_size"));
		rc = -EINVAL;
	}
	if (!rc && d->single_put_max > 5000 * MIB) {
		snprintf(msg, sizeof(msg), "single_put_max (from %s) must be at most 5000 MiB",
			 settings_origin(s, "single_put_max"));
		rc = -EINVAL;
	}
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "azure: %s", msg);
		goto fail;
	}

	hc.timeout_ms = conf->timeout_ms > 0 ? conf->timeout_ms : 30000;
	hc.max_retries = conf->max_retries > 0 ? conf->max_retries : 5;
	hc.ca_file = settings_get(s, "ca_file");
	hc.insecure = insecure;
	hc.trace_comp = LOGC_AZURE;
	d->timeout_ms = hc.timeout_ms;
	rc = http_client_create(&hc, &d->http);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, rc, "azure: cannot create the HTTP client");
		goto fail;
	}
	log_info("azure: container %s at %s, %s%s%s", d->container, d->cr.endpoint, d->cr.origin,
		 *d->prefix ? ", prefix " : "", d->prefix);
	*out = d;
	return 0;
fail:
	az_close(d);
	return rc;
}

static int az_health(lexfs_drv *d, int timeout_ms, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct buf q = BUF_INIT(0);
	int rc;

	rc = buf_adds(&q, "restype=container&comp=list&maxresults=1");
	if (!rc && *d->prefix) {
		char *p = http_uri_encode(d->prefix, false);

		rc = p ? buf_addf(&q, "&prefix=%s", p) : -ENOMEM;
		free(p);
	}
	if (!rc)
		rc = az_req(d, &req, "GET", NULL, buf_cstr(&q));
	buf_free(&q);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "health", err);
	if (rc == -EACCES) {
		log_err("azure: the service refused our credentials (%s) for container %s at %s: "
			"check the account name and key or the SAS token (%s)",
			d->cr.origin, d->container, d->cr.endpoint,
			err && err->provider_code[0] ? err->provider_code : "HTTP 403");
		if (err)
			snprintf(err->message, sizeof(err->message),
				 "Azure refused the credentials (%.60s) for container %s: check "
				 "the account key or SAS token (%.40s)",
				 d->cr.origin, d->container,
				 err->provider_code[0] ? err->provider_code : "HTTP 403");
	} else if (rc == -ENOENT) {
		log_err("azure: container %s does not exist at %s", d->container,
			d->cr.endpoint);
		if (err)
			snprintf(err->message, sizeof(err->message),
				 "container %s does not exist at %.120s", d->container,
				 d->cr.endpoint);
	} else if (rc && err && !err->message[0]) {
		snprintf(err->message, sizeof(err->message), "cannot reach %.200s",
			 d->cr.endpoint);
	}
	http_resp_free(&resp);
	http_req_free(&req);
	(void)timeout_ms;
	return rc;
}

/* ---- objects ---- */

static int put_blob(lexfs_drv *d, const char *key, const struct lexfs_src *src,
		    const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		    struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	int rc;

	rc = az_req(d, &req, "PUT", key, NULL);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	rc = http_headers_set(&req.headers, "x-ms-blob-type", "BlockBlob");
	if (!rc)
		rc = add_put_headers(d, &req, opts ? opts->content_type : NULL,
				     opts ? opts->meta : NULL, opts ? opts->if_match : NULL);
	if (rc) {
		http_req_free(&req);
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	}
	req.body = src;
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "put", err);
	if (!rc && out) {
		out->size = src->len;
		out->mtime = mtime_from(&resp);
		etag_from(&resp, out->etag, sizeof(out->etag));
	}
	http_resp_free(&resp);
	http_req_free(&req);
	return rc;
}

static int az_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
		       lexfs_mpu **mpu, struct lexfs_err *err);
static int az_mp_part(lexfs_drv *d, lexfs_mpu *mpu, unsigned partno,
		      const struct lexfs_src *src, struct lexfs_err *err);
static int az_mp_complete(lexfs_drv *d, lexfs_mpu *mpu, unsigned nparts,
			  struct lexfs_objinfo *out, struct lexfs_err *err);
static int az_mp_abort(lexfs_drv *d, lexfs_mpu *mpu, struct lexfs_err *err);

uint64_t azure_block_size(uint64_t size, uint64_t want)
{
	uint64_t bs = want ? want : DEFAULT_BLOCK_SIZE;
	uint64_t need = size / MAX_BLOCKS + (size % MAX_BLOCKS != 0);

	if (bs > MAX_BLOCK_SIZE)
		bs = MAX_BLOCK_SIZE;
	if (need > bs)
		/* whole MiB, so blocks stay aligned with the cache's pages */
		bs = (need + MIB - 1) / MIB * MIB;
	return bs <= MAX_BLOCK_SIZE ? bs : 0;
}

/* A whole-object upload in blocks, several at a time. Workers take the next block
 * index from `next`; the first failure stops them all. */
struct block_job {
	lexfs_drv *d;
	lexfs_mpu *m;
	const struct lexfs_src *src;
	uint64_t bs;
	unsigned n;
	unsigned next; /* atomic */
	int failed;    /* atomic: non-zero once a block failed */
	pthread_mutex_t lock; /* guards rc and err */
	int rc;
	struct lexfs_err err;
};

static void *block_worker(void *arg)
{
	struct block_job *j = arg;

	while (!__atomic_load_n(&j->failed, __ATOMIC_ACQUIRE)) {
		unsigned i = __atomic_fetch_add(&j->next, 1, __ATOMIC_ACQ_REL);
		struct lexfs_src part = *j->src;
		uint64_t off;
		struct lexfs_err e = { 0 };
		int rc;

		if (i >= j->n)
			break;
		off = (uint64_t)i * j->bs;
		part.len = j->src->len - off < j->bs ? j->src->len - off : j->bs;
		if (j->src->buf)
			part.buf = (const char *)j->src->buf + off;
		else
			part.off = j->src->off + (off_t)off;
		rc = az_mp_part(j->d, j->m, i + 1, &part, &e);
		if (rc) {
			pthread_mutex_lock(&j->lock);
			if (!j->rc) {
				j->rc = rc;
				j->err = e;
			}
			pthread_mutex_unlock(&j->lock);
			__atomic_store_n(&j->failed, 1, __ATOMIC_RELEASE);
		}
	}
	return NULL;
}

static int az_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
		     const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		     struct lexfs_err *err)
{
	struct block_job j = { 0 };
	pthread_t th[MAX_BLOCK_PARALLEL];
	unsigned nth = 0, want;
	int rc;

	if (src->len <= d->single_put_max)
		return put_blob(d, key, src, opts, out, err);

	j.d = d;
	j.src = src;
	j.bs = azure_block_size(src->len, d->block_size);
	if (j.bs == 0)
		return lexfs_fail(err, LEXFS_E_QUOTA, EFBIG,
				  "azure: object too large (50,000 blocks of 4000 MiB at most)");
	j.n = (unsigned)((src->len + j.bs - 1) / j.bs);
	rc = az_mp_begin(d, key, opts, &j.m, err);
	if (rc)
		return rc;
	pthread_mutex_init(&j.lock, NULL);
	want = d->block_parallel < j.n ? d->block_parallel : j.n;
	/* the caller's thread is one of the workers */
	while (nth + 1 < want && pthread_create(&th[nth], NULL, block_worker, &j) == 0)
		nth++;
	block_worker(&j);
	for (unsigned i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&j.lock);
	if (j.rc) {
		if (err)
			*err = j.err;
		az_mp_abort(d, j.m, NULL);
		return j.rc;
	}
	log_debug("azure: %s uploaded as %u blocks of %" PRIu64 " bytes", key, j.n, j.bs);
	return az_mp_complete(d, j.m, j.n, out, err);
}

static int az_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out,
		   struct lexfs_err *err);

static int az_download(lexfs_drv *d, const char *key, uint64_t off, uint64_t len,
		       lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	char range[64];
	int rc;

	if (len == 0) {
		/* nothing to read, but a missing blob is still ENOENT */
		struct lexfs_objinfo oi;

		rc = az_info(d, key, &oi, err);
		if (!rc)
			objinfo_free(&oi);
		return rc;
	}
	rc = az_req(d, &req, "GET", key, NULL);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	if (off > 0 || len != UINT64_MAX) {
		if (len == UINT64_MAX || len - 1 > UINT64_MAX - 1 - off)
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-", off);
		else
			snprintf(range, sizeof(range), "bytes=%" PRIu64 "-%" PRIu64, off,
				 off + len - 1);
		rc = http_headers_set(&req.headers, "x-ms-range", range);
		if (rc) {
			http_req_free(&req);
			return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
		}
	}
	req.sink = sink;
	req.sink_arg = arg;
	http_resp_init(&resp);
	rc = http_perform(d->http, &req, &resp, az_retryable_body, err);
	if (!rc && resp.status == 416) {
		/* The range starts at or past the end: no bytes, but the blob exists. */
		lexfs_err_clear(err);
	} else if (!rc && (resp.status < 200 || resp.status >= 300)) {
		rc = az_fail(&resp, "get", key, err);
	}
	http_resp_free(&resp);
	http_req_free(&req);
	return rc;
}

/* Response headers of Get Blob Properties -> objinfo. */
static int info_from(const struct http_resp *resp, struct lexfs_objinfo *out)
{
	const char *v = http_headers_get(&resp->headers, "content-length");
	int rc = 0;

	if (v) {
		char *end;
		unsigned long long n = strtoull(v, &end, 10);

		out->size = (end != v && *end == '\0') ? (uint64_t)n : 0;
	}
	out->mtime = mtime_from(resp);
	etag_from(resp, out->etag, sizeof(out->etag));
	v = http_headers_get(&resp->headers, "content-type");
	snprintf(out->content_type, sizeof(out->content_type), "%s", v ? v : "");
	for (size_t i = 0; i < resp->headers.n && !rc; i++) {
		const char *n = resp->headers.v[i].name;
		char *dec;

		if (strncasecmp(n, "x-ms-meta-", 10) != 0 || !n[10])
			continue;
		dec = azure_meta_decode_name(n + 10);
		rc = dec ? meta_set(&out->meta, dec, resp->headers.v[i].value) : -ENOMEM;
		free(dec);
	}
	out->has_meta = rc == 0;
	return rc;
}

static int head_blob(lexfs_drv *d, const char *key, struct http_resp *resp,
		     struct lexfs_err *err)
{
	struct http_req req;
	int rc;

	rc = az_req(d, &req, "HEAD", key, NULL);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	req.head = true;
	rc = az_do(d, &req, resp, "head", err);
	http_req_free(&req);
	return rc;
}

static int az_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out,
		   struct lexfs_err *err)
{
	struct http_resp resp;
	int rc;

	memset(out, 0, sizeof(*out));
	meta_init(&out->meta);
	http_resp_init(&resp);
	rc = head_blob(d, key, &resp, err);
	if (!rc) {
		rc = info_from(&resp, out);
		if (rc) {
			objinfo_free(out);
			rc = lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
		}
	}
	http_resp_free(&resp);
	return rc;
}

static int az_exists(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct http_resp resp;
	int rc;

	http_resp_init(&resp);
	rc = head_blob(d, key, &resp, err);
	http_resp_free(&resp);
	if (rc == -ENOENT) {
		lexfs_err_clear(err);
		return 0;
	}
	return rc ? rc : 1;
}

static int az_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
		   unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct buf q = BUF_INIT(0), p = BUF_INIT(0);
	char *enc = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if (max_keys == 0 || max_keys > 5000)
		max_keys = 1000;
	rc = buf_addf(&q, "restype=container&comp=list&include=metadata&maxresults=%u",
		      max_keys);
	if (!rc)
		rc = buf_adds(&p, d->prefix);
	if (!rc && prefix)
		rc = buf_adds(&p, prefix);
	if (!rc && p.len) {
		enc = http_uri_encode(buf_cstr(&p), false);
		rc = enc ? buf_addf(&q, "&prefix=%s", enc) : -ENOMEM;
		free(enc);
	}
	if (!rc && delim && *delim) {
		enc = http_uri_encode(delim, false);
		rc = enc ? buf_addf(&q, "&delimiter=%s", enc) : -ENOMEM;
		free(enc);
	}
	if (!rc && token && *token) {
		enc = http_uri_encode(token, false);
		rc = enc ? buf_addf(&q, "&marker=%s", enc) : -ENOMEM;
		free(enc);
	}
	buf_free(&p);
	if (!rc)
		rc = az_req(d, &req, "GET", NULL, buf_cstr(&q));
	buf_free(&q);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	req.trace_key = prefix;
	http_resp_init(&resp);
	resp.body.max = LIST_BODY_MAX;
	rc = az_do(d, &req, &resp, "list", err);
	if (!rc) {
		rc = azure_parse_list(resp.body.data, resp.body.len, d->prefix, out);
		if (rc == -EIO)
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EIO,
					"azure: List Blobs answer is not an EnumerationResults "
					"document");
		else if (rc)
			rc = lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	}
	http_resp_free(&resp);
	http_req_free(&req);
	return rc;
}

static int az_remove(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	int rc;

	rc = az_req(d, &req, "DELETE", key, NULL);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "delete", err);
	if (rc == -ENOENT) {
		lexfs_err_clear(err);
		rc = 0;
	}
	http_resp_free(&resp);
	http_req_free(&req);
	return rc;
}

static int az_get_url(lexfs_drv *d, const char *key, char **url, struct lexfs_err *err)
{
	struct lexfs_drv plain = *d;

	/* the public URL never carries the configured SAS token */
	plain.cr.mode = AZURE_AUTH_ANONYMOUS;
	*url = az_url(&plain, key, NULL);
	if (!*url)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	return 0;
}

/* Set Blob Properties with a new content type, keeping the other content headers
 * (the call replaces all of them). `cur` is the current Get Blob Properties answer. */
static int set_content_type(lexfs_drv *d, const char *key, const char *ct,
			    const struct http_resp *cur, struct lexfs_err *err)
{
	static const char *const keep[][2] = {
		{ "content-md5", "x-ms-blob-content-md5" },
		{ "content-encoding", "x-ms-blob-content-encoding" },
		{ "content-language", "x-ms-blob-content-language" },
		{ "content-disposition", "x-ms-blob-content-disposition" },
		{ "cache-control", "x-ms-blob-cache-control" },
	};
	struct http_req req;
	struct http_resp resp;
	int rc;

	rc = az_req(d, &req, "PUT", key, "comp=properties");
	if (!rc)
		rc = http_headers_set(&req.headers, "x-ms-blob-content-type", ct);
	for (size_t i = 0; !rc && i < sizeof(keep) / sizeof(keep[0]); i++) {
		const char *v = http_headers_get(&cur->headers, keep[i][0]);

		if (v && *v)
			rc = http_headers_set(&req.headers, keep[i][1], v);
	}
	if (rc) {
		http_req_free(&req);
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	}
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "set-properties", err);
	http_resp_free(&resp);
	http_req_free(&req);
	return rc;
}

static int az_set_meta(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
		       struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp, cur;
	int rc;

	http_resp_init(&cur);
	if (opts && opts->content_type) {
		const char *ct;

		rc = head_blob(d, key, &cur, err);
		if (rc)
			goto out_cur;
		ct = http_headers_get(&cur.headers, "content-type");
		if (!ct || strcmp(ct, opts->content_type) != 0) {
			rc = set_content_type(d, key, opts->content_type, &cur, err);
			if (rc)
				goto out_cur;
		}
	}
	rc = az_req(d, &req, "PUT", key, "comp=metadata");
	if (!rc)
		rc = add_meta_headers(&req, opts ? opts->meta : NULL);
	if (!rc && d->encryption_scope)
		rc = http_headers_set(&req.headers, "x-ms-encryption-scope", d->encryption_scope);
	if (!rc && opts && opts->if_match && *opts->if_match)
		rc = add_put_headers(d, &req, NULL, NULL, opts->if_match);
	if (rc) {
		http_req_free(&req);
		rc = lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
		goto out_cur;
	}
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "set-metadata", err);
	http_resp_free(&resp);
	http_req_free(&req);
out_cur:
	http_resp_free(&cur);
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* Wait for an asynchronous copy to leave "pending". */
static int copy_wait(lexfs_drv *d, const char *dst, const char *copy_id,
		     struct lexfs_err *err)
{
	long delay = 50;
	time_t deadline = time(NULL) + COPY_POLL_MAX_S;

	for (;;) {
		struct http_resp resp;
		const char *st, *id;
		int rc;

		sleep_ms(delay);
		if (delay < 2000)
			delay *= 2;
		http_resp_init(&resp);
		rc = head_blob(d, dst, &resp, err);
		if (rc) {
			http_resp_free(&resp);
			return rc;
		}
		st = http_headers_get(&resp.headers, "x-ms-copy-status");
		id = http_headers_get(&resp.headers, "x-ms-copy-id");
		if (copy_id && id && strcmp(copy_id, id) != 0) {
			http_resp_free(&resp);
			return lexfs_fail(err, LEXFS_E_TRANSACTION, EIO,
					  "azure: copy to %s was replaced by another copy", dst);
		}
		if (!st || strcmp(st, "success") == 0) {
			http_resp_free(&resp);
			return 0;
		}
		if (strcmp(st, "pending") != 0) {
			const char *why = http_headers_get(&resp.headers,
							   "x-ms-copy-status-description");

			rc = lexfs_fail(err, LEXFS_E_STORAGE, EIO, "azure: copy to %s %s: %s", dst,
					st, why ? why : "");
			http_resp_free(&resp);
			return rc;
		}
		http_resp_free(&resp);
		if (time(NULL) > deadline)
			return lexfs_fail(err, LEXFS_E_UNAVAILABLE, ETIMEDOUT,
					  "azure: copy to %s still pending after %d s", dst,
					  COPY_POLL_MAX_S);
	}
}

static int az_copy(lexfs_drv *d, const char *src, const char *dst,
		   const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	char *src_url;
	const char *st;
	int rc;

	src_url = az_url(d, src, NULL);
	if (!src_url)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	rc = az_req(d, &req, "PUT", dst, NULL);
	if (!rc)
		rc = http_headers_set(&req.headers, "x-ms-copy-source", src_url);
	free(src_url);
	/* metadata: opts replaces it (even with an empty set), NULL keeps the source's */
	if (!rc && opts)
		rc = add_meta_headers(&req, opts->meta);
	if (!rc && d->encryption_scope)
		rc = http_headers_set(&req.headers, "x-ms-encryption-scope", d->encryption_scope);
	if (!rc && d->cpk_key) {
		/* The source is read with the same customer-provided key. */
		rc = http_headers_set(&req.headers, "x-ms-source-encryption-key", d->cpk_key);
		if (!rc)
			rc = http_headers_set(&req.headers, "x-ms-source-encryption-key-sha256",
					      d->cpk_sha256);
		if (!rc)
			rc = http_headers_set(&req.headers, "x-ms-source-encryption-algorithm",
					      "AES256");
	}
	if (rc) {
		http_req_free(&req);
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	}
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "copy", err);
	if (!rc) {
		st = http_headers_get(&resp.headers, "x-ms-copy-status");
		if (st && strcmp(st, "pending") == 0)
			rc = copy_wait(d, dst, http_headers_get(&resp.headers, "x-ms-copy-id"),
				       err);
		else if (st && strcmp(st, "success") != 0)
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EIO, "azure: copy to %s: %s", dst,
					st);
	}
	http_resp_free(&resp);
	http_req_free(&req);
	if (!rc && opts && opts->content_type) {
		struct lexfs_put_opts o = { .content_type = opts->content_type,
					    .meta = opts->meta };

		rc = az_set_meta(d, dst, &o, err);
	}
	return rc;
}

static int az_move(lexfs_drv *d, const char *src, const char *dst, struct lexfs_err *err)
{
	int rc = az_copy(d, src, dst, NULL, err);

	if (rc)
		return rc;
	return az_remove(d, src, err);
}

/* ---- multipart: Put Block / Put Block List ---- */

/* base64 of "<upload id>-<part, 7 digits>": 24 bytes, so every id has 32 chars. */
static void block_id(const lexfs_mpu *m, unsigned partno, char out[40])
{
	char raw[32];
	char *b;

	snprintf(raw, sizeof(raw), "%s-%07u", m->upload_id, partno);
	b = crypto_base64(raw, strlen(raw));
	snprintf(out, 40, "%s", b ? b : "");
	free(b);
}

static void mpu_free(lexfs_mpu *m)
{
	if (!m)
		return;
	free(m->key);
	free(m->content_type);
	meta_free(&m->meta);
	free(m);
}

static int az_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
		       lexfs_mpu **mpu, struct lexfs_err *err)
{
	lexfs_mpu *m = calloc(1, sizeof(*m));
	uint8_t rnd[8];
	int rc;

	*mpu = NULL;
	if (!m)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	meta_init(&m->meta);
	rc = crypto_random(rnd, sizeof(rnd));
	if (rc) {
		mpu_free(m);
		return lexfs_fail(err, LEXFS_E_STORAGE, EIO, "no random bytes for an upload id");
	}
	crypto_hex(rnd, sizeof(rnd), m->upload_id);
	m->key = strdup(key);
	rc = m->key ? 0 : -ENOMEM;
	if (!rc && opts && opts->content_type) {
		m->content_type = strdup(opts->content_type);
		rc = m->content_type ? 0 : -ENOMEM;
	}
	if (!rc && opts && opts->meta) {
		rc = meta_copy(&m->meta, opts->meta);
		m->has_meta = true;
	}
	if (rc) {
		mpu_free(m);
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	}
	(void)d;
	*mpu = m;
	return 0;
}

static int az_mp_part(lexfs_drv *d, lexfs_mpu *m, unsigned partno, const struct lexfs_src *src,
		      struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	char id[40], q[128];
	char *enc;
	int rc;

	if (partno < 1 || partno > MAX_BLOCKS)
		return lexfs_fail(err, LEXFS_E_QUOTA, EFBIG, "azure: block %u out of range",
				  partno);
	if (src->len > MAX_BLOCK_SIZE)
		return lexfs_fail(err, LEXFS_E_QUOTA, EFBIG, "azure: block larger than 4000 MiB");
	block_id(m, partno, id);
	enc = http_uri_encode(id, false);
	if (!enc)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	snprintf(q, sizeof(q), "comp=block&blockid=%s", enc);
	free(enc);
	rc = az_req(d, &req, "PUT", m->key, q);
	if (!rc && d->encryption_scope)
		rc = http_headers_set(&req.headers, "x-ms-encryption-scope", d->encryption_scope);
	if (rc) {
		http_req_free(&req);
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	}
	req.body = src;
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "put-block", err);
	http_resp_free(&resp);
	http_req_free(&req);
	return rc;
}

static int az_mp_complete(lexfs_drv *d, lexfs_mpu *m, unsigned nparts,
			  struct lexfs_objinfo *out, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct lexfs_src body = { 0 };
	struct buf x = BUF_INIT((size_t)MAX_BLOCKS * 64 + 1024);
	int rc;

	rc = buf_adds(&x, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
	for (unsigned i = 1; !rc && i <= nparts; i++) {
		char id[40];

		block_id(m, i, id);
		rc = buf_addf(&x, "<Latest>%s</Latest>", id);
	}
	if (!rc)
		rc = buf_adds(&x, "</BlockList>");
	if (rc) {
		buf_free(&x);
		mpu_free(m);
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	}
	rc = az_req(d, &req, "PUT", m->key, "comp=blocklist");
	if (!rc)
		rc = add_put_headers(d, &req, m->content_type, m->has_meta ? &m->meta : NULL,
				     NULL);
	if (rc) {
		buf_free(&x);
		mpu_free(m);
		http_req_free(&req);
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	}
	body.buf = buf_cstr(&x);
	body.len = x.len;
	req.body = &body;
	http_resp_init(&resp);
	rc = az_do(d, &req, &resp, "put-block-list", err);
	if (!rc && out) {
		out->mtime = mtime_from(&resp);
		etag_from(&resp, out->etag, sizeof(out->etag));
	}
	http_resp_free(&resp);
	http_req_free(&req);
	buf_free(&x);
	if (!rc && out) {
		/* size: ask, the blocks' sizes are not known here */
		struct lexfs_objinfo oi = { 0 };

		if (az_info(d, m->key, &oi, NULL) == 0)
			out->size = oi.size;
		objinfo_free(&oi);
	}
	mpu_free(m);
	return rc;
}

static int az_mp_abort(lexfs_drv *d, lexfs_mpu *m, struct lexfs_err *err)
{
	/* Uncommitted blocks cannot be deleted through the API; the service drops them
	 * after a week, and a later upload of the same blob replaces them. */
	(void)d;
	(void)err;
	mpu_free(m);
	return 0;
}

static int az_presign(lexfs_drv *d, const char *key, enum lexfs_method method,
		      int64_t expires_s, char **url, struct lexfs_err *err)
{
	struct buf b = BUF_INIT(0);
	char *blob_url = NULL, *q = NULL, *full = NULL;
	int64_t now = (int64_t)time(NULL), win, t0;
	int rc;

	*url = NULL;
	if (d->cr.mode != AZURE_AUTH_SHARED_KEY) {
		log_warn("azure: presigned URLs need the account key (service SAS); this mount "
			 "uses %s",
			 d->cr.origin);
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				  "azure: presigned URLs need the account key (this mount uses %s)",
				  d->cr.origin);
	}
	if (expires_s <= 0)
		expires_s = 3600;
	if (expires_s > 7 * 24 * 3600)
		expires_s = 7 * 24 * 3600;
	rc = buf_adds(&b, d->prefix);
	if (!rc)
		rc = buf_adds(&b, key);
	full = rc ? NULL : buf_steal(&b);
	buf_free(&b);
	if (!full)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	/* Times are taken from a clock rounded down to `win` seconds (1/60 of the
	 * lifetime, 1 to 60 s), so asking twice within a window gives the same URL:
	 * getxattr asks for the size first and then for the value, and a SAS whose
	 * percent-encoded signature changed length in between would fail with ERANGE.
	 * The URL is valid from 5 minutes before (the service's clock may be behind
	 * ours) to at least expires_s, at most expires_s + win, from now. */
	win = expires_s / 60;
	win = win < 1 ? 1 : win > 60 ? 60 : win;
	t0 = now - now % win;
	rc = azure_blob_sas(d->cr.account, d->cr.key, d->cr.keylen, d->container, full,
			    method == LEXFS_PUT ? "cw" : "r", t0 - 300, t0 + win + expires_s,
			    d->encryption_scope, &q, NULL);
	free(full);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, rc, "out of memory");
	{
		struct lexfs_drv plain = *d;

		plain.cr.mode = AZURE_AUTH_ANONYMOUS;
		blob_url = az_url(&plain, key, q);
	}
	free(q);
	if (!blob_url)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
	*url = blob_url;
	return 0;
}

/* The Date of the latest response: the service checks signatures against its
 * clock (doctor's clock check, driver.h). */
static int az_server_time(lexfs_drv *d, int64_t *server, int64_t *local, struct lexfs_err *err)
{
	return http_last_date(d->http, server, local);
}

const struct lexfs_driver lexfs_driver_azure = {
	.name = "azure",
	.abi = LEXFS_DRIVER_ABI,
	.caps = LEXFS_CAP_SERVER_COPY | LEXFS_CAP_MULTIPART | LEXFS_CAP_PARALLEL_PARTS |
		LEXFS_CAP_RANGE_READ | LEXFS_CAP_SET_META | LEXFS_CAP_PRESIGN |
		LEXFS_CAP_OWN_RETRY,
	.min_part_size = 1,
	.max_part_size = MAX_BLOCK_SIZE,
	.max_parts = MAX_BLOCKS,
	/* The service's limit (50,000 x 4000 MiB) is far past any file; leaving it 0
	 * lets a stream of unknown size use the cache's preferred block size, and a
	 * known size still gets blocks large enough for 50,000 to cover it. */
	.max_object_size = 0,
	.open = az_open,
	.close = az_close,
	.health_check = az_health,
	.upload = az_upload,
	.download = az_download,
	.info = az_info,
	.list = az_list,
	.remove = az_remove,
	.get_url = az_get_url,
	.exists = az_exists,
	.copy = az_copy,
	.move = az_move,
	.set_meta = az_set_meta,
	.remove_many = NULL,
	.mp_begin = az_mp_begin,
	.mp_part = az_mp_part,
	.mp_complete = az_mp_complete,
	.mp_abort = az_mp_abort,
	.presign = az_presign,
	.control = NULL,
	.server_time = az_server_time,
	.mp_list = NULL,
	.mp_abort_id = NULL,
};
