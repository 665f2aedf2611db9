/* conf.c - libconfig file < environment < mount source < -o options.
 *
 * The merge happens in a few flat struct settings, each value carrying its origin,
 * so every error after the merge can say where the bad value came from:
 *
 *   top          storage.<key>            lexfs's own keys and storage.driver
 *   groups[i]    storage.<driver>.<key>   one per group seen (file or env)
 *   cfg->drv     the chosen driver's group + the source's setting + unowned -o keys
 *
 *   b[i]         storage.backends entry i  its name, driver, prefix and driver group,
 *                                          as read (src/conf_backends.c)
 *
 * Then one validation pass turns `top` into typed fields; a key of `top` nobody
 * read is unknown and an error; each b[i] becomes a struct lexfs_backend.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "src/conf.h"
#include "src/conf_int.h"
#include "src/log.h"
#include "src/source.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif

#define ENV_PREFIX "LEX_STORAGE__"

/* lexfs's own keys: storage.<key> in the file, LEX_STORAGE__<KEY>, -o <key>. */
static const char *const mount_keys[] = {
    "config",
    "driver",
    "prefix",
    "max_file_size_mb",
    "cache_dir",
    "cache_size",
    "writeback",
    "upload_concurrency",
    "part_size",
    "readahead_max",
    "stat_ttl",
    "list_ttl",
    "uid",
    "gid",
    "umask",
    "entry_timeout",
    "attr_timeout",
    "negative_timeout",
    "presign_expiry",
    "log_level",
    "trace",
    "logfile",
    "plugin_dir",
    "health_timeout",
    "timeout",
    "max_retries",
    "foreground",
    "debug",
    "single_thread",
    "allow_other",
    "allow_root",
    "default_permissions",
    "ro",
    "rw",
    "auto_unmount",
    "health_interval",
    "metrics_addr",
    "events_log",
    "events_on_stored",
    "events_on_deleted",
    "events_webhook",
    "events_hook_timeout",
    NULL,
};

/* Kernel mount options handed to fuse unchanged. */
static const char *const fuse_passthrough[] = {
    "nodev",   "nosuid", "dev",	     "suid",	   "exec",	  "noexec",
    "noatime", "atime",	 "relatime", "norelatime", "strictatime", "dirsync",
    "sync",    "async",	 "fsname",   "subtype",	   "max_read",	  NULL,
};

/* What mount(8) and fstab pass that means nothing to a FUSE mount. */
static const char *const mount_noise[] = {
    "defaults", "auto",	   "noauto", "user", "users",	"nouser", "owner",
    "group",	"_netdev", "nofail", "loop", "comment", NULL,
};

/* Known placeholder credentials (compared case-insensitively). */
static const char *const placeholders[] = {
    "changeme",
    "change_me",
    "change-me",
    "changeit",
    "secret",
    "secretkey",
    "secret_key",
    "password",
    "passw0rd",
    "password1",
    "password123",
    "passwd",
    "minioadmin",
    "minio123",
    "test",
    "testing",
    "test123",
    "example",
    "examplekey",
    "admin",
    "admin123",
    "default",
    "dummy",
    "foo",
    "bar",
    "foobar",
    "xxx",
    "xxxx",
    "xxxxxxxx",
    "123456",
    "12345678",
    "1234567890",
    "qwerty",
    "letmein",
    "root",
    "toor",
    "guest",
    "none",
    "null",
    "todo",
    "fixme",
    "your-secret-key",
    "your_secret_key",
    "yoursecretkey",
    "insecure",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    NULL,
};

static const char *const endpoint_keys[] = {
    "endpoint", "endpoint_url", "blob_endpoint", "base_url", "url", "host", NULL,
};

/* The clouds' own credential variables, checked like settings. */
static const struct {
	const char *driver;
	const char *name;
} env_secrets[] = {
    {"s3", "AWS_SECRET_ACCESS_KEY"},
    {"s3", "AWS_SESSION_TOKEN"},
    {"r2", "AWS_SECRET_ACCESS_KEY"},
    {"r2", "AWS_SESSION_TOKEN"},
    {"azure", "AZURE_STORAGE_KEY"},
    {"azure", "AZURE_STORAGE_SAS_TOKEN"},
    {NULL, NULL},
};

bool conf_in_list(const char *const *list, const char *s)
{
	size_t i;

	for (i = 0; list[i] != NULL; i++) {
		if (strcmp(list[i], s) == 0)
			return true;
	}
	return false;
}

bool config_is_mount_key(const char *key)
{
	return conf_in_list(mount_keys, key);
}

bool config_is_placeholder_secret(const char *value)
{
	size_t i;

	if (value == NULL || value[0] == '\0')
		return true;
	for (i = 0; placeholders[i] != NULL; i++) {
		if (strcasecmp(placeholders[i], value) == 0)
			return true;
	}
	return false;
}

