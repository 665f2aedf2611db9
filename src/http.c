/* http.c - the one HTTP layer of the cloud drivers, on libcurl.
 *
 * A client owns:
 *  - a curl share (DNS cache, TLS session cache, connection cache), locked by one
 *    mutex per curl lock type, so every handle reuses every open connection;
 *  - a pool of idle easy handles guarded by `lock`; a request takes one (or makes
 *    one), and gives it back when done, so handles are never shared by two threads.
 *
 * http_perform() loop, one iteration per attempt:
 *
 *   sign -> perform -> transport error?  -- retryable and nothing delivered to the
 *                                           sink yet -> back off, again
 *                   -> HTTP status 429/500/502/503/504 or a throttling body
 *                                        -- back off (Retry-After wins), again
 *                   -> otherwise done: the caller maps the status.
 *
 * The back-off is "full jitter": a random delay in [0, min(max, base * 2^attempt)].
 * A body comes from a struct lexfs_src (fd range read with pread, or a buffer), so
 * each attempt re-sends it from its start. What is never retried: a body whose
 * source cannot be read in full any more (read_cb: the file shrank or failed under
 * the upload, so its hash and length no longer hold), a request marked no_retry,
 * and a download whose sink already got bytes (the sink cannot take them twice).
 */
#include "src/http.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "src/errors.h"
#include "src/log.h"

#define ERR_BODY_MAX (1u << 20)
#define RETRY_AFTER_MAX_MS 30000

struct http_client {
	struct http_conf conf;
	char *ca_file;
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
	pthread_mutex_t lock; /* guards idle[] and nidle */
	CURL **idle;
	size_t nidle;
	/* The Date header of the most recent response and this machine's clock when
	 * it arrived, for the doctor's clock check (http_last_date); 0: none yet. */
	pthread_mutex_t date_lock; /* guards last_date, last_date_at */
	int64_t last_date;
	int64_t last_date_at;
};

/* ---------- headers ---------- */

int http_headers_set(struct http_headers *h, const char *name, const char *value)
{
	char *nv = strdup(value ? value : "");
	if (!nv)
		return -ENOMEM;
	for (size_t i = 0; i < h->n; i++) {
		if (strcasecmp(h->v[i].name, name) == 0) {
			free(h->v[i].value);
			h->v[i].value = nv;
			return 0;
		}
	}
	char *nn = strdup(name);
	struct http_header *v = realloc(h->v, (h->n + 1) * sizeof(*v));
	if (!nn || !v) {
		free(nn);
		free(nv);
		if (v)
			h->v = v;
		return -ENOMEM;
	}
	h->v = v;
	h->v[h->n].name = nn;
	h->v[h->n].value = nv;
	h->n++;
	return 0;
}

const char *http_headers_get(const struct http_headers *h, const char *name)
{
	for (size_t i = 0; i < h->n; i++)
		if (strcasecmp(h->v[i].name, name) == 0)
			return h->v[i].value;
	return NULL;
}

void http_headers_free(struct http_headers *h)
{
	for (size_t i = 0; i < h->n; i++) {
		free(h->v[i].name);
		free(h->v[i].value);
	}
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

/* ---------- requests / responses ---------- */

void http_req_init(struct http_req *req, const char *method, char *url)
{
	memset(req, 0, sizeof(*req));
	req->method = method;
	req->url = url;
	req->head = method && strcmp(method, "HEAD") == 0;
}

void http_req_free(struct http_req *req)
{
	free(req->url);
	req->url = NULL;
	http_headers_free(&req->headers);
}

void http_resp_init(struct http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	buf_init(&resp->body, 0);
}

void http_resp_free(struct http_resp *resp)
{
	http_headers_free(&resp->headers);
	buf_free(&resp->body);
	memset(resp, 0, sizeof(*resp));
}

/* ---------- client ---------- */

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *arg)
{
	struct http_client *c = arg;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	struct http_client *c = arg;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[data]);
}

