/* s3_creds.c - AWS credentials lookup (see s3_creds.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <unistd.h>

#include "drivers/s3_creds.h"
#include "drivers/s3_xml.h"
#include "src/http.h"

void s3_creds_free(struct s3_creds *c)
{
	if (c->secret_key)
		memset(c->secret_key, 0, strlen(c->secret_key));
	free(c->access_key);
	free(c->secret_key);
	free(c->session_token);
	memset(c, 0, sizeof(*c));
}

static const char *profile_name(const struct settings *s)
{
	const char *p = settings_get(s, "profile");
	if (!p || !*p)
		p = getenv("AWS_PROFILE");
	if (!p || !*p)
		p = "default";
	return p;
}

static char *home_file(const char *env, const char *rel)
{
	const char *e = getenv(env), *home = getenv("HOME");
	char path[4096];

	if (e && *e)
		return strdup(e);
	if (!home || !*home)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", home, rel);
	return strdup(path);
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* Value of key in [section] of an INI file; NULL when absent. Caller frees. */
static char *ini_get(const char *path, const char *section, const char *key)
{
	FILE *f = path ? fopen(path, "re") : NULL;
	char line[4096];
	bool in = false;
	char *val = NULL;

	if (!f)
		return NULL;
	while (!val && fgets(line, sizeof(line), f)) {
		char *l = trim(line), *eq;
		if (*l == '#' || *l == ';' || !*l)
			continue;
		if (*l == '[') {
			char *end = strchr(l, ']');
			if (end)
				*end = '\0';
			in = strcmp(trim(l + 1), section) == 0;
			continue;
		}
		if (!in)
			continue;
		eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		if (strcmp(trim(l), key) == 0)
			val = strdup(trim(eq + 1));
	}
	fclose(f);
	return val;
}

/* Look key up in the credentials file ([name]) then the config file ([profile
 * name], or [default]). */
static char *profile_get(const char *profile, const char *key, bool creds_first)
{
	char *cred = home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials");
	char *conf = home_file("AWS_CONFIG_FILE", ".aws/config");
	char sect[300];
	char *v = NULL;

	if (strcmp(profile, "default") == 0)
		snprintf(sect, sizeof(sect), "default");
	else
		snprintf(sect, sizeof(sect), "profile %s", profile);
	if (creds_first)
		v = ini_get(cred, profile, key);
	if (!v)
		v = ini_get(conf, sect, key);
	if (!v && strcmp(profile, "default") != 0)
		v = ini_get(conf, profile, key);
	free(cred);
	free(conf);
	return v;
}

char *s3_profile_region(const struct settings *s)
{
	return profile_get(profile_name(s), "region", false);
}

