/* conf_backends.c - storage.backends: named backends, each a top-level directory of
 * one mount (see conf.h for the rules).
 *
 * Read in two steps, like the rest of the file: conf_walk_backends keeps each
 * entry as the file spells it (origins FILE:LINE), and conf_backends_check turns
 * them into struct lexfs_backend once the whole file, the environment and -o are
 * in, because an entry's driver can only be resolved once plugin_dir is known.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/conf_int.h"
#include "src/source.h"

bool config_backend_name_ok(const char *name)
{
	size_t i;

	if (!islower((unsigned char)name[0]) && !isdigit((unsigned char)name[0]))
		return false;
	for (i = 1; name[i] != '\0'; i++) {
		if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
		    name[i] != '_' && name[i] != '-')
			return false;
	}
	return i <= LEXFS_BACKEND_NAME_MAX;
}

/* One entry of storage.backends: scalars name, driver, prefix and at most one
 * group, the driver's settings. What they mean is checked in conf_backends_check, once
 * plugin_dir (a mount-wide key that may come later or from -o) is known. */
static int walk_backend(struct file_ctx *fc, const config_setting_t *el, unsigned idx,
			struct raw_backend *rb)
{
	static const char *const keys[] = {"name", "driver", "prefix", NULL};
	char origin[PATH_MAX + 32], where[64];
	int j, k, n, m, rc;

	snprintf(origin, sizeof(origin), "%s:%d", fc->path, config_setting_source_line(el));
	rb->origin = strdup(origin);
	if (rb->origin == NULL)
		return conf_fail(fc->errbuf, fc->errlen, -ENOMEM, "out of memory");
	if (config_setting_type(el) != CONFIG_TYPE_GROUP)
		return conf_fail(fc->errbuf, fc->errlen, -EINVAL,
				 "%s: storage.backends entry %u must be a group: "
				 "{ name = \"photos\"; driver = \"s3\"; s3 = { ... }; }",
				 origin, idx + 1);
	n = config_setting_length(el);
	for (j = 0; j < n; j++) {
		const config_setting_t *st = config_setting_get_elem(el, (unsigned)j);
		const char *name = config_setting_name(st);
		int line = config_setting_source_line(st);

		if (config_setting_type(st) == CONFIG_TYPE_GROUP) {
			if (rb->group != NULL)
				return conf_fail(fc->errbuf, fc->errlen, -EINVAL,
						 "%s:%d: storage.backends entry %u has two driver "
						 "groups (%s and %s): one backend has one driver",
						 fc->path, line, idx + 1, rb->group, name);
			if (!conf_valid_name(name))
				return conf_fail(fc->errbuf, fc->errlen, -EINVAL,
						 "%s:%d: group name '%s' must be lower case",
						 fc->path, line, name);
			snprintf(origin, sizeof(origin), "%s:%d", fc->path, line);
			rb->group = strdup(name);
			rb->group_at = strdup(origin);
			if (rb->group == NULL || rb->group_at == NULL)
				return conf_fail(fc->errbuf, fc->errlen, -ENOMEM, "out of memory");
			snprintf(where, sizeof(where), "storage.backends entry %u: %s.", idx + 1,
				 name);
			m = config_setting_length(st);
			for (k = 0; k < m; k++) {
				rc = conf_file_value(fc, &rb->drv, where,
						     config_setting_get_elem(st, (unsigned)k));
				if (rc < 0)
					return rc;
			}
			continue;
		}
		if (!conf_in_list(keys, name))
			return conf_fail(
			    fc->errbuf, fc->errlen, -EINVAL,
			    "%s:%d: unknown key '%s' in storage.backends entry %u (a "
			    "backend takes name, driver, prefix and a group of its "
			    "driver's settings; mount-wide settings such as cache_size "
			    "live in storage)",
			    fc->path, line, name, idx + 1);
		snprintf(where, sizeof(where), "storage.backends entry %u: ", idx + 1);
		rc = conf_file_value(fc, &rb->keys, where, st);
		if (rc < 0)
			return rc;
	}
	return 0;
}