int http_client_create(const struct http_conf *conf, struct http_client **out)
{
	struct http_client *c;
	int i;

	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail_global;
	if (conf)
		c->conf = *conf;
	if (c->conf.timeout_ms <= 0)
		c->conf.timeout_ms = 30000;
	if (c->conf.connect_timeout_ms <= 0)
		c->conf.connect_timeout_ms = 10000;
	/* 0 means the default; a negative count means no retries at all. */
	if (c->conf.max_retries == 0)
		c->conf.max_retries = 5;
	else if (c->conf.max_retries < 0)
		c->conf.max_retries = 0;
	if (c->conf.retry_base_ms <= 0)
		c->conf.retry_base_ms = 100;
	if (c->conf.retry_max_ms <= 0)
		c->conf.retry_max_ms = 10000;
	if (c->conf.pool_size <= 0)
		c->conf.pool_size = 16;
	if (c->conf.ca_file) {
		c->ca_file = strdup(c->conf.ca_file);
		if (!c->ca_file)
			goto fail_free;
		c->conf.ca_file = c->ca_file;
	}
	c->idle = calloc((size_t)c->conf.pool_size, sizeof(*c->idle));
	if (!c->idle)
		goto fail_free;
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	pthread_mutex_init(&c->lock, NULL);
	pthread_mutex_init(&c->date_lock, NULL);
	c->share = curl_share_init();
	if (!c->share)
		goto fail_locks;
	curl_share_setopt(c->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(c->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(c->share, CURLSHOPT_USERDATA, c);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	curl_share_setopt(c->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	*out = c;
	return 0;

fail_locks:
	for (i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->date_lock);
fail_free:
	free(c->idle);
	free(c->ca_file);
	free(c);
fail_global:
	curl_global_cleanup();
	return -ENOMEM;
}

void http_client_destroy(struct http_client *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nidle; i++)
		curl_easy_cleanup(c->idle[i]);
	curl_share_cleanup(c->share);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&c->share_locks[i]);
	pthread_mutex_destroy(&c->lock);
	pthread_mutex_destroy(&c->date_lock);
	free(c->idle);
	free(c->ca_file);
	free(c);
	curl_global_cleanup();
}

static CURL *handle_get(struct http_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->nidle > 0)
		h = c->idle[--c->nidle];
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_reset(h);
	else
		h = curl_easy_init();
	return h;
}

static void handle_put(struct http_client *c, CURL *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&c->lock);
	if (c->nidle < (size_t)c->conf.pool_size) {
		c->idle[c->nidle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

/* ---------- one transfer ---------- */

struct xfer {
	struct http_req *req;
	struct http_resp *resp;
	uint64_t sent;      /* body bytes handed to curl this attempt */
	int status;         /* of the last status line seen */
	int sink_err;       /* sink's -errno when it stopped the transfer */
	int src_err;	    /* -errno when the body's source could not be read */
	uint64_t delivered; /* bytes given to the sink, all attempts */
	int64_t stall_us;   /* no bytes moved for this long: give up (timeout_ms) */
	int64_t moved_us;   /* when bytes last moved, this attempt */
	curl_off_t moved;   /* bytes up + down so far, this attempt */
	bool stalled;       /* xferinfo_cb stopped the attempt for want of progress */
};

static int64_t now_us(void);

/* The "no progress for timeout_ms" rule. CURLOPT_LOW_SPEED_TIME alone is late: it
 * averages over a window of several seconds, so a request whose body went out at
 * once (the server then hangs) was only given up about 6 s after timeout_ms. */
static int xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct xfer *x = arg;
	int64_t now = now_us();

	(void)dltotal;
	(void)ultotal;
	if (dlnow + ulnow != x->moved) {
		x->moved = dlnow + ulnow;
		x->moved_us = now;
	} else if (now - x->moved_us > x->stall_us) {
		x->stalled = true;
		return 1; /* CURLE_ABORTED_BY_CALLBACK */
	}
	return 0;
}

static size_t read_cb(char *dst, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	const struct lexfs_src *src = x->req->body;
	uint64_t left = src->len - x->sent;
	size_t want = size * nmemb;
	ssize_t n;

	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	if (src->buf) {
		memcpy(dst, (const char *)src->buf + x->sent, want);
		n = (ssize_t)want;
	} else {
		do {
			n = pread(src->fd, dst, want, src->off + (off_t)x->sent);
		} while (n < 0 && errno == EINTR);
		if (n <= 0) {
			/* The file shrank or failed under us: abort rather than send a
			 * body shorter than its Content-Length. */
			x->src_err = n < 0 ? -errno : -EIO;
			return CURL_READFUNC_ABORT;
		}
	}
	x->sent += (uint64_t)n;
	return (size_t)n;
}

static int seek_cb(void *arg, curl_off_t off, int origin)
{
	struct xfer *x = arg;

	if (origin != SEEK_SET || off < 0 || (uint64_t)off > x->req->body->len)
		return CURL_SEEKFUNC_CANTSEEK;
	x->sent = (uint64_t)off;
	return CURL_SEEKFUNC_OK;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * nmemb;

	if (x->status >= 200 && x->status < 300 && x->req->sink) {
		int rc = x->req->sink(x->req->sink_arg, data, len);
		if (rc) {
			x->sink_err = rc < 0 ? rc : -EIO;
			return 0;
		}
		x->delivered += len;
		x->resp->body_bytes += len;
		return len;
	}
	if (x->status >= 200 && x->status < 300) {
		if (buf_add(&x->resp->body, data, len)) {
			x->sink_err = -ENOMEM;
			return 0;
		}
		x->resp->body_bytes += len;
		return len;
	}
	/* An error body: keep its first MiB, drop the rest. */
	if (x->resp->body.len < ERR_BODY_MAX) {
		size_t room = ERR_BODY_MAX - x->resp->body.len;
		if (buf_add(&x->resp->body, data, len < room ? len : room))
			return 0;
	}
	return len;
}

static size_t header_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t len = size * nmemb;
	char line[8192];
	char *colon, *name, *value, *end;
	size_t n = len < sizeof(line) - 1 ? len : sizeof(line) - 1;

	memcpy(line, data, n);
	line[n] = '\0';
	while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
		line[--n] = '\0';
	if (strncmp(line, "HTTP/", 5) == 0) {
		/* A new status line (100 Continue, or a fresh response): start over. */
		char *sp = strchr(line, ' ');
		long st = sp ? strtol(sp + 1, NULL, 10) : 0;
		x->status = st > 0 && st < 1000 ? (int)st : 0;
		http_headers_free(&x->resp->headers);
		return len;
	}
	colon = strchr(line, ':');
	if (!colon || colon == line)
		return len;
	*colon = '\0';
	name = line;
	for (char *p = name; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	value = colon + 1;
	while (*value == ' ' || *value == '\t')
		value++;
	end = value + strlen(value);
	while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	if (http_headers_set(&x->resp->headers, name, value))
		return 0;
	return len;
}

static bool curl_retryable(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return true;
	default:
		return false;
	}
}

