/* conf.h - one struct lexfs_config from every place configuration comes from.
 *
 * Precedence, lowest first (a later source overrides an earlier one key by key):
 *
 *   1. the libconfig file: -o config=FILE, else ~/.config/lexfs/lexfs.conf, else
 *      SYSCONFDIR/lexfs.conf (-o config=none reads no file)
 *   2. the environment: LEX_STORAGE__KEY and LEX_STORAGE__<DRIVER>__KEY
 *   3. the mount source (s3://bucket/prefix -> driver s3, bucket, prefix)
 *   4. -o options (and -f, -d), the command line
 *
 * All keys live in the `storage` group of the file:
 *
 *   storage.driver, storage.prefix, storage.max_file_size_mb  what to mount
 *   storage.cache_dir, cache_size, writeback, ...             lexfs's own (see
 *                                                               conf.c: mount_keys)
 *   storage.<driver>.<key>                                    the driver's settings
 *   storage.backends = ( { name; driver; prefix; <driver> = {...}; }, ... )
 *                                                             named backends: one
 *                                                             top-level directory each
 *
 * lexfs's own keys are parsed and checked here in one pass; the driver's group is
 * handed over as a struct settings, which the driver checks at open. -o keys lexfs
 * does not own go to the driver's group, so `-o bucket=x` and `-o region=y` work.
 *
 * Named backends come only from the file (the environment has no way to spell a
 * list, so LEX_STORAGE__* stays single-backend). With storage.backends set, the
 * single-backend keys (storage.driver, storage.prefix, storage.<driver> groups, their
 * LEX_STORAGE__ variables and driver -o keys) are errors: each backend carries its
 * own. Mount-wide keys (cache_size, writeback, uid, ...) stay in storage and apply to
 * every backend. A mount source on the command line wins over storage.backends
 * (it is the more specific instruction, as in the precedence above): the backends
 * are still validated, then not mounted, and backends_ignored says so.
 *
 * Security: a file holding a secret (settings_key_is_secret) that group or others
 * may read is refused; a placeholder secret ("changeme", "minioadmin", ...) is
 * refused unless the endpoint is on loopback; secrets never appear in messages.
 */
#ifndef LEXFS_CONF_H
#define LEXFS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "src/settings.h"

/* One of storage.backends: a top-level directory of the mount with its own store,
 * cache and health. */
struct lexfs_backend {
	char *name;	     /* the directory name: [a-z0-9][a-z0-9_-]*, at most 63 bytes */
	char *driver;	     /* registry name */
	char *prefix;	     /* key prefix: "" or "a/b/" */
	struct settings drv; /* its driver group (backends[i].<driver>), origins FILE:LINE */
	char *origin;	     /* "FILE:LINE" of the backend's group */
};

#define LEXFS_BACKEND_NAME_MAX 63

struct lexfs_config {
	char *file;	     /* the config file read, NULL if none */
	char *driver;	     /* registry name; NULL when nbackends > 0 */
	char *prefix;	     /* key prefix: "" or "a/b/" ("" when nbackends > 0) */
	struct settings drv; /* the driver's merged group (storage.<driver>); empty with
			      * backends */

	/* storage.backends in file order; 0: the mount is the one backend above. */
	struct lexfs_backend *backends;
	size_t nbackends;
	char *backends_ignored; /* "FILE:LINE" of a storage.backends the source overrode */

	uint64_t max_file_size; /* bytes; 0: unlimited */
	char *cache_dir;	/* absolute; NULL: main picks a per-mount default */
	uint64_t cache_size;	/* bytes; 0: unlimited */
	int writeback_s;	/* -1: sync (default) */
	unsigned upload_concurrency;
	uint64_t part_size;
	uint64_t readahead_max;
	int stat_ttl_ms;
	int list_ttl_ms;

	uid_t uid;
	gid_t gid;
	mode_t umask;
	double entry_timeout;
	double attr_timeout;
	double negative_timeout;
	int64_t presign_expiry_s;

	int log_level;	  /* syslog level */
	char *trace;	  /* "http,cache" or NULL */
	char *logfile;	  /* absolute, NULL: stderr in the foreground, syslog otherwise */
	char *plugin_dir; /* NULL: none */
	int health_timeout_ms;
	int timeout_ms;
	int max_retries;

	bool foreground;
	bool debug;
	bool single_thread;
	bool allow_other;
	bool allow_root;
	bool default_permissions;
	bool read_only;
	bool auto_unmount;
	char *fuse_opts; /* other kernel mount options for fuse ("nodev,noatime"), or NULL */

	/* ops (src/opsrt.h): storage.events = { log; on_stored; on_deleted; webhook;
	 * hook_timeout } in the file, or events_<key> as -o / LEX_STORAGE__EVENTS_<KEY> */
	int health_interval_s; /* 0: no periodic health check */
	char *metrics_addr;    /* loopback HOST:PORT or NULL */
	char *events_log;      /* absolute or NULL */
	char *events_on_stored;
	char *events_on_deleted;
	char *events_webhook;
	int events_hook_timeout_ms;
};

/* What the caller collected from the command line. */
struct config_input {
	const char *source;	     /* mount source, NULL when the config names it */
	const struct settings *opts; /* -o KEY[=VALUE] in order, origins "-o KEY" */
	char *const *env;	     /* the environment (environ) */
};

/* Read, merge and validate. 0, or -errno with a one-line message in errbuf that
 * names the key and where it was set ("FILE:LINE", "env LEX_...", "-o key"). cfg
 * is the caller's; free with config_free (also after a failure). */
int config_load(const struct config_input *in, struct lexfs_config *cfg, char *errbuf,
		size_t errlen);
void config_free(struct lexfs_config *cfg);

/* After the store is open: the first driver setting no reader asked for.
 * 0, or -EINVAL with "unknown option KEY (from ORIGIN)" in errbuf. */
int config_check_unused(const struct lexfs_config *cfg, char *errbuf, size_t errlen);
/* The same for one named backend's store (the message names the backend). */
int config_check_backend_unused(const struct lexfs_backend *b, char *errbuf, size_t errlen);
/* True when `name` may name a backend: [a-z0-9][a-z0-9_-]*, at most
 * LEXFS_BACKEND_NAME_MAX bytes (a directory name that needs no quoting and never
 * looks like an option). */
bool config_backend_name_ok(const char *name);

/* True when the URL or host names the loopback interface. */
bool config_is_loopback(const char *url_or_host);
/* True for a known placeholder secret ("changeme", "minioadmin", ...). */
bool config_is_placeholder_secret(const char *value);

/* True when `key` is an -o option lexfs itself owns (not a driver setting). */
bool config_is_mount_key(const char *key);

#endif
