/* main.c - the lexfs command: mount a bucket, and a few subcommands.
 *
 *   lexfs SOURCE MOUNTPOINT [-f] [-d] [-s] [-o opt[,opt...]]
 *   lexfs -o config=FILE MOUNTPOINT
 *   lexfs presign KEY [--method GET|PUT] [--expires S] [--source SOURCE] [-o ...]
 *   lexfs verify-url URL [--source SOURCE] [-o ...]
 *   lexfs status MOUNTPOINT [--json]
 *   lexfs version | --version | --help
 *
 * A mount is built in one function, mount_stack_build(), bottom up, in the order
 * s3backer's s3backer_create_store() uses: store -> cache -> fs -> fuse_new ->
 * health check -> fuse_mount. Each layer takes ownership of the one below it, so
 * teardown is fuse_unmount, fuse_destroy, fs_destroy (which destroys the cache,
 * which drains uploads and destroys the store).
 *
 * Daemon mode forks before anything starts a thread; the parent waits on a pipe
 * until the child has mounted (exit 0) or failed (the child's exit status), so a
 * failed health check reaches the terminal and the exit status of `lexfs`.
 *
 * Exit status: 0 success; 1 usage or configuration error; 2 the backend could not
 * be opened or failed its health check; 3 the FUSE mount failed; verify-url: 1 the
 * URL is not valid, 2 it has expired; doctor: 0 when no check failed, 1 otherwise.
 */
#define FUSE_USE_VERSION 31
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache.h"
#include "drivers/store.h"
#include "src/conf.h"
#include "src/doctor.h"
#include "src/opsrt.h"
#include "src/fs.h"
#include "src/fs_route.h"
#include "src/log.h"
#include "src/source.h"
#include "src/status.h"
#include "src/urlsign.h"

extern char **environ;

enum { EXIT_USAGE = 1, EXIT_BACKEND = 2, EXIT_MOUNT = 3 };

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A message for the person at the terminal (the logger is for the daemon). */
static void say(const char *fmt, ...)
{
	va_list ap;

	fputs("lexfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: lexfs SOURCE MOUNTPOINT [-f] [-d] [-s] [-o OPT[,OPT...]]\n"
		"       lexfs -o config=FILE MOUNTPOINT\n"
		"       lexfs presign KEY [--method GET|PUT] [--expires SECONDS] [--source SOURCE]"
		" [-o OPT]\n"
		"       lexfs verify-url URL [--source SOURCE] [-o OPT]\n"
		"       lexfs status MOUNTPOINT [--json]\n"
		"       lexfs doctor [SOURCE] [-o OPT] [--json] [--abort-stale]\n"
		"       lexfs version\n"
		"\n"
		"SOURCE: s3://bucket[/prefix]  r2://bucket[/prefix]  gs://bucket[/prefix]\n"
		"        az://container[/prefix]  file:///dir  /dir  mem://\n"
		"\n"
		"  -f            stay in the foreground, log to stderr\n"
		"  -d            debug: foreground, log level debug, FUSE request trace\n"
		"  -s            single-threaded\n"
		"  -o config=FILE        read FILE (default ~/.config/lexfs/lexfs.conf, then\n"
		"                        " SYSCONFDIR "/lexfs.conf; config=none reads none)\n"
		"  -o uid=N,gid=N,umask=022   owner and mode of objects without metadata\n"
		"  -o allow_other,allow_root,default_permissions,ro,auto_unmount\n"
		"  -o entry_timeout=S,attr_timeout=S,negative_timeout=S   kernel caches (1, 1, 0)\n"
		"  -o cache_dir=DIR,cache_size=SIZE,writeback=S   write-back cache\n"
		"  -o presign_expiry=S   default expiry of user.lexfs.presigned_url (3600)\n"
		"  -o max_file_size_mb=N,health_timeout=S,timeout=S,max_retries=N\n"
		"  -o log_level=LEVEL,logfile=FILE,trace=http:cache:store:...\n"
		"  -o KEY=VALUE          any other key is a setting of the driver\n"
		"                        (bucket, region, endpoint, root_dir, ...)\n"
		"\n"
		"Environment: LEX_STORAGE__KEY and LEX_STORAGE__<DRIVER>__KEY, for example\n"
		"LEX_STORAGE__DRIVER=s3 LEX_STORAGE__S3__BUCKET=photos. See lexfs(1).\n");
}

/* Split one -o argument at unescaped commas into opts ("\," is a literal comma). */
static int parse_o(const char *arg, struct settings *opts)
{
	size_t len = strlen(arg), i, o = 0;
	char *item = malloc(len + 1);
	int rc = 0;

	if (item == NULL)
		return -ENOMEM;
	for (i = 0; i <= len && rc == 0; i++) {
		if (arg[i] == '\\' && (arg[i + 1] == ',' || arg[i + 1] == '\\')) {
			item[o++] = arg[++i];
			continue;
		}
		if (arg[i] != ',' && arg[i] != '\0') {
			item[o++] = arg[i];
			continue;
		}
		item[o] = '\0';
		o = 0;
		if (item[0] == '\0')
			continue;
		{
			char *eq = strchr(item, '=');
			char origin[160];

			if (eq != NULL)
				*eq = '\0';
			snprintf(origin, sizeof(origin), "-o %s", item);
			rc = settings_set(opts, item, eq ? eq + 1 : "", origin);
		}
	}
	free(item);
	return rc;
}

/* Overwrite the values of secret keys in an -o argument with '*', so they do not
 * stay visible in /proc/PID/cmdline (ps) for the life of the daemon. */
static void scrub_secrets(char *arg)
{
	char *p = arg;

	while (*p != '\0') {
		char *end = p, *eq = NULL;

		while (*end != '\0' && !(*end == ',' && (end == arg || end[-1] != '\\'))) {
			if (*end == '=' && eq == NULL)
				eq = end;
			end++;
		}
		if (eq != NULL) {
			char key[128];
			size_t klen = (size_t)(eq - p);

			if (klen < sizeof(key)) {
				memcpy(key, p, klen);
				key[klen] = '\0';
				if (settings_key_is_secret(key))
					memset(eq + 1, '*', (size_t)(end - eq - 1));
			}
		}
		p = *end ? end + 1 : end;
	}
}

