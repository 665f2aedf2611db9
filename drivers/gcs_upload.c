/* gcs_upload.c - GCS uploads: multipart/related for small objects, resumable
 * sessions for large ones and for the driver's multipart (mp_*) slots.
 *
 * Multipart = one resumable session. A session takes bytes in order, in chunks
 * that are multiples of 256 KiB (except the last), so:
 *
 *   state of a session (guarded by mpu->lock)
 *     sent        bytes committed by the server
 *     tail        < 256 KiB received but not sent (the unaligned end of the parts
 *                 so far); sent + tail.len == bytes of parts 1..next_part-1
 *     next_part   the part that may go up now; later parts wait in `pend`
 *                 (copied), earlier ones are re-sends of committed bytes (ignored)
 *   complete      sends tail as the final chunk with the total size
 *
 * A chunk that fails (transport error, 408/429/5xx) is not re-sent blindly: the
 * session is asked for its committed size ("bytes * / *" -> 308 Range) and only the
 * rest goes up again (session_put), so a failure costs a chunk, not the upload.
 * Such requests are sent with no_retry: the HTTP layer would re-send the whole chunk.
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

#include "drivers/gcs_int.h"
#include "src/crypto.h"
#include "src/log.h"

struct pending_part {
	unsigned partno;
	void *data;
	size_t len;
};

struct lexfs_mpu {
	pthread_mutex_t lock; /* guards everything below */
	char *key;
	char *session; /* session URI (secret-ish: never logged) */
	uint64_t sent;
	struct buf tail;
	unsigned next_part;
	struct pending_part *pend;
	size_t npend;
};

/* ---------- resumable sessions ---------- */

/* Start a session for key; *session: caller frees. */
static int session_start(struct lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
			 char **session, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct lexfs_src body = {0};
	struct buf q = BUF_INIT(0);
	char *json, *url;
	const char *loc;
	int ret;

	*session = NULL;
	json = gcs_resource_json(key, opts, opts && opts->meta);
	if (!json || buf_adds(&q, "uploadType=resumable") || gcs_kms_query(d, "kmsKeyName", &q)) {
		free(json);
		buf_free(&q);
		return -ENOMEM;
	}
	url = gcs_obj_url(d, "/upload/storage/v1", NULL, buf_cstr(&q));
	buf_free(&q);
	if (!url) {
		free(json);
		return -ENOMEM;
	}
	http_req_init(&req, "POST", url);
	http_resp_init(&resp);
	req.trace_key = key;
	body.buf = json;
	body.len = strlen(json);
	req.body = &body;
	ret = http_headers_set(&req.headers, "Content-Type", "application/json; charset=UTF-8");
	if (!ret && opts && opts->content_type)
		ret = http_headers_set(&req.headers, "X-Upload-Content-Type", opts->content_type);
	if (!ret)
		ret = gcs_perform(d, &req, &resp, err);
	if (!ret && resp.status != 200 && resp.status != 201)
		ret = gcs_error(&resp, "resumable start", key, err);
	if (!ret) {
		loc = http_headers_get(&resp.headers, "location");
		if (!loc || !*loc)
			ret = lexfs_fail(err, LEXFS_E_STORAGE, EIO,
					 "gcs: resumable start %.100s: no session Location", key);
		else
			*session = strdup(loc);
		if (!ret && !*session)
			ret = -ENOMEM;
	}
	free(json);
	http_req_free(&req);
	http_resp_free(&resp);
	return ret;
}

/* Committed size from a 308 reply's "Range: bytes=0-N" (0 when absent). */
static int committed_of(const struct http_resp *resp, uint64_t *out)
{
	const char *r = http_headers_get(&resp->headers, "range");
	const char *dash;
	char *end;
	uint64_t n;

	*out = 0;
	if (!r)
		return 0;
	dash = strchr(r, '-');
	if (strncmp(r, "bytes=0-", 8) || !dash)
		return -EIO;
	n = strtoull(dash + 1, &end, 10);
	if (end == dash + 1 || (*end && *end != ' '))
		return -EIO;
	*out = n + 1;
	return 0;
}

/* One PUT to the session. range: "bytes A-B/T", "bytes * /T" or "bytes * / *". */
static int session_request(struct lexfs_drv *d, const char *session, const char *key,
			   const struct lexfs_src *body, const char *range, struct http_resp *resp,
			   struct lexfs_err *err)
{
	struct http_req req;
	char *url = strdup(session);
	int ret;

	if (!url)
		return -ENOMEM;
	http_req_init(&req, "PUT", url);
	req.trace_key = key;
	req.body = body;
	req.no_retry = true; /* a failed chunk is resumed, not re-sent whole */
	ret = http_headers_set(&req.headers, "Content-Range", range);
	if (!ret)
		ret = gcs_perform(d, &req, resp, err);
	http_req_free(&req);
	return ret;
}