static bool status_retryable(int status)
{
	return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

static uint64_t xorshift(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

/* Retry-After: seconds or an HTTP date; -1 when absent or unusable. */
static long retry_after_ms(const struct http_resp *resp)
{
	const char *v = http_headers_get(&resp->headers, "retry-after");
	char *end;
	long long s;

	if (!v || !*v)
		return -1;
	errno = 0;
	s = strtoll(v, &end, 10);
	if (errno == 0 && end != v && *end == '\0' && s >= 0)
		return s > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : (long)(s * 1000);
	int64_t t = http_parse_date(v);
	if (t < 0)
		return -1;
	int64_t d = t - (int64_t)time(NULL);
	if (d <= 0)
		return 0;
	return d > RETRY_AFTER_MAX_MS / 1000 ? RETRY_AFTER_MAX_MS : (long)(d * 1000);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void remember_date(struct http_client *c, int64_t server)
{
	int64_t now = (int64_t)time(NULL);

	pthread_mutex_lock(&c->date_lock);
	c->last_date = server;
	c->last_date_at = now;
	pthread_mutex_unlock(&c->date_lock);
}

int http_last_date(struct http_client *c, int64_t *server, int64_t *local_at)
{
	int rc = -ENODATA;

	pthread_mutex_lock(&c->date_lock);
	if (c->last_date > 0) {
		*server = c->last_date;
		*local_at = c->last_date_at;
		rc = 0;
	}
	pthread_mutex_unlock(&c->date_lock);
	return rc;
}

/* Trace text for a URL: scheme://host/path, never the query (presigned parts). */
static void url_for_trace(const char *url, char *out, size_t outlen)
{
	size_t n = strcspn(url, "?");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, url, n);
	out[n] = '\0';
}

static int setup_handle(struct http_client *c, CURL *h, struct http_req *req, struct xfer *x,
			struct curl_slist **hdrs, char *errbuf)
{
	const char *m = req->method ? req->method : "GET";
	struct curl_slist *l = NULL, *t;
	char line[8192];

	curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	/* The shared connection cache keeps no more connections than the handle
	 * returning one allows (libcurl's default: 5): with more requests in flight
	 * than that, nearly every request would connect anew. */
	curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long)(2 * c->conf.pool_size));
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)c->conf.connect_timeout_ms);
	/* "No progress for timeout_ms" rather than a cap on the whole transfer, which
	 * would break large objects on slow links. */
	x->stall_us = (int64_t)c->conf.timeout_ms * 1000;
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, xferinfo_cb);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a backstop */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)(c->conf.timeout_ms + 999) / 1000);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	if (c->conf.ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, c->conf.ca_file);
	if (c->conf.insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, x);

	if (req->head || strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else if (req->body || strcmp(m, "PUT") == 0 || strcmp(m, "POST") == 0) {
		/* Every body goes through the read callback; curl sends Content-Length
		 * from INFILESIZE (0 for an empty body) and never chunked encoding. */
		curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
		curl_easy_setopt(h, CURLOPT_READDATA, x);
		curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, seek_cb);
		curl_easy_setopt(h, CURLOPT_SEEKDATA, x);
		curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE,
				 (curl_off_t)(req->body ? req->body->len : 0));
		if (strcmp(m, "PUT") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "GET") != 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, m);
	}

	for (size_t i = 0; i < req->headers.n; i++) {
		const char *v = req->headers.v[i].value;
		if (*v)
			snprintf(line, sizeof(line), "%s: %s", req->headers.v[i].name, v);
		else
			snprintf(line, sizeof(line), "%s;", req->headers.v[i].name);
		t = curl_slist_append(l, line);
		if (!t)
			goto nomem;
		l = t;
	}
	/* No "Expect: 100-continue" round trip; no Accept header nobody asked for. */
	t = curl_slist_append(l, "Expect:");
	if (!t)
		goto nomem;
	l = t;
	if (!http_headers_get(&req->headers, "accept")) {
		t = curl_slist_append(l, "Accept:");
		if (!t)
			goto nomem;
		l = t;
	}
	if (!req->body && !http_headers_get(&req->headers, "content-type")) {
		t = curl_slist_append(l, "Content-Type:");
		if (!t)
			goto nomem;
		l = t;
	}
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, l);
	*hdrs = l;
	return 0;
