/* fs_route.c - one mount, several named backends: "/NAME/rest" is "/rest" of NAME's
 * fs layer (see fs_route.h for what the root itself answers).
 *
 * How a request reaches a backend. Every operation of src/fs.c finds its struct fs
 * with fs_self(), that is fuse_get_context()->private_data. libfuse fills that
 * context afresh, on the calling thread, for every request, so the router sets
 * private_data to the chosen backend's struct fs for the length of one call and
 * puts itself back afterwards: per-request state, not a global one. That way the
 * single-backend operations run unchanged, and no struct fs parameter has to be
 * threaded through every function of fs.c. The price is that the router must
 * mirror every slot fs_operations() fills (libfuse looks at which slots exist,
 * for example write_buf, to decide what to ask the kernel for); the unit test
 * tests/unit/route_test.c fails when the two tables differ.
 *
 * Open files and directories. A file unlinked while open has no path any more
 * (libfuse then passes NULL), so the backend of a handle cannot come from the
 * path: open, create and opendir wrap the backend's fi->fh in a struct route_fh
 * that names the backend, and every call on a handle unwraps it for the length of
 * the call. The root's own directory handle is fh 0. The router keeps its
 * wrappers on a list, because at unmount the kernel may drop RELEASEs still
 * queued: route_destroy frees what was never released (the fs layers free their
 * own handles the same way).
 */
#define FUSE_USE_VERSION 31
#include "config.h"

#include <errno.h>
#include <fuse.h>
#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "src/fs_route.h"
#include "src/opsrt.h"

#define XA_LEXFS "user.lexfs."
#define XA_STATS "user.lexfs.stats"
#define XA_METRICS "user.lexfs.metrics"
#define XA_INVALIDATE "user.lexfs.invalidate"
#define STATS_MAX (16u << 20)

struct route_be {
	char *name;
	size_t len;
	struct fs *fs; /* owned */
};

/* fi->fh of a handle the router gave out. */
struct route_fh {
	struct route_be *be;
	uint64_t fh;		      /* the backend's own fi->fh */
	struct route_fh *prev, *next; /* route->handles, under route->lock */
};

struct route {
	struct route_conf conf;
	const struct fuse_operations *inner; /* fs_operations() */
	struct timespec start;
	struct route_be *be; /* in the order added; fixed once the mount runs */
	size_t n;

	pthread_mutex_t lock;	  /* guards handles */
	struct route_fh *handles; /* every wrapper not yet released */
};

/* A wrapper for the backend's handle now in fi->fh; fi->fh becomes the wrapper. */
static void fh_wrap(struct route *r, struct route_fh *h, struct route_be *be,
		    struct fuse_file_info *fi)
{
	h->be = be;
	h->fh = fi->fh;
	h->prev = NULL;
	pthread_mutex_lock(&r->lock);
	h->next = r->handles;
	if (r->handles)
		r->handles->prev = h;
	r->handles = h;
	pthread_mutex_unlock(&r->lock);
	fi->fh = (uintptr_t)h;
}

static void fh_free(struct route *r, struct route_fh *h)
{
	pthread_mutex_lock(&r->lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		r->handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&r->lock);
	free(h);
}

/* What one call goes to: a backend and the path within it. */
struct target {
	struct route_be *be;
	const char *path; /* "/..." in the backend; NULL when libfuse gave none */
	struct fuse_file_info *fi;
	uint64_t saved_fh; /* the router's fi->fh while the backend's is in place */
};

static struct route *route_self(void)
{
	return fuse_get_context()->private_data;
}

/* See the top of the file: the backend's operations find their struct fs here. */
static void enter(const struct route_be *be)
{
	fuse_get_context()->private_data = be->fs;
}

static void leave(struct route *r)
{
	fuse_get_context()->private_data = r;
}

static bool is_root(const char *path)
{
	return path && strcmp(path, "/") == 0;
}

/* "/" or "/NAME": an entry of the root, not something inside a backend. */
static bool top_level(const char *path)
{
	return path && path[0] == '/' && strchr(path + 1, '/') == NULL;
}

/* The backend of "/NAME[/rest]" and its path "/rest" (or "/"); NULL when NAME is
 * no backend or path is the root. */
static struct route_be *resolve(struct route *r, const char *path, const char **rest)
{
	const char *name, *slash;
	size_t len;

	if (!path || path[0] != '/' || path[1] == '\0')
		return NULL;
	name = path + 1;
	slash = strchr(name, '/');
	len = slash ? (size_t)(slash - name) : strlen(name);
	for (size_t i = 0; i < r->n; i++) {
		if (r->be[i].len == len && memcmp(r->be[i].name, name, len) == 0) {
			*rest = slash ? slash : "/";
			return &r->be[i];
		}
	}
	return NULL;
}