/* ---- the mount ------------------------------------------------------------- */

/* What one stack (store -> cache -> fs) is built from: the mount's one backend, or
 * one of storage.backends. */
struct backend_spec {
	const char *name; /* "default", or the named backend's */
	const char *driver;
	const char *prefix;
	const struct settings *drv;
	const struct lexfs_backend *named; /* NULL for the single backend */
};

/* One spec per stack; caller frees. NULL on ENOMEM. */
static struct backend_spec *backend_specs(const struct lexfs_config *cfg, size_t *n)
{
	struct backend_spec *v;
	size_t i;

	*n = cfg->nbackends ? cfg->nbackends : 1;
	v = calloc(*n, sizeof(*v));
	if (v == NULL)
		return NULL;
	if (cfg->nbackends == 0) {
		v[0] = (struct backend_spec){"default", cfg->driver, cfg->prefix, &cfg->drv, NULL};
		return v;
	}
	for (i = 0; i < cfg->nbackends; i++) {
		const struct lexfs_backend *b = &cfg->backends[i];

		v[i] = (struct backend_spec){b->name, b->driver, b->prefix, &b->drv, b};
	}
	return v;
}

/* The mount: one backend (fs, its ops), or named backends (a router over one fs
 * layer each, one ops per backend, and a mount-level ops group above them). */
struct mount_stack {
	struct ops *ops;     /* the one backend's, or the group of the named ones */
	struct ops **bops;   /* named backends: each one's ops (members of ops) */
	size_t nb;	     /* entries of bops */
	struct fs *fs;	     /* the one backend's fs layer */
	struct route *route; /* named backends: owns their fs layers */
	struct fuse *fuse;
	bool handlers;
	bool mounted;
};

/* 64-bit FNV-1a, to name a per-source cache directory. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ull;
	}
	return h;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[PATH_MAX];
	char *p;

	if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	for (p = tmp + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* The cache directory of one backend, so the next mount finds its journal. A
 * single backend: the configured one, or a per-source directory under the user's
 * cache. A named backend: the subdirectory NAME of the configured one, or of a
 * per-config-file directory (named after the file, so adding a backend keeps the
 * others' journals). */
static int cache_dir_for(const struct lexfs_config *cfg, const struct backend_spec *b, char *out,
			 size_t outlen)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char base[PATH_MAX];
	uint64_t h = 1469598103934665603ull;
	size_t i;
	int rc;

	if (cfg->cache_dir != NULL) {
		if (b->named)
			rc = snprintf(out, outlen, "%s/%s", cfg->cache_dir, b->name);
		else
			rc = snprintf(out, outlen, "%s", cfg->cache_dir);
		if (rc < 0 || (size_t)rc >= outlen)
			return -ENAMETOOLONG;
		return mkdir_p(out, 0700);
	}
	if (xdg != NULL && xdg[0] == '/')
		snprintf(base, sizeof(base), "%s/lexfs", xdg);
	else if (home != NULL && home[0] == '/' && geteuid() != 0)
		snprintf(base, sizeof(base), "%s/.cache/lexfs", home);
	else if (geteuid() == 0)
		snprintf(base, sizeof(base), "/var/cache/lexfs");
	else
		snprintf(base, sizeof(base), "/tmp/lexfs-%u", (unsigned)geteuid());
	if (b->named) {
		h = fnv1a(h, cfg->file);
		rc = snprintf(out, outlen, "%s/backends-%016" PRIx64 "/%s", base, h, b->name);
		if (rc < 0 || (size_t)rc >= outlen)
			return -ENAMETOOLONG;
		return mkdir_p(out, 0700);
	}
	h = fnv1a(h, b->driver);
	for (i = 0; i < b->drv->n; i++) {
		const char *k = b->drv->v[i].key;

		if (strcmp(k, "bucket") == 0 || strcmp(k, "container") == 0 ||
		    strcmp(k, "root_dir") == 0 || strcmp(k, "endpoint") == 0 ||
		    strcmp(k, "account") == 0) {
			h = fnv1a(h, "\n");
			h = fnv1a(h, k);
			h = fnv1a(h, "=");
			h = fnv1a(h, b->drv->v[i].value);
		}
	}
	h = fnv1a(h, "\n");
	h = fnv1a(h, b->prefix);
	rc = snprintf(out, outlen, "%s/%s-%016" PRIx64, base, b->driver, h);
	if (rc < 0 || (size_t)rc >= outlen)
		return -ENAMETOOLONG;
	return mkdir_p(out, 0700);
}

/* What to fix, by error code and errno, for a backend that failed to open or to
 * answer its health check. */
static const char *hint_for(enum lexfs_code code, int rc)
{
	if (rc == -ENOENT || rc == -ENOTDIR || code == LEXFS_E_NOTFOUND)
		return "check that the bucket, container or directory exists and is spelled "
		       "right";
	if (rc == -EACCES || rc == -EPERM || code == LEXFS_E_PERMISSION)
		return "check the credentials (or the directory's permissions) and that they "
		       "allow listing and reading";
	if (rc == -ETIMEDOUT || code == LEXFS_E_UNAVAILABLE)
		return "check the endpoint, the network and that the service is running";
	if (rc == -ENOTSUP || code == LEXFS_E_UNSUPPORTED)
		return "use a driver this lexfs was built with (lexfs version lists them)";
	if (code == LEXFS_E_INVALID_PATH)
		return "check the source and its prefix";
	return "check the driver's settings (lexfs(1), lexfs.conf.example)";
}

static void say_err(const char *what, int rc, const struct lexfs_err *err)
{
	say("%s: LEXFS-%03d %s; to fix: %s", what, (int)err->code,
	    err->message[0] ? err->message : strerror(-rc), hint_for(err->code, rc));
}

