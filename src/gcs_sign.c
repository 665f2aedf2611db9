/* gcs_sign.c - service-account keys, RS256 and V4 signed URLs (see gcs_sign.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "src/buf.h"
#include "src/crypto.h"
#include "src/gcs_sign.h"
#include "src/http.h"

#define GCS_V4_ALGO "GOOG4-RSA-SHA256"
#define GCS_V4_MAX_EXPIRES 604800 /* seven days, Google's limit */

struct gcs_key {
	EVP_PKEY *pkey;
	char *email;
};

int gcs_key_load_pem(const char *pem, const char *client_email, struct gcs_key **out)
{
	struct gcs_key *k;
	BIO *bio;

	*out = NULL;
	if (!pem || !client_email)
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->email = strdup(client_email);
	if (!k->email)
		goto nomem;
	bio = BIO_new_mem_buf(pem, -1);
	if (!bio)
		goto nomem;
	k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (!k->pkey || EVP_PKEY_base_id(k->pkey) != EVP_PKEY_RSA) {
		gcs_key_free(k);
		return -EINVAL;
	}
	*out = k;
	return 0;
nomem:
	gcs_key_free(k);
	return -ENOMEM;
}

void gcs_key_free(struct gcs_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k->email);
	free(k);
}

const char *gcs_key_email(const struct gcs_key *k)
{
	return k->email;
}

int gcs_rs256_sign(const struct gcs_key *k, const void *data, size_t len, uint8_t **sig,
		   size_t *siglen)
{
	EVP_MD_CTX *ctx;
	uint8_t *s = NULL;
	size_t n = 0;
	int ret = -EIO;

	*sig = NULL;
	*siglen = 0;
	ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	if (EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, k->pkey) != 1)
		goto out;
	if (EVP_DigestSign(ctx, NULL, &n, data, len) != 1)
		goto out;
	s = malloc(n);
	if (!s) {
		ret = -ENOMEM;
		goto out;
	}
	if (EVP_DigestSign(ctx, s, &n, data, len) != 1)
		goto out;
	*sig = s;
	*siglen = n;
	s = NULL;
	ret = 0;
out:
	free(s);
	EVP_MD_CTX_free(ctx);
	return ret;
}

/* Base64url of a JSON text (JWT segment), appended to b. */
static int add_b64url(struct buf *b, const void *data, size_t len)
{
	char *enc = crypto_base64url(data, len);
	int ret;

	if (!enc)
		return -ENOMEM;
	ret = buf_adds(b, enc);
	free(enc);
	return ret;
}

/* JSON string escaping of the few claim values (emails, URLs, scopes). */
static int add_json_str(struct buf *b, const char *s)
{
	int ret = buf_adds(b, "\"");

	for (; !ret && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			ret = buf_addf(b, "\\%c", c);
		else if (c < 0x20)
			ret = buf_addf(b, "\\u%04x", c);
		else
			ret = buf_add(b, s, 1);
	}
	return ret ? ret : buf_adds(b, "\"");
}

int gcs_jwt_assertion(const struct gcs_key *k, const char *scope, const char *aud, int64_t now,
		      int64_t lifetime, char **jwt)
{
	static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
	struct buf claims = BUF_INIT(0), out = BUF_INIT(0);
	uint8_t *sig = NULL;
	size_t siglen;
	int ret;

	*jwt = NULL;
	ret = buf_adds(&claims, "{\"iss\":");
	if (!ret)
		ret = add_json_str(&claims, k->email);
	if (!ret)
		ret = buf_adds(&claims, ",\"scope\":");
	if (!ret)
		ret = add_json_str(&claims, scope);
	if (!ret)
		ret = buf_adds(&claims, ",\"aud\":");
	if (!ret)
		ret = add_json_str(&claims, aud);
	if (!ret)
		ret = buf_addf(&claims, ",\"iat\":%lld,\"exp\":%lld}", (long long)now,
			       (long long)(now + lifetime));
	if (!ret)
		ret = add_b64url(&out, header, sizeof(header) - 1);
	if (!ret)
		ret = buf_adds(&out, ".");
	if (!ret)
		ret = add_b64url(&out, claims.data, claims.len);
	if (ret)
		goto out;
	ret = gcs_rs256_sign(k, out.data, out.len, &sig, &siglen);
	if (ret)
		goto out;
	ret = buf_adds(&out, ".");
	if (!ret)
		ret = add_b64url(&out, sig, siglen);
	if (!ret)
		*jwt = buf_steal(&out);
out:
	free(sig);
	buf_free(&claims);
	buf_free(&out);
	return ret;
}