/* Resolve a call by its handle when it has one (the path may be gone), else by
 * its path. 0 with the backend entered; 1 for the root itself; -ENOENT. Every 0
 * is followed by target_put. */
static int target_get(struct route *r, const char *path, struct fuse_file_info *fi,
		      struct target *t)
{
	memset(t, 0, sizeof(*t));
	if (fi && fi->fh) {
		struct route_fh *h = (struct route_fh *)(uintptr_t)fi->fh;
		const char *rest = NULL;

		t->be = h->be;
		t->path = (path && resolve(r, path, &rest) == h->be) ? rest : NULL;
		t->fi = fi;
		t->saved_fh = fi->fh;
		fi->fh = h->fh;
		enter(t->be);
		return 0;
	}
	if (is_root(path))
		return 1;
	t->be = resolve(r, path, &t->path);
	if (!t->be)
		return -ENOENT;
	enter(t->be);
	return 0;
}

/* The backend's operations set fi->fh only in open, create and opendir, which
 * wrap it themselves: nothing to write back into the (shared) route_fh here. */
static void target_put(struct route *r, struct target *t)
{
	if (t->fi)
		t->fi->fh = t->saved_fh;
	leave(r);
}

/* A path-only call on something inside a backend. 0 (entered), 1 (the root or an
 * entry of it, for calls that must not touch one), -ENOENT. */
static int target_inside(struct route *r, const char *path, struct target *t)
{
	memset(t, 0, sizeof(*t));
	if (top_level(path))
		return 1;
	t->be = resolve(r, path, &t->path);
	if (!t->be)
		return -ENOENT;
	enter(t->be);
	return 0;
}

/* ---- the root ---- */

static void root_stat(const struct route *r, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | (0555 & ~r->conf.umask);
	st->st_nlink = 2 + r->n;
	st->st_uid = r->conf.uid;
	st->st_gid = r->conf.gid;
	st->st_size = 4096;
	st->st_blksize = 4096;
	st->st_atim = r->start;
	st->st_mtim = r->start;
	st->st_ctim = r->start;
}

/* A backend's user.lexfs.stats as JSON (caller decrefs); NULL on failure. */
static json_t *backend_stats(struct route *r, struct route_be *be)
{
	json_t *obj = NULL;
	char *buf = NULL;
	int len = 0;

	enter(be);
	/* The stats may grow between the size probe and the read: try again. */
	for (int attempt = 0; attempt < 4 && !obj; attempt++) {
		len = r->inner->getxattr("/", XA_STATS, NULL, 0);
		if (len <= 0 || (unsigned)len > STATS_MAX)
			break;
		free(buf);
		buf = malloc((size_t)len + 1);
		if (!buf)
			break;
		len = r->inner->getxattr("/", XA_STATS, buf, (size_t)len);
		if (len == -ERANGE)
			continue;
		if (len < 0)
			break;
		buf[len] = '\0';
		obj = json_loads(buf, 0, NULL);
		if (!obj)
			break;
	}
	leave(r);
	free(buf);
	return obj;
}

static void add_int(json_t *dst, const char *name, json_t *src)
{
	json_t *v = json_object_get(src, name);
	json_int_t sum = json_integer_value(json_object_get(dst, name));

	if (json_is_integer(v))
		sum += json_integer_value(v);
	json_object_set_new(dst, name, json_integer(sum));
}

/* The root's user.lexfs.stats (see fs_route.h). Caller frees. */
static char *root_stats(struct route *r)
{
	static const char *const sums[] = {"pending_uploads", "dirty_bytes", "bytes_in_flight",
					   "upload_errors"};
	json_t *root = json_object(), *all = json_object(), *fs = json_object();
	const char *state = "ok";
	char *text = NULL;

	if (!root || !all || !fs)
		goto out;
	for (size_t i = 0; i < r->n; i++) {
		json_t *st = backend_stats(r, &r->be[i]);
		const char *bs;

		if (!st) {
			st = json_pack("{s:s}", "error", "stats unavailable");
			state = "failing";
		}
		if (!st)
			goto out;
		for (size_t k = 0; k < sizeof(sums) / sizeof(sums[0]); k++)
			add_int(root, sums[k], st);
		add_int(fs, "open_handles", json_object_get(st, "fs"));
		add_int(fs, "open_dirs", json_object_get(st, "fs"));
		bs = json_string_value(json_object_get(json_object_get(st, "health"), "state"));
		if (bs && strcmp(bs, "failing") == 0)
			state = "failing";
		else if (bs && strcmp(bs, "unknown") == 0 && strcmp(state, "ok") == 0)
			state = "unknown";
		json_object_set_new(all, r->be[i].name, st);
	}
	json_object_set_new(root, "fs", fs);
	fs = NULL;
	json_object_set_new(root, "health", json_pack("{s:s}", "state", state));
	json_object_set_new(root, "backends", all);
	all = NULL;
	text = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(fs);
	json_decref(all);
	json_decref(root);
	return text;
}