int conf_walk_backends(struct file_ctx *fc, const config_setting_t *list)
{
	int line = config_setting_source_line(list);
	char at[PATH_MAX + 32];
	unsigned i, n;
	int rc;

	snprintf(at, sizeof(at), "%s:%d", fc->path, line);
	if (config_setting_type(list) != CONFIG_TYPE_LIST)
		return conf_fail(
		    fc->errbuf, fc->errlen, -EINVAL,
		    "%s: storage.backends must be a list of groups: backends = ( { name "
		    "= \"photos\"; driver = \"s3\"; s3 = { ... }; }, ... );",
		    at);
	n = (unsigned)config_setting_length(list);
	if (n == 0)
		return conf_fail(fc->errbuf, fc->errlen, -EINVAL,
				 "%s: storage.backends is empty: name at least one backend, or "
				 "remove it",
				 at);
	fc->m->backends_at = strdup(at);
	fc->m->b = calloc(n, sizeof(*fc->m->b));
	if (fc->m->backends_at == NULL || fc->m->b == NULL)
		return conf_fail(fc->errbuf, fc->errlen, -ENOMEM, "out of memory");
	for (i = 0; i < n; i++) {
		struct raw_backend *rb = &fc->m->b[i];

		settings_init(&rb->keys);
		settings_init(&rb->drv);
		fc->m->nb = i + 1;
		rc = walk_backend(fc, config_setting_get_elem(list, i), i, rb);
		if (rc < 0)
			return rc;
	}
	return 0;
}

void conf_raw_backends_free(struct merge *m)
{
	size_t i;

	for (i = 0; i < m->nb; i++) {
		free(m->b[i].origin);
		settings_free(&m->b[i].keys);
		free(m->b[i].group);
		free(m->b[i].group_at);
		settings_free(&m->b[i].drv);
	}
	free(m->b);
	free(m->backends_at);
}

/* With storage.backends, what would configure the single backend is an error: it
 * would apply to no backend, or silently to all. */
int conf_refuse_single_keys(struct merge *m, const struct settings *opt_drv, char *errbuf,
			    size_t errlen)
{
	static const char *const single[] = {"driver", "prefix", NULL};
	size_t i;

	for (i = 0; single[i] != NULL; i++) {
		if (settings_has(&m->top, single[i]))
			return conf_fail(
			    errbuf, errlen, -EINVAL,
			    "storage.%s (from %s) and storage.backends (%s) exclude each "
			    "other: set %s in each backend",
			    single[i], settings_origin(&m->top, single[i]), m->backends_at,
			    single[i]);
	}
	for (i = 0; i < m->ng; i++) {
		if (strcmp(m->g[i].name, "events") == 0 || m->g[i].s.n == 0)
			continue;
		return conf_fail(errbuf, errlen, -EINVAL,
				 "storage.%s.%s (from %s): with storage.backends (%s), driver "
				 "settings go in each backend's group "
				 "(backends = ( { name = ...; driver = \"%s\"; %s = { ... }; } ))",
				 m->g[i].name, m->g[i].s.v[0].key, m->g[i].s.v[0].origin,
				 m->backends_at, m->g[i].name, m->g[i].name);
	}
	if (opt_drv->n > 0)
		return conf_fail(errbuf, errlen, -EINVAL,
				 "unknown option %s (from %s): with storage.backends (%s), driver "
				 "settings go in each backend's group of the file",
				 opt_drv->v[0].key, opt_drv->v[0].origin, m->backends_at);
	return 0;
}

void conf_backends_free(struct lexfs_config *cfg)
{
	size_t i;

	for (i = 0; i < cfg->nbackends; i++) {
		struct lexfs_backend *b = &cfg->backends[i];

		free(b->name);
		free(b->driver);
		free(b->prefix);
		settings_free(&b->drv);
		free(b->origin);
	}
	free(cfg->backends);
	cfg->backends = NULL;
	cfg->nbackends = 0;
}