bool config_is_loopback(const char *s)
{
	char host[256];
	const char *p, *end;
	size_t len;

	if (s == NULL)
		return false;
	p = strstr(s, "://");
	p = p ? p + 3 : s;
	end = strchr(p, '@'); /* user info */
	if (end != NULL && (strchr(p, '/') == NULL || end < strchr(p, '/')))
		p = end + 1;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = p + strcspn(p, ":/?#");
	}
	if (end == NULL)
		return false;
	len = (size_t)(end - p);
	if (len == 0 || len >= sizeof(host))
		return false;
	memcpy(host, p, len);
	host[len] = '\0';
	if (strcasecmp(host, "localhost") == 0 || strcasecmp(host, "ip6-localhost") == 0 ||
	    strcmp(host, "::1") == 0)
		return true;
	if (strncmp(host, "127.", 4) == 0) {
		/* 127.0.0.0/8, digits and dots only */
		for (p = host; *p != '\0'; p++) {
			if (!isdigit((unsigned char)*p) && *p != '.')
				return false;
		}
		return true;
	}
	if (len > 10 && strcasecmp(host + len - 10, ".localhost") == 0)
		return true;
	return false;
}

int conf_fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (errbuf != NULL && errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(errbuf, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* ---- the merge ------------------------------------------------------------ */

static void merge_free(struct merge *m)
{
	size_t i;

	settings_free(&m->top);
	for (i = 0; i < m->ng; i++) {
		free(m->g[i].name);
		settings_free(&m->g[i].s);
	}
	free(m->g);
	conf_raw_backends_free(m);
}

static struct settings *group_get(struct merge *m, const char *name, bool create)
{
	struct group *ng;
	size_t i;

	for (i = 0; i < m->ng; i++) {
		if (strcmp(m->g[i].name, name) == 0)
			return &m->g[i].s;
	}
	if (!create)
		return NULL;
	ng = realloc(m->g, (m->ng + 1) * sizeof(*ng));
	if (ng == NULL)
		return NULL;
	m->g = ng;
	ng[m->ng].name = strdup(name);
	if (ng[m->ng].name == NULL)
		return NULL;
	settings_init(&ng[m->ng].s);
	return &m->g[m->ng++].s;
}

bool conf_valid_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++) {
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
			return false;
	}
	return true;
}

/* The text of a scalar libconfig value. */
static int scalar_text(const config_setting_t *st, char *buf, size_t len)
{
	switch (config_setting_type(st)) {
	case CONFIG_TYPE_STRING:
		snprintf(buf, len, "%s", config_setting_get_string(st));
		return 0;
	case CONFIG_TYPE_INT:
		snprintf(buf, len, "%d", config_setting_get_int(st));
		return 0;
	case CONFIG_TYPE_INT64:
		snprintf(buf, len, "%lld", config_setting_get_int64(st));
		return 0;
	case CONFIG_TYPE_FLOAT:
		snprintf(buf, len, "%.17g", config_setting_get_float(st));
		return 0;
	case CONFIG_TYPE_BOOL:
		snprintf(buf, len, "%s", config_setting_get_bool(st) ? "true" : "false");
		return 0;
	default:
		return -EINVAL;
	}
}

/* One scalar of the file into dst. `where` is what precedes the key when messages
 * name it: "storage.", "storage.s3." or "storage.backends entry 2: s3.". */
int conf_file_value(struct file_ctx *fc, struct settings *dst, const char *where,
		    const config_setting_t *st)
{
	const char *name = config_setting_name(st);
	int line = config_setting_source_line(st);
	char origin[PATH_MAX + 32];
	char value[4096];
	int rc;

	snprintf(origin, sizeof(origin), "%s:%d", fc->path, line);
	if (!conf_valid_name(name))
		return conf_fail(fc->errbuf, fc->errlen, -EINVAL,
				 "%s: key '%s' must be lower case (letters, digits, '_')", origin,
				 name);
	if (scalar_text(st, value, sizeof(value)) < 0)
		return conf_fail(fc->errbuf, fc->errlen, -EINVAL,
				 "%s: %s%s must be a single value, not a group or list", origin,
				 where, name);
	if (settings_key_is_secret(name) && fc->secret_at[0] == '\0')
		snprintf(fc->secret_at, sizeof(fc->secret_at), "%s%s, line %d", where, name, line);
	rc = settings_set(dst, name, value, origin);
	if (rc < 0)
		return conf_fail(fc->errbuf, fc->errlen, rc, "out of memory");
	return 0;
}