/* getxattr's buffer conventions. */
static int reply_free(char *s, char *buf, size_t size)
{
	size_t len;
	int rc;

	if (!s)
		return -ENOMEM;
	len = strlen(s);
	if (len > STATS_MAX)
		rc = -E2BIG;
	else if (size == 0)
		rc = (int)len;
	else if (len > size)
		rc = -ERANGE;
	else {
		memcpy(buf, s, len);
		rc = (int)len;
	}
	free(s);
	return rc;
}

/* ---- operations ---- */

static void *route_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	struct route *r = route_self();

	/* Each backend's init sets the same mount-wide kernel settings. */
	for (size_t i = 0; i < r->n; i++) {
		enter(&r->be[i]);
		r->inner->init(conn, cfg);
	}
	leave(r);
	return r;
}

static int route_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, fi, &t);

	if (rc == 1) {
		root_stat(r, st);
		return 0;
	}
	if (rc)
		return rc;
	rc = r->inner->getattr(t.path, st, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_opendir(const char *path, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct route_fh *h;
	struct target t;
	int rc;

	fi->fh = 0;
	rc = target_get(r, path, NULL, &t);
	if (rc == 1)
		return 0; /* the root: fh 0 */
	if (rc)
		return rc;
	h = calloc(1, sizeof(*h));
	rc = h ? r->inner->opendir(t.path, fi) : -ENOMEM;
	target_put(r, &t);
	if (rc) {
		free(h);
		return rc;
	}
	fh_wrap(r, h, t.be, fi);
	return 0;
}

static int route_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t offset,
			 struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, fi, &t);

	if (rc == 1) {
		if (filler(buf, ".", NULL, 0, 0) || filler(buf, "..", NULL, 0, 0))
			return 0;
		for (size_t i = 0; i < r->n; i++) {
			if (filler(buf, r->be[i].name, NULL, 0, 0))
				break;
		}
		return 0;
	}
	if (rc)
		return rc;
	rc = r->inner->readdir(t.path, buf, filler, offset, t.fi, flags);
	target_put(r, &t);
	return rc;
}

static int route_releasedir(const char *path, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct route_fh *h = (struct route_fh *)(uintptr_t)fi->fh;
	struct target t;
	int rc;

	if (!h)
		return 0; /* the root's */
	rc = target_get(r, path, fi, &t);
	if (rc == 0) {
		rc = r->inner->releasedir(t.path, t.fi);
		target_put(r, &t);
	}
	fh_free(r, h);
	fi->fh = 0;
	return rc;
}

static int route_mkdir(const char *path, mode_t mode)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_inside(r, path, &t);

	if (rc == 1)
		return -EPERM;
	if (rc)
		return rc;
	rc = r->inner->mkdir(t.path, mode);
	target_put(r, &t);
	return rc;
}

static int route_rmdir(const char *path)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_inside(r, path, &t);

	if (rc == 1)
		return -EPERM;
	if (rc)
		return rc;
	rc = r->inner->rmdir(t.path);
	target_put(r, &t);
	return rc;
}

/* open and create: the backend's handle goes into a route_fh. */
static int open_common(const char *path, mode_t mode, struct fuse_file_info *fi, bool create)
{
	struct route *r = route_self();
	struct route_fh *h;
	struct target t;
	int rc = target_inside(r, path, &t);

	if (rc == 1)
		return create ? -EPERM : -EISDIR;
	if (rc)
		return rc;
	h = calloc(1, sizeof(*h));
	if (!h)
		rc = -ENOMEM;
	else if (create)
		rc = r->inner->create(t.path, mode, fi);
	else
		rc = r->inner->open(t.path, fi);
	target_put(r, &t);
	if (rc) {
		free(h);
		return rc;
	}
	fh_wrap(r, h, t.be, fi);
	return 0;
}

static int route_create_file(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return open_common(path, mode, fi, true);
}

static int route_open(const char *path, struct fuse_file_info *fi)
{
	return open_common(path, 0, fi, false);
}