/* Escape ',' and '\' for a fuse -o value. */
static void opt_escape(const char *in, char *out, size_t outlen)
{
	size_t o = 0;

	for (; *in != '\0' && o + 3 < outlen; in++) {
		if (*in == ',' || *in == '\\')
			out[o++] = '\\';
		out[o++] = *in;
	}
	out[o] = '\0';
}

/* What the mount table shows as its source: the source, the driver, or the
 * backends' names joined by '+'. */
static void fs_name(const struct lexfs_config *cfg, const char *source, char *out, size_t outlen)
{
	size_t i, off = 0;

	if (source != NULL || cfg->nbackends == 0) {
		snprintf(out, outlen, "%s", source ? source : cfg->driver);
		return;
	}
	out[0] = '\0';
	for (i = 0; i < cfg->nbackends && off < outlen; i++)
		off += (size_t)snprintf(out + off, outlen - off, "%s%s", i ? "+" : "",
					cfg->backends[i].name);
}

static int fuse_argv(const struct lexfs_config *cfg, const char *source, struct fuse_args *args)
{
	char opts[4096], esc[2048], name[1024];
	size_t off;

	fs_name(cfg, source, name, sizeof(name));
	opt_escape(name, esc, sizeof(esc));
	off = (size_t)snprintf(opts, sizeof(opts), "fsname=lexfs#%s,subtype=lexfs", esc);
	if (cfg->allow_other)
		off += (size_t)snprintf(opts + off, sizeof(opts) - off, ",allow_other");
	if (cfg->allow_root && off < sizeof(opts))
		off += (size_t)snprintf(opts + off, sizeof(opts) - off, ",allow_root");
	if (cfg->default_permissions && off < sizeof(opts))
		off += (size_t)snprintf(opts + off, sizeof(opts) - off, ",default_permissions");
	if (cfg->read_only && off < sizeof(opts))
		off += (size_t)snprintf(opts + off, sizeof(opts) - off, ",ro");
	if (cfg->auto_unmount && off < sizeof(opts))
		off += (size_t)snprintf(opts + off, sizeof(opts) - off, ",auto_unmount");
	if (cfg->fuse_opts != NULL && off < sizeof(opts))
		off += (size_t)snprintf(opts + off, sizeof(opts) - off, ",%s", cfg->fuse_opts);
	if (off >= sizeof(opts))
		return -E2BIG;
	if (fuse_opt_add_arg(args, "lexfs") || fuse_opt_add_arg(args, "-o") ||
	    fuse_opt_add_arg(args, opts))
		return -ENOMEM;
	if (cfg->debug && fuse_opt_add_arg(args, "-d"))
		return -ENOMEM;
	/* What the kernel is told and what lexfs answers for objects without
	 * metadata: the first thing to check when a user cannot see the mount. */
	log_debug("fuse: -o %s%s; entry_timeout %gs, attr_timeout %gs, negative_timeout %gs; "
		  "objects without metadata: uid %u, gid %u, umask %03o",
		  opts, cfg->debug ? " -d" : "", cfg->entry_timeout, cfg->attr_timeout,
		  cfg->negative_timeout, (unsigned)cfg->uid, (unsigned)cfg->gid,
		  (unsigned)cfg->umask);
	return 0;
}

static void mount_stack_destroy(struct mount_stack *ms)
{
	size_t i;

	if (ms->handlers)
		fuse_remove_signal_handlers(fuse_get_session(ms->fuse));
	if (ms->mounted)
		fuse_unmount(ms->fuse);
	if (ms->fuse != NULL)
		fuse_destroy(ms->fuse);
	/* The health threads and the metrics server borrow the stores; the group's
	 * metrics server reads its members, so it stops first. */
	ops_detach(ms->ops);
	for (i = 0; i < ms->nb; i++)
		ops_detach(ms->bops[i]);
	/* Drain pending uploads, then close the drivers, the last backend first. */
	fs_destroy(ms->fs);
	route_destroy(ms->route);
	/* After the last upload's event. */
	for (i = ms->nb; i > 0; i--)
		ops_destroy(ms->bops[i - 1]);
	ops_destroy(ms->ops);
	free(ms->bops);
	memset(ms, 0, sizeof(*ms));
}

/* What mount_stack_build keeps of one backend until the mount is up. */
struct built {
	struct store *store; /* owned by the cache */
	struct cache *cache; /* owned by the fs layer */
	struct ops *ops;
};

/* Build store -> cache -> fs for one backend. `group`: the mount-level ops of named
 * backends, or NULL. *fs and b->ops are the caller's (also after a failure).
 * Returns 0 or an exit status, having told the user what went wrong. */
static int backend_build(const struct lexfs_config *cfg, const struct backend_spec *spec,
			 struct ops *group, struct built *b, struct fs **fs)
{
	struct lexfs_err err = {0};
	struct store *st = NULL;
	struct cache *cache = NULL;
	char cdir[PATH_MAX], msg[512], who[128] = "";
	int rc;

	if (spec->named)
		snprintf(who, sizeof(who), "backend %s: ", spec->name);
	struct store_conf sc = {
	    .driver = spec->driver,
	    .backend_name = spec->name,
	    .settings = spec->drv,
	    .plugin_dir = cfg->plugin_dir,
	    .timeout_ms = cfg->timeout_ms,
	    .max_retries = cfg->max_retries,
	};
	rc = store_create(&sc, &st, &err);
	if (rc < 0) {
		snprintf(msg, sizeof(msg), "%scannot open the storage backend", who);
		say_err(msg, rc, &err);
		return EXIT_BACKEND;
	}
	if (spec->named)
		rc = config_check_backend_unused(spec->named, msg, sizeof(msg));
	else
		rc = config_check_unused(cfg, msg, sizeof(msg));
	if (rc < 0) {
		say("%s", msg);
		store_destroy(st);
		return EXIT_USAGE;
	}