static int walk_storage(struct file_ctx *fc, const config_setting_t *storage)
{
	int i, j, n = config_setting_length(storage);
	char where[64];
	int rc;

	for (i = 0; i < n; i++) {
		const config_setting_t *st = config_setting_get_elem(storage, (unsigned)i);
		const char *name = config_setting_name(st);
		int line = config_setting_source_line(st);

		if (strcmp(name, "backends") == 0) {
			rc = conf_walk_backends(fc, st);
			if (rc < 0)
				return rc;
			continue;
		}
		if (config_setting_type(st) == CONFIG_TYPE_GROUP) {
			struct settings *g;
			int m;

			if (!conf_valid_name(name))
				return conf_fail(fc->errbuf, fc->errlen, -EINVAL,
						 "%s:%d: group name '%s' must be lower case",
						 fc->path, line, name);
			g = group_get(fc->m, name, true);
			if (g == NULL)
				return conf_fail(fc->errbuf, fc->errlen, -ENOMEM, "out of memory");
			snprintf(where, sizeof(where), "storage.%s.", name);
			m = config_setting_length(st);
			for (j = 0; j < m; j++) {
				rc = conf_file_value(fc, g, where,
						     config_setting_get_elem(st, (unsigned)j));
				if (rc < 0)
					return rc;
			}
			continue;
		}
		rc = conf_file_value(fc, &fc->m->top, "storage.", st);
		if (rc < 0)
			return rc;
	}
	return 0;
}

/* Read one config file into the merge. Returns 1 when the file does not exist and
 * `must_exist` is false, 0 when read, -errno on error. */
static int read_file(const char *path, bool must_exist, struct merge *m, char *errbuf,
		     size_t errlen)
{
	struct file_ctx fc = {.path = path, .m = m, .errbuf = errbuf, .errlen = errlen};
	const config_setting_t *root;
	struct stat sb;
	config_t c;
	FILE *fp;
	int i, n, rc = 0, fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		if (rc == -ENOENT && !must_exist)
			return 1;
		return conf_fail(errbuf, errlen, rc, "cannot read config file %s: %s", path,
				 strerror(-rc));
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return conf_fail(errbuf, errlen, -EINVAL, "config file %s is not a regular file",
				 path);
	}
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		close(fd);
		return conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
	}
	config_init(&c);
	if (config_read(&c, fp) != CONFIG_TRUE) {
		rc = conf_fail(errbuf, errlen, -EINVAL, "%s:%d: %s", path, config_error_line(&c),
			       config_error_text(&c));
		goto out;
	}
	root = config_root_setting(&c);
	n = config_setting_length(root);
	for (i = 0; i < n; i++) {
		const config_setting_t *st = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(st);

		if (strcmp(name, "storage") != 0 || config_setting_type(st) != CONFIG_TYPE_GROUP) {
			rc = conf_fail(errbuf, errlen, -EINVAL,
				       "%s:%d: unknown key '%s' (every setting lives in the group "
				       "storage = { ... })",
				       path, config_setting_source_line(st), name);
			goto out;
		}
		rc = walk_storage(&fc, st);
		if (rc < 0)
			goto out;
	}
	if (fc.secret_at[0] != '\0' && (sb.st_mode & (S_IRGRP | S_IROTH | S_IWGRP | S_IWOTH))) {
		rc = conf_fail(errbuf, errlen, -EACCES,
			       "config file %s holds a secret (%s) but group or others may read it "
			       "(mode %04o): run chmod 600 %s",
			       path, fc.secret_at, (unsigned)(sb.st_mode & 07777), path);
		goto out;
	}
out:
	config_destroy(&c);
	fclose(fp);
	return rc;
}

static int read_env(char *const *env, struct merge *m, char *errbuf, size_t errlen)
{
	size_t plen = strlen(ENV_PREFIX);
	char *const *e;

	for (e = env; e != NULL && *e != NULL; e++) {
		char name[256], origin[300], *dsep, *key, *p;
		const char *eq = strchr(*e, '=');
		struct settings *dst;
		size_t nlen;
		int rc;

		if (strncmp(*e, ENV_PREFIX, plen) != 0 || eq == NULL)
			continue;
		nlen = (size_t)(eq - *e);
		if (nlen >= sizeof(name))
			return conf_fail(errbuf, errlen, -EINVAL,
					 "environment variable name too long");
		memcpy(name, *e, nlen);
		name[nlen] = '\0';
		snprintf(origin, sizeof(origin), "env %s", name);
		for (p = name; *p != '\0'; p++)
			*p = (char)tolower((unsigned char)*p);
		key = name + plen;
		dsep = strstr(key, "__");
		dst = &m->top;
		if (dsep != NULL) {
			*dsep = '\0';
			if (!conf_valid_name(key))
				return conf_fail(
				    errbuf, errlen, -EINVAL,
				    "%s: '%s' is not a driver name (lower-case letters, "
				    "digits and '_')",
				    origin, key);
			dst = group_get(m, key, true);
			if (dst == NULL)
				return conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
			key = dsep + 2;
			if (strstr(key, "__") != NULL)
				return conf_fail(
				    errbuf, errlen, -EINVAL,
				    "%s: nests too deep (LEX_STORAGE__<DRIVER>__<KEY>)", origin);
		}
		if (!conf_valid_name(key))
			return conf_fail(errbuf, errlen, -EINVAL, "%s: '%s' is not a valid key",
					 origin, key);
		if (dst == &m->top && strcmp(key, "backends") == 0)
			return conf_fail(errbuf, errlen, -EINVAL,
					 "%s: named backends are set only in the config file "
					 "(storage.backends = ( ... ))",
					 origin);
		rc = settings_set(dst, key, eq + 1, origin);
		if (rc < 0)
			return conf_fail(errbuf, errlen, rc, "out of memory");
	}
	return 0;
}