nomem:
	curl_slist_free_all(l);
	return -ENOMEM;
}

int http_perform(struct http_client *c, struct http_req *req, struct http_resp *resp,
		 bool (*is_retryable_body)(const struct http_resp *resp), struct lexfs_err *err)
{
	struct xfer x = { .req = req, .resp = resp };
	char errbuf[CURL_ERROR_SIZE];
	char turl[512];
	uint64_t seed;
	int attempt = 0, rc = 0;
	CURL *h;
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	seed = ((uint64_t)ts.tv_nsec << 20) ^ (uint64_t)ts.tv_sec ^ (uint64_t)(uintptr_t)&x ^
	       (uint64_t)pthread_self();
	if (!seed)
		seed = 88172645463325252ULL;
	url_for_trace(req->url, turl, sizeof(turl));

	h = handle_get(c);
	if (!h)
		return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory for an HTTP handle");

	for (;;) {
		struct curl_slist *hdrs = NULL;
		CURLcode cc;
		long status = 0;
		bool retry = false;
		long wait_ms = -1;
		int64_t t0 = now_us();

		http_headers_free(&resp->headers);
		buf_reset(&resp->body);
		resp->status = 0;
		resp->body_bytes = x.delivered;
		resp->server_date = 0;
		x.sent = 0;
		x.status = 0;
		x.sink_err = 0;
		x.src_err = 0;
		x.moved = 0;
		x.moved_us = t0;
		x.stalled = false;
		errbuf[0] = '\0';

		if (req->sign) {
			rc = req->sign(req->sign_arg, req);
			if (rc) {
				lexfs_fail(err, LEXFS_E_STORAGE, -rc, "signing failed for %s",
					   req->trace_key ? req->trace_key : turl);
				break;
			}
		}
		if (attempt > 0)
			curl_easy_reset(h);
		rc = setup_handle(c, h, req, &x, &hdrs, errbuf);
		if (rc) {
			lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory building a request");
			break;
		}
		cc = curl_easy_perform(h);
		if (x.stalled) /* xferinfo_cb ended it (CURLE_ABORTED_BY_CALLBACK) */
			snprintf(errbuf, CURL_ERROR_SIZE, "timed out: no bytes moved for %d ms",
				 c->conf.timeout_ms);
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		curl_slist_free_all(hdrs);
		resp->status = (int)status;
		resp->retries = attempt;
		{
			const char *d = http_headers_get(&resp->headers, "date");
			int64_t t = d ? http_parse_date(d) : -1;
			resp->server_date = t > 0 ? t : 0;
		}
		if (resp->server_date > 0)
			remember_date(c, resp->server_date);

		log_trace(LOGC_HTTP | c->conf.trace_comp,
			  "http %s %s%s%s -> %ld%s%s sent=%llu recv=%llu %lldms try=%d",
			  req->method ? req->method : "GET", turl, req->trace_key ? " key=" : "",
			  req->trace_key ? req->trace_key : "", status, cc ? " curl: " : "",
			  cc ? (errbuf[0] ? errbuf : curl_easy_strerror(cc)) : "",
			  (unsigned long long)x.sent, (unsigned long long)resp->body_bytes,
			  (long long)((now_us() - t0) / 1000), attempt + 1);

		if (x.src_err) {
			/* The body is no longer what was hashed and announced (the file
			 * shrank or failed): sending it again cannot help. */
			rc = x.src_err;
			lexfs_fail(err, LEXFS_E_STORAGE, -rc,
				   "%s %s: the request body could not be read (%s): its source "
				   "changed during the upload; not retried",
				   req->method ? req->method : "GET",
				   req->trace_key ? req->trace_key : turl, strerror(-rc));
			break;
		}
		if (x.sink_err) {
			/* The sink (or the body file) said stop: not a transport problem. */
			rc = x.sink_err;
			lexfs_fail(err, lexfs_errno_code(-rc), -rc, "transfer of %s stopped: %s",
				   req->trace_key ? req->trace_key : turl, strerror(-rc));
			break;
		}
		if (cc != CURLE_OK) {
			bool timeout = cc == CURLE_OPERATION_TIMEDOUT || x.stalled;

			retry = (curl_retryable(cc) || timeout) && x.delivered == 0;
			if (!retry || req->no_retry || attempt >= c->conf.max_retries) {
				int e = timeout ? ETIMEDOUT : EIO;
				rc = lexfs_fail(err, LEXFS_E_UNAVAILABLE, e,
						"%s %s failed after %d attempt%s: %s",
						req->method ? req->method : "GET", turl,
						attempt + 1, attempt ? "s" : "",
						errbuf[0] ? errbuf : curl_easy_strerror(cc));
				if (err)
					err->retryable = curl_retryable(cc) || timeout;
				break;
			}
		} else {
			if (status_retryable((int)status) ||
			    (is_retryable_body && (status < 200 || status >= 300 || !req->sink) &&
			     is_retryable_body(resp)))
				retry = true;
			if (retry && (x.delivered > 0 && status >= 200 && status < 300))
				retry = false;
			if (!retry || req->no_retry || attempt >= c->conf.max_retries) {
				rc = 0;
				break;
			}
			wait_ms = retry_after_ms(resp);
		}

		{
			int shift = attempt < 20 ? attempt : 20;
			uint64_t cap = (uint64_t)c->conf.retry_base_ms << shift;
			if (cap > (uint64_t)c->conf.retry_max_ms)
				cap = (uint64_t)c->conf.retry_max_ms;
			long jitter = (long)(xorshift(&seed) % (cap + 1));
			if (wait_ms < jitter)
				wait_ms = jitter;
		}
		log_debug("http: retrying %s %s in %ld ms (attempt %d, status %ld%s%s)",
			  req->method ? req->method : "GET", turl, wait_ms, attempt + 1, status,
			  cc ? ", " : "", cc ? curl_easy_strerror(cc) : "");
		sleep_ms(wait_ms);
		attempt++;
	}
	handle_put(c, h);
	return rc;
}