	rc = cache_dir_for(cfg, spec, cdir, sizeof(cdir));
	if (rc < 0) {
		say("%scannot create the cache directory %s: %s (set -o cache_dir=DIR)", who, cdir,
		    strerror(-rc));
		store_destroy(st);
		return EXIT_USAGE;
	}
	{
		const char *bucket = settings_display(spec->drv, "bucket");

		if (bucket == NULL)
			bucket = settings_display(spec->drv, "container");
		if (bucket == NULL)
			bucket = settings_display(spec->drv, "root_dir");
		struct ops_conf oc = {
		    .events = {.log_path = cfg->events_log,
			       .on_stored = cfg->events_on_stored,
			       .on_deleted = cfg->events_on_deleted,
			       .webhook_url = cfg->events_webhook,
			       .hook_timeout_ms = cfg->events_hook_timeout_ms,
			       .bucket = bucket,
			       .backend = spec->name},
		    .health_interval_s = cfg->health_interval_s,
		    .health_timeout_ms = cfg->health_timeout_ms,
		    .metrics_addr = cfg->metrics_addr,
		    .group = group,
		};
		rc = ops_create(&oc, &b->ops);
		if (rc < 0) {
			say("%scannot set up events (events_log, hooks, webhook): %s", who,
			    strerror(-rc));
			store_destroy(st);
			return EXIT_USAGE;
		}
	}
	struct cache_conf cc = {
	    .dir = cdir,
	    .size_limit = cfg->cache_size,
	    .writeback_s = cfg->writeback_s,
	    .upload_concurrency = cfg->upload_concurrency,
	    .part_size = cfg->part_size,
	    .max_file_size = cfg->max_file_size,
	    .readahead_max = cfg->readahead_max,
	    .stat_ttl_ms = cfg->stat_ttl_ms,
	    .list_ttl_ms = cfg->list_ttl_ms,
	    .events = ops_events(b->ops),
	};
	rc = cache_create(&cc, &st, &cache); /* takes st */
	if (rc == -EPROTO) {
		/* cache/journal.c refused the write-back journal and said why above */
		say("%scannot set up the cache in %s: its journal is not one this lexfs reads "
		    "(see the message above; nothing in it was changed)",
		    who, cdir);
		return EXIT_USAGE;
	}
	if (rc < 0) {
		say("%scannot set up the cache in %s: %s (check -o cache_dir)", who, cdir,
		    strerror(-rc));
		return EXIT_USAGE;
	}
	b->store = cache_store(cache);
	b->cache = cache;
	struct fs_conf fc = {
	    .prefix = spec->prefix,
	    .uid = cfg->uid,
	    .gid = cfg->gid,
	    .umask = cfg->umask,
	    .entry_timeout = cfg->entry_timeout,
	    .attr_timeout = cfg->attr_timeout,
	    .negative_timeout = cfg->negative_timeout,
	    .presign_expiry_s = cfg->presign_expiry_s,
	    .max_file_size = cfg->max_file_size,
	    .read_only = cfg->read_only,
	    .ops = b->ops,
	};
	rc = fs_create(&fc, &cache, fs); /* takes cache */
	if (rc < 0) {
		say("%scannot set up the filesystem layer: %s", who, strerror(-rc));
		return EXIT_USAGE;
	}
	return 0;
}

/* Build every backend's stack (one, or one per named backend under a router),
 * fuse, check every backend, mount. Returns 0 or an exit status, having told the
 * user what went wrong. */