static const char *env_get(char *const *env, const char *name)
{
	size_t len = strlen(name);
	char *const *e;

	for (e = env; e != NULL && *e != NULL; e++) {
		if (strncmp(*e, name, len) == 0 && (*e)[len] == '=')
			return *e + len + 1;
	}
	return NULL;
}

/* Make a relative path absolute against the current directory. Caller frees. */
static char *absolute(const char *path)
{
	char cwd[PATH_MAX];
	size_t len;
	char *out;

	if (path[0] == '/')
		return strdup(path);
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		return NULL;
	if (strcmp(path, ".") == 0)
		return strdup(cwd);
	if (strncmp(path, "./", 2) == 0)
		path += 2;
	len = strlen(cwd) + strlen(path) + 2;
	out = malloc(len);
	if (out != NULL)
		snprintf(out, len, "%s/%s", cwd, path);
	return out;
}

static bool is_path_key(const char *key)
{
	size_t len = strlen(key);

	return (len > 4 &&
		(strcmp(key + len - 4, "_dir") == 0 || strcmp(key + len - 5, "_file") == 0 ||
		 strcmp(key + len - 5, "_path") == 0));
}

/* ---- typed readers of `top` ----------------------------------------------- */

struct reader {
	struct settings *top;
	char *errbuf;
	size_t errlen;
};

static int rd_str(struct reader *r, const char *key, char **out)
{
	const char *v = settings_get(r->top, key);

	free(*out);
	*out = NULL;
	if (v == NULL || v[0] == '\0')
		return 0;
	*out = strdup(v);
	return *out ? 0 : -ENOMEM;
}

static int rd_path(struct reader *r, const char *key, char **out)
{
	const char *v = settings_get(r->top, key);

	free(*out);
	*out = NULL;
	if (v == NULL || v[0] == '\0')
		return 0;
	*out = absolute(v);
	if (*out == NULL)
		return conf_fail(r->errbuf, r->errlen, -ENOMEM, "%s: cannot make '%s' absolute",
				 key, v);
	return 0;
}

static int rd_bad(struct reader *r, const char *key, const char *what)
{
	return conf_fail(r->errbuf, r->errlen, -EINVAL, "option %s (from %s): %s", key,
			 settings_origin(r->top, key), what);
}

static int rd_double(struct reader *r, const char *key, double dflt, double max, double *out)
{
	const char *v = settings_get(r->top, key);
	char *end = NULL;
	double d;

	*out = dflt;
	if (v == NULL)
		return 0;
	errno = 0;
	d = strtod(v, &end);
	if (errno != 0 || end == v || *end != '\0' || !isfinite(d) || d < 0 || d > max)
		return rd_bad(r, key, "expected a number of seconds");
	*out = d;
	return 0;
}

static int rd_int(struct reader *r, const char *key, long dflt, long min, long max, long *out)
{
	const char *v = settings_get(r->top, key);
	char *end = NULL;
	long n;
	char what[96];

	*out = dflt;
	if (v == NULL)
		return 0;
	errno = 0;
	n = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || n < min || n > max) {
		snprintf(what, sizeof(what), "expected a whole number from %ld to %ld", min, max);
		return rd_bad(r, key, what);
	}
	*out = n;
	return 0;
}

static int parse_level(const char *v)
{
	static const struct {
		const char *name;
		int level;
	} names[] = {
	    {"emerg", LOG_EMERG},  {"alert", LOG_ALERT},   {"crit", LOG_CRIT},
	    {"err", LOG_ERR},	   {"error", LOG_ERR},	   {"warning", LOG_WARNING},
	    {"warn", LOG_WARNING}, {"notice", LOG_NOTICE}, {"info", LOG_INFO},
	    {"debug", LOG_DEBUG},
	};
	size_t i;

	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcasecmp(v, names[i].name) == 0)
			return names[i].level;
	}
	if (v[0] >= '0' && v[0] <= '7' && v[1] == '\0')
		return v[0] - '0';
	return -1;
}

