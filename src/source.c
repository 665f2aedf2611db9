/* source.c - parse mount sources (see source.h for the table). */
#include "config.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdarg.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/store.h"
#include "src/source.h"

struct scheme {
	const char *scheme; /* without "://" */
	const char *driver;
	const char *setting; /* what the authority part names */
	const char *what;    /* for messages */
};

static const struct scheme schemes[] = {
    {"s3", "s3", "bucket", "bucket"},	       {"r2", "r2", "bucket", "bucket"},
    {"gs", "gcs", "bucket", "bucket"},	       {"gcs", "gcs", "bucket", "bucket"},
    {"az", "azure", "container", "container"}, {"azure", "azure", "container", "container"},
};

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *errbuf, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

void source_free(struct lexfs_source *src)
{
	if (src == NULL)
		return;
	free(src->setting_key);
	free(src->setting_val);
	free(src->prefix);
	src->setting_key = NULL;
	src->setting_val = NULL;
	src->prefix = NULL;
}

static bool has_ctl(const char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	}
	return false;
}

/* Check each '/'-separated component of a key or prefix (no leading slash). */
static int check_components(const char *s, const char *what, const char *whole, char *errbuf,
			    size_t errlen)
{
	const char *p = s;

	if (has_ctl(s))
		return fail(errbuf, errlen, "%s '%s' contains a control character", what, whole);
	while (*p != '\0') {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len == 0)
			return fail(errbuf, errlen, "%s '%s' has an empty path component ('//')",
				    what, whole);
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return fail(errbuf, errlen,
				    "%s '%s' contains '%.*s': path traversal is not allowed", what,
				    whole, (int)len, p);
		if (len > 255)
			return fail(errbuf, errlen, "%s '%s' has a component longer than 255 bytes",
				    what, whole);
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return 0;
}

int source_check_key(const char *key, char *errbuf, size_t errlen)
{
	if (key == NULL || key[0] == '\0')
		return fail(errbuf, errlen, "empty key");
	if (key[0] == '/')
		return fail(errbuf, errlen, "key '%s' must be relative (no leading '/')", key);
	if (strlen(key) > 1024)
		return fail(errbuf, errlen, "key is longer than 1024 bytes");
	return check_components(key, "key", key, errbuf, errlen);
}

/* Bucket / container names, following the providers' rules closely enough that a
 * typo is caught here and not as a 400 from the server. */
static int check_bucket(const struct scheme *sc, const char *name, const char *text, char *errbuf,
			size_t errlen)
{
	size_t len = strlen(name), i;
	size_t max = strcmp(sc->driver, "gcs") == 0 ? 222 : 63;

	if (len == 0)
		return fail(errbuf, errlen, "source '%s' names no %s (expected %s://%s[/prefix])",
			    text, sc->what, sc->scheme, sc->what);
	if (len < 3 || len > max)
		return fail(errbuf, errlen, "source '%s': %s name '%s' must be 3 to %zu characters",
			    text, sc->what, name, max);
	for (i = 0; i < len; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';

		if (c == '.' && strcmp(sc->driver, "azure") != 0)
			ok = true;
		if (c == '_' && strcmp(sc->driver, "gcs") == 0)
			ok = true;
		if (!ok)
			return fail(errbuf, errlen,
				    "source '%s': %s name '%s' may hold only lower-case letters, "
				    "digits%s and '-'",
				    text, sc->what, name,
				    strcmp(sc->driver, "azure") == 0 ? "" : ", '.'");
	}
	if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[len - 1]))
		return fail(errbuf, errlen,
			    "source '%s': %s name '%s' must start and end with a letter or digit",
			    text, sc->what, name);
	return 0;
}

/* "a/b" or "a/b/" -> "a/b/"; "" -> "". Caller frees *out. */
static int make_prefix(const char *p, const char *text, char **out, char *errbuf, size_t errlen)
{
	size_t len = strlen(p);
	char *s;
	int rc;

	if (len == 0) {
		*out = strdup("");
		return *out ? 0 : -ENOMEM;
	}
	s = malloc(len + 2);
	if (s == NULL)
		return -ENOMEM;
	memcpy(s, p, len + 1);
	if (s[len - 1] == '/')
		s[len - 1] = '\0';
	rc = check_components(s, "source", text, errbuf, errlen);
	if (rc < 0) {
		free(s);
		return rc;
	}
	len = strlen(s);
	s[len] = '/';
	s[len + 1] = '\0';
	*out = s;
	return 0;
}

static int set_out(struct lexfs_source *out, const char *driver, const char *key, const char *val,
		   size_t vallen)
{
	snprintf(out->driver, sizeof(out->driver), "%s", driver);
	if (key == NULL)
		return 0;
	out->setting_key = strdup(key);
	out->setting_val = strndup(val, vallen);
	if (out->setting_key == NULL || out->setting_val == NULL)
		return -ENOMEM;
	return 0;
}