static int mount_stack_build(const struct lexfs_config *cfg, const char *source,
			     const char *mountpoint, struct mount_stack *ms)
{
	struct lexfs_err err = {0};
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct backend_spec *specs;
	struct built *built = NULL;
	char msg[512];
	size_t n, i;
	int rc, ret = EXIT_USAGE;

	specs = backend_specs(cfg, &n);
	built = calloc(n, sizeof(*built));
	if (specs == NULL || built == NULL) {
		say("out of memory");
		goto out;
	}
	if (cfg->nbackends > 0) {
		/* The group: signals, the metrics server, readiness for every backend. */
		struct ops_conf gc = {.metrics_addr = cfg->metrics_addr};
		struct route_conf rc_ = {.uid = cfg->uid, .gid = cfg->gid, .umask = cfg->umask};

		ms->bops = calloc(n, sizeof(*ms->bops));
		if (ms->bops == NULL || ops_create(&gc, &ms->ops) < 0) {
			say("cannot set up the mount's signal thread: out of memory");
			goto out;
		}
		rc_.ops = ms->ops;
		if (route_create(&rc_, &ms->route) < 0) {
			say("out of memory");
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		struct fs *fs = NULL;

		ret =
		    backend_build(cfg, &specs[i], cfg->nbackends ? ms->ops : NULL, &built[i], &fs);
		if (cfg->nbackends == 0) {
			ms->ops = built[i].ops;
			ms->fs = fs;
		} else {
			ms->bops[ms->nb++] = built[i].ops;
			if (fs != NULL && route_add(ms->route, specs[i].name, &fs) < 0) {
				say("out of memory");
				ret = EXIT_USAGE;
			}
		}
		if (ret != 0)
			goto out;
	}
	ret = EXIT_USAGE;

	rc = fuse_argv(cfg, source, &args);
	if (rc < 0) {
		say("mount options too long");
		fuse_opt_free_args(&args);
		goto out;
	}
	if (ms->route != NULL)
		ms->fuse =
		    fuse_new(&args, route_operations(), sizeof(struct fuse_operations), ms->route);
	else
		ms->fuse = fuse_new(&args, fs_operations(), sizeof(struct fuse_operations), ms->fs);
	fuse_opt_free_args(&args);
	if (ms->fuse == NULL) {
		say("FUSE refused the mount options (see the message above)");
		goto out;
	}

	/* Before the mount appears: one real round trip to every backend. */
	for (i = 0; i < n; i++) {
		lexfs_err_clear(&err);
		rc = store_health_check(built[i].store, cfg->health_timeout_ms, &err);
		if (rc < 0) {
			if (specs[i].named)
				snprintf(msg, sizeof(msg),
					 "backend %s: the %s backend failed its health check",
					 specs[i].name, specs[i].driver);
			else
				snprintf(msg, sizeof(msg), "the %s backend failed its health check",
					 specs[i].driver);
			say_err(msg, rc, &err);
			ret = EXIT_BACKEND;
			goto out;
		}
	}
	/* Members before the group: its metrics server reads them. */
	rc = 0;
	for (i = 0; i < n; i++) {
		rc = ops_attach(built[i].ops, built[i].store, built[i].cache);
		if (rc < 0)
			break;
	}
	if (rc == 0 && cfg->nbackends > 0)
		rc = ops_attach(ms->ops, NULL, NULL);
	if (rc < 0) {
		say("cannot start the health check or the metrics server: %s (check -o "
		    "metrics_addr: loopback HOST:PORT only)",
		    strerror(-rc));
		goto out;
	}

	if (fuse_mount(ms->fuse, mountpoint) != 0) {
		say("cannot mount on %s (see the message above; is it already mounted, or is "
		    "/dev/fuse missing?)",
		    mountpoint);
		ret = EXIT_MOUNT;
		goto out;
	}
	ms->mounted = true;
	if (fuse_set_signal_handlers(fuse_get_session(ms->fuse)) != 0) {
		say("cannot install signal handlers");
		ret = EXIT_MOUNT;
		goto out;
	}
	ms->handlers = true;
	ret = 0;
out:
	free(built);
	free(specs);
	return ret;
}

/* Fork; the parent waits until the child reports the mount ready (exit 0) or exits
 * (its status). Returns in the child with *notify_fd to pass to daemon_ready. */
static int daemon_start(int *notify_fd)
{
	int p[2], status;
	pid_t pid;
	ssize_t n;
	char c;

	if (pipe(p) < 0) {
		say("pipe: %s", strerror(errno));
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		say("fork: %s", strerror(errno));
		return -1;
	}
	if (pid > 0) {
		close(p[1]);
		do {
			n = read(p[0], &c, 1);
		} while (n < 0 && errno == EINTR);
		if (n == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : EXIT_MOUNT);
		_exit(EXIT_MOUNT);
	}
	close(p[0]);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	setsid();
	*notify_fd = p[1];
	return 0;
}

static void daemon_ready(int fd, const struct lexfs_config *cfg)
{
	int nullfd;
	ssize_t n;

	if (cfg->logfile == NULL)
		log_open(LOG_SINK_SYSLOG, NULL, -1);
	nullfd = open("/dev/null", O_RDWR);
	if (nullfd >= 0) {
		dup2(nullfd, 0);
		dup2(nullfd, 1);
		dup2(nullfd, 2);
		if (nullfd > 2)
			close(nullfd);
	}
	do {
		n = write(fd, "1", 1);
	} while (n < 0 && errno == EINTR);
	close(fd);
}

static int cmd_mount(int argc, char **argv)
{
	struct lexfs_config cfg;
	struct settings opts;
	struct mount_stack ms = {0};
	const char *pos[3] = {NULL};
	char msg[1024], mnt[PATH_MAX];
	int npos = 0, i, rc, ret = EXIT_USAGE, notify = -1;
	struct stat sb;
	sigset_t stop_sigs;

	settings_init(&opts);
	memset(&cfg, 0, sizeof(cfg));
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "-f") == 0) {
			rc = settings_set(&opts, "foreground", "true", "-f");
		} else if (strcmp(a, "-d") == 0) {
			rc = settings_set(&opts, "debug", "true", "-d");
			if (rc == 0)
				rc = settings_set(&opts, "foreground", "true", "-d");
		} else if (strcmp(a, "-s") == 0) {
			rc = settings_set(&opts, "single_thread", "true", "-s");
		} else if (strcmp(a, "-o") == 0) {
			if (i + 1 >= argc) {
				say("-o needs an argument");
				goto out;
			}
			rc = parse_o(argv[++i], &opts);
			scrub_secrets(argv[i]);
		} else if (strncmp(a, "-o", 2) == 0) {
			rc = parse_o(a + 2, &opts);
			scrub_secrets(argv[i] + 2);
		} else if (a[0] == '-' && a[1] != '\0') {
			say("unknown option %s (see lexfs --help)", a);
			goto out;
		} else {
			if (npos >= 2) {
				say("too many arguments: %s (expected SOURCE MOUNTPOINT)", a);
				goto out;
			}
			pos[npos++] = a;
			rc = 0;
		}
		if (rc < 0) {
			say("out of memory");
			goto out;
		}
	}
	if (npos == 0) {
		usage(stderr);
		goto out;
	}

	struct config_input in = {
	    .source = npos == 2 ? pos[0] : NULL,
	    .opts = &opts,
	    .env = environ,
	};
	rc = config_load(&in, &cfg, msg, sizeof(msg));
	if (rc < 0) {
		say("%s", msg);
		goto out;
	}
	if (realpath(pos[npos - 1], mnt) == NULL || stat(mnt, &sb) < 0) {
		say("mount point %s: %s (create it with mkdir -p %s)", pos[npos - 1],
		    strerror(errno), pos[npos - 1]);
		goto out;
	}
	if (!S_ISDIR(sb.st_mode)) {
		say("mount point %s is not a directory", pos[npos - 1]);
		goto out;
	}

	log_open(cfg.logfile ? LOG_SINK_FILE : LOG_SINK_STDERR, cfg.logfile, cfg.log_level);
	if (cfg.trace != NULL)
		log_set_trace(cfg.trace);
	if (cfg.backends_ignored != NULL)
		log_notice("storage.backends (%s) not mounted: the source %s names the one "
			   "backend of this mount",
			   cfg.backends_ignored, pos[0]);

	if (!cfg.foreground && daemon_start(&notify) < 0) {
		ret = EXIT_MOUNT;
		goto out;
	}
	/* libfuse's SIGINT/SIGTERM handler ends the loop only when it interrupts the
	 * main thread (waiting for the loop) or a FUSE worker (reading /dev/fuse):
	 * the helper threads the stack starts (uploads, events, health, metrics)
	 * inherit a mask that keeps those signals away from them. */
	sigemptyset(&stop_sigs);
	sigaddset(&stop_sigs, SIGINT);
	sigaddset(&stop_sigs, SIGTERM);
	sigaddset(&stop_sigs, SIGHUP);
	sigaddset(&stop_sigs, SIGQUIT);
	pthread_sigmask(SIG_BLOCK, &stop_sigs, NULL);
	ret = mount_stack_build(&cfg, npos == 2 ? pos[0] : NULL, mnt, &ms);
	pthread_sigmask(SIG_UNBLOCK, &stop_sigs, NULL); /* SIGUSR1/2 stay blocked here */
	if (ret != 0)
		goto teardown;
	if (cfg.nbackends == 0) {
		log_notice("mounted %s on %s (driver %s%s%s)", npos == 2 ? pos[0] : cfg.driver, mnt,
			   cfg.driver, cfg.prefix[0] ? ", prefix " : "", cfg.prefix);
	} else {
		for (i = 0; i < (int)cfg.nbackends; i++)
			log_notice(
			    "mounted backend %s on %s/%s (driver %s%s%s)", cfg.backends[i].name,
			    mnt, cfg.backends[i].name, cfg.backends[i].driver,
			    cfg.backends[i].prefix[0] ? ", prefix " : "", cfg.backends[i].prefix);
	}
	if (notify >= 0) {
		daemon_ready(notify, &cfg);
		notify = -1;
	}
	ops_ready(ms.ops, mnt);
	if (chdir("/") < 0)
		log_warn("chdir /: %s", strerror(errno));
	if (cfg.single_thread)
		rc = fuse_loop(ms.fuse);
	else
		rc = fuse_loop_mt(ms.fuse, 0);
	if (rc < 0) {
		log_err("FUSE loop failed: %s", strerror(-rc));
		ret = EXIT_MOUNT;
	}
	log_notice("unmounting %s", mnt);
