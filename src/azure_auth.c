/* azure_auth.c - Azure Storage credentials, Shared Key signing and service SAS.
 *
 * The formats follow the Storage REST documentation and, where the documentation
 * leaves room (header order, SAS field order and percent-encoding), the Azure SDK
 * for Python (azure.storage.blob), so our output can be compared with it byte for
 * byte (tests/test_azure_signing.py).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "src/azure_auth.h"
#include "src/buf.h"
#include "src/crypto.h"

#define MAX_STS (64 * 1024)

void azure_creds_free(struct azure_creds *c)
{
	if (!c)
		return;
	free(c->account);
	if (c->key) {
		memset(c->key, 0, c->keylen);
		free(c->key);
	}
	free(c->sas_token);
	free(c->endpoint);
	free(c->container);
	memset(c, 0, sizeof(*c));
}

void azure_time_iso(int64_t t, char out[24])
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm)) {
		snprintf(out, 24, "1970-01-01T00:00:00Z");
		return;
	}
	strftime(out, 24, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

char *azure_quote(const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	struct buf b = BUF_INIT(0);
	const unsigned char *p;

	for (p = (const unsigned char *)s; *p; p++) {
		char enc[3];
		int rc;

		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		    (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-' ||
		    *p == '~' || *p == '/') {
			rc = buf_add(&b, p, 1);
		} else {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
			rc = buf_add(&b, enc, 3);
		}
		if (rc) {
			buf_free(&b);
			return NULL;
		}
	}
	if (buf_add(&b, "", 0)) {
		buf_free(&b);
		return NULL;
	}
	buf_cstr(&b);
	return buf_steal(&b);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode n bytes of s into b (invalid escapes are kept as they are, like
 * Python's unquote). */
static int unquote_into(struct buf *b, const char *s, size_t n)
{
	size_t i;
	int rc = 0;

	for (i = 0; i < n && !rc; i++) {
		if (s[i] == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			char c = (char)(hexval(s[i + 1]) * 16 + hexval(s[i + 2]));

			rc = buf_add(b, &c, 1);
			i += 2;
		} else {
			rc = buf_add(b, s + i, 1);
		}
	}
	return rc;
}

/* The SDK sorts x-ms-* header names by this alphabet (the service's order). */
static int header_weight(unsigned char c)
{
	static const char alphabet[] = "-!#$%&*.^_|~+\"'(),/`~0123456789:;<=>?@"
				       "ABCDEFGHIJKLMNOPQRSTUVWXYZ[]abcdefghijklmnopqrstuvwxyz{}";
	const char *p = strchr(alphabet, c);

	return (p && c) ? (int)(p - alphabet) : 256 + c;
}

static int header_cmp(const void *a, const void *b)
{
	const unsigned char *x = *(const unsigned char *const *)a;
	const unsigned char *y = *(const unsigned char *const *)b;

	for (; *x && *y; x++, y++) {
		int wx = header_weight(*x), wy = header_weight(*y);

		if (wx != wy)
			return wx - wy;
	}
	return (int)*x - (int)*y;
}

static const char *hdr(const struct http_headers *h, const char *name)
{
	return h ? http_headers_get(h, name) : NULL;
}

struct qparam {
	char *name; /* lower-cased */
	char *value; /* decoded */
};

static int qparam_cmp(const void *a, const void *b)
{
	const struct qparam *x = a, *y = b;

	return strcmp(x->name, y->name);
}