static int validate_top(struct settings *top, struct lexfs_config *cfg, char *errbuf, size_t errlen)
{
	struct reader r = {.top = top, .errbuf = errbuf, .errlen = errlen};
	const char *v;
	uint64_t u;
	long n;
	bool b;
	int rc;
	size_t i;

#define TRY(x)                                                                                     \
	do {                                                                                       \
		rc = (x);                                                                          \
		if (rc < 0)                                                                        \
			return rc;                                                                 \
	} while (0)

	TRY(settings_get_u64(top, "max_file_size_mb", 0, &u, errbuf, errlen));
	if (u > (UINT64_MAX >> 20))
		return rd_bad(&r, "max_file_size_mb", "too large");
	cfg->max_file_size = u << 20;

	TRY(rd_path(&r, "cache_dir", &cfg->cache_dir));
	TRY(settings_get_size(top, "cache_size", 0, &cfg->cache_size, errbuf, errlen));
	v = settings_get(top, "writeback");
	if (v != NULL && (strcasecmp(v, "off") == 0 || strcasecmp(v, "no") == 0 ||
			  strcasecmp(v, "false") == 0 || strcmp(v, "-1") == 0)) {
		cfg->writeback_s = -1;
	} else {
		TRY(rd_int(&r, "writeback", -1, 0, 86400, &n));
		cfg->writeback_s = (int)n;
	}
	TRY(rd_int(&r, "upload_concurrency", 4, 1, 64, &n));
	cfg->upload_concurrency = (unsigned)n;
	TRY(settings_get_size(top, "part_size", 8u << 20, &cfg->part_size, errbuf, errlen));
	if (cfg->part_size < (5u << 20) || cfg->part_size > (5ull << 30))
		return rd_bad(&r, "part_size", "must be between 5m and 5g");
	TRY(settings_get_size(top, "readahead_max", 64u << 20, &cfg->readahead_max, errbuf,
			      errlen));
	{
		double d;

		TRY(rd_double(&r, "stat_ttl", 1.0, 86400, &d));
		cfg->stat_ttl_ms = (int)(d * 1000);
		TRY(rd_double(&r, "list_ttl", 1.0, 86400, &d));
		cfg->list_ttl_ms = (int)(d * 1000);
		TRY(rd_double(&r, "entry_timeout", 1.0, 86400, &cfg->entry_timeout));
		TRY(rd_double(&r, "attr_timeout", 1.0, 86400, &cfg->attr_timeout));
		TRY(rd_double(&r, "negative_timeout", 0.0, 86400, &cfg->negative_timeout));
		TRY(rd_double(&r, "health_timeout", 10.0, 3600, &d));
		cfg->health_timeout_ms = (int)(d * 1000);
		if (cfg->health_timeout_ms <= 0)
			return rd_bad(&r, "health_timeout", "must be more than 0");
		TRY(rd_double(&r, "timeout", 30.0, 3600, &d));
		cfg->timeout_ms = (int)(d * 1000);
		if (cfg->timeout_ms <= 0)
			return rd_bad(&r, "timeout", "must be more than 0");
	}
	TRY(rd_int(&r, "max_retries", 4, 0, 100, &n));
	cfg->max_retries = (int)n;

	TRY(rd_int(&r, "uid", (long)getuid(), 0, (long)UINT32_MAX - 1, &n));
	cfg->uid = (uid_t)n;
	TRY(rd_int(&r, "gid", (long)getgid(), 0, (long)UINT32_MAX - 1, &n));
	cfg->gid = (gid_t)n;
	v = settings_get(top, "umask");
	cfg->umask = 022;
	if (v != NULL) {
		char *end = NULL;
		unsigned long um;

		errno = 0;
		um = strtoul(v, &end, 8);
		if (errno != 0 || end == v || *end != '\0' || um > 0777)
			return rd_bad(&r, "umask", "expected an octal mask such as 022");
		cfg->umask = (mode_t)um;
	}
	TRY(rd_int(&r, "presign_expiry", 3600, 1, 7 * 86400, &n));
	cfg->presign_expiry_s = n;

	TRY(settings_get_bool(top, "foreground", false, &cfg->foreground, errbuf, errlen));
	TRY(settings_get_bool(top, "debug", false, &cfg->debug, errbuf, errlen));
	TRY(settings_get_bool(top, "single_thread", false, &cfg->single_thread, errbuf, errlen));
	TRY(settings_get_bool(top, "allow_other", false, &cfg->allow_other, errbuf, errlen));
	TRY(settings_get_bool(top, "allow_root", false, &cfg->allow_root, errbuf, errlen));
	TRY(settings_get_bool(top, "default_permissions", false, &cfg->default_permissions, errbuf,
			      errlen));
	TRY(settings_get_bool(top, "auto_unmount", false, &cfg->auto_unmount, errbuf, errlen));
	TRY(settings_get_bool(top, "ro", false, &cfg->read_only, errbuf, errlen));
	TRY(settings_get_bool(top, "rw", true, &b, errbuf, errlen));
	if (settings_has(top, "rw") && !b)
		cfg->read_only = true;
	if (cfg->allow_other && cfg->allow_root)
		return rd_bad(&r, "allow_root", "allow_other and allow_root exclude each other");

	cfg->log_level = cfg->debug ? LOG_DEBUG : LOG_NOTICE;
	v = settings_get(top, "log_level");
	if (v != NULL) {
		cfg->log_level = parse_level(v);
		if (cfg->log_level < 0)
			return rd_bad(&r, "log_level",
				      "expected err, warning, notice, info or debug");
	}
	TRY(rd_str(&r, "trace", &cfg->trace));
	if (cfg->trace != NULL) {
		/* ',' separates -o options, so the list may also use ':' or '+'. */
		char *p;

		for (p = cfg->trace; *p != '\0'; p++) {
			if (*p == ':' || *p == '+')
				*p = ',';
		}
		if (log_set_trace(cfg->trace) < 0)
			return rd_bad(&r, "trace",
				      "unknown component (known: fuse, cache, http, store, s3, "
				      "azure, gcs, config)");
	}
	TRY(rd_path(&r, "logfile", &cfg->logfile));
	TRY(rd_path(&r, "plugin_dir", &cfg->plugin_dir));
	TRY(rd_int(&r, "health_interval", 0, 0, 86400, &n));
	cfg->health_interval_s = (int)n;
	TRY(rd_str(&r, "metrics_addr", &cfg->metrics_addr));
	TRY(rd_path(&r, "events_log", &cfg->events_log));
	TRY(rd_str(&r, "events_on_stored", &cfg->events_on_stored));
	TRY(rd_str(&r, "events_on_deleted", &cfg->events_on_deleted));
	TRY(rd_str(&r, "events_webhook", &cfg->events_webhook));
	{
		double d;

		TRY(rd_double(&r, "events_hook_timeout", 10.0, 3600, &d));
		cfg->events_hook_timeout_ms = (int)(d * 1000);
	}
	(void)settings_get(top, "config");
	(void)settings_get(top, "driver");
	(void)settings_get(top, "prefix");

	for (i = 0; i < top->n; i++) {
		if (!top->v[i].used)
			return conf_fail(errbuf, errlen, -EINVAL,
					 "unknown key storage.%s (from %s)", top->v[i].key,
					 top->v[i].origin);
	}
	return 0;
#undef TRY
}