static int parse_dir(const char *dir, const char *text, struct lexfs_source *out, char *errbuf,
		     size_t errlen)
{
	char cwd[PATH_MAX];
	char *abs = NULL;
	size_t len;
	int rc;

	if (dir[0] == '\0')
		return fail(errbuf, errlen, "source '%s' names no directory", text);
	if (has_ctl(dir))
		return fail(errbuf, errlen, "source '%s' contains a control character", text);
	if (dir[0] == '/') {
		abs = strdup(dir);
	} else {
		if (getcwd(cwd, sizeof(cwd)) == NULL)
			return fail(errbuf, errlen, "cannot resolve '%s': current directory: %s",
				    text, strerror(errno));
		len = strlen(cwd) + 1 + strlen(dir) + 1;
		abs = malloc(len);
		if (abs != NULL)
			snprintf(abs, len, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, dir);
	}
	if (abs == NULL)
		return -ENOMEM;
	/* Trailing slashes mean nothing for a directory. */
	len = strlen(abs);
	while (len > 1 && abs[len - 1] == '/')
		abs[--len] = '\0';
	rc = set_out(out, "local", "root_dir", abs, len);
	free(abs);
	if (rc == 0) {
		out->prefix = strdup("");
		if (out->prefix == NULL)
			rc = -ENOMEM;
	}
	return rc;
}

int source_parse(const char *text, struct lexfs_source *out, char *errbuf, size_t errlen)
{
	const char *sep;
	size_t slen, i;
	int rc;

	memset(out, 0, sizeof(*out));
	if (text == NULL || text[0] == '\0')
		return fail(errbuf, errlen, "empty mount source");
	sep = strstr(text, "://");
	if (sep == NULL)
		return parse_dir(text, text, out, errbuf, errlen);

	slen = (size_t)(sep - text);
	for (i = 0; i < slen; i++) {
		if (!isalnum((unsigned char)text[i]))
			return parse_dir(text, text, out, errbuf, errlen);
	}
	if (slen == 4 && strncasecmp(text, "file", 4) == 0) {
		const char *path = sep + 3;

		/* file:///dir or file://localhost/dir (RFC 8089). */
		if (strncmp(path, "localhost/", 10) == 0)
			path += 9;
		if (path[0] != '/')
			return fail(errbuf, errlen,
				    "source '%s': a file URL needs an absolute path "
				    "(file:///dir, three slashes)",
				    text);
		return parse_dir(path, text, out, errbuf, errlen);
	}
	if (slen == 3 && strncasecmp(text, "mem", 3) == 0) {
		if (sep[3] != '\0' && strcmp(sep + 3, "/") != 0)
			return fail(errbuf, errlen,
				    "source '%s': the memory driver takes no bucket or prefix "
				    "(use mem://)",
				    text);
		rc = set_out(out, "memory", NULL, NULL, 0);
		out->prefix = strdup("");
		return out->prefix ? rc : -ENOMEM;
	}
	for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++) {
		const struct scheme *sc = &schemes[i];
		const char *auth, *slash;
		char *name;

		if (strlen(sc->scheme) != slen || strncasecmp(text, sc->scheme, slen) != 0)
			continue;
		auth = sep + 3;
		slash = strchr(auth, '/');
		name = strndup(auth, slash ? (size_t)(slash - auth) : strlen(auth));
		if (name == NULL)
			return -ENOMEM;
		rc = check_bucket(sc, name, text, errbuf, errlen);
		if (rc == 0)
			rc = set_out(out, sc->driver, sc->setting, name, strlen(name));
		free(name);
		if (rc < 0)
			return rc;
		return make_prefix(slash ? slash + 1 : "", text, &out->prefix, errbuf, errlen);
	}
	return fail(errbuf, errlen,
		    "source '%s': unknown scheme '%.*s' (expected s3://, r2://, gs://, az://, "
		    "file://, mem:// or a directory)",
		    text, (int)slen, text);
}

int source_check_driver(const char *name, const char *plugin_dir, char *errbuf, size_t errlen)
{
	const char *const *names = registry_names();
	char why[512] = "";
	void *handle = NULL;
	bool builtin = false;
	size_t i;

	for (i = 0; names != NULL && names[i] != NULL; i++) {
		if (strcmp(names[i], name) == 0)
			builtin = true;
	}
	if (builtin) {
		const struct lexfs_driver *stub;
		struct lexfs_driver_conf dc = {.backend_name = "default"};
		struct lexfs_err err = {0};
		lexfs_drv *drv = NULL;

		if (registry_available(name))
			return 0;
		/* the stub's own message says how this lexfs was configured */
		stub = registry_load(name, NULL, &handle, why, sizeof(why));
		if (stub != NULL && stub->open(&dc, &drv, &err) < 0 && err.message[0])
			snprintf(why, sizeof(why), "%s", err.message);
		if (errbuf != NULL && errlen > 0)
			snprintf(errbuf, errlen, "%s (lexfs version lists the drivers it has)",
				 why[0] ? why : "the driver is not built into this lexfs");
		return -ENOTSUP;
	}
	if (registry_load(name, plugin_dir, &handle, why, sizeof(why)) != NULL) {
		if (handle != NULL)
			dlclose(handle);
		return 0;
	}
	if (errbuf != NULL && errlen > 0) {
		if (why[0] != '\0')
			snprintf(errbuf, errlen, "%s", why);
		else
			snprintf(errbuf, errlen, "unknown driver \"%s\"", name);
	}
	return -ENOENT;
}