static bool transient_status(int status)
{
	return status == 408 || status == 429 || status >= 500;
}

/*
 * Send src as bytes [start, start + src->len) of the session; total is the object's
 * size when this is the last chunk, else UINT64_MAX. On a failure the committed
 * size is asked for and only what is missing is sent again. *final (may be NULL)
 * gets the object resource when the upload completed. 0 or -errno.
 */
static int session_put(struct lexfs_drv *d, const char *session, const char *key,
		       const struct lexfs_src *src, uint64_t start, uint64_t total, json_t **final,
		       struct lexfs_err *err)
{
	uint64_t end = start + src->len, pos = start, committed;
	int failures = 0, ret = 0;
	char range[96];

	if (final)
		*final = NULL;
	for (;;) {
		struct lexfs_src sub = *src;
		struct http_resp resp;
		bool failed = false;

		sub.len = end - pos;
		if (sub.buf)
			sub.buf = (const char *)src->buf + (pos - start);
		else
			sub.off = src->off + (off_t)(pos - start);
		if (sub.len == 0 && total != UINT64_MAX)
			snprintf(range, sizeof(range), "bytes */%" PRIu64, total);
		else if (total != UINT64_MAX)
			snprintf(range, sizeof(range), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
				 pos, end - 1, total);
		else if (sub.len == 0)
			return 0;
		else
			snprintf(range, sizeof(range), "bytes %" PRIu64 "-%" PRIu64 "/*", pos,
				 end - 1);
		http_resp_init(&resp);
		ret = session_request(d, session, key, &sub, range, &resp, err);
		if (ret == -ENOMEM || ret == -EACCES) {
			http_resp_free(&resp);
			return ret;
		}
		if (ret) {
			failed = true;
		} else if (resp.status == 200 || resp.status == 201) {
			if (final)
				*final = gcs_resp_json(&resp);
			http_resp_free(&resp);
			return 0;
		} else if (resp.status == 308) {
			ret = committed_of(&resp, &committed);
			if (!ret && committed >= end) {
				http_resp_free(&resp);
				return 0;
			}
			if (!ret && committed > pos)
				pos = committed; /* partial progress: go on */
			else
				failed = true;
		} else if (transient_status(resp.status)) {
			failed = true;
		} else {
			ret = gcs_error(&resp, "upload chunk", key, err);
			http_resp_free(&resp);
			return ret;
		}
		http_resp_free(&resp);
		if (!failed)
			continue;

		/* Ask the session how far it got, then send the rest. */
		for (;;) {
			if (++failures > d->max_retries)
				return lexfs_fail(err, LEXFS_E_UNAVAILABLE, EIO,
						  "gcs: upload of %.100s failed at offset %" PRIu64
						  " after %d attempts",
						  key, pos, failures);
			gcs_sleep_backoff(failures);
			http_resp_init(&resp);
			ret = session_request(d, session, key, NULL, "bytes */*", &resp, err);
			if (!ret && (resp.status == 200 || resp.status == 201)) {
				if (final)
					*final = gcs_resp_json(&resp);
				http_resp_free(&resp);
				return 0;
			}
			if (!ret && resp.status == 308 && !committed_of(&resp, &committed)) {
				http_resp_free(&resp);
				break;
			}
			if (!ret && !transient_status(resp.status)) {
				ret = gcs_error(&resp, "upload status", key, err);
				http_resp_free(&resp);
				return ret;
			}
			http_resp_free(&resp);
		}
		if (committed < start || committed > end)
			return lexfs_fail(err, LEXFS_E_STORAGE, EIO,
					  "gcs: upload of %.100s: session committed %" PRIu64
					  " bytes, outside this chunk [%" PRIu64 ", %" PRIu64 ")",
					  key, committed, start, end);
		log_notice("gcs: upload chunk of %.100s failed; session has %" PRIu64
			   " bytes, resuming from there",
			   key, committed);
		pos = committed;
		if (pos == end && total == UINT64_MAX)
			return 0;
	}
}

static void session_cancel(struct lexfs_drv *d, const char *session, const char *key)
{
	struct http_req req;
	struct http_resp resp;
	char *url = strdup(session);

	if (!url)
		return;
	http_req_init(&req, "DELETE", url);
	http_resp_init(&resp);
	req.trace_key = key;
	if (gcs_perform(d, &req, &resp, NULL) == 0 && resp.status != 499 && resp.status != 204 &&
	    resp.status != 200 && resp.status != 404)
		log_debug("gcs: cancel of upload %.100s -> HTTP %d", key, resp.status);
	http_req_free(&req);
	http_resp_free(&resp);
}