/* Placeholder secrets of one backend (driver + its settings) are refused unless
 * the endpoint is loopback. */
int conf_check_secrets(const char *driver, const struct settings *drv, char *const *env,
		       char *errbuf, size_t errlen)
{
	const char *endpoint = NULL;
	bool loopback;
	size_t i;

	for (i = 0; endpoint_keys[i] != NULL && endpoint == NULL; i++) {
		struct setting *it = NULL;
		size_t j;

		for (j = 0; j < drv->n; j++) {
			if (strcmp(drv->v[j].key, endpoint_keys[i]) == 0)
				it = &drv->v[j];
		}
		if (it != NULL)
			endpoint = it->value;
	}
	if (endpoint == NULL && (strcmp(driver, "s3") == 0 || strcmp(driver, "r2") == 0))
		endpoint = env_get(env, "AWS_ENDPOINT_URL");
	if (endpoint == NULL && strcmp(driver, "gcs") == 0)
		endpoint = env_get(env, "STORAGE_EMULATOR_HOST");
	if (endpoint != NULL)
		loopback = config_is_loopback(endpoint);
	else
		loopback = strcmp(driver, "local") == 0 || strcmp(driver, "memory") == 0;
	if (loopback)
		return 0;
	for (i = 0; env_secrets[i].name != NULL; i++) {
		const char *val = env_get(env, env_secrets[i].name);

		if (strcmp(env_secrets[i].driver, driver) != 0)
			continue;
		if (val != NULL && config_is_placeholder_secret(val))
			return conf_fail(
			    errbuf, errlen, -EACCES,
			    "environment variable %s is a well-known placeholder, not a "
			    "real credential: set the real one",
			    env_secrets[i].name);
	}
	for (i = 0; i < drv->n; i++) {
		const struct setting *it = &drv->v[i];

		if (it->secret && config_is_placeholder_secret(it->value))
			return conf_fail(
			    errbuf, errlen, -EACCES,
			    "%s (from %s) is a well-known placeholder, not a real "
			    "credential: set the real one (placeholders are accepted only when "
			    "the endpoint is on loopback)",
			    it->key, it->origin);
	}
	return 0;
}

static int append_opt(char **list, const char *opt)
{
	size_t old = *list ? strlen(*list) : 0, add = strlen(opt);
	char *n = realloc(*list, old + add + 2);

	if (n == NULL)
		return -ENOMEM;
	if (old > 0)
		n[old++] = ',';
	memcpy(n + old, opt, add + 1);
	*list = n;
	return 0;
}

/* A prefix from the file or -o is checked like a source's. *out: "" or "a/b/". */
int conf_parse_prefix(const char *v, const char *origin, char **out, char *errbuf, size_t errlen)
{
	struct lexfs_source ps = {0};
	char text[PATH_MAX];
	int rc;

	*out = NULL;
	if (v == NULL || v[0] == '\0') {
		*out = strdup("");
		return *out ? 0 : conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
	}
	snprintf(text, sizeof(text), "s3://bucket/%s", v);
	rc = source_parse(text, &ps, errbuf, errlen);
	if (rc == 0) {
		*out = ps.prefix;
		ps.prefix = NULL;
	}
	source_free(&ps);
	if (rc < 0)
		return conf_fail(errbuf, errlen, rc,
				 "prefix (from %s): '%s' is not a valid key prefix", origin, v);
	return 0;
}