/* A call on an open file: always by its handle. */
static int target_fh(struct route *r, const char *path, struct fuse_file_info *fi, struct target *t)
{
	if (!fi || !fi->fh)
		return -EBADF;
	return target_get(r, path, fi, t);
}

static int route_read(const char *path, char *buf, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_fh(r, path, fi, &t);

	if (rc)
		return rc;
	rc = r->inner->read(t.path, buf, size, off, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_write(const char *path, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_fh(r, path, fi, &t);

	if (rc)
		return rc;
	rc = r->inner->write(t.path, buf, size, off, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_flush(const char *path, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_fh(r, path, fi, &t);

	if (rc)
		return rc;
	rc = r->inner->flush(t.path, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_fh(r, path, fi, &t);

	if (rc)
		return rc;
	rc = r->inner->fsync(t.path, datasync, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_release(const char *path, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct route_fh *h = (struct route_fh *)(uintptr_t)fi->fh;
	struct target t;
	int rc = target_fh(r, path, fi, &t);

	if (rc)
		return rc;
	rc = r->inner->release(t.path, t.fi);
	target_put(r, &t);
	fh_free(r, h);
	fi->fh = 0;
	return rc;
}

static int route_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, fi, &t);

	if (rc == 1)
		return -EISDIR;
	if (rc)
		return rc;
	rc = r->inner->truncate(t.path, size, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_unlink(const char *path)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_inside(r, path, &t);

	if (rc == 1)
		return -EPERM;
	if (rc)
		return rc;
	rc = r->inner->unlink(t.path);
	target_put(r, &t);
	return rc;
}

/* rename and link: both ends in one backend, or EXDEV (mv then copies). */
static int two_paths(struct route *r, const char *from, const char *to, const char **rfrom,
		     const char **rto, struct route_be **be)
{
	struct route_be *bf, *bt;

	if (top_level(from) || top_level(to))
		return -EPERM;
	bf = resolve(r, from, rfrom);
	bt = resolve(r, to, rto);
	if (!bf || !bt)
		return -ENOENT;
	if (bf != bt)
		return -EXDEV;
	*be = bf;
	return 0;
}

static int route_rename(const char *from, const char *to, unsigned int flags)
{
	struct route *r = route_self();
	struct route_be *be;
	const char *rf, *rt;
	int rc = two_paths(r, from, to, &rf, &rt, &be);

	if (rc)
		return rc;
	enter(be);
	rc = r->inner->rename(rf, rt, flags);
	leave(r);
	return rc;
}

static int route_link(const char *from, const char *to)
{
	struct route *r = route_self();
	struct route_be *be;
	const char *rf, *rt;
	int rc = two_paths(r, from, to, &rf, &rt, &be);

	if (rc)
		return rc;
	enter(be);
	rc = r->inner->link(rf, rt);
	leave(r);
	return rc;
}

static int route_symlink(const char *target, const char *path)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_inside(r, path, &t);

	if (rc == 1)
		return -EPERM;
	if (rc)
		return rc;
	rc = r->inner->symlink(target, t.path);
	target_put(r, &t);
	return rc;
}

static int route_readlink(const char *path, char *buf, size_t size)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, NULL, &t);

	if (rc == 1)
		return -EINVAL;
	if (rc)
		return rc;
	rc = r->inner->readlink(t.path, buf, size);
	target_put(r, &t);
	return rc;
}

static int route_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, fi, &t);

	if (rc == 1)
		return -EPERM;
	if (rc)
		return rc;
	rc = r->inner->chmod(t.path, mode, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, fi, &t);

	if (rc == 1)
		return -EPERM;
	if (rc)
		return rc;
	rc = r->inner->chown(t.path, uid, gid, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, fi, &t);

	if (rc == 1)
		return -EPERM;
	if (rc)
		return rc;
	rc = r->inner->utimens(t.path, tv, t.fi);
	target_put(r, &t);
	return rc;
}

static int route_statfs(const char *path, struct statvfs *sv)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, NULL, &t);

	if (rc == 1 && r->n > 0) {
		/* The root holds nothing itself: answer as the first backend. */
		rc = 0;
		t.be = &r->be[0];
		t.path = "/";
		enter(t.be);
	}
	if (rc)
		return rc;
	rc = r->inner->statfs(t.path, sv);
	target_put(r, &t);
	return rc;
}