/* ---------- upload ---------- */

static int upload_multipart(struct lexfs_drv *d, const char *key, const struct lexfs_src *src,
			    const struct lexfs_put_opts *opts, json_t **res, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct lexfs_src body = {0};
	struct buf b = BUF_INIT(0), q = BUF_INIT(0);
	uint8_t rnd[12];
	char boundary[64], hex[25], ctype[128], *json = NULL, *url = NULL, *data = NULL;
	int ret = -ENOMEM;

	*res = NULL;
	if (crypto_random(rnd, sizeof(rnd)))
		return -EIO;
	crypto_hex(rnd, sizeof(rnd), hex);
	snprintf(boundary, sizeof(boundary), "lexfs_%s", hex);
	json = gcs_resource_json(key, opts, opts && opts->meta);
	data = malloc(src->len ? src->len : 1);
	if (!json || !data)
		goto out;
	ret = src_read(src, 0, data, src->len);
	if (ret)
		goto out;
	ret = -ENOMEM;
	if (buf_addf(&b,
		     "--%s\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n%s\r\n"
		     "--%s\r\nContent-Type: %s\r\n\r\n",
		     boundary, json, boundary,
		     opts && opts->content_type ? opts->content_type
						: "application/octet-stream") ||
	    buf_add(&b, data, src->len) || buf_addf(&b, "\r\n--%s--\r\n", boundary))
		goto out;
	if (buf_adds(&q, "uploadType=multipart") || gcs_kms_query(d, "kmsKeyName", &q))
		goto out;
	url = gcs_obj_url(d, "/upload/storage/v1", NULL, buf_cstr(&q));
	if (!url)
		goto out;
	http_req_init(&req, "POST", url);
	http_resp_init(&resp);
	req.trace_key = key;
	body.buf = b.data;
	body.len = b.len;
	req.body = &body;
	snprintf(ctype, sizeof(ctype), "multipart/related; boundary=%s", boundary);
	ret = http_headers_set(&req.headers, "Content-Type", ctype);
	if (!ret)
		ret = gcs_perform(d, &req, &resp, err);
	if (!ret && resp.status != 200)
		ret = gcs_error(&resp, "upload", key, err);
	if (!ret)
		*res = gcs_resp_json(&resp);
	http_req_free(&req);
	http_resp_free(&resp);
out:
	free(json);
	free(data);
	buf_free(&b);
	buf_free(&q);
	return ret;
}

int gcs_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
	       const struct lexfs_put_opts *opts, struct lexfs_objinfo *out, struct lexfs_err *err)
{
	json_t *res = NULL;
	char *session = NULL;
	int ret;

	if (src->len <= GCS_SIMPLE_MAX) {
		ret = upload_multipart(d, key, src, opts, &res, err);
	} else {
		ret = session_start(d, key, opts, &session, err);
		for (uint64_t pos = 0; !ret && pos < src->len; pos += GCS_CHUNK) {
			struct lexfs_src part = *src;
			uint64_t n = src->len - pos < GCS_CHUNK ? src->len - pos : GCS_CHUNK;
			bool last = pos + n == src->len;

			part.len = n;
			if (part.buf)
				part.buf = (const char *)src->buf + pos;
			else
				part.off = src->off + (off_t)pos;
			ret = session_put(d, session, key, &part, pos, last ? src->len : UINT64_MAX,
					  last ? &res : NULL, err);
		}
		if (ret && session)
			session_cancel(d, session, key);
	}
	if (!ret && out && res)
		ret = gcs_fill_info(res, out);
	json_decref(res);
	free(session);
	return ret;
}

/* ---------- multipart = one resumable session ---------- */

static void mpu_free(struct lexfs_mpu *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->npend; i++)
		free(m->pend[i].data);
	free(m->pend);
	buf_free(&m->tail);
	free(m->session);
	free(m->key);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

int gcs_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts, lexfs_mpu **out,
		 struct lexfs_err *err)
{
	struct lexfs_mpu *m;
	int ret;

	*out = NULL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	buf_init(&m->tail, GCS_ALIGN + 1);
	m->next_part = 1;
	m->key = strdup(key);
	if (!m->key) {
		mpu_free(m);
		return -ENOMEM;
	}
	ret = session_start(d, key, opts, &m->session, err);
	if (ret) {
		mpu_free(m);
		return ret;
	}
	*out = m;
	return 0;
}

/* Send one in-order part: tail + part, aligned prefix up now, the rest kept. Lock held. */
static int mpu_send(struct lexfs_drv *d, struct lexfs_mpu *m, const struct lexfs_src *src,
		    struct lexfs_err *err)
{
	uint64_t total = m->tail.len + src->len;
	uint64_t aligned = total / GCS_ALIGN * GCS_ALIGN;
	uint64_t from_src = aligned - m->tail.len; /* bytes of src in this chunk */
	struct lexfs_src chunk = *src;
	char *joined = NULL, *rest = NULL;
	uint64_t nrest = src->len - from_src;
	int ret;