static bool imds_allowed(const struct settings *s)
{
	const char *v = settings_get(s, "imds");
	const char *dis = getenv("AWS_EC2_METADATA_DISABLED");

	if (dis && strcasecmp(dis, "true") == 0)
		return false;
	if (v && (!*v || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes")))
		return true;
	v = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	return v && *v;
}

static int take(struct s3_creds *out, const char *a, const char *sk, const char *tok,
		const char *source)
{
	out->access_key = strdup(a);
	out->secret_key = strdup(sk);
	out->session_token = tok && *tok ? strdup(tok) : NULL;
	snprintf(out->source, sizeof(out->source), "%s", source);
	if (!out->access_key || !out->secret_key || (tok && *tok && !out->session_token)) {
		s3_creds_free(out);
		return -ENOMEM;
	}
	return 0;
}


/* ---------- temporary credentials over HTTP ---------- */

/* One small request with short timeouts; *body (caller frees) on HTTP 200. */
static int fetch(const char *method, const char *url, const char *h1, const char *v1,
		 char **body, char *errbuf, size_t errlen)
{
	struct http_conf hc = { .timeout_ms = 5000, .connect_timeout_ms = 2000, .max_retries = 2,
				.retry_base_ms = 100, .retry_max_ms = 1000, .pool_size = 1 };
	struct http_client *c = NULL;
	struct http_req req;
	struct http_resp resp;
	struct lexfs_err err;
	char *u = strdup(url);
	int rc;

	*body = NULL;
	if (!u)
		return -ENOMEM;
	rc = http_client_create(&hc, &c);
	if (rc) {
		free(u);
		return rc;
	}
	http_req_init(&req, method, u);
	http_resp_init(&resp);
	lexfs_err_clear(&err);
	if (h1)
		rc = http_headers_set(&req.headers, h1, v1);
	if (!rc)
		rc = http_perform(c, &req, &resp, NULL, &err);
	if (rc) {
		snprintf(errbuf, errlen, "%s", err.message[0] ? err.message : strerror(-rc));
	} else if (resp.status != 200) {
		snprintf(errbuf, errlen, "HTTP %d from the credentials endpoint", resp.status);
		rc = resp.status == 401 || resp.status == 403 ? -EACCES : -EIO;
	} else {
		*body = buf_steal(&resp.body);
		if (!*body)
			*body = strdup("");
		if (!*body)
			rc = -ENOMEM;
	}
	http_req_free(&req);
	http_resp_free(&resp);
	http_client_destroy(c);
	return rc;
}

/* Fill out from the JSON that ECS and IMDS send. */
static int from_json(const char *body, struct s3_creds *out, const char *source, char *errbuf,
		     size_t errlen)
{
	json_error_t je;
	json_t *j = json_loads(body, 0, &je);
	const char *a, *sk, *tok, *exp;
	int rc;

	if (!j) {
		snprintf(errbuf, errlen, "%s: the credentials are not JSON", source);
		return -EIO;
	}
	a = json_string_value(json_object_get(j, "AccessKeyId"));
	sk = json_string_value(json_object_get(j, "SecretAccessKey"));
	tok = json_string_value(json_object_get(j, "Token"));
	exp = json_string_value(json_object_get(j, "Expiration"));
	if (!a || !sk || !*a || !*sk) {
		snprintf(errbuf, errlen, "%s: no AccessKeyId/SecretAccessKey in the reply", source);
		json_decref(j);
		return -EIO;
	}
	rc = take(out, a, sk, tok, source);
	if (!rc && exp) {
		out->expiry = http_parse_iso8601(exp);
		if (out->expiry < 0)
			out->expiry = 0;
	}
	json_decref(j);
	return rc;
}

static int fetch_ecs(struct s3_creds *out, char *errbuf, size_t errlen)
{
	const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *tok = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	const char *tokfile = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	char url[2048], tbuf[4096];
	char *body = NULL;
	int rc;

	if (full && *full)
		snprintf(url, sizeof(url), "%s", full);
	else
		snprintf(url, sizeof(url), "http://169.254.170.2%s", rel);
	if ((!tok || !*tok) && tokfile && *tokfile) {
		FILE *f = fopen(tokfile, "re");
		size_t n = f ? fread(tbuf, 1, sizeof(tbuf) - 1, f) : 0;
		if (f)
			fclose(f);
		tbuf[n] = '\0';
		tok = trim(tbuf);
	}
	rc = fetch("GET", url, tok && *tok ? "Authorization" : NULL, tok, &body, errbuf, errlen);
	if (!rc)
		rc = from_json(body, out, "ECS container credentials", errbuf, errlen);
	if (!rc)
		out->kind = S3_CREDS_ECS;
	free(body);
	return rc;
}

static int fetch_imds(struct s3_creds *out, char *errbuf, size_t errlen)
{
	const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char base[512], url[1024];
	char *token = NULL, *roles = NULL, *body = NULL;
	int rc;

	snprintf(base, sizeof(base), "%s", ep && *ep ? ep : "http://169.254.169.254");
	for (size_t n = strlen(base); n > 0 && base[n - 1] == '/'; n--)
		base[n - 1] = '\0';
	snprintf(url, sizeof(url), "%s/latest/api/token", base);
	rc = fetch("PUT", url, "X-aws-ec2-metadata-token-ttl-seconds", "21600", &token, errbuf,
		   errlen);
	if (rc)
		goto out;
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/", base);
	rc = fetch("GET", url, "X-aws-ec2-metadata-token", trim(token), &roles, errbuf, errlen);
	if (rc)
		goto out;
	roles[strcspn(roles, "\r\n")] = '\0';
	if (!*trim(roles) || strchr(trim(roles), '/')) {
		snprintf(errbuf, errlen, "instance metadata: no IAM role attached");
		rc = -ENOENT;
		goto out;
	}
	snprintf(url, sizeof(url), "%s/latest/meta-data/iam/security-credentials/%s", base,
		 trim(roles));
	rc = fetch("GET", url, "X-aws-ec2-metadata-token", trim(token), &body, errbuf, errlen);
	if (!rc)
		rc = from_json(body, out, "EC2 instance metadata", errbuf, errlen);
	if (!rc)
		out->kind = S3_CREDS_IMDS;
out:
	free(token);
	free(roles);
	free(body);
	return rc;
}

static int fetch_web_identity(const char *sts, struct s3_creds *out, char *errbuf,
			      size_t errlen)
{
	const char *tokfile = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *arn = getenv("AWS_ROLE_ARN");
	const char *sess = getenv("AWS_ROLE_SESSION_NAME");
	char sname[64], tok[16384];
	struct buf url = BUF_INIT(0);
	char *ea = NULL, *es = NULL, *et = NULL, *body = NULL;
	char *a = NULL, *sk = NULL, *st = NULL, *exp = NULL;
	FILE *f;
	size_t n;
	int rc;

	f = fopen(tokfile, "re");
	if (!f) {
		snprintf(errbuf, errlen, "AWS_WEB_IDENTITY_TOKEN_FILE %s: %s", tokfile,
			 strerror(errno));
		return -EACCES;
	}
	n = fread(tok, 1, sizeof(tok) - 1, f);
	fclose(f);
	tok[n] = '\0';
	if (!sess || !*sess) {
		snprintf(sname, sizeof(sname), "lexfs-%ld", (long)getpid());
		sess = sname;
	}
	ea = http_uri_encode(arn, false);
	es = http_uri_encode(sess, false);
	et = http_uri_encode(trim(tok), false);
	rc = ea && es && et ? 0 : -ENOMEM;
	if (!rc)
		rc = buf_addf(&url,
			      "%s/?Action=AssumeRoleWithWebIdentity&DurationSeconds=3600"
			      "&RoleArn=%s&RoleSessionName=%s&Version=2011-06-15&WebIdentityToken=%s",
			      sts, ea, es, et);
	if (!rc)
		rc = fetch("GET", buf_cstr(&url), NULL, NULL, &body, errbuf, errlen);
	if (rc)
		goto out;
	if (s3_xml_find(body, strlen(body), "AccessKeyId", &a) ||
	    s3_xml_find(body, strlen(body), "SecretAccessKey", &sk)) {
		snprintf(errbuf, errlen, "STS AssumeRoleWithWebIdentity: no credentials in reply");
		rc = -EIO;
		goto out;
	}
	s3_xml_find(body, strlen(body), "SessionToken", &st);
	s3_xml_find(body, strlen(body), "Expiration", &exp);
	rc = take(out, a, sk, st, "web identity (STS)");
	if (!rc) {
		out->kind = S3_CREDS_WEB_IDENTITY;
		out->expiry = exp ? http_parse_iso8601(exp) : 0;
		if (out->expiry < 0)
			out->expiry = 0;
		snprintf(out->sts_endpoint, sizeof(out->sts_endpoint), "%s", sts);
	}
out:
	if (sk)
		memset(sk, 0, strlen(sk));
	memset(tok, 0, sizeof(tok));
	free(a);
	free(sk);
	free(st);
	free(exp);
	free(ea);
	free(es);
	free(et);
	free(body);
	buf_free(&url);
	return rc;
}

int s3_creds_refresh(struct s3_creds *c, char *errbuf, size_t errlen)
{
	struct s3_creds n;
	int rc;

	memset(&n, 0, sizeof(n));
	switch (c->kind) {
	case S3_CREDS_WEB_IDENTITY:
		rc = fetch_web_identity(c->sts_endpoint, &n, errbuf, errlen);
		break;
	case S3_CREDS_ECS:
		rc = fetch_ecs(&n, errbuf, errlen);
		break;
	case S3_CREDS_IMDS:
		rc = fetch_imds(&n, errbuf, errlen);
		break;
	default:
		return 0;
	}
	if (rc)
		return rc;
	s3_creds_free(c);
	*c = n;
	return 0;
}

int s3_creds_resolve(const struct settings *s, struct s3_creds *out, char *errbuf,
		     size_t errlen)
{
	const char *a = settings_get(s, "access_key_id");
	const char *sk = settings_get(s, "secret_access_key");
	const char *tok = settings_get(s, "session_token");
	const char *profile = profile_name(s);
	const char *v;
	char *fa, *fs, *ft;
	char src[96];
	int rc;

	memset(out, 0, sizeof(*out));
	/* Read (and so mark used) every key this lookup may need. */
	settings_get(s, "imds");
	settings_get(s, "sts_endpoint");
	if ((a && *a) || (sk && *sk)) {
		if (!a || !*a || !sk || !*sk) {
			snprintf(errbuf, errlen, "%s is set (%s) but %s is not",
				 a && *a ? "access_key_id" : "secret_access_key",
				 settings_origin(s, a && *a ? "access_key_id" :
							      "secret_access_key"),
				 a && *a ? "secret_access_key" : "access_key_id");
			return -EINVAL;
		}
		return take(out, a, sk, tok, "settings");
	}
	a = getenv("AWS_ACCESS_KEY_ID");
	sk = getenv("AWS_SECRET_ACCESS_KEY");
	if ((a && *a) || (sk && *sk)) {
		if (!a || !*a || !sk || !*sk) {
			snprintf(errbuf, errlen,
				 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together");
			return -EINVAL;
		}
		return take(out, a, sk, getenv("AWS_SESSION_TOKEN"), "environment");
	}
	v = getenv("AWS_WEB_IDENTITY_TOKEN_FILE");
	if (v && *v && getenv("AWS_ROLE_ARN") && *getenv("AWS_ROLE_ARN")) {
		char sts[256];
		const char *e = settings_get(s, "sts_endpoint");
		if (!e || !*e)
			e = getenv("AWS_ENDPOINT_URL_STS");
		snprintf(sts, sizeof(sts), "%s", e && *e ? e : "https://sts.amazonaws.com");
		for (size_t n = strlen(sts); n > 0 && sts[n - 1] == '/'; n--)
			sts[n - 1] = '\0';
		return fetch_web_identity(sts, out, errbuf, errlen);
	}
	fa = profile_get(profile, "aws_access_key_id", true);
	fs = profile_get(profile, "aws_secret_access_key", true);
	ft = profile_get(profile, "aws_session_token", true);
	if (fa && fs && *fa && *fs) {
		snprintf(src, sizeof(src), "profile %.80s", profile);
		rc = take(out, fa, fs, ft, src);
	} else if ((v = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")) ? *v :
		   (v = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")) && *v) {
		rc = fetch_ecs(out, errbuf, errlen);
	} else if (imds_allowed(s)) {
		rc = fetch_imds(out, errbuf, errlen);
	} else {
		snprintf(errbuf, errlen,
			 "no S3 credentials: set access_key_id and secret_access_key, or "
			 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '%s' in "
			 "~/.aws/credentials, or AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN, or "
			 "ECS container credentials, or imds=true on EC2; use anonymous=true "
			 "for a public bucket",
			 profile);
		rc = -ENOENT;
	}
	if (fs)
		memset(fs, 0, strlen(fs));
	free(fa);
	free(fs);
	free(ft);
	return rc;
}
