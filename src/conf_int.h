/* conf_int.h - what src/conf.c shares with src/conf_backends.c (not an interface).
 *
 * conf.c reads the file, the environment and -o into a struct merge and checks
 * the single-backend keys; conf_backends.c reads and checks storage.backends.
 */
#ifndef LEXFS_CONF_INT_H
#define LEXFS_CONF_INT_H

#include <libconfig.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "src/conf.h"
#include "src/settings.h"

struct group {
	char *name;
	struct settings s;
};

/* One storage.backends entry as the file spells it. */
struct raw_backend {
	char *origin;	      /* "FILE:LINE" of its group */
	struct settings keys; /* name, driver, prefix */
	char *group;	      /* the name of its driver group; NULL: none */
	char *group_at;	      /* "FILE:LINE" of that group */
	struct settings drv;  /* that group's values */
};

struct merge {
	struct settings top;
	struct group *g;
	size_t ng;
	struct raw_backend *b;
	size_t nb;
	char *backends_at; /* "FILE:LINE" of storage.backends; NULL: none */
};

struct file_ctx {
	const char *path;
	struct merge *m;
	char secret_at[160]; /* the first secret key seen, "storage.s3.secret_key, line 4" */
	char *errbuf;
	size_t errlen;
};

/* A one-line message into errbuf (may be NULL); returns rc. */
int conf_fail(char *errbuf, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
bool conf_in_list(const char *const *list, const char *s);
/* A key or group name: lower case letters, digits and '_'. */
bool conf_valid_name(const char *s);
/* One scalar of the file into dst, its origin FILE:LINE; `where` precedes the key
 * in messages ("storage.s3."). Remembers the first secret for the mode check. */
int conf_file_value(struct file_ctx *fc, struct settings *dst, const char *where,
		    const config_setting_t *st);
/* A prefix checked like a source's; *out ("" or "a/b/") is the caller's. */
int conf_parse_prefix(const char *v, const char *origin, char **out, char *errbuf, size_t errlen);
/* Relative *_dir, *_file and *_path values made absolute. 0 or -ENOMEM. */
int conf_absolute_paths(struct settings *drv);
/* Placeholder secrets of one backend, refused unless its endpoint is loopback. */
int conf_check_secrets(const char *driver, const struct settings *drv, char *const *env,
		       char *errbuf, size_t errlen);

/* conf_backends.c */
/* storage.backends (a list of groups) into m->b, as read. */
int conf_walk_backends(struct file_ctx *fc, const config_setting_t *list);
void conf_raw_backends_free(struct merge *m);
/* With storage.backends, the single-backend keys are errors. */
int conf_refuse_single_keys(struct merge *m, const struct settings *opt_drv, char *errbuf,
			    size_t errlen);
/* m->b into cfg->backends, each checked (names, driver, group, prefix, secrets). */
int conf_backends_check(const struct merge *m, struct lexfs_config *cfg, char *const *env,
			char *errbuf, size_t errlen);
void conf_backends_free(struct lexfs_config *cfg);

#endif
