/* s3_creds.c - AWS credentials lookup (see s3_creds.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/s3_creds.h"

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

int s3_creds_resolve(const struct settings *s, struct s3_creds *out, char *errbuf,
		     size_t errlen)
{
	const char *a = settings_get(s, "access_key_id");
	const char *sk = settings_get(s, "secret_access_key");
	const char *tok = settings_get(s, "session_token");
	const char *profile = profile_name(s);
	char *fa, *fs, *ft;
	char src[96];
	int rc;

	memset(out, 0, sizeof(*out));
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
	fa = profile_get(profile, "aws_access_key_id", true);
	fs = profile_get(profile, "aws_secret_access_key", true);
	ft = profile_get(profile, "aws_session_token", true);
	if (fa && fs && *fa && *fs) {
		snprintf(src, sizeof(src), "profile %.80s", profile);
		rc = take(out, fa, fs, ft, src);
	} else {
		snprintf(errbuf, errlen,
			 "no S3 credentials: set access_key_id and secret_access_key, or "
			 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or profile '%s' in "
			 "~/.aws/credentials (web identity, ECS and instance metadata are not "
			 "supported); use anonymous=true for a public bucket",
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