/* One raw storage.backends entry into b; the names before it are in prev[0..i). */
static int backend_check(const struct raw_backend *rb, size_t i, const struct lexfs_backend *prev,
			 const char *plugin_dir, char *const *env, struct lexfs_backend *b,
			 char *errbuf, size_t errlen)
{
	const char *name, *driver;
	char msg[512];
	size_t j;
	int rc;

	b->origin = strdup(rb->origin);
	if (b->origin == NULL)
		goto nomem;
	name = settings_get(&rb->keys, "name");
	if (name == NULL)
		return conf_fail(errbuf, errlen, -EINVAL,
				 "%s: storage.backends entry %zu has no name (name = \"photos\"; "
				 "names its directory in the mount)",
				 rb->origin, i + 1);
	if (!config_backend_name_ok(name))
		return conf_fail(errbuf, errlen, -EINVAL,
				 "%s: backend name '%s' is not a valid name: use a-z, 0-9, '-' and "
				 "'_', starting with a letter or digit, at most %d bytes",
				 settings_origin(&rb->keys, "name"), name, LEXFS_BACKEND_NAME_MAX);
	for (j = 0; j < i; j++) {
		if (strcmp(prev[j].name, name) == 0)
			return conf_fail(errbuf, errlen, -EINVAL,
					 "%s: backend name '%s' is used twice (first at %s): each "
					 "backend is a directory of its own",
					 settings_origin(&rb->keys, "name"), name, prev[j].origin);
	}
	b->name = strdup(name);
	if (b->name == NULL)
		goto nomem;
	driver = settings_get(&rb->keys, "driver");
	if (driver == NULL || driver[0] == '\0')
		return conf_fail(errbuf, errlen, -EINVAL,
				 "%s: backend %s has no driver (driver = \"s3\"; or local, memory, "
				 "r2, gcs, azure)",
				 rb->origin, name);
	if (!conf_valid_name(driver))
		return conf_fail(errbuf, errlen, -EINVAL,
				 "%s: backend %s: '%s' is not a driver name (lower-case letters, "
				 "digits and '_')",
				 settings_origin(&rb->keys, "driver"), name, driver);
	rc = source_check_driver(driver, plugin_dir, msg, sizeof(msg));
	if (rc < 0)
		return conf_fail(errbuf, errlen, rc, "%s: backend %s: %s",
				 settings_origin(&rb->keys, "driver"), name, msg);
	b->driver = strdup(driver);
	if (b->driver == NULL)
		goto nomem;
	if (rb->group != NULL && strcmp(rb->group, driver) != 0)
		return conf_fail(errbuf, errlen, -EINVAL,
				 "%s: group '%s' of backend %s does not belong to its driver %s "
				 "(name the group after the driver: %s = { ... })",
				 rb->group_at, rb->group, name, driver, driver);
	if (settings_copy(&b->drv, &rb->drv) < 0 || conf_absolute_paths(&b->drv) < 0)
		goto nomem;
	rc = conf_parse_prefix(settings_get(&rb->keys, "prefix"),
			       settings_origin(&rb->keys, "prefix"), &b->prefix, errbuf, errlen);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "%s", errbuf);
		return conf_fail(errbuf, errlen, rc, "backend %s: %s", name, msg);
	}
	if (strcmp(driver, "local") == 0 && !settings_has(&b->drv, "root_dir"))
		return conf_fail(
		    errbuf, errlen, -EINVAL,
		    "%s: backend %s (driver local) needs local = { root_dir = \"...\"; } "
		    "(a default directory shared by two backends would mix their files)",
		    rb->origin, name);
	return conf_check_secrets(driver, &b->drv, env, errbuf, errlen);
nomem:
	return conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
}

int conf_backends_check(const struct merge *m, struct lexfs_config *cfg, char *const *env,
			char *errbuf, size_t errlen)
{
	size_t i;
	int rc;

	cfg->backends = calloc(m->nb, sizeof(*cfg->backends));
	if (cfg->backends == NULL)
		return conf_fail(errbuf, errlen, -ENOMEM, "out of memory");
	for (i = 0; i < m->nb; i++) {
		settings_init(&cfg->backends[i].drv);
		cfg->nbackends = i + 1;
		rc = backend_check(&m->b[i], i, cfg->backends, cfg->plugin_dir, env,
				   &cfg->backends[i], errbuf, errlen);
		if (rc < 0)
			return rc;
	}
	return 0;
}