/* ---------- URI helpers ---------- */

static bool unreserved(unsigned char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

char *http_uri_encode(const char *s, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *p;

	if (!out)
		return NULL;
	p = out;
	for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
		if (unreserved(*q) || (keep_slash && *q == '/')) {
			*p++ = (char)*q;
		} else {
			*p++ = '%';
			*p++ = hex[*q >> 4];
			*p++ = hex[*q & 15];
		}
	}
	*p = '\0';
	return out;
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

char *http_uri_decode(const char *s, bool plus_space)
{
	size_t n = strlen(s);
	char *out = malloc(n + 1), *p;

	if (!out)
		return NULL;
	p = out;
	for (const char *q = s; *q; q++) {
		if (*q == '%') {
			int hi = hexval(q[1]), lo = hi >= 0 ? hexval(q[2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*p++ = (char)(hi * 16 + lo);
			q += 2;
		} else if (*q == '+' && plus_space) {
			*p++ = ' ';
		} else {
			*p++ = *q;
		}
	}
	*p = '\0';
	return out;
}

/* ---------- dates ---------- */

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
				      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };

void http_date(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm)) {
		out[0] = '\0';
		return;
	}
	snprintf(out, 32, "%s, %02d %s %04d %02d:%02d:%02d GMT", wdays[tm.tm_wday % 7],
		 tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
}

static int month_index(const char *m)
{
	for (int i = 0; i < 12; i++)
		if (strncasecmp(m, months[i], 3) == 0)
			return i;
	return -1;
}

static bool tm_valid(const struct tm *tm)
{
	return tm->tm_mon >= 0 && tm->tm_mon < 12 && tm->tm_mday >= 1 && tm->tm_mday <= 31 &&
	       tm->tm_hour >= 0 && tm->tm_hour < 24 && tm->tm_min >= 0 && tm->tm_min < 60 &&
	       tm->tm_sec >= 0 && tm->tm_sec <= 60 && tm->tm_year >= 70 && tm->tm_year < 8000;
}

int64_t http_parse_date(const char *s)
{
	struct tm tm;
	char wd[16], mon[8], tz[8];
	int d, y, hh, mm, ss, n = 0;

	memset(&tm, 0, sizeof(tm));
	if (!s)
		return -1;
	/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
	if (sscanf(s, "%15[A-Za-z], %d %7s %d %d:%d:%d %7s%n", wd, &d, mon, &y, &hh, &mm, &ss, tz,
		   &n) == 8 &&
	    n > 0) {
		/* fall through to common */
	} else if (sscanf(s, "%15[A-Za-z], %d-%3s-%d %d:%d:%d %7s", wd, &d, mon, &y, &hh, &mm,
			  &ss, tz) == 8) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
		if (y < 100)
			y += y < 70 ? 2000 : 1900;
	} else if (sscanf(s, "%15s %7s %d %d:%d:%d %d", wd, mon, &d, &hh, &mm, &ss, &y) == 7) {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		tz[0] = 'G';
		tz[1] = '\0';
	} else {
		return -1;
	}
	(void)wd;
	tm.tm_mon = month_index(mon);
	tm.tm_mday = d;
	tm.tm_year = y - 1900;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	if (!tm_valid(&tm))
		return -1;
	return (int64_t)timegm(&tm);
}