int gcs_endpoint_parse(const char *spec, const char *default_scheme, struct gcs_endpoint *out)
{
	const char *p = spec, *sep, *colon;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (!spec || !*spec)
		return -EINVAL;
	sep = strstr(spec, "://");
	if (sep) {
		n = (size_t)(sep - spec);
		if (!((n == 4 && !strncmp(spec, "http", 4)) ||
		      (n == 5 && !strncmp(spec, "https", 5))))
			return -EINVAL;
		memcpy(out->scheme, spec, n);
		p = sep + 3;
	} else {
		snprintf(out->scheme, sizeof(out->scheme), "%s", default_scheme);
	}
	n = strcspn(p, "/?#");
	if (n == 0 || n >= sizeof(out->authority))
		return -EINVAL;
	/* Only a bare "/" may follow: a path prefix is not supported. */
	if (p[n] && strcmp(p + n, "/"))
		return -EINVAL;
	memcpy(out->authority, p, n);
	out->authority[n] = '\0';
	if (out->authority[0] == '[') {
		colon = strchr(out->authority, ']');
		if (!colon)
			return -EINVAL;
		n = (size_t)(colon - out->authority) + 1;
	} else {
		colon = strrchr(out->authority, ':');
		n = colon ? (size_t)(colon - out->authority) : strlen(out->authority);
	}
	memcpy(out->host, out->authority, n);
	out->host[n] = '\0';
	return 0;
}

int gcs_endpoint_resolve(const char *setting, const char *emulator_host, struct gcs_endpoint *out)
{
	if (setting && *setting)
		return gcs_endpoint_parse(setting, "https", out);
	if (emulator_host && *emulator_host)
		return gcs_endpoint_parse(emulator_host, "http", out);
	return gcs_endpoint_parse("https://storage.googleapis.com", "https", out);
}

/* A header or query pair in canonical form. */
struct canon {
	char *name;
	char *value;
};

static int canon_cmp(const void *a, const void *b)
{
	const struct canon *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : strcmp(x->value, y->value);
}

static void canon_free(struct canon *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].name);
		free(v[i].value);
	}
	free(v);
}

/* Header value: trimmed, runs of blanks folded into one space. Caller frees. */
static char *fold_value(const char *s)
{
	char *out = malloc(strlen(s) + 1), *p = out;
	bool blank = false;

	if (!out)
		return NULL;
	while (*s == ' ' || *s == '\t')
		s++;
	for (; *s; s++) {
		if (*s == ' ' || *s == '\t') {
			blank = true;
			continue;
		}
		if (blank)
			*p++ = ' ';
		blank = false;
		*p++ = *s;
	}
	*p = '\0';
	return out;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);

	for (char *p = d; p && *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return d;
}

static int add_canon(struct canon *v, size_t *n, char *name, char *value)
{
	if (!name || !value) {
		free(name);
		free(value);
		return -ENOMEM;
	}
	v[*n].name = name;
	v[*n].value = value;
	(*n)++;
	return 0;
}

void gcs_v4_out_free(struct gcs_v4_out *o)
{
	free(o->url);
	free(o->canonical_request);
	free(o->string_to_sign);
	memset(o, 0, sizeof(*o));
}