teardown:
	mount_stack_destroy(&ms);
	if (ret == 0)
		log_notice("unmounted %s", mnt);
out:
	config_free(&cfg);
	settings_free(&opts);
	log_close();
	return ret;
}

/* ---- presign / verify-url ------------------------------------------------- */

/* Shared by presign and verify-url: [-o OPTS] [--source SRC] plus the command's own
 * options, which the caller handles in `own` (returns how many args it took, 0 if
 * not its option, -1 on error). */
struct sub_args {
	struct settings opts;
	const char *source;
	const char *positional;
};

typedef int (*own_opt_fn)(void *ctx, int argc, char **argv, int i);

static int sub_parse(int argc, char **argv, struct sub_args *sa, own_opt_fn own, void *ctx)
{
	int i, rc, took;

	settings_init(&sa->opts);
	for (i = 2; i < argc; i++) {
		const char *a = argv[i];

		if (own != NULL) {
			took = own(ctx, argc, argv, i);
			if (took < 0)
				return -1;
			if (took > 0) {
				i += took - 1;
				continue;
			}
		}
		if (strcmp(a, "-o") == 0 && i + 1 < argc) {
			rc = parse_o(argv[++i], &sa->opts);
			scrub_secrets(argv[i]);
		} else if (strncmp(a, "-o", 2) == 0 && a[2] != '\0') {
			rc = parse_o(a + 2, &sa->opts);
			scrub_secrets(argv[i] + 2);
		} else if (strcmp(a, "--source") == 0 && i + 1 < argc) {
			sa->source = argv[++i];
			rc = 0;
		} else if (a[0] == '-' && a[1] != '\0') {
			say("%s: unknown option %s", argv[1], a);
			return -1;
		} else if (sa->positional == NULL) {
			sa->positional = a;
			rc = 0;
		} else {
			say("%s: too many arguments: %s", argv[1], a);
			return -1;
		}
		if (rc < 0) {
			say("out of memory");
			return -1;
		}
	}
	return 0;
}

struct presign_ctx {
	enum lexfs_method method;
	long expires;
	bool expires_set;
};

static int presign_opt(void *vctx, int argc, char **argv, int i)
{
	struct presign_ctx *ctx = vctx;
	char *end = NULL;

	if (strcmp(argv[i], "--method") == 0) {
		if (i + 1 >= argc)
			goto missing;
		if (strcasecmp(argv[i + 1], "GET") == 0) {
			ctx->method = LEXFS_GET;
		} else if (strcasecmp(argv[i + 1], "PUT") == 0) {
			ctx->method = LEXFS_PUT;
		} else {
			say("presign: --method must be GET or PUT, not %s", argv[i + 1]);
			return -1;
		}
		return 2;
	}
	if (strcmp(argv[i], "--expires") == 0) {
		if (i + 1 >= argc)
			goto missing;
		errno = 0;
		ctx->expires = strtol(argv[i + 1], &end, 10);
		if (errno != 0 || end == argv[i + 1] || *end != '\0' || ctx->expires < 1 ||
		    ctx->expires > 7 * 86400) {
			say("presign: --expires must be 1 to 604800 seconds, not %s", argv[i + 1]);
			return -1;
		}
		ctx->expires_set = true;
		return 2;
	}
	return 0;
missing:
	say("presign: %s needs a value", argv[i]);
	return -1;
}

