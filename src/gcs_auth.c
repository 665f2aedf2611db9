/* gcs_auth.c - Google OAuth2 access tokens (see gcs_auth.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "src/buf.h"
#include "src/gcs_auth.h"
#include "src/log.h"

#define TOKEN_MARGIN_S 300  /* refresh this long before expiry */
#define JWT_LIFETIME_S 3600 /* Google's maximum */
#define DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define METADATA_HOST "metadata.google.internal"
#define METADATA_PATH "/computeMetadata/v1/instance/service-accounts/default/token"
#define CREDS_MAX (256 * 1024)

struct gcs_auth {
	enum gcs_auth_kind kind;
	struct http_client *http;
	struct gcs_key *key; /* service account */
	char *token_uri;     /* service account, authorized user */
	char *client_id;     /* authorized user */
	char *client_secret;
	char *refresh_token;
	char *metadata_url; /* metadata server */
	char *source;	    /* where the credentials came from (for messages) */

	pthread_mutex_t lock; /* guards token and expiry; held during a fetch */
	char *token;
	int64_t expiry;
	int64_t lifetime; /* of the current token, seconds */
};

const char *gcs_auth_kind_name(enum gcs_auth_kind kind)
{
	switch (kind) {
	case GCS_AUTH_SERVICE_ACCOUNT:
		return "service account";
	case GCS_AUTH_AUTHORIZED_USER:
		return "authorized user";
	case GCS_AUTH_METADATA:
		return "metadata server";
	case GCS_AUTH_ANONYMOUS:
		break;
	}
	return "anonymous";
}

enum gcs_auth_kind gcs_auth_kind(const struct gcs_auth *a)
{
	return a->kind;
}

const struct gcs_key *gcs_auth_key(const struct gcs_auth *a)
{
	return a->key;
}

static char *dup_field(json_t *o, const char *name)
{
	const char *s = json_string_value(json_object_get(o, name));

	return s && *s ? strdup(s) : NULL;
}

static int load_file(struct gcs_auth *a, const char *path, struct lexfs_err *err)
{
	json_error_t jerr;
	json_t *j;
	const char *type;
	int ret = 0;

	j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
	if (!j)
		return lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
				  "GCS credentials %s: cannot read it as JSON (line %d: %s)", path,
				  jerr.line, jerr.text);
	a->source = strdup(path);
	type = json_string_value(json_object_get(j, "type"));
	a->token_uri = dup_field(j, "token_uri");
	if (!a->token_uri)
		a->token_uri = strdup(DEFAULT_TOKEN_URI);
	if (!a->source || !a->token_uri) {
		ret = -ENOMEM;
		goto out;
	}
	if (type && !strcmp(type, "service_account")) {
		const char *pem = json_string_value(json_object_get(j, "private_key"));
		const char *email = json_string_value(json_object_get(j, "client_email"));

		if (!pem || !email) {
			ret = lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
					 "GCS credentials %s: service account without private_key "
					 "or client_email",
					 path);
			goto out;
		}
		ret = gcs_key_load_pem(pem, email, &a->key);
		if (ret == -EINVAL)
			ret = lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
					 "GCS credentials %s: private_key is not an RSA key", path);
		a->kind = GCS_AUTH_SERVICE_ACCOUNT;
	} else if (type && !strcmp(type, "authorized_user")) {
		a->client_id = dup_field(j, "client_id");
		a->client_secret = dup_field(j, "client_secret");
		a->refresh_token = dup_field(j, "refresh_token");
		if (!a->client_id || !a->client_secret || !a->refresh_token)
			ret = lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
					 "GCS credentials %s: authorized_user needs client_id, "
					 "client_secret and refresh_token",
					 path);
		a->kind = GCS_AUTH_AUTHORIZED_USER;
	} else {
		ret = lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				 "GCS credentials %s: type \"%s\" is not supported (use a "
				 "service_account or authorized_user file)",
				 path, type ? type : "");
	}