/* Paths in driver settings are made absolute now: the daemon later runs in /. */
int conf_absolute_paths(struct settings *drv)
{
	size_t i;

	for (i = 0; i < drv->n; i++) {
		struct setting *it = &drv->v[i];
		char *abs;

		if (!is_path_key(it->key) || it->value[0] == '/' || it->value[0] == '\0')
			continue;
		abs = absolute(it->value);
		if (abs == NULL)
			return -ENOMEM;
		free(it->value);
		it->value = abs;
	}
	return 0;
}

/* The one backend of a mount without storage.backends (or whose source overrides
 * them): storage.driver, storage.prefix, storage.<driver>, the source, -o keys. */
static int single_backend(struct merge *m, const struct config_input *in,
			  const struct lexfs_source *src, const struct settings *opt_drv,
			  struct lexfs_config *cfg, char *errbuf, size_t errlen)
{
	const struct settings *group;
	const char *v;
	int rc;

	v = settings_get(&m->top, "driver");
	cfg->driver = strdup(v && v[0] ? v : "local");
	if (cfg->driver == NULL)
		goto nomem;
	if (!conf_valid_name(cfg->driver))
		return conf_fail(errbuf, errlen, -EINVAL,
				 "storage.driver (from %s): '%s' is not a driver name (lower-case "
				 "letters, digits and '_')",
				 settings_origin(&m->top, "driver"), cfg->driver);
	v = settings_get(&m->top, "plugin_dir");
	rc = source_check_driver(cfg->driver, v, errbuf, errlen);
	if (rc < 0) {
		if (settings_has(&m->top, "driver")) {
			char msg[512];

			snprintf(msg, sizeof(msg), "%s", errbuf);
			conf_fail(errbuf, errlen, rc, "%s (storage.driver from %s)", msg,
				  settings_origin(&m->top, "driver"));
		}
		return rc;
	}
	v = settings_get(&m->top, "prefix");
	rc = conf_parse_prefix(v, settings_origin(&m->top, "prefix"), &cfg->prefix, errbuf, errlen);
	if (rc < 0)
		return rc;

	group = group_get(m, cfg->driver, false);
	if (group != NULL && settings_copy(&cfg->drv, group) < 0)
		goto nomem;
	if (src->setting_key != NULL && strcmp(src->driver, cfg->driver) == 0) {
		char origin[PATH_MAX + 16];

		snprintf(origin, sizeof(origin), "source %s", in->source);
		if (settings_set(&cfg->drv, src->setting_key, src->setting_val, origin) < 0)
			goto nomem;
	}
	if (settings_copy(&cfg->drv, opt_drv) < 0 || conf_absolute_paths(&cfg->drv) < 0)
		goto nomem;
	if (strcmp(cfg->driver, "local") == 0 && !settings_has(&cfg->drv, "root_dir")) {
		char *abs = absolute("storage");

		if (abs == NULL)
			goto nomem;
		rc = settings_set(&cfg->drv, "root_dir", abs, "default ./storage");
		free(abs);
		if (rc < 0)
			goto nomem;
	}
	return 0;
nomem:
	return conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
}