static int cmd_presign(int argc, char **argv)
{
	struct presign_ctx ctx = {.method = LEXFS_GET};
	struct sub_args sa = {0};
	struct lexfs_config cfg;
	struct lexfs_err err = {0};
	struct store *st = NULL;
	struct backend_spec *specs = NULL;
	const struct backend_spec *spec;
	const char *rest;
	char msg[1024], *key = NULL, *url = NULL;
	int rc, ret = EXIT_USAGE;
	size_t klen, nspecs, i;

	memset(&cfg, 0, sizeof(cfg));
	if (sub_parse(argc, argv, &sa, presign_opt, &ctx) < 0)
		goto out;
	if (sa.positional == NULL) {
		say("presign: which KEY? (lexfs presign KEY [--method GET|PUT] [--expires S])");
		goto out;
	}
	if (source_check_key(sa.positional, msg, sizeof(msg)) < 0) {
		say("presign: %s", msg);
		goto out;
	}
	struct config_input in = {.source = sa.source, .opts = &sa.opts, .env = environ};
	rc = config_load(&in, &cfg, msg, sizeof(msg));
	if (rc < 0) {
		say("%s", msg);
		goto out;
	}
	/* With named backends, KEY is a path in the mount: NAME/key. */
	specs = backend_specs(&cfg, &nspecs);
	if (specs == NULL)
		goto out;
	spec = &specs[0];
	rest = sa.positional;
	if (cfg.nbackends > 0) {
		size_t nlen = strcspn(sa.positional, "/");

		for (spec = NULL, i = 0; i < nspecs && spec == NULL; i++) {
			if (strlen(specs[i].name) == nlen &&
			    strncmp(specs[i].name, sa.positional, nlen) == 0 &&
			    sa.positional[nlen] == '/' && sa.positional[nlen + 1] != '\0')
				spec = &specs[i];
		}
		if (spec == NULL) {
			say("presign: with storage.backends, KEY is NAME/KEY, NAME one of the "
			    "backends (%s)",
			    cfg.backends[0].name);
			goto out;
		}
		rest = sa.positional + nlen + 1;
	}
	klen = strlen(spec->prefix) + strlen(rest) + 1;
	key = malloc(klen);
	if (key == NULL)
		goto out;
	snprintf(key, klen, "%s%s", spec->prefix, rest);

	struct store_conf sc = {
	    .driver = spec->driver,
	    .backend_name = spec->name,
	    .settings = spec->drv,
	    .plugin_dir = cfg.plugin_dir,
	    .timeout_ms = cfg.timeout_ms,
	    .max_retries = cfg.max_retries,
	};
	rc = store_create(&sc, &st, &err);
	if (rc < 0) {
		say_err("cannot open the storage backend", rc, &err);
		ret = EXIT_BACKEND;
		goto out;
	}
	if (spec->named)
		rc = config_check_backend_unused(spec->named, msg, sizeof(msg));
	else
		rc = config_check_unused(&cfg, msg, sizeof(msg));
	if (rc < 0) {
		say("%s", msg);
		goto out;
	}
	lexfs_err_clear(&err);
	rc = store_presign(st, key, ctx.method,
			   ctx.expires_set ? ctx.expires : cfg.presign_expiry_s, &url, &err);
	if (rc < 0) {
		say_err("presign", rc, &err);
		ret = EXIT_BACKEND;
		goto out;
	}
	printf("%s\n", url);
	ret = 0;
out:
	free(specs);
	free(url);
	free(key);
	store_destroy(st);
	config_free(&cfg);
	settings_free(&sa.opts);
	return ret;
}

static int cmd_verify_url(int argc, char **argv)
{
	struct sub_args sa = {0};
	struct lexfs_config cfg;
	enum lexfs_method method = LEXFS_GET;
	char msg[1024], *key = NULL, *filekey = NULL, *objkey = NULL;
	const char *sk;
	size_t keylen = 0;
	int rc, ret = EXIT_USAGE;

	memset(&cfg, 0, sizeof(cfg));
	if (sub_parse(argc, argv, &sa, NULL, NULL) < 0)
		goto out;
	if (sa.positional == NULL) {
		say("verify-url: which URL? (lexfs verify-url URL)");
		goto out;
	}
	struct config_input in = {.source = sa.source, .opts = &sa.opts, .env = environ};
	rc = config_load(&in, &cfg, msg, sizeof(msg));
	if (rc < 0) {
		say("%s", msg);
		goto out;
	}
	if (cfg.nbackends > 0) {
		say("verify-url: the configuration names several backends; say which with "
		    "--source DIR (the local backend's root_dir)");
		goto out;
	}
	sk = settings_get(&cfg.drv, "signing_key");
	if (sk != NULL && sk[0] != '\0') {
		key = strdup(sk);
		keylen = strlen(sk);
	} else if (strcmp(cfg.driver, "local") == 0) {
		const char *root = settings_get(&cfg.drv, "root_dir");

		rc = urlsign_read_key_file(root, &filekey, &keylen);
		if (rc < 0) {
			say("verify-url: no signing_key configured and no key file under %s: %s "
			    "(set storage.local.signing_key or --source DIR)",
			    root, strerror(-rc));
			goto out;
		}
		key = filekey;
		filekey = NULL;
	} else {
		say("verify-url: only URLs signed with a signing_key (local driver) can be "
		    "checked here; the %s driver's URLs are checked by its service",
		    cfg.driver);
		goto out;
	}
	if (key == NULL)
		goto out;
	rc = urlsign_verify(sa.positional, key, keylen, (int64_t)time(NULL), &objkey, &method);
	if (rc == 0) {
		printf("valid %s %s\n", method == LEXFS_PUT ? "PUT" : "GET", objkey);
		ret = 0;
	} else if (rc == -ETIMEDOUT) {
		say("verify-url: the URL has expired");
		ret = 2;
	} else if (rc == -EACCES) {
		say("verify-url: the signature does not match (forged, altered, or signed with "
		    "another key)");
		ret = 1;
	} else {
		say("verify-url: not a lexfs presigned URL: %s", strerror(-rc));
		ret = 1;
	}
out:
	free(objkey);
	free(key);
	free(filekey);
	config_free(&cfg);
	settings_free(&sa.opts);
	return ret;
}

/* ---- status (src/status.c reads and prints) -------------------------------- */