/* Append the canonicalized resource of url to b. */
static int canon_resource(struct buf *b, const char *account, const char *url)
{
	const char *p = strstr(url, "://");
	const char *path, *q;
	struct qparam *qs = NULL;
	size_t nq = 0, i;
	int rc;

	if (!p)
		return -EINVAL;
	path = strchr(p + 3, '/');
	q = strchr(p + 3, '?');
	if (q && path && q < path)
		path = NULL;
	rc = buf_addf(b, "/%s", account);
	if (rc)
		return rc;
	if (path)
		rc = buf_add(b, path, q ? (size_t)(q - path) : strlen(path));
	else
		rc = buf_adds(b, "/");
	if (rc || !q)
		return rc;

	/* query: name=value pairs; sorted by lower-cased name */
	for (const char *s = q + 1; *s;) {
		const char *amp = strchr(s, '&');
		size_t len = amp ? (size_t)(amp - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		struct qparam *nqs;
		struct buf nb = BUF_INIT(0), vb = BUF_INIT(0);

		if (len) {
			nqs = realloc(qs, (nq + 1) * sizeof(*qs));
			if (!nqs) {
				rc = -ENOMEM;
				goto out;
			}
			qs = nqs;
			rc = unquote_into(&nb, s, eq ? (size_t)(eq - s) : len);
			if (!rc && eq)
				rc = unquote_into(&vb, eq + 1, len - (size_t)(eq + 1 - s));
			if (!rc)
				rc = buf_add(&nb, "", 0);
			if (!rc)
				rc = buf_add(&vb, "", 0);
			if (rc) {
				buf_free(&nb);
				buf_free(&vb);
				goto out;
			}
			buf_cstr(&nb);
			buf_cstr(&vb);
			qs[nq].name = buf_steal(&nb);
			qs[nq].value = buf_steal(&vb);
			for (char *c = qs[nq].name; *c; c++)
				if (*c >= 'A' && *c <= 'Z')
					*c = (char)(*c - 'A' + 'a');
			nq++;
		}
		s += len;
		if (*s == '&')
			s++;
	}
	qsort(qs, nq, sizeof(*qs), qparam_cmp);
	for (i = 0; i < nq && !rc; i++)
		rc = buf_addf(b, "\n%s:%s", qs[i].name, qs[i].value);
out:
	for (i = 0; i < nq; i++) {
		free(qs[i].name);
		free(qs[i].value);
	}
	free(qs);
	return rc;
}

int azure_sharedkey_string_to_sign(const char *account, const char *method, const char *url,
				   const struct http_headers *headers, uint64_t content_length,
				   char **out)
{
	static const char *const std_headers[] = {
		"content-encoding", "content-language", NULL /* content-length */,
		"content-md5",      "content-type",     "date",
		"if-modified-since", "if-match",        "if-none-match",
		"if-unmodified-since", "range",
	};
	struct buf b = BUF_INIT(MAX_STS);
	const char **names = NULL;
	size_t nx = 0, i;
	int rc;

	*out = NULL;
	rc = buf_addf(&b, "%s\n", method);
	for (i = 0; !rc && i < sizeof(std_headers) / sizeof(std_headers[0]); i++) {
		const char *v;
		char cl[24];

		if (std_headers[i]) {
			v = hdr(headers, std_headers[i]);
		} else {
			v = hdr(headers, "content-length");
			if (!v) {
				snprintf(cl, sizeof(cl), "%llu",
					 (unsigned long long)content_length);
				v = cl;
			}
			if (strcmp(v, "0") == 0)
				v = "";
		}
		rc = buf_addf(&b, "%s\n", v ? v : "");
	}
	if (rc)
		goto fail;

	if (headers && headers->n) {
		names = calloc(headers->n, sizeof(*names));
		if (!names) {
			rc = -ENOMEM;
			goto fail;
		}
		for (i = 0; i < headers->n; i++)
			if (strncasecmp(headers->v[i].name, "x-ms-", 5) == 0)
				names[nx++] = headers->v[i].name;
	}
	/* Names are compared lower-cased: copy them lower-cased first. */
	for (i = 0; i < nx; i++) {
		char *l = strdup(names[i]);

		if (!l) {
			for (size_t j = 0; j < i; j++)
				free((char *)names[j]);
			rc = -ENOMEM;
			goto fail;
		}
		for (char *c = l; *c; c++)
			if (*c >= 'A' && *c <= 'Z')
				*c = (char)(*c - 'A' + 'a');
		names[i] = l;
	}
	qsort(names, nx, sizeof(*names), header_cmp);
	for (i = 0; i < nx; i++) {
		if (!rc)
			rc = buf_addf(&b, "%s:%s\n", names[i], hdr(headers, names[i]));
		free((char *)names[i]);
	}
	if (rc)
		goto fail;
	rc = canon_resource(&b, account, url);
	if (rc)
		goto fail;
	free(names);
	buf_cstr(&b);
	*out = buf_steal(&b);
	return 0;
fail:
	free(names);
	buf_free(&b);
	return rc == -E2BIG ? -EINVAL : rc;
}

char *azure_hmac_b64(const uint8_t *key, size_t keylen, const char *data)
{
	uint8_t mac[SHA256_LEN];

	crypto_hmac_sha256(key, keylen, data, strlen(data), mac);
	return crypto_base64(mac, sizeof(mac));
}

int azure_sharedkey_sign(const char *account, const uint8_t *key, size_t keylen,
			 const char *method, const char *url, struct http_headers *headers,
			 uint64_t content_length, char **sts)
{
	char *s = NULL, *sig = NULL;
	struct buf auth = BUF_INIT(0);
	int rc;

	rc = azure_sharedkey_string_to_sign(account, method, url, headers, content_length, &s);
	if (rc)
		return rc;
	sig = azure_hmac_b64(key, keylen, s);
	if (!sig) {
		rc = -ENOMEM;
		goto out;
	}
	rc = buf_addf(&auth, "SharedKey %s:%s", account, sig);
	if (!rc)
		rc = http_headers_set(headers, "Authorization", buf_cstr(&auth));
out:
	if (!rc && sts) {
		*sts = s;
		s = NULL;
	}
	free(s);
	free(sig);
	buf_free(&auth);
	return rc;
}

/* One "name=quote(value)" pair of a SAS query, '&'-separated. */
static int sas_add(struct buf *q, const char *name, const char *value)
{
	char *enc;
	int rc;

	if (!value || !*value)
		return 0;
	enc = azure_quote(value);
	if (!enc)
		return -ENOMEM;
	rc = buf_addf(q, "%s%s=%s", q->len ? "&" : "", name, enc);
	free(enc);
	return rc;
}

int azure_blob_sas(const char *account, const uint8_t *key, size_t keylen,
		   const char *container, const char *blob, const char *permissions,
		   int64_t start, int64_t expiry, const char *encryption_scope, char **query,
		   char **sts)
{
	char st[24] = "", se[24];
	struct buf s = BUF_INIT(MAX_STS), q = BUF_INIT(MAX_STS);
	char *sig = NULL;
	const char *es = encryption_scope ? encryption_scope : "";
	int rc;

	*query = NULL;
	if (sts)
		*sts = NULL;
	if (start)
		azure_time_iso(start, st);
	azure_time_iso(expiry, se);

	/* sp st se canonicalized-resource si sip spr sv sr snapshot ses rscc rscd
	 * rsce rscl rsct, one per line (the last newline is not signed). */
	rc = buf_addf(&s, "%s\n%s\n%s\n/blob/%s/%s/%s\n\n\n\n%s\nb\n\n%s\n\n\n\n\n", permissions,
		      st, se, account, container, blob, AZURE_API_VERSION, es);
	if (rc)
		goto out;
	sig = azure_hmac_b64(key, keylen, buf_cstr(&s));
	if (!sig) {
		rc = -ENOMEM;
		goto out;
	}
	rc = sas_add(&q, "st", st);
	if (!rc)
		rc = sas_add(&q, "se", se);
	if (!rc)
		rc = sas_add(&q, "sp", permissions);
	if (!rc)
		rc = sas_add(&q, "sv", AZURE_API_VERSION);
	if (!rc)
		rc = sas_add(&q, "sr", "b");
	if (!rc)
		rc = sas_add(&q, "ses", es);
	if (!rc)
		rc = sas_add(&q, "sig", sig);
	if (rc)
		goto out;
	buf_cstr(&q);
	*query = buf_steal(&q);
	if (sts) {
		buf_cstr(&s);
		*sts = buf_steal(&s);
	}
out:
	free(sig);
	buf_free(&s);
	buf_free(&q);
	return rc;
}

/* ---- credentials ---- */

static int set_str(char **dst, const char *v, size_t n)
{
	char *c = strndup(v, n);

	if (!c)
		return -ENOMEM;
	free(*dst);
	*dst = c;
	return 0;
}

static int set_key(struct azure_creds *c, const char *b64, char *errbuf, size_t errlen,
		   const char *origin)
{
	uint8_t *k = NULL;
	size_t kl = 0;
	int rc = crypto_base64_decode(b64, &k, &kl);

	if (rc == -ENOMEM)
		return rc;
	if (rc || kl == 0) {
		free(k);
		snprintf(errbuf, errlen, "account key (from %s) is not valid base64", origin);
		return -EINVAL;
	}
	if (c->key) {
		memset(c->key, 0, c->keylen);
		free(c->key);
	}
	c->key = k;
	c->keylen = kl;
	return 0;
}

static void strip_slash(char *s)
{
	size_t n;

	if (!s)
		return;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
}

static int set_sas(struct azure_creds *c, const char *v)
{
	while (*v == '?')
		v++;
	return set_str(&c->sas_token, v, strlen(v));
}

int azure_parse_connection_string(const char *cs, struct azure_creds *out, char *errbuf,
				  size_t errlen)
{
	const char *p = cs;
	char *proto = NULL, *suffix = NULL, *key = NULL;
	bool devstore = false;
	int rc = 0;

	while (*p && !rc) {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		size_t nlen, vlen;
		const char *v;

		if (len == 0 || (len == 1 && *p == ' ')) {
			p += len + (semi ? 1 : 0);
			continue;
		}
		if (!eq) {
			snprintf(errbuf, errlen, "connection string: element %u has no '='",
				 (unsigned)(p - cs));
			rc = -EINVAL;
			break;
		}
		nlen = (size_t)(eq - p);
		v = eq + 1;
		vlen = len - nlen - 1;
		while (nlen && (*p == ' ')) {
			p++;
			nlen--;
		}
#define IS(n) (nlen == strlen(n) && strncasecmp(p, n, nlen) == 0)
		if (IS("AccountName")) {
			if (!out->account)
				rc = set_str(&out->account, v, vlen);
		} else if (IS("AccountKey")) {
			rc = set_str(&key, v, vlen);
		} else if (IS("SharedAccessSignature")) {
			if (!out->sas_token) {
				char *t = strndup(v, vlen);

				rc = t ? set_sas(out, t) : -ENOMEM;
				free(t);
			}
		} else if (IS("BlobEndpoint")) {
			if (!out->endpoint)
				rc = set_str(&out->endpoint, v, vlen);
		} else if (IS("DefaultEndpointsProtocol")) {
			rc = set_str(&proto, v, vlen);
		} else if (IS("EndpointSuffix")) {
			rc = set_str(&suffix, v, vlen);
		} else if (IS("UseDevelopmentStorage")) {
			devstore = vlen == 4 && strncasecmp(v, "true", 4) == 0;
		}
		/* Other services' endpoints (Queue, Table, File) are not ours. */
#undef IS
		p += len + (semi ? 1 : 0);
	}
	if (rc)
		goto out;
	if (devstore) {
		/* The emulator's published well-known account. */
		if (!out->account)
			rc = set_str(&out->account, "devstoreaccount1", 16);
		if (!rc && !key && !out->key)
			rc = set_str(&key,
				     "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6"
				     "tq/K1SZFPTOtr/KBHBeksoGMGw==",
				     88);
		if (!rc && !out->endpoint)
			rc = set_str(&out->endpoint, "http://127.0.0.1:10000/devstoreaccount1",
				     39);
		if (rc)
			goto out;
	}
	if (key && !out->key) {
		rc = set_key(out, key, errbuf, errlen, "the connection string");
		if (rc)
			goto out;
	}
	if (!out->endpoint && out->account && (proto || suffix)) {
		struct buf e = BUF_INIT(1024);

		rc = buf_addf(&e, "%s://%s.blob.%s", proto ? proto : "https", out->account,
			      suffix ? suffix : "core.windows.net");
		if (rc) {
			buf_free(&e);
			goto out;
		}
		buf_cstr(&e);
		out->endpoint = buf_steal(&e);
	}
	strip_slash(out->endpoint);
out:
	if (key) {
		memset(key, 0, strlen(key));
		free(key);
	}
	free(proto);
	free(suffix);
	return rc;
}

static const char *env_or_null(const char *(*getenv_fn)(const char *), const char *name)
{
	const char *v = getenv_fn ? getenv_fn(name) : NULL;

	return (v && *v) ? v : NULL;
}

int azure_creds_resolve(const struct settings *s, const char *(*getenv_fn)(const char *),
			struct azure_creds *out, char *errbuf, size_t errlen)
{
	const char *v;
	bool anonymous = false;
	int rc;

	memset(out, 0, sizeof(*out));
	if (errlen)
		errbuf[0] = '\0';
	rc = settings_get_bool(s, "anonymous", false, &anonymous, errbuf, errlen);
	if (rc)
		return rc;

	/* Settings first: they are the user's explicit choice. */
	v = settings_get(s, "account");
	if (v) {
		rc = set_str(&out->account, v, strlen(v));
		if (rc)
			goto fail;
	}
	v = settings_get(s, "endpoint");
	if (v) {
		rc = set_str(&out->endpoint, v, strlen(v));
		if (rc)
			goto fail;
	}
	v = settings_get(s, "container");
	if (v) {
		rc = set_str(&out->container, v, strlen(v));
		if (rc)
			goto fail;
	}
	v = settings_get(s, "account_key");
	if (v) {
		char origin[128];

		snprintf(origin, sizeof(origin), "%s", settings_origin(s, "account_key"));
		rc = set_key(out, v, errbuf, errlen, origin);
		if (rc)
			goto fail;
		snprintf(out->origin, sizeof(out->origin), "account key from %s", origin);
	}
	v = settings_get(s, "sas_token");
	if (v) {
		rc = set_sas(out, v);
		if (rc)
			goto fail;
	}
	if (v && !out->origin[0])
		snprintf(out->origin, sizeof(out->origin), "SAS token from %s",
			 settings_origin(s, "sas_token"));
	v = settings_get(s, "connection_string");
	if (v) {
		rc = azure_parse_connection_string(v, out, errbuf, errlen);
		if (rc)
			goto fail;
		if (!out->origin[0])
			snprintf(out->origin, sizeof(out->origin), "connection string from %s",
				 settings_origin(s, "connection_string"));
	}

	/* Then the Azure tools' environment conventions. */
	if (!anonymous && !out->key && !out->sas_token) {
		v = env_or_null(getenv_fn, "AZURE_STORAGE_CONNECTION_STRING");
		if (v) {
			rc = azure_parse_connection_string(v, out, errbuf, errlen);
			if (rc)
				goto fail;
			snprintf(out->origin, sizeof(out->origin),
				 "env AZURE_STORAGE_CONNECTION_STRING");
		}
	}
	if (!out->account) {
		v = env_or_null(getenv_fn, "AZURE_STORAGE_ACCOUNT");
		if (v) {
			rc = set_str(&out->account, v, strlen(v));
			if (rc)
				goto fail;
		}
	}
	if (!anonymous && !out->key && !out->sas_token) {
		v = env_or_null(getenv_fn, "AZURE_STORAGE_KEY");
		if (v) {
			rc = set_key(out, v, errbuf, errlen, "env AZURE_STORAGE_KEY");
			if (rc)
				goto fail;
			snprintf(out->origin, sizeof(out->origin), "env AZURE_STORAGE_KEY");
		} else {
			v = env_or_null(getenv_fn, "AZURE_STORAGE_SAS_TOKEN");
			if (v) {
				rc = set_sas(out, v);
				if (rc)
					goto fail;
				snprintf(out->origin, sizeof(out->origin),
					 "env AZURE_STORAGE_SAS_TOKEN");
			}
		}
	}

	if (anonymous)
		out->mode = AZURE_AUTH_ANONYMOUS;
	else if (out->key)
		out->mode = AZURE_AUTH_SHARED_KEY;
	else if (out->sas_token)
		out->mode = AZURE_AUTH_SAS;
	else
		out->mode = AZURE_AUTH_ANONYMOUS;
	if (out->mode == AZURE_AUTH_ANONYMOUS && !out->origin[0])
		snprintf(out->origin, sizeof(out->origin), "anonymous access");

	if (out->mode == AZURE_AUTH_SHARED_KEY && !out->account) {
		snprintf(errbuf, errlen,
			 "an account key is set (%s) but no account name: set account "
			 "(or AZURE_STORAGE_ACCOUNT)",
			 out->origin);
		rc = -EINVAL;
		goto fail;
	}
	if (!out->endpoint) {
		struct buf e = BUF_INIT(1024);

		if (!out->account) {
			snprintf(errbuf, errlen,
				 "no Azure storage account: set account, endpoint or "
				 "connection_string (or AZURE_STORAGE_ACCOUNT / "
				 "AZURE_STORAGE_CONNECTION_STRING)");
			rc = -EINVAL;
			goto fail;
		}
		rc = buf_addf(&e, "https://%s.blob.core.windows.net", out->account);
		if (rc) {
			buf_free(&e);
			goto fail;
		}
		buf_cstr(&e);
		out->endpoint = buf_steal(&e);
	}
	strip_slash(out->endpoint);
	if (strncmp(out->endpoint, "http://", 7) != 0 &&
	    strncmp(out->endpoint, "https://", 8) != 0) {
		snprintf(errbuf, errlen, "endpoint must start with http:// or https://");
		rc = -EINVAL;
		goto fail;
	}
	return 0;
fail:
	if (rc == -ENOMEM && errlen)
		snprintf(errbuf, errlen, "out of memory");
	azure_creds_free(out);
	return rc;
}