int config_load(const struct config_input *in, struct lexfs_config *cfg, char *errbuf,
		size_t errlen)
{
	struct merge m = {0};
	struct settings opt_drv;
	struct lexfs_source src = {0};
	const struct settings *opts = in->opts;
	const char *v, *home;
	char path[PATH_MAX];
	const struct settings *group;
	size_t i;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	settings_init(&cfg->drv);
	settings_init(&m.top);
	settings_init(&opt_drv);
	if (errbuf != NULL && errlen > 0)
		errbuf[0] = '\0';

	/* 1. the file */
	v = opts ? settings_get(opts, "config") : NULL;
	if (v != NULL && v[0] != '\0' && strcmp(v, "none") != 0) {
		cfg->file = absolute(v);
		if (cfg->file == NULL) {
			rc = conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
			goto out;
		}
		rc = read_file(cfg->file, true, &m, errbuf, errlen);
		if (rc != 0)
			goto out;
	} else if (v == NULL) {
		rc = 1;
		home = env_get(in->env, "HOME");
		if (home != NULL && home[0] == '/') {
			snprintf(path, sizeof(path), "%s/.config/lexfs/lexfs.conf", home);
			rc = read_file(path, false, &m, errbuf, errlen);
			if (rc < 0)
				goto out;
		}
		if (rc == 1) {
			snprintf(path, sizeof(path), "%s/lexfs.conf", SYSCONFDIR);
			rc = read_file(path, false, &m, errbuf, errlen);
			if (rc < 0)
				goto out;
		}
		if (rc == 0) {
			cfg->file = strdup(path);
			if (cfg->file == NULL) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}

	/* 2. the environment */
	rc = read_env(in->env, &m, errbuf, errlen);
	if (rc < 0)
		goto out;

	/* 3. the source */
	if (in->source != NULL) {
		char origin[PATH_MAX + 16];

		rc = source_parse(in->source, &src, errbuf, errlen);
		if (rc < 0)
			goto out;
		snprintf(origin, sizeof(origin), "source %s", in->source);
		rc = settings_set(&m.top, "driver", src.driver, origin);
		if (rc == 0)
			rc = settings_set(&m.top, "prefix", src.prefix, origin);
		if (rc < 0)
			goto nomem;
	}

	/* 4. -o options */
	for (i = 0; opts != NULL && i < opts->n; i++) {
		const struct setting *o = &opts->v[i];

		if (strcmp(o->key, "config") == 0)
			continue;
		if (strcmp(o->key, "backends") == 0) {
			rc = conf_fail(errbuf, errlen, -EINVAL,
				       "%s: named backends are set only in the config file "
				       "(storage.backends = ( ... ))",
				       o->origin);
			goto out;
		}
		if (conf_in_list(mount_noise, o->key) || strncmp(o->key, "x-", 2) == 0)
			continue;
		if (conf_in_list(fuse_passthrough, o->key)) {
			char opt[1024];

			if (o->value[0] != '\0' && strcmp(o->value, "true") != 0)
				snprintf(opt, sizeof(opt), "%s=%s", o->key, o->value);
			else
				snprintf(opt, sizeof(opt), "%s", o->key);
			if (strchr(opt, ',') != NULL) {
				rc = conf_fail(errbuf, errlen, -EINVAL,
					       "option %s: value holds a ','", o->key);
				goto out;
			}
			rc = append_opt(&cfg->fuse_opts, opt);
		} else if (config_is_mount_key(o->key)) {
			rc = settings_set(&m.top, o->key, o->value, o->origin);
		} else {
			rc = settings_set(&opt_drv, o->key, o->value, o->origin);
		}
		if (rc < 0)
			goto nomem;
	}

	if (m.nb > 0 && in->source == NULL) {
		rc = conf_refuse_single_keys(&m, &opt_drv, errbuf, errlen);
		if (rc == 0) {
			cfg->prefix = strdup("");
			if (cfg->prefix == NULL)
				goto nomem;
		}
	} else {
		rc = single_backend(&m, in, &src, &opt_drv, cfg, errbuf, errlen);
	}
	if (rc < 0)
		goto out;

	/* storage.events = { log = ...; } (and LEX_STORAGE__EVENTS__LOG) is the
	 * events_log key; a flat key set elsewhere wins. */
	group = group_get(&m, "events", false);
	for (i = 0; group != NULL && i < group->n; i++) {
		char k[128];

		snprintf(k, sizeof(k), "events_%s", group->v[i].key);
		if (!settings_has(&m.top, k) &&
		    settings_set(&m.top, k, group->v[i].value, group->v[i].origin) < 0)
			goto nomem;
	}
	rc = validate_top(&m.top, cfg, errbuf, errlen);
	if (rc < 0)
		goto out;
	if (m.nb > 0) {
		/* Checked even when a source overrides them: a broken file is broken. */
		rc = conf_backends_check(&m, cfg, in->env, errbuf, errlen);
		if (rc < 0)
			goto out;
	}
	if (cfg->nbackends > 0 && in->source != NULL) {
		conf_backends_free(cfg);
		cfg->backends_ignored = m.backends_at;
		m.backends_at = NULL;
	}
	if (cfg->driver != NULL)
		rc = conf_check_secrets(cfg->driver, &cfg->drv, in->env, errbuf, errlen);
	goto out;
nomem:
	rc = conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
out:
	source_free(&src);
	settings_free(&opt_drv);
	merge_free(&m);
	return rc < 0 ? rc : 0;
}

static int check_unused(const struct settings *drv, const char *driver, const char *backend,
			char *errbuf, size_t errlen)
{
	size_t i;

	for (i = 0; i < drv->n; i++) {
		const struct setting *it = &drv->v[i];

		if (!it->used)
			return conf_fail(
			    errbuf, errlen, -EINVAL,
			    "unknown option %s (from %s): the %s driver%s%s has no such "
			    "setting",
			    it->key, it->origin, driver, backend ? " of backend " : "",
			    backend ? backend : "");
	}
	return 0;
}

int config_check_unused(const struct lexfs_config *cfg, char *errbuf, size_t errlen)
{
	return check_unused(&cfg->drv, cfg->driver, NULL, errbuf, errlen);
}

int config_check_backend_unused(const struct lexfs_backend *b, char *errbuf, size_t errlen)
{
	return check_unused(&b->drv, b->driver, b->name, errbuf, errlen);
}

void config_free(struct lexfs_config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->file);
	free(cfg->driver);
	free(cfg->prefix);
	settings_free(&cfg->drv);
	conf_backends_free(cfg);
	free(cfg->backends_ignored);
	free(cfg->cache_dir);
	free(cfg->trace);
	free(cfg->logfile);
	free(cfg->plugin_dir);
	free(cfg->fuse_opts);
	free(cfg->metrics_addr);
	free(cfg->events_log);
	free(cfg->events_on_stored);
	free(cfg->events_on_deleted);
	free(cfg->events_webhook);
	memset(cfg, 0, sizeof(*cfg));
}