	if (aligned == 0) {
		/* Not a chunk yet: keep it all for later. */
		joined = malloc(src->len ? src->len : 1);
		if (!joined)
			return -ENOMEM;
		ret = src_read(src, 0, joined, src->len);
		if (!ret)
			ret = buf_add(&m->tail, joined, src->len);
		free(joined);
		return ret;
	}
	if (m->tail.len) {
		joined = malloc(aligned);
		if (!joined)
			return -ENOMEM;
		memcpy(joined, m->tail.data, m->tail.len);
		ret = src_read(src, 0, joined + m->tail.len, from_src);
		if (ret)
			goto out;
		memset(&chunk, 0, sizeof(chunk));
		chunk.buf = joined;
	}
	chunk.len = aligned;
	if (nrest) {
		rest = malloc(nrest);
		if (!rest) {
			ret = -ENOMEM;
			goto out;
		}
		ret = src_read(src, from_src, rest, nrest);
		if (ret)
			goto out;
	}
	ret = session_put(d, m->session, m->key, &chunk, m->sent, UINT64_MAX, NULL, err);
	if (ret)
		goto out;
	m->sent += aligned;
	buf_reset(&m->tail);
	if (nrest)
		ret = buf_add(&m->tail, rest, nrest);
out:
	free(joined);
	free(rest);
	return ret;
}

int gcs_mp_part(lexfs_drv *d, lexfs_mpu *m, unsigned partno, const struct lexfs_src *src,
		struct lexfs_err *err)
{
	int ret = 0;

	pthread_mutex_lock(&m->lock);
	if (partno < m->next_part) {
		/* Already committed: the session cannot take it again. */
		log_debug("gcs: part %u of %.100s re-sent after commit; ignored", partno, m->key);
		goto out;
	}
	if (partno > m->next_part) {
		/* Out of order: hold a copy until its turn. */
		struct pending_part *p = NULL;

		for (size_t i = 0; i < m->npend; i++)
			if (m->pend[i].partno == partno)
				p = &m->pend[i];
		if (!p) {
			p = realloc(m->pend, (m->npend + 1) * sizeof(*p));
			if (!p) {
				ret = -ENOMEM;
				goto out;
			}
			m->pend = p;
			p = &m->pend[m->npend++];
			p->partno = partno;
		} else {
			free(p->data);
		}
		p->len = src->len;
		p->data = malloc(src->len ? src->len : 1);
		if (!p->data)
			ret = -ENOMEM;
		else
			ret = src_read(src, 0, p->data, src->len);
		if (ret) {
			free(p->data);
			*p = m->pend[--m->npend];
		}
		goto out;
	}
	ret = mpu_send(d, m, src, err);
	if (ret)
		goto out;
	m->next_part++;
	for (bool more = true; more && !ret;) {
		more = false;
		for (size_t i = 0; i < m->npend; i++) {
			if (m->pend[i].partno != m->next_part)
				continue;
			struct lexfs_src ps = {.buf = m->pend[i].data, .len = m->pend[i].len};

			ret = mpu_send(d, m, &ps, err);
			if (ret)
				break;
			free(m->pend[i].data);
			m->pend[i] = m->pend[--m->npend];
			m->next_part++;
			more = true;
			break;
		}
	}
out:
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int gcs_mp_complete(lexfs_drv *d, lexfs_mpu *m, unsigned nparts, struct lexfs_objinfo *out,
		    struct lexfs_err *err)
{
	struct lexfs_src last = {0};
	json_t *res = NULL;
	int ret;

	if (m->next_part != nparts + 1 || m->npend) {
		ret = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				 "gcs: complete %.100s: %u parts announced, %u sent in order",
				 m->key, nparts, m->next_part - 1);
		session_cancel(d, m->session, m->key);
		mpu_free(m);
		return ret;
	}
	last.buf = m->tail.data ? m->tail.data : "";
	last.len = m->tail.len;
	ret = session_put(d, m->session, m->key, &last, m->sent, m->sent + m->tail.len, &res, err);
	if (!ret && out && res)
		ret = gcs_fill_info(res, out);
	if (ret)
		session_cancel(d, m->session, m->key);
	json_decref(res);
	mpu_free(m);
	return ret;
}

int gcs_mp_abort(lexfs_drv *d, lexfs_mpu *m, struct lexfs_err *err)
{
	session_cancel(d, m->session, m->key);
	mpu_free(m);
	return 0;
}