static int route_setxattr(const char *path, const char *name, const char *value, size_t size,
			  int flags)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, NULL, &t);

	if (rc == 1) {
		if (strncmp(name, "user.", 5) != 0)
			return -ENOTSUP;
		if (strcmp(name, XA_INVALIDATE) != 0)
			return -EPERM; /* controls are set on a backend's directory */
		rc = 0;
		for (size_t i = 0; i < r->n; i++) {
			int one;

			enter(&r->be[i]);
			one = r->inner->setxattr("/", name, value, size, flags);
			leave(r);
			if (one && !rc)
				rc = one;
		}
		return rc;
	}
	if (rc)
		return rc;
	rc = r->inner->setxattr(t.path, name, value, size, flags);
	target_put(r, &t);
	return rc;
}

static int route_getxattr(const char *path, const char *name, char *buf, size_t size)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, NULL, &t);

	if (rc == 1) {
		if (strcmp(name, XA_STATS) == 0)
			return reply_free(root_stats(r), buf, size);
		if (strcmp(name, XA_METRICS) == 0 && r->conf.ops)
			return reply_free(ops_metrics_text(r->conf.ops), buf, size);
		return -ENODATA;
	}
	if (rc)
		return rc;
	rc = r->inner->getxattr(t.path, name, buf, size);
	target_put(r, &t);
	return rc;
}

static int route_listxattr(const char *path, char *list, size_t size)
{
	static const char names[] = XA_STATS "\0" XA_METRICS "\0";
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, NULL, &t);

	if (rc == 1) {
		size_t len = r->conf.ops ? sizeof(names) - 1 : sizeof(XA_STATS);

		if (size == 0)
			return (int)len;
		if (size < len)
			return -ERANGE;
		memcpy(list, names, len);
		return (int)len;
	}
	if (rc)
		return rc;
	rc = r->inner->listxattr(t.path, list, size);
	target_put(r, &t);
	return rc;
}

static int route_removexattr(const char *path, const char *name)
{
	struct route *r = route_self();
	struct target t;
	int rc = target_get(r, path, NULL, &t);

	if (rc == 1)
		/* Computed names stay (rsync -X removes what its source lacks). */
		return strncmp(name, XA_LEXFS, strlen(XA_LEXFS)) == 0 ? 0 : -ENODATA;
	if (rc)
		return rc;
	rc = r->inner->removexattr(t.path, name);
	target_put(r, &t);
	return rc;
}

static const struct fuse_operations route_ops = {
    .init = route_init,
    .getattr = route_getattr,
    .opendir = route_opendir,
    .readdir = route_readdir,
    .releasedir = route_releasedir,
    .mkdir = route_mkdir,
    .rmdir = route_rmdir,
    .create = route_create_file,
    .open = route_open,
    .read = route_read,
    .write = route_write,
    .truncate = route_truncate,
    .flush = route_flush,
    .fsync = route_fsync,
    .release = route_release,
    .unlink = route_unlink,
    .rename = route_rename,
    .chmod = route_chmod,
    .chown = route_chown,
    .utimens = route_utimens,
    .symlink = route_symlink,
    .readlink = route_readlink,
    .link = route_link,
    .statfs = route_statfs,
    .setxattr = route_setxattr,
    .getxattr = route_getxattr,
    .listxattr = route_listxattr,
    .removexattr = route_removexattr,
};

const struct fuse_operations *route_operations(void)
{
	return &route_ops;
}

/* ---- life cycle ---- */

int route_create(const struct route_conf *conf, struct route **out)
{
	struct route *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	if (pthread_mutex_init(&r->lock, NULL)) {
		free(r);
		return -ENOMEM;
	}
	r->conf = *conf;
	r->inner = fs_operations();
	clock_gettime(CLOCK_REALTIME, &r->start);
	*out = r;
	return 0;
}

int route_add(struct route *r, const char *name, struct fs **fs)
{
	struct route_be *nb;
	int rc = -ENOMEM;

	for (size_t i = 0; i < r->n; i++) {
		if (strcmp(r->be[i].name, name) == 0) {
			rc = -EEXIST;
			goto fail;
		}
	}
	nb = realloc(r->be, (r->n + 1) * sizeof(*nb));
	if (!nb)
		goto fail;
	r->be = nb;
	nb[r->n].name = strdup(name);
	if (!nb[r->n].name)
		goto fail;
	nb[r->n].len = strlen(name);
	nb[r->n].fs = *fs;
	*fs = NULL;
	r->n++;
	return 0;
fail:
	fs_destroy(*fs);
	*fs = NULL;
	return rc;
}

void route_destroy(struct route *r)
{
	if (!r)
		return;
	while (r->handles) {
		struct route_fh *h = r->handles;

		r->handles = h->next;
		free(h);
	}
	while (r->n > 0) {
		r->n--;
		fs_destroy(r->be[r->n].fs);
		free(r->be[r->n].name);
	}
	free(r->be);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