out:
	json_decref(j);
	return ret;
}

static bool file_exists(const char *path)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	fclose(f);
	return true;
}

/* Google's clients also look at the DMI product name to recognise a GCE VM. */
static bool on_gce(void)
{
	char name[64] = "";
	FILE *f = fopen("/sys/class/dmi/id/product_name", "r");

	if (!f)
		return false;
	if (!fgets(name, sizeof(name), f))
		name[0] = '\0';
	fclose(f);
	return strstr(name, "Google") != NULL;
}

int gcs_auth_create(const struct gcs_auth_conf *conf, struct gcs_auth **out, struct lexfs_err *err)
{
	struct gcs_auth *a;
	const char *path = conf->credentials_file, *env, *home, *mdhost;
	char adc[1024];
	int ret = 0;

	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	pthread_mutex_init(&a->lock, NULL);
	a->http = conf->http;
	a->kind = GCS_AUTH_ANONYMOUS;
	if (conf->anonymous || (conf->emulator && !path))
		goto done;
	env = getenv("GOOGLE_APPLICATION_CREDENTIALS");
	if (!path && env && *env)
		path = env;
	home = getenv("HOME");
	if (!path && home) {
		snprintf(adc, sizeof(adc), "%s/.config/gcloud/application_default_credentials.json",
			 home);
		if (file_exists(adc))
			path = adc;
	}
	if (path) {
		ret = load_file(a, path, err);
		goto done;
	}
	mdhost = getenv("GCE_METADATA_HOST");
	if ((mdhost && *mdhost) || on_gce()) {
		struct buf b = BUF_INIT(0);

		if (buf_addf(&b, "http://%s%s", mdhost && *mdhost ? mdhost : METADATA_HOST,
			     METADATA_PATH)) {
			ret = -ENOMEM;
			goto done;
		}
		a->metadata_url = buf_steal(&b);
		a->source = strdup("the metadata server");
		a->kind = GCS_AUTH_METADATA;
		if (!a->metadata_url || !a->source)
			ret = -ENOMEM;
		goto done;
	}
	log_notice("gcs: no credentials found (credentials_file, GOOGLE_APPLICATION_CREDENTIALS, "
		   "gcloud application-default, metadata server): using anonymous access");
done:
	if (ret) {
		gcs_auth_destroy(a);
		return ret;
	}
	log_info("gcs: authenticating as %s%s%s", gcs_auth_kind_name(a->kind),
		 a->source ? " from " : "", a->source ? a->source : "");
	*out = a;
	return 0;
}

