/* sigv4.c - AWS Signature Version 4, see sigv4.h for what is signed. */
#include "src/sigv4.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "src/crypto.h"

#define ALGO "AWS4-HMAC-SHA256"

struct kv {
	char *k;
	char *v;
};

struct kvlist {
	struct kv *v;
	size_t n;
};

static void kvlist_free(struct kvlist *l)
{
	for (size_t i = 0; i < l->n; i++) {
		free(l->v[i].k);
		free(l->v[i].v);
	}
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* Append, taking k and v (freed on failure). */
static int kvlist_add(struct kvlist *l, char *k, char *v)
{
	struct kv *nv;

	if (!k || !v)
		goto nomem;
	nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		goto nomem;
	l->v = nv;
	l->v[l->n].k = k;
	l->v[l->n].v = v;
	l->n++;
	return 0;
nomem:
	free(k);
	free(v);
	return -ENOMEM;
}

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	int c = strcmp(x->k, y->k);
	return c ? c : strcmp(x->v, y->v);
}

void sigv4_trace_init(struct sigv4_trace *tr)
{
	memset(tr, 0, sizeof(*tr));
	buf_init(&tr->canonical_request, 0);
	buf_init(&tr->string_to_sign, 0);
}

void sigv4_trace_free(struct sigv4_trace *tr)
{
	buf_free(&tr->canonical_request);
	buf_free(&tr->string_to_sign);
}

int sigv4_init(struct sigv4 *s, const char *region, const char *service)
{
	memset(s, 0, sizeof(*s));
	if (!region || !*region || strlen(region) >= sizeof(s->region) || !service ||
	    strlen(service) >= sizeof(s->service))
		return -EINVAL;
	snprintf(s->region, sizeof(s->region), "%s", region);
	snprintf(s->service, sizeof(s->service), "%s", service);
	if (pthread_mutex_init(&s->lock, NULL))
		return -ENOMEM;
	return 0;
}

void sigv4_destroy(struct sigv4 *s)
{
	pthread_mutex_destroy(&s->lock);
	memset(s->key, 0, sizeof(s->key));
}

int64_t sigv4_now(struct sigv4 *s)
{
	int64_t skew;

	pthread_mutex_lock(&s->lock);
	skew = s->skew_s;
	pthread_mutex_unlock(&s->lock);
	return (int64_t)time(NULL) + skew;
}

void sigv4_set_skew(struct sigv4 *s, int64_t server_time)
{
	if (server_time <= 0)
		return;
	pthread_mutex_lock(&s->lock);
	s->skew_s = server_time - (int64_t)time(NULL);
	pthread_mutex_unlock(&s->lock);
}

/* The derived signing key for date (YYYYMMDD), cached. */
static void signing_key(struct sigv4 *s, const char *secret, const char *date,
			uint8_t out[SHA256_LEN])
{
	char scope[128], k0[256];
	uint8_t sh[SHA256_LEN], k[SHA256_LEN];
	int n;

	snprintf(scope, sizeof(scope), "%s/%s/%s", date, s->region, s->service);
	crypto_sha256(secret, strlen(secret), sh);
	pthread_mutex_lock(&s->lock);
	if (strcmp(scope, s->key_scope) == 0 && memcmp(sh, s->key_secret, sizeof(sh)) == 0) {
		memcpy(out, s->key, SHA256_LEN);
		pthread_mutex_unlock(&s->lock);
		return;
	}
	pthread_mutex_unlock(&s->lock);

	n = snprintf(k0, sizeof(k0), "AWS4%s", secret);
	if (n < 0 || (size_t)n >= sizeof(k0))
		n = (int)sizeof(k0) - 1;
	crypto_hmac_sha256(k0, (size_t)n, date, strlen(date), k);
	crypto_hmac_sha256(k, SHA256_LEN, s->region, strlen(s->region), k);
	crypto_hmac_sha256(k, SHA256_LEN, s->service, strlen(s->service), k);
	crypto_hmac_sha256(k, SHA256_LEN, "aws4_request", 12, k);
	memset(k0, 0, sizeof(k0));
	memcpy(out, k, SHA256_LEN);

	pthread_mutex_lock(&s->lock);
	snprintf(s->key_scope, sizeof(s->key_scope), "%s", scope);
	memcpy(s->key_secret, sh, sizeof(sh));
	memcpy(s->key, k, SHA256_LEN);
	pthread_mutex_unlock(&s->lock);
}

/* Split url into host header value (lower case, default port dropped), path (as
 * sent, "/" when empty) and query (without '?', "" when none). Caller frees all. */