int gcs_v4_sign(const struct gcs_key *k, const struct gcs_v4_req *req, struct gcs_v4_out *out)
{
	struct canon *hdr = NULL, *qry = NULL;
	size_t nhdr = 0, nqry = 0;
	struct buf signed_hdrs = BUF_INIT(0), canonical = BUF_INIT(0), sts = BUF_INIT(0);
	struct buf query = BUF_INIT(0), url = BUF_INIT(0);
	char stamp[20], date[9], scope[64], num[24], hexhash[2 * SHA256_LEN + 1];
	const char *payload = "UNSIGNED-PAYLOAD";
	uint8_t hash[SHA256_LEN], *sig = NULL;
	char *sighex = NULL, *credential = NULL, *path = NULL;
	size_t siglen;
	struct tm tm;
	time_t t;
	int ret = -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (req->expires < 1 || req->expires > GCS_V4_MAX_EXPIRES || !req->path ||
	    req->path[0] != '/')
		return -EINVAL;
	t = (time_t)req->now;
	if (!gmtime_r(&t, &tm))
		return -EINVAL;
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	memcpy(date, stamp, 8);
	date[8] = '\0';
	snprintf(scope, sizeof(scope), "%s/auto/storage/goog4_request", date);

	/* Headers: host plus the caller's, lower-cased names, folded values, sorted. */
	hdr = calloc(req->nheaders + 1, sizeof(*hdr));
	qry = calloc(req->nquery + 5, sizeof(*qry));
	if (!hdr || !qry)
		goto out;
	if (add_canon(hdr, &nhdr, strdup("host"), strdup(req->ep->host)))
		goto out;
	for (size_t i = 0; i < req->nheaders; i++) {
		if (add_canon(hdr, &nhdr, lower_dup(req->headers[i].name),
			      fold_value(req->headers[i].value)))
			goto out;
		if (!strcmp(hdr[nhdr - 1].name, "x-goog-content-sha256"))
			payload = hdr[nhdr - 1].value;
	}
	qsort(hdr, nhdr, sizeof(*hdr), canon_cmp);
	for (size_t i = 0; i < nhdr; i++)
		if (buf_addf(&signed_hdrs, "%s%s", i ? ";" : "", hdr[i].name))
			goto out;

	/* Query: Google's X-Goog-* parameters plus the caller's, encoded, sorted. */
	if (buf_addf(&sts, "%s/%s", k->email, scope))
		goto out;
	credential = strdup(buf_cstr(&sts));
	buf_reset(&sts);
	snprintf(num, sizeof(num), "%lld", (long long)req->expires);
	if (!credential || add_canon(qry, &nqry, strdup("X-Goog-Algorithm"), strdup(GCS_V4_ALGO)) ||
	    add_canon(qry, &nqry, strdup("X-Goog-Credential"),
		      http_uri_encode(credential, false)) ||
	    add_canon(qry, &nqry, strdup("X-Goog-Date"), strdup(stamp)) ||
	    add_canon(qry, &nqry, strdup("X-Goog-Expires"), strdup(num)) ||
	    add_canon(qry, &nqry, strdup("X-Goog-SignedHeaders"),
		      http_uri_encode(buf_cstr(&signed_hdrs), false)))
		goto out;
	for (size_t i = 0; i < req->nquery; i++)
		if (add_canon(qry, &nqry, http_uri_encode(req->query[i].name, false),
			      http_uri_encode(req->query[i].value, false)))
			goto out;
	qsort(qry, nqry, sizeof(*qry), canon_cmp);
	for (size_t i = 0; i < nqry; i++)
		if (buf_addf(&query, "%s%s=%s", i ? "&" : "", qry[i].name, qry[i].value))
			goto out;

	path = http_uri_encode(req->path, true);
	if (!path)
		goto out;
	if (buf_addf(&canonical, "%s\n%s\n%s\n", req->method, path, buf_cstr(&query)))
		goto out;
	for (size_t i = 0; i < nhdr; i++)
		if (buf_addf(&canonical, "%s:%s\n", hdr[i].name, hdr[i].value))
			goto out;
	if (buf_addf(&canonical, "\n%s\n%s", buf_cstr(&signed_hdrs), payload))
		goto out;

	crypto_sha256(canonical.data, canonical.len, hash);
	crypto_hex(hash, sizeof(hash), hexhash);
	if (buf_addf(&sts, "%s\n%s\n%s\n%s", GCS_V4_ALGO, stamp, scope, hexhash))
		goto out;
	ret = gcs_rs256_sign(k, sts.data, sts.len, &sig, &siglen);
	if (ret)
		goto out;
	ret = -ENOMEM;
	sighex = malloc(2 * siglen + 1);
	if (!sighex)
		goto out;
	crypto_hex(sig, siglen, sighex);
	if (buf_addf(&url, "%s://%s%s?%s&X-Goog-Signature=%s", req->ep->scheme, req->ep->authority,
		     path, buf_cstr(&query), sighex))
		goto out;
	out->url = buf_steal(&url);
	out->canonical_request = buf_steal(&canonical);
	out->string_to_sign = buf_steal(&sts);
	if (!out->url || !out->canonical_request || !out->string_to_sign) {
		gcs_v4_out_free(out);
		goto out;
	}
	ret = 0;
out:
	canon_free(hdr, nhdr);
	canon_free(qry, nqry);
	free(sig);
	free(sighex);
	free(credential);
	free(path);
	buf_free(&signed_hdrs);
	buf_free(&canonical);
	buf_free(&sts);
	buf_free(&query);
	buf_free(&url);
	return ret;
}