void gcs_auth_destroy(struct gcs_auth *a)
{
	if (!a)
		return;
	gcs_key_free(a->key);
	free(a->token_uri);
	free(a->client_id);
	free(a->client_secret);
	free(a->refresh_token);
	free(a->metadata_url);
	free(a->source);
	free(a->token);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* "&name=value" (form encoding) appended to b. */
static int add_form(struct buf *b, const char *name, const char *value)
{
	char *enc = http_uri_encode(value, false);
	int ret;

	if (!enc)
		return -ENOMEM;
	ret = buf_addf(b, "%s%s=%s", b->len ? "&" : "", name, enc);
	free(enc);
	return ret;
}

/* One token request; on success a->token and a->expiry are replaced. Lock held. */
static int fetch_token(struct gcs_auth *a, struct lexfs_err *err)
{
	struct http_req req;
	struct http_resp resp;
	struct lexfs_src body = {0};
	struct buf form = BUF_INIT(0);
	char *url, *jwt = NULL, *tok;
	const char *s;
	json_t *j = NULL;
	json_error_t jerr;
	int64_t now = (int64_t)time(NULL), ttl;
	int ret;

	if (a->kind == GCS_AUTH_SERVICE_ACCOUNT) {
		ret = gcs_jwt_assertion(a->key, GCS_SCOPE, a->token_uri, now, JWT_LIFETIME_S, &jwt);
		if (!ret)
			ret = add_form(&form, "grant_type",
				       "urn:ietf:params:oauth:grant-type:jwt-bearer");
		if (!ret)
			ret = add_form(&form, "assertion", jwt);
		url = strdup(a->token_uri);
	} else if (a->kind == GCS_AUTH_AUTHORIZED_USER) {
		ret = add_form(&form, "grant_type", "refresh_token");
		if (!ret)
			ret = add_form(&form, "client_id", a->client_id);
		if (!ret)
			ret = add_form(&form, "client_secret", a->client_secret);
		if (!ret)
			ret = add_form(&form, "refresh_token", a->refresh_token);
		url = strdup(a->token_uri);
	} else {
		ret = 0;
		url = strdup(a->metadata_url);
	}
	free(jwt);
	if (ret || !url) {
		free(url);
		buf_free(&form);
		return ret ? ret : -ENOMEM;
	}

	http_req_init(&req, a->kind == GCS_AUTH_METADATA ? "GET" : "POST", url);
	http_resp_init(&resp);
	req.trace_key = "oauth2-token";
	if (a->kind == GCS_AUTH_METADATA) {
		ret = http_headers_set(&req.headers, "Metadata-Flavor", "Google");
	} else {
		body.buf = form.data;
		body.len = form.len;
		req.body = &body;
		ret = http_headers_set(&req.headers, "Content-Type",
				       "application/x-www-form-urlencoded");
	}
	if (ret)
		goto out;
	ret = http_perform(a->http, &req, &resp, NULL, err);
	if (ret)
		goto out;
	j = json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, 0, &jerr);
	if (resp.status != 200) {
		s = json_string_value(json_object_get(j, "error_description"));
		if (!s)
			s = json_string_value(json_object_get(j, "error"));
		ret = lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
				 "GCS token request to %s refused (HTTP %d): %s", a->source,
				 resp.status, s ? s : "no reason given");
		if (err)
			err->http_status = resp.status;
		goto out;
	}
	s = json_string_value(json_object_get(j, "access_token"));
	ttl = json_integer_value(json_object_get(j, "expires_in"));
	if (!s || !*s) {
		ret = lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
				 "GCS token response from %s carries no access_token", a->source);
		goto out;
	}
	tok = strdup(s);
	if (!tok) {
		ret = -ENOMEM;
		goto out;
	}
	free(a->token);
	a->token = tok;
	a->lifetime = ttl > 0 ? ttl : 3600;
	a->expiry = now + a->lifetime;
	log_debug("gcs: new access token from %s, valid %llds", a->source, (long long)ttl);
out:
	json_decref(j);
	http_req_free(&req);
	http_resp_free(&resp);
	buf_free(&form);
	return ret;
}

int gcs_auth_header(struct gcs_auth *a, char **value, struct lexfs_err *err)
{
	struct buf b = BUF_INIT(0);
	int64_t now = (int64_t)time(NULL), margin;
	int ret = 0;

	*value = NULL;
	if (a->kind == GCS_AUTH_ANONYMOUS)
		return 0;
	pthread_mutex_lock(&a->lock);
	/* Refresh ahead of expiry; a short-lived token at a quarter of its life left. */
	margin = a->lifetime / 4 < TOKEN_MARGIN_S ? a->lifetime / 4 : TOKEN_MARGIN_S;
	if (!a->token || now >= a->expiry - margin)
		ret = fetch_token(a, err);
	if (!ret && buf_addf(&b, "Bearer %s", a->token))
		ret = -ENOMEM;
	pthread_mutex_unlock(&a->lock);
	if (!ret)
		*value = buf_steal(&b);
	buf_free(&b);
	return ret;
}

void gcs_auth_invalidate(struct gcs_auth *a)
{
	pthread_mutex_lock(&a->lock);
	free(a->token);
	a->token = NULL;
	a->expiry = 0;
	pthread_mutex_unlock(&a->lock);
}