void http_iso8601(int64_t t, char out[20])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (!gmtime_r(&tt, &tm)) {
		out[0] = '\0';
		return;
	}
	/* Numeric fields only: strftime is locale-independent here. */
	if (strftime(out, 20, "%Y%m%dT%H%M%SZ", &tm) == 0)
		out[0] = '\0';
}

static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int64_t http_parse_iso8601(const char *s)
{
	struct tm tm;
	int y, mo, d, hh = 0, mm = 0, ss = 0, off = 0;
	const char *p = s;
	bool basic;

	if (!s)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (!digits(p, 4, &y))
		return -1;
	p += 4;
	basic = *p != '-';
	if (!basic)
		p++;
	if (!digits(p, 2, &mo))
		return -1;
	p += 2;
	if (!basic) {
		if (*p != '-')
			return -1;
		p++;
	}
	if (!digits(p, 2, &d))
		return -1;
	p += 2;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(p, 2, &hh))
			return -1;
		p += 2;
		if (!basic && *p == ':')
			p++;
		if (!digits(p, 2, &mm))
			return -1;
		p += 2;
		if (!basic && *p == ':')
			p++;
		if (!digits(p, 2, &ss))
			return -1;
		p += 2;
		if (*p == '.' || *p == ',') {
			p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		if (*p == 'Z' || *p == 'z') {
			p++;
		} else if (*p == '+' || *p == '-') {
			int oh, om = 0, sign = *p == '-' ? -1 : 1;
			p++;
			if (!digits(p, 2, &oh))
				return -1;
			p += 2;
			if (*p == ':')
				p++;
			if (*p && !digits(p, 2, &om))
				return -1;
			if (*p)
				p += 2;
			off = sign * (oh * 3600 + om * 60);
		}
	}
	if (*p != '\0')
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = hh;
	tm.tm_min = mm;
	tm.tm_sec = ss;
	if (!tm_valid(&tm))
		return -1;
	return (int64_t)timegm(&tm) - off;
}