static int url_split(const char *url, char **host, char **path, char **query)
{
	const char *p = strstr(url, "://"), *auth, *auth_end, *at, *hp, *port = NULL;
	const char *path_start, *q, *frag;
	bool https;
	char *h;
	size_t hn;

	*host = *path = *query = NULL;
	if (!p)
		return -EINVAL;
	https = (size_t)(p - url) == 5 && strncasecmp(url, "https", 5) == 0;
	auth = p + 3;
	auth_end = auth + strcspn(auth, "/?#");
	at = memchr(auth, '@', (size_t)(auth_end - auth));
	hp = at ? at + 1 : auth;
	if (*hp == '[') {
		const char *rb = memchr(hp, ']', (size_t)(auth_end - hp));
		if (!rb)
			return -EINVAL;
		if (rb + 1 < auth_end && rb[1] == ':')
			port = rb + 1;
	} else {
		port = memchr(hp, ':', (size_t)(auth_end - hp));
	}
	hn = (size_t)((port ? port : auth_end) - hp);
	if (port) {
		size_t pl = (size_t)(auth_end - port - 1);
		bool dflt = (https && pl == 3 && strncmp(port + 1, "443", 3) == 0) ||
			    (!https && pl == 2 && strncmp(port + 1, "80", 2) == 0) || pl == 0;
		if (!dflt)
			hn = (size_t)(auth_end - hp);
	}
	h = strndup(hp, hn);
	if (!h)
		return -ENOMEM;
	for (char *c = h; *c; c++)
		*c = (char)tolower((unsigned char)*c);

	path_start = auth_end;
	frag = path_start + strcspn(path_start, "#");
	q = memchr(path_start, '?', (size_t)(frag - path_start));
	*path = (q ? q : frag) == path_start ? strdup("/") :
					       strndup(path_start, (size_t)((q ? q : frag) - path_start));
	*query = q ? strndup(q + 1, (size_t)(frag - q - 1)) : strdup("");
	*host = h;
	if (!*path || !*query) {
		free(*path);
		free(*query);
		free(h);
		*host = *path = *query = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* Re-encode one query component strictly (decode first; undecodable text is
 * encoded as it stands). Caller frees. */
static char *qs_component(const char *s, size_t n)
{
	char *raw = strndup(s, n), *dec, *enc;

	if (!raw)
		return NULL;
	dec = http_uri_decode(raw, false);
	enc = http_uri_encode(dec ? dec : raw, false);
	free(dec);
	free(raw);
	return enc;
}

/* Parse a query string into strictly encoded (name, value) pairs, in order. */
static int parse_query(const char *q, struct kvlist *out)
{
	const char *p = q;

	while (*p) {
		size_t n = strcspn(p, "&");
		if (n > 0) {
			const char *eq = memchr(p, '=', n);
			size_t kn = eq ? (size_t)(eq - p) : n;
			char *k = qs_component(p, kn);
			char *v = eq ? qs_component(eq + 1, n - kn - 1) : strdup("");
			if (kvlist_add(out, k, v))
				return -ENOMEM;
		}
		p += n;
		if (*p == '&')
			p++;
	}
	return 0;
}

static int canonical_query(struct kvlist *l, struct buf *b)
{
	int rc = 0;

	if (l->n > 1)
		qsort(l->v, l->n, sizeof(*l->v), kv_cmp);
	for (size_t i = 0; i < l->n && !rc; i++)
		rc = buf_addf(b, "%s%s=%s", i ? "&" : "", l->v[i].k, l->v[i].v);
	return rc;
}

static bool header_unsigned(const char *lname)
{
	return strcmp(lname, "authorization") == 0 || strcmp(lname, "expect") == 0 ||
	       strcmp(lname, "user-agent") == 0 || strcmp(lname, "x-amzn-trace-id") == 0 ||
	       strcmp(lname, "host") == 0;
}

/* Trimall: strip both ends, collapse inner white space runs to one space. */
static char *trimall(const char *v)
{
	char *out = malloc(strlen(v) + 1), *o;
	bool space = false;

	if (!out)
		return NULL;
	o = out;
	for (const char *p = v; *p; p++) {
		if (isspace((unsigned char)*p)) {
			space = o != out;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = false;
		*o++ = *p;
	}
	*o = '\0';
	return out;
}

/* Canonical headers and the signed-header list from host + req headers. */
static int canonical_headers(const char *host, const struct http_headers *h, struct buf *canon,
			     struct buf *names)
{
	struct kvlist l = { 0 };
	int rc;

	rc = kvlist_add(&l, strdup("host"), strdup(host));
	for (size_t i = 0; h && i < h->n && !rc; i++) {
		char *ln = strdup(h->v[i].name);
		if (!ln) {
			rc = -ENOMEM;
			break;
		}
		for (char *c = ln; *c; c++)
			*c = (char)tolower((unsigned char)*c);
		if (header_unsigned(ln)) {
			free(ln);
			continue;
		}
		rc = kvlist_add(&l, ln, trimall(h->v[i].value));
	}
	if (!rc && l.n > 1)
		qsort(l.v, l.n, sizeof(*l.v), kv_cmp);
	for (size_t i = 0; i < l.n && !rc; i++) {
		rc = buf_addf(canon, "%s:%s\n", l.v[i].k, l.v[i].v);
		if (!rc)
			rc = buf_addf(names, "%s%s", i ? ";" : "", l.v[i].k);
	}
	kvlist_free(&l);
	return rc;
}

/* From the canonical request: string to sign and hex signature. */
static int finish(struct sigv4 *s, const struct sigv4_creds *cr, const char *amzdate,
		  const char *creq, size_t creqlen, struct buf *sts, char sig[65])
{
	char date[9], hex[2 * SHA256_LEN + 1];
	uint8_t h[SHA256_LEN], key[SHA256_LEN];
	int rc;

	memcpy(date, amzdate, 8);
	date[8] = '\0';
	crypto_sha256(creq, creqlen, h);
	crypto_hex(h, SHA256_LEN, hex);
	rc = buf_addf(sts, ALGO "\n%s\n%s/%s/%s/aws4_request\n%s", amzdate, date, s->region,
		      s->service, hex);
	if (rc)
		return rc;
	signing_key(s, cr->secret_key, date, key);
	crypto_hmac_sha256(key, SHA256_LEN, sts->data, sts->len, h);
	memset(key, 0, sizeof(key));
	crypto_hex(h, SHA256_LEN, sig);
	return 0;
}

static bool creds_ok(const struct sigv4_creds *cr)
{
	return cr && cr->access_key && *cr->access_key && cr->secret_key && *cr->secret_key &&
	       strlen(cr->secret_key) < 200;
}

int sigv4_sign_request(struct sigv4 *s, const struct sigv4_creds *cr, struct http_req *req,
		       const char *payload_hash, int64_t now, struct sigv4_trace *tr)
{
	char *host = NULL, *path = NULL, *query = NULL;
	char amzdate[20], sig[65], date[9];
	struct buf creq = BUF_INIT(0), sts = BUF_INIT(0), names = BUF_INIT(0);
	struct buf canon = BUF_INIT(0), auth = BUF_INIT(0);
	struct kvlist q = { 0 };
	int rc;

	if (!creds_ok(cr))
		return -EINVAL;
	if (!payload_hash)
		payload_hash = SIGV4_UNSIGNED_PAYLOAD;
	rc = url_split(req->url, &host, &path, &query);
	if (rc)
		return rc;
	http_iso8601(now, amzdate);
	memcpy(date, amzdate, 8);
	date[8] = '\0';

	/* Drop what a previous attempt added, then set this attempt's values. */
	rc = http_headers_set(&req->headers, "x-amz-date", amzdate);
	if (!rc)
		rc = http_headers_set(&req->headers, "x-amz-content-sha256", payload_hash);
	if (!rc && cr->session_token && *cr->session_token)
		rc = http_headers_set(&req->headers, "x-amz-security-token", cr->session_token);
	if (rc)
		goto out;

	rc = parse_query(query, &q);
	if (!rc)
		rc = buf_addf(&creq, "%s\n%s\n", req->method ? req->method : "GET", path);
	if (!rc)
		rc = canonical_query(&q, &creq);
	if (!rc)
		rc = canonical_headers(host, &req->headers, &canon, &names);
	if (!rc)
		rc = buf_addf(&creq, "\n%s\n%s\n%s", buf_cstr(&canon), buf_cstr(&names),
			      payload_hash);
	if (!rc)
		rc = finish(s, cr, amzdate, creq.data, creq.len, &sts, sig);
	if (!rc)
		rc = buf_addf(&auth, ALGO " Credential=%s/%s/%s/%s/aws4_request, "
				     "SignedHeaders=%s, Signature=%s",
			      cr->access_key, date, s->region, s->service, buf_cstr(&names), sig);
	if (!rc)
		rc = http_headers_set(&req->headers, "Authorization", buf_cstr(&auth));
	if (!rc && tr) {
		buf_reset(&tr->canonical_request);
		buf_reset(&tr->string_to_sign);
		rc = buf_add(&tr->canonical_request, creq.data, creq.len);
		if (!rc)
			rc = buf_add(&tr->string_to_sign, sts.data, sts.len);
		memcpy(tr->signature, sig, sizeof(sig));
	}
out:
	kvlist_free(&q);
	buf_free(&creq);
	buf_free(&sts);
	buf_free(&names);
	buf_free(&canon);
	buf_free(&auth);
	free(host);
	free(path);
	free(query);
	return rc;
}

int sigv4_presign(struct sigv4 *s, const struct sigv4_creds *cr, const char *method,
		  const char *url, int64_t expires_s, int64_t now, char **out,
		  struct sigv4_trace *tr)
{
	char *host = NULL, *path = NULL, *query = NULL;
	char amzdate[20], sig[65], date[9], exp[24], cred[512];
	struct buf creq = BUF_INIT(0), sts = BUF_INIT(0), canon = BUF_INIT(0);
	struct buf names = BUF_INIT(0), res = BUF_INIT(0);
	struct kvlist q = { 0 };
	size_t base_len;
	int rc;

	*out = NULL;
	if (!creds_ok(cr) || expires_s < 1 || expires_s > SIGV4_PRESIGN_MAX_S)
		return -EINVAL;
	rc = url_split(url, &host, &path, &query);
	if (rc)
		return rc;
	http_iso8601(now, amzdate);
	memcpy(date, amzdate, 8);
	date[8] = '\0';
	snprintf(exp, sizeof(exp), "%lld", (long long)expires_s);
	snprintf(cred, sizeof(cred), "%s/%s/%s/%s/aws4_request", cr->access_key, date, s->region,
		 s->service);

	/* The operation's own parameters first, then the auth parameters, in
	 * botocore's order (the URL text matches byte for byte). */
	rc = parse_query(query, &q);

	if (!rc)
		rc = kvlist_add(&q, strdup("X-Amz-Algorithm"), strdup(ALGO));
	if (!rc)
		rc = kvlist_add(&q, strdup("X-Amz-Credential"), http_uri_encode(cred, false));
	if (!rc)
		rc = kvlist_add(&q, strdup("X-Amz-Date"), strdup(amzdate));
	if (!rc)
		rc = kvlist_add(&q, strdup("X-Amz-Expires"), strdup(exp));
	if (!rc)
		rc = kvlist_add(&q, strdup("X-Amz-SignedHeaders"), strdup("host"));
	if (!rc && cr->session_token && *cr->session_token)
		rc = kvlist_add(&q, strdup("X-Amz-Security-Token"),
				http_uri_encode(cr->session_token, false));
	if (rc)
		goto out;

	base_len = strcspn(url, "?#");
	rc = buf_add(&res, url, base_len);
	for (size_t i = 0; i < q.n && !rc; i++)
		rc = buf_addf(&res, "%c%s=%s", i ? '&' : '?', q.v[i].k, q.v[i].v);

	if (!rc)
		rc = buf_addf(&creq, "%s\n%s\n", method ? method : "GET", path);
	if (!rc)
		rc = canonical_query(&q, &creq);
	if (!rc)
		rc = canonical_headers(host, NULL, &canon, &names);
	if (!rc)
		rc = buf_addf(&creq, "\n%s\n%s\n" SIGV4_UNSIGNED_PAYLOAD, buf_cstr(&canon),
			      buf_cstr(&names));
	if (!rc)
		rc = finish(s, cr, amzdate, creq.data, creq.len, &sts, sig);
	if (!rc)
		rc = buf_addf(&res, "&X-Amz-Signature=%s", sig);
	if (!rc && tr) {
		buf_reset(&tr->canonical_request);
		buf_reset(&tr->string_to_sign);
		rc = buf_add(&tr->canonical_request, creq.data, creq.len);
		if (!rc)
			rc = buf_add(&tr->string_to_sign, sts.data, sts.len);
		memcpy(tr->signature, sig, sizeof(sig));
	}
	if (!rc)
		*out = buf_steal(&res);
	if (!rc && !*out)
		rc = -ENOMEM;
out:
	kvlist_free(&q);
	buf_free(&creq);
	buf_free(&sts);
	buf_free(&canon);
	buf_free(&names);
	buf_free(&res);
	free(host);
	free(path);
	free(query);
	return rc;
}