static int cmd_status(int argc, char **argv)
{
	const char *mnt = NULL;
	bool raw = false;
	char why[600];
	int i;

	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			raw = true;
		else if (mnt == NULL && argv[i][0] != '-')
			mnt = argv[i];
		else {
			say("status: unexpected argument %s (lexfs status MOUNTPOINT [--json])",
			    argv[i]);
			return EXIT_USAGE;
		}
	}
	if (mnt == NULL) {
		say("status: which MOUNTPOINT?");
		return EXIT_USAGE;
	}
	if (status_run(mnt, raw, stdout, why, sizeof(why)) < 0) {
		say("status: %s", why);
		return EXIT_USAGE;
	}
	return 0;
}

/* ---- doctor (src/doctor.c does the checks) -------------------------------- */

struct doctor_cli {
	bool json;
	bool abort_stale;
	int64_t stale_age_s; /* doctor_conf's: 0 default, < 0 any age */
};

static int doctor_opt(void *vctx, int argc, char **argv, int i)
{
	struct doctor_cli *cli = vctx;
	char *end = NULL;
	long long v;

	if (strcmp(argv[i], "--json") == 0) {
		cli->json = true;
		return 1;
	}
	if (strcmp(argv[i], "--abort-stale") == 0) {
		cli->abort_stale = true;
		return 1;
	}
	if (strcmp(argv[i], "--stale-age") == 0) {
		/* For tests: a fresh upload is stale with --stale-age 0. */
		errno = 0;
		v = i + 1 < argc ? strtoll(argv[i + 1], &end, 10) : -1;
		if (i + 1 >= argc || errno || end == argv[i + 1] || *end || v < 0) {
			say("doctor: --stale-age takes a number of seconds (default 86400)");
			return -1;
		}
		cli->stale_age_s = v > 0 ? v : -1;
		return 2;
	}
	return 0;
}

static int cmd_doctor(int argc, char **argv)
{
	struct sub_args sa = {0};
	struct lexfs_config cfg;
	struct doctor_conf one = {0}, *dc = &one;
	struct backend_spec *specs = NULL;
	char msg[1024];
	struct {
		char cache[PATH_MAX], probe[PATH_MAX];
	} *dirs = NULL; /* the paths dc[i] points at */
	struct doctor_cli cli = {0};
	size_t n = 1, i;
	int rc, ret = EXIT_USAGE;

	memset(&cfg, 0, sizeof(cfg));
	if (sub_parse(argc, argv, &sa, doctor_opt, &cli) < 0)
		goto out;
	struct config_input in = {
	    .source = sa.source ? sa.source : sa.positional, .opts = &sa.opts, .env = environ};
	msg[0] = '\0';
	rc = config_load(&in, &cfg, msg, sizeof(msg));
	one.config_status = rc < 0 ? rc : 0;
	one.config_message = msg;
	if (rc == 0) {
		/* One set of checks per backend (named backends: a section each). */
		specs = backend_specs(&cfg, &n);
		dirs = calloc(n, sizeof(*dirs));
		if (cfg.nbackends > 0)
			dc = calloc(n, sizeof(*dc));
		if (specs == NULL || dirs == NULL || dc == NULL) {
			say("doctor: out of memory");
			goto out;
		}
		for (i = 0; i < n; i++) {
			dc[i].config_file = cfg.file;
			dc[i].driver = specs[i].driver;
			dc[i].backend_name = specs[i].named ? specs[i].name : NULL;
			dc[i].settings = specs[i].drv;
			dc[i].plugin_dir = cfg.plugin_dir;
			dc[i].timeout_ms =
			    cfg.health_timeout_ms > 0 ? cfg.health_timeout_ms : cfg.timeout_ms;
			snprintf(dirs[i].probe, sizeof(dirs[i].probe), "%s.lexfs-doctor/",
				 specs[i].prefix);
			dc[i].probe_prefix = dirs[i].probe;
			dc[i].prefix = specs[i].prefix;
			dc[i].abort_stale = cli.abort_stale;
			dc[i].stale_age_s = cli.stale_age_s;
			rc = cache_dir_for(&cfg, &specs[i], dirs[i].cache, sizeof(dirs[i].cache));
			if (rc == 0 || cfg.cache_dir != NULL)
				dc[i].cache_dir = dirs[i].cache;
		}
	}
	log_open(LOG_SINK_STDERR, NULL, LOG_CRIT); /* the report says it all */
	if (cfg.nbackends > 0)
		ret = doctor_run_backends(dc, n, stdout, cli.json);
	else
		ret = doctor_run(dc, stdout, cli.json);
	if (ret < 0) {
		say("doctor: %s", strerror(-ret));
		ret = EXIT_USAGE;
	}
out:
	if (dc != &one)
		free(dc);
	free(dirs);
	free(specs);
	config_free(&cfg);
	settings_free(&sa.opts);
	return ret;
}

static int cmd_version(void)
{
	const char *const *names = registry_names();
	size_t i;

	printf("lexfs %s (FUSE library %s)\ndrivers:", PACKAGE_VERSION, fuse_pkgversion());
	for (i = 0; names[i] != NULL; i++)
		printf(" %s%s", names[i], registry_available(names[i]) ? "" : " (not built)");
	printf("\nconfig: ~/.config/lexfs/lexfs.conf, %s/lexfs.conf\n", SYSCONFDIR);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2) {
		const char *c = argv[1];

		if (strcmp(c, "-h") == 0 || strcmp(c, "--help") == 0 || strcmp(c, "help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(c, "version") == 0 || strcmp(c, "--version") == 0 ||
		    strcmp(c, "-V") == 0)
			return cmd_version();
		if (strcmp(c, "presign") == 0)
			return cmd_presign(argc, argv);
		if (strcmp(c, "verify-url") == 0)
			return cmd_verify_url(argc, argv);
		if (strcmp(c, "status") == 0)
			return cmd_status(argc, argv);
		if (strcmp(c, "doctor") == 0)
			return cmd_doctor(argc, argv);
	}
	return cmd_mount(argc, argv);
}
