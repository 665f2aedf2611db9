/* local.c - the "local" driver: objects are files under a root directory.
 *
 * Layout of ROOT:
 *
 *   ROOT/KEY                        an object's bytes ("a/b.txt" is ROOT/a/b.txt)
 *   ROOT/DIR/                       a directory; "DIR/" is a directory marker object
 *   ROOT/.lexfs/                    reserved: never listed, keys under it refused
 *   ROOT/.lexfs/tmp/                temp files; every write lands here first, is fsynced,
 *                                   then renamed into place (readers never see a partial
 *                                   object)
 *   ROOT/.lexfs/meta/KEY#f.json     sidecar of object KEY (metadata is kept in sidecar
 *                                   JSON files, not xattrs, so any filesystem works)
 *   ROOT/.lexfs/meta/DIR#d.json     sidecar of the explicit directory marker "DIR/"
 *   ROOT/.lexfs/mpu/ID/N            part N of multipart upload ID
 *   ROOT/.lexfs/mpu/ID/upload.json  its key and start time (local_mpu.c)
 *   ROOT/.lexfs/signing.key         generated presign key (mode 0600), when no
 *                                   signing_key setting is given
 *
 * The "#f" / "#d" suffixes keep the sidecars of "a" and "a/" apart and cannot collide
 * with each other (a suffix identifies its key uniquely).
 *
 * Sidecar format (JSON, version 1):
 *   {"v":1, "ino":N, "size":N, "mtime_ns":N, "etag":"md5hex",
 *    "content_type":"...", "meta":[["name","value"],...]}
 * A sidecar is only believed when ino (and, for files, size and mtime_ns) match the
 * file: a file replaced behind lexfs's back, or a crash between the sidecar and the
 * data rename, shows as "no metadata" instead of wrong metadata. A write does:
 * temp file -> fsync -> sidecar (temp + rename) -> rename data -> fsync directory.
 *
 * Directories: every directory is a "DIR/" marker for info. A directory is an explicit
 * marker when its sidecar exists (made by uploading "DIR/"); recursive listings show
 * explicit and empty directories. Removing the last object of a directory removes the
 * directory too unless it is an explicit marker (like an object store's implicit
 * directories).
 *
 * Path safety: keys are checked (no "", "/..." , "//", "." or ".." components, no
 * ".lexfs" first component, components <= 255 bytes) and then opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS) so a symlink cannot lead outside
 * ROOT; without openat2, every component is opened with O_NOFOLLOW (symlinks refused).
 * Directories are created with an O_NOFOLLOW walk in both cases (writes never follow
 * symlinks). Escapes fail with -EINVAL and LEXFS-006. Symlinks are never listed.
 *
 * Settings: root_dir (default "./storage"; created if its parent exists), base_url
 * (default "http://localhost:8000/storage"), signing_key (secret), presign_max_expiry
 * (seconds, default 604800), fsync (bool, default true). Control "verify_url".
 *
 * Files: local.c (this: keys, safe opening, sidecars, objects, the table), local_list.c
 * (listings), local_mpu.c (multipart), local_int.h (what they share).
 *
 * Thread safety: the driver keeps no mutable shared state but an atomic counter for temp
 * names; the filesystem's rename atomicity does the rest.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#ifdef __linux__
#include <linux/openat2.h>
#endif

#include "drivers/builtin.h"
#include "drivers/driver.h"
#include "drivers/local_int.h"
#include "src/buf.h"
#include "src/crypto.h"
#include "src/log.h"
#include "src/urlsign.h"

/* What a sidecar says. */
struct side {
	bool valid;
	char etag[96];
	char content_type[128];
	struct lexfs_meta meta;
};

/* ---- errors ----------------------------------------------------------------- */

int local_fail_errno(struct lexfs_err *err, int e, const char *what, const char *key)
{
	enum lexfs_code code;

	if (e == EXDEV || e == ELOOP) {
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
				  "local: key \"%.200s\" leads outside the root", key);
	}
	code = e == ENOENT ? LEXFS_E_NOTFOUND : lexfs_errno_code(e);
	return lexfs_fail(err, code, e, "local: %s \"%.200s\": %s", what, key, strerror(e));
}

int local_oom(struct lexfs_err *err)
{
	return lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "local: out of memory");
}

/* ---- keys ------------------------------------------------------------------- */

/* Check a key (or a list prefix's directory part when allow_empty). A trailing '/'
 * is allowed (directory marker). 0 or -EINVAL / -ENAMETOOLONG with LEXFS-006. */
int local_check_key(const char *key, bool allow_empty, struct lexfs_err *err)
{
	const char *p = key, *slash;
	size_t len = strlen(key);

	if (len == 0) {
		if (allow_empty)
			return 0;
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL, "local: empty key");
	}
	if (len > LOCAL_KEY_MAX)
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, ENAMETOOLONG,
				  "local: key longer than %d bytes", LOCAL_KEY_MAX);
	if (key[0] == '/')
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
				  "local: absolute key \"%.200s\" refused", key);
	for (;;) {
		size_t clen;

		slash = strchr(p, '/');
		clen = slash ? (size_t)(slash - p) : strlen(p);
		if (clen == 0 && slash)
			return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
					  "local: empty component in key \"%.200s\"", key);
		if ((clen == 1 && p[0] == '.') || (clen == 2 && p[0] == '.' && p[1] == '.'))
			return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
					  "local: \".\" or \"..\" in key \"%.200s\" refused", key);
		if (clen > NAME_MAX)
			return lexfs_fail(err, LEXFS_E_INVALID_PATH, ENAMETOOLONG,
					  "local: component longer than %d bytes", NAME_MAX);
		if (p == key && clen == 6 && memcmp(p, ".lexfs", 6) == 0)
			return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
					  "local: \".lexfs\" is reserved");
		if (!slash || !slash[1])
			break;
		p = slash + 1;
	}
	return 0;
}

bool local_is_marker(const char *key)
{
	size_t n = strlen(key);

	return n > 0 && key[n - 1] == '/';
}

/* ---- safe opening ----------------------------------------------------------- */

/* Open path (relative, already checked) beneath dirfd. Returns fd or -errno (-EXDEV /
 * -ELOOP for an escape). */
int local_open_beneath(const lexfs_drv *d, int dirfd, const char *path, int flags, mode_t mode)
{
	char comp[NAME_MAX + 1];
	const char *p = path;
	int cur = dirfd, fd;

	flags |= O_CLOEXEC;
	if (!*path)
		path = ".";
#ifdef SYS_openat2
	if (d->have_openat2) {
		struct open_how how = { 0 };

		how.flags = (uint64_t)flags;
		how.mode = (flags & O_CREAT) ? mode : 0;
		how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
		do {
			fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
		} while (fd < 0 && errno == EAGAIN);
		return fd < 0 ? -errno : fd;
	}
#endif
	/* Fallback: one component at a time, never following a symlink. */
	if (strcmp(path, ".") == 0) {
		fd = openat(dirfd, ".", flags);
		return fd < 0 ? -errno : fd;
	}
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		bool last = !slash || !slash[1];

		if (len > NAME_MAX) {
			fd = -ENAMETOOLONG;
			break;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		if (last)
			fd = openat(cur, comp, flags | O_NOFOLLOW, mode);
		else
			fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			struct stat st;

			fd = -errno;
			if ((fd == -ELOOP || fd == -ENOTDIR) &&
			    fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				fd = -ELOOP;
			break;
		}
		if (cur != dirfd)
			close(cur);
		cur = fd;
		if (last)
			return fd;
		p = slash + 1;
	}
	if (cur != dirfd)
		close(cur);
	return fd;
}

/* Create the directories of `path` ("a/b/c" makes a, a/b and a/b/c) beneath dirfd,
 * never following symlinks, and return an fd of the last one (or -errno). */
static int mkdir_walk(int dirfd, const char *path)
{
	char comp[NAME_MAX + 1];
	const char *p = path;
	int cur, fd;

	cur = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cur < 0)
		return -errno;
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);

		if (len == 0 || len > NAME_MAX) {
			close(cur);
			return -EINVAL;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		if (mkdirat(cur, comp, 0755) != 0 && errno != EEXIST) {
			fd = -errno;
			close(cur);
			return fd;
		}
		fd = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0) {
			struct stat st;

			fd = -errno;
			if (fstatat(cur, comp, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				fd = -ELOOP;
			close(cur);
			return fd;
		}
		close(cur);
		cur = fd;
		if (!slash)
			break;
		p = slash + 1;
	}
	return cur;
}

/* Split "a/b/c" into dir "a/b" (in dirbuf) and base "c". For "c": dir "". A trailing
 * '/' is removed first (marker "a/b/" -> dir "a", base "b"). */
static int split_key(const char *key, char *dirbuf, size_t dirlen, char *base, size_t baselen)
{
	size_t n = strlen(key);
	const char *slash;
	size_t dl;

	if (n && key[n - 1] == '/')
		n--;
	if (n == 0 || n >= dirlen)
		return -EINVAL;
	memcpy(dirbuf, key, n);
	dirbuf[n] = '\0';
	slash = strrchr(dirbuf, '/');
	if (!slash) {
		if (n >= baselen)
			return -ENAMETOOLONG;
		memcpy(base, dirbuf, n + 1);
		dirbuf[0] = '\0';
		return 0;
	}
	dl = (size_t)(slash - dirbuf);
	if (strlen(slash + 1) >= baselen)
		return -ENAMETOOLONG;
	memcpy(base, slash + 1, strlen(slash + 1) + 1);
	dirbuf[dl] = '\0';
	return 0;
}

/* Open the directory holding key's entry; create = mkdir -p. fd or -errno. */
static int open_parent(const lexfs_drv *d, const char *key, bool create, char base[NAME_MAX + 1])
{
	char dir[LOCAL_KEY_MAX + 2];
	int rc = split_key(key, dir, sizeof(dir), base, NAME_MAX + 1);

	if (rc)
		return rc;
	if (create)
		return mkdir_walk(d->root_fd, dir);
	return local_open_beneath(d, d->root_fd, dir, O_RDONLY | O_DIRECTORY, 0);
}

/* Path of key's data: "a/b" for "a/b" and "a/b/"; "." for the root. */
void local_data_path(const char *key, char *out, size_t outlen)
{
	size_t n = strlen(key);

	if (n && key[n - 1] == '/')
		n--;
	if (n == 0)
		snprintf(out, outlen, ".");
	else
		snprintf(out, outlen, "%.*s", (int)n, key);
}

/* ---- temp files ------------------------------------------------------------- */

void local_temp_name(lexfs_drv *d, char *out, size_t outlen)
{
	uint64_t n = __atomic_add_fetch(&d->seq, 1, __ATOMIC_RELAXED);
	uint32_t r = 0;

	crypto_random(&r, sizeof(r));
	snprintf(out, outlen, "t%ld-%" PRIu64 "-%08x", (long)getpid(), n, r);
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Copy len bytes of in (from in_off) to the end of out. */
int local_copy_range(int in, off_t in_off, int out, uint64_t len)
{
	char *buf = NULL;
	int rc = 0;

#ifdef HAVE_COPY_FILE_RANGE
	while (len > 0) {
		size_t want = len > (1u << 30) ? (1u << 30) : (size_t)len;
		ssize_t n = copy_file_range(in, &in_off, out, NULL, want, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EXDEV || errno == ENOSYS || errno == EINVAL ||
			    errno == EOPNOTSUPP)
				break; /* fall back to read/write */
			return -errno;
		}
		if (n == 0)
			return -EIO; /* the source is shorter than it said */
		len -= (uint64_t)n;
	}
	if (len == 0)
		return 0;
#endif
	buf = malloc(LOCAL_CHUNK);
	if (!buf)
		return -ENOMEM;
	while (len > 0 && rc == 0) {
		size_t want = len > LOCAL_CHUNK ? LOCAL_CHUNK : (size_t)len;
		ssize_t n = pread(in, buf, want, in_off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (n == 0) {
			rc = -EIO;
			break;
		}
		rc = write_all(out, buf, (size_t)n);
		in_off += n;
		len -= (uint64_t)n;
	}
	free(buf);
	return rc;
}

/* Write a source to fd. */
int local_write_src(int fd, const struct lexfs_src *src)
{
	if (src->buf)
		return write_all(fd, src->buf, (size_t)src->len);
	return local_copy_range(src->fd, src->off, fd, src->len);
}

/* ---- sidecars --------------------------------------------------------------- */

/* "a/b" -> "a/b#f.json", "a/b/" -> "a/b#d.json". A last component too long for the
 * suffix is replaced by "#h" + its SHA-256 (so every sidecar name fits NAME_MAX). */
static int side_path(const char *key, char *out, size_t outlen)
{
	size_t n = strlen(key), dl, bl;
	const char *suffix = SIDE_FILE, *slash;
	int w;

	if (n && key[n - 1] == '/') {
		n--;
		suffix = SIDE_DIR;
	}
	slash = memrchr(key, '/', n);
	dl = slash ? (size_t)(slash + 1 - key) : 0;
	bl = n - dl;
	if (bl + strlen(suffix) > NAME_MAX) {
		uint8_t h[SHA256_LEN];
		char hex[2 * SHA256_LEN + 1];

		crypto_sha256(key + dl, bl, h);
		crypto_hex(h, sizeof(h), hex);
		w = snprintf(out, outlen, "%.*s#h%s%s", (int)dl, key, hex, suffix);
	} else {
		w = snprintf(out, outlen, "%.*s%s", (int)n, key, suffix);
	}
	return (w < 0 || (size_t)w >= outlen) ? -ENAMETOOLONG : 0;
}

static void side_init(struct side *s)
{
	memset(s, 0, sizeof(*s));
	meta_init(&s->meta);
}

static void side_free(struct side *s)
{
	meta_free(&s->meta);
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Read key's sidecar and check it against st (the data file or directory). A missing,
 * unreadable or stale sidecar leaves s->valid false; only ENOMEM is an error. */
static int side_read(const lexfs_drv *d, const char *key, const struct stat *st, struct side *s)
{
	char path[LOCAL_KEY_MAX + 96];
	json_t *root = NULL, *m;
	json_error_t jerr;
	const char *str;
	int fd, rc = 0;

	side_init(s);
	if (side_path(key, path, sizeof(path)))
		return 0;
	fd = local_open_beneath(d, d->meta_fd, path, O_RDONLY, 0);
	if (fd < 0)
		return 0;
	root = json_loadfd(fd, 0, &jerr);
	close(fd);
	if (!root || !json_is_object(root))
		goto out;
	if ((uint64_t)json_integer_value(json_object_get(root, "ino")) != (uint64_t)st->st_ino)
		goto out;
	if (S_ISREG(st->st_mode) &&
	    ((uint64_t)json_integer_value(json_object_get(root, "size")) != (uint64_t)st->st_size ||
	     json_integer_value(json_object_get(root, "mtime_ns")) != mtime_ns(st)))
		goto out;
	str = json_string_value(json_object_get(root, "etag"));
	snprintf(s->etag, sizeof(s->etag), "%s", str ? str : "");
	str = json_string_value(json_object_get(root, "content_type"));
	snprintf(s->content_type, sizeof(s->content_type), "%s", str ? str : "");
	m = json_object_get(root, "meta");
	if (json_is_array(m)) {
		size_t i;
		json_t *pair;

		json_array_foreach(m, i, pair) {
			const char *k = json_string_value(json_array_get(pair, 0));
			const char *v = json_string_value(json_array_get(pair, 1));

			if (!k || !v)
				continue;
			if (meta_set(&s->meta, k, v) != 0) {
				rc = -ENOMEM;
				goto out;
			}
		}
	}
	s->valid = true;
out:
	json_decref(root);
	if (rc)
		side_free(s);
	return rc;
}

/* Atomically write key's sidecar describing st. */
static int side_write(lexfs_drv *d, const char *key, const struct stat *st, const char *etag,
		      const char *ctype, const struct lexfs_meta *meta)
{
	char path[LOCAL_KEY_MAX + 96], dir[LOCAL_KEY_MAX + 96], base[NAME_MAX + 1], tmp[64];
	json_t *root, *arr;
	char *text = NULL;
	int rc, fd = -1, dfd = -1;
	size_t i;

	rc = side_path(key, path, sizeof(path));
	if (rc)
		return rc;
	root = json_object();
	arr = json_array();
	if (!root || !arr) {
		json_decref(root);
		json_decref(arr);
		return -ENOMEM;
	}
	json_object_set_new(root, "v", json_integer(1));
	json_object_set_new(root, "ino", json_integer((json_int_t)st->st_ino));
	json_object_set_new(root, "size", json_integer((json_int_t)st->st_size));
	json_object_set_new(root, "mtime_ns", json_integer(mtime_ns(st)));
	json_object_set_new(root, "etag", json_string(etag ? etag : ""));
	json_object_set_new(root, "content_type", json_string(ctype ? ctype : ""));
	for (i = 0; meta && i < meta->n; i++)
		json_array_append_new(arr, json_pack("[ss]", meta->kv[i].name, meta->kv[i].value));
	json_object_set_new(root, "meta", arr);
	text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	if (!text)
		return -ENOMEM;

	/* path "a/b#f.json": directory "a", base "b#f.json" */
	{
		const char *slash = strrchr(path, '/');

		const char *b = slash ? slash + 1 : path;

		if (strlen(b) > NAME_MAX) {
			free(text);
			return -ENAMETOOLONG;
		}
		memcpy(base, b, strlen(b) + 1);
		if (slash)
			snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
		else
			dir[0] = '\0';
	}
	dfd = dir[0] ? mkdir_walk(d->meta_fd, dir)
		     : openat(d->meta_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0) {
		rc = dfd == -1 ? -errno : dfd;
		dfd = -1;
		goto out;
	}
	local_temp_name(d, tmp, sizeof(tmp));
	fd = openat(d->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = write_all(fd, text, strlen(text));
	if (rc == 0 && d->do_fsync && fsync(fd) != 0)
		rc = -errno;
	if (rc == 0 && renameat(d->tmp_fd, tmp, dfd, base) != 0)
		rc = -errno;
	if (rc)
		unlinkat(d->tmp_fd, tmp, 0);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(text);
	return rc;
}

static void side_remove(lexfs_drv *d, const char *key)
{
	char path[LOCAL_KEY_MAX + 96];

	if (side_path(key, path, sizeof(path)) == 0)
		unlinkat(d->meta_fd, path, 0);
}

bool local_side_exists(const lexfs_drv *d, const char *key)
{
	char path[LOCAL_KEY_MAX + 96];
	struct stat st;

	return side_path(key, path, sizeof(path)) == 0 &&
	       fstatat(d->meta_fd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- object info ------------------------------------------------------------ */

static void weak_etag(const struct stat *st, char *out, size_t outlen)
{
	snprintf(out, outlen, "W-%" PRIx64 "-%" PRIx64 "-%" PRIx64, (uint64_t)st->st_ino,
		 (uint64_t)st->st_size, (uint64_t)mtime_ns(st));
}

/* Fill oi from a stat and the key's sidecar. */
int local_fill_info(const lexfs_drv *d, const char *key, const struct stat *st,
		     struct lexfs_objinfo *oi)
{
	struct side s;
	int rc;

	rc = side_read(d, key, st, &s);
	if (rc)
		return rc;
	oi->size = S_ISDIR(st->st_mode) ? 0 : (uint64_t)st->st_size;
	oi->mtime = (int64_t)st->st_mtim.tv_sec;
	if (s.valid && s.etag[0])
		snprintf(oi->etag, sizeof(oi->etag), "%s", s.etag);
	else
		weak_etag(st, oi->etag, sizeof(oi->etag));
	if (s.valid && s.content_type[0])
		snprintf(oi->content_type, sizeof(oi->content_type), "%s", s.content_type);
	else
		snprintf(oi->content_type, sizeof(oi->content_type), "%s",
			 S_ISDIR(st->st_mode) ? "application/x-directory"
					      : "application/octet-stream");
	meta_free(&oi->meta);
	oi->meta = s.meta; /* hand over */
	meta_init(&s.meta);
	oi->has_meta = true;
	return 0;
}

/* Open key's data (file, or directory for a marker) and stat it. fd or -errno;
 * -ENOENT when the kind does not match the key. */
static int open_obj(const lexfs_drv *d, const char *key, struct stat *st)
{
	char path[LOCAL_KEY_MAX + 2];
	int fd;

	local_data_path(key, path, sizeof(path));
	fd = local_open_beneath(d, d->root_fd, path,
			  local_is_marker(key) ? O_RDONLY | O_DIRECTORY : O_RDONLY | O_NOCTTY, 0);
	if (fd < 0)
		return fd == -ENOTDIR ? -ENOENT : fd;
	if (fstat(fd, st) != 0) {
		int e = -errno;

		close(fd);
		return e;
	}
	if (local_is_marker(key) ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* ---- open / close ----------------------------------------------------------- */

static void local_close(lexfs_drv *d)
{
	if (!d)
		return;
	if (d->root_fd >= 0)
		close(d->root_fd);
	if (d->meta_fd >= 0)
		close(d->meta_fd);
	if (d->tmp_fd >= 0)
		close(d->tmp_fd);
	if (d->mpu_fd >= 0)
		close(d->mpu_fd);
	free(d->root);
	free(d->base_url);
	if (d->signing_key) {
		explicit_bzero(d->signing_key, d->signing_keylen);
		free(d->signing_key);
	}
	free(d);
}

static int open_sub(int dirfd, const char *name, int *out)
{
	if (mkdirat(dirfd, name, 0700) != 0 && errno != EEXIST)
		return -errno;
	*out = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	return *out < 0 ? -errno : 0;
}

/* The generated signing key: read ROOT/.lexfs/signing.key or create it (0600). */
static int load_or_make_key(lexfs_drv *d, int lexfs_fd)
{
	uint8_t raw[32];
	char hex[2 * sizeof(raw) + 2], tmp[64];
	size_t len;
	int fd, rc, tries;

	for (tries = 0; tries < 3; tries++) {
		rc = urlsign_read_key_file(d->root, &d->signing_key, &d->signing_keylen);
		if (rc != -ENOENT)
			return rc;
		if (crypto_random(raw, sizeof(raw)) != 0)
			return -EIO;
		crypto_hex(raw, sizeof(raw), hex);
		len = strlen(hex);
		hex[len++] = '\n';
		local_temp_name(d, tmp, sizeof(tmp));
		fd = openat(d->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		rc = write_all(fd, hex, len);
		if (rc == 0 && fsync(fd) != 0)
			rc = -errno;
		close(fd);
		/* link, not rename: two mounts racing keep the first key */
		if (rc == 0 && linkat(d->tmp_fd, tmp, lexfs_fd, "signing.key", 0) != 0 &&
		    errno != EEXIST)
			rc = -errno;
		unlinkat(d->tmp_fd, tmp, 0);
		explicit_bzero(hex, sizeof(hex));
		if (rc)
			return rc;
	}
	return -EIO;
}

/* Remove what a crashed writer left behind: temp files older than a day and
 * multipart uploads untouched for a week. Newer ones may belong to a live mount
 * sharing this root. */
static void clean_stale(lexfs_drv *d)
{
	time_t now = time(NULL);
	struct ent *v;
	size_t n, i;

	if (local_read_dir(d, d->tmp_fd, false, "", &v, &n) == 0) {
		for (i = 0; i < n; i++) {
			struct stat st;

			if (!v[i].dir && fstatat(d->tmp_fd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    now - st.st_mtime > 86400)
				unlinkat(d->tmp_fd, v[i].name, 0);
		}
		local_ents_free(v, n);
	}
	if (local_read_dir(d, d->mpu_fd, false, "", &v, &n) == 0) {
		for (i = 0; i < n; i++) {
			struct lexfs_mpu m = { 0 };
			struct stat st;

			if (!v[i].dir || strlen(v[i].name) >= sizeof(m.id) ||
			    fstatat(d->mpu_fd, v[i].name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
			    now - st.st_mtime <= 7 * 86400)
				continue;
			memcpy(m.id, v[i].name, strlen(v[i].name) + 1);
			log_info("local: removing abandoned multipart upload %s", m.id);
			local_mpu_rmdir(d, &m);
		}
		local_ents_free(v, n);
	}
}

static int local_open(const struct lexfs_driver_conf *conf, lexfs_drv **out,
		      struct lexfs_err *err)
{
	const struct settings *s = conf ? conf->settings : NULL;
	const char *root, *v, *origin;
	int lexfs_fd = -1, rc;
	char why[256];
	uint64_t u;
	lexfs_drv *d;

	*out = NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return local_oom(err);
	d->root_fd = d->meta_fd = d->tmp_fd = d->mpu_fd = -1;

	root = s ? settings_get(s, "root_dir") : NULL;
	origin = root ? settings_origin(s, "root_dir") : "default";
	if (!root || !*root)
		root = "./storage";
	if (!origin)
		origin = "settings";
	d->root = strdup(root);
	v = s ? settings_get(s, "base_url") : NULL;
	d->base_url = strdup(v ? v : "http://localhost:8000/storage");
	if (!d->root || !d->base_url) {
		rc = local_oom(err);
		goto fail;
	}
	if (s) {
		bool b;

		rc = settings_get_u64(s, "presign_max_expiry", 604800, &u, why, sizeof(why));
		if (rc == 0) {
			d->presign_max = (int64_t)u;
			rc = settings_get_bool(s, "fsync", true, &b, why, sizeof(why));
			d->do_fsync = b;
		}
		if (rc) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "local: %s", why);
			goto fail;
		}
	} else {
		d->presign_max = 604800;
		d->do_fsync = true;
	}

	if (mkdir(root, 0755) != 0 && errno != EEXIST) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, errno,
				"local: cannot create root_dir %s (from %s): %s", root, origin,
				strerror(errno));
		goto fail;
	}
	d->root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->root_fd < 0) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, errno,
				"local: cannot open root_dir %s (from %s): %s", root, origin,
				strerror(errno));
		goto fail;
	}
	rc = open_sub(d->root_fd, ".lexfs", &lexfs_fd);
	if (rc == 0)
		rc = open_sub(lexfs_fd, "tmp", &d->tmp_fd);
	if (rc == 0)
		rc = open_sub(lexfs_fd, "meta", &d->meta_fd);
	if (rc == 0)
		rc = open_sub(lexfs_fd, "mpu", &d->mpu_fd);
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, -rc,
				"local: cannot set up %s/.lexfs (root_dir from %s): %s", root,
				origin, strerror(-rc));
		goto fail;
	}
#ifdef SYS_openat2
	{
		struct open_how how = { .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
					.resolve = RESOLVE_BENEATH };
		int fd = (int)syscall(SYS_openat2, d->root_fd, ".", &how, sizeof(how));

		if (fd >= 0) {
			d->have_openat2 = true;
			close(fd);
		}
	}
#endif
	v = s ? settings_get(s, "signing_key") : NULL;
	if (v && *v) {
		d->signing_key = strdup(v);
		d->signing_keylen = strlen(v);
		rc = d->signing_key ? 0 : -ENOMEM;
	} else {
		rc = load_or_make_key(d, lexfs_fd);
	}
	if (rc) {
		rc = lexfs_fail(err, LEXFS_E_STORAGE, -rc,
				"local: cannot read or create %s/.lexfs/signing.key: %s", root,
				strerror(-rc));
		goto fail;
	}
	close(lexfs_fd);
	clean_stale(d);
	*out = d;
	return 0;
fail:
	if (lexfs_fd >= 0)
		close(lexfs_fd);
	local_close(d);
	return rc;
}

static int local_health(lexfs_drv *d, int timeout_ms, struct lexfs_err *err)
{
	char tmp[64];
	int fd;

	local_temp_name(d, tmp, sizeof(tmp));
	fd = openat(d->tmp_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return lexfs_fail(err, lexfs_errno_code(errno), errno,
				  "local: root_dir %s is not writable: %s", d->root,
				  strerror(errno));
	close(fd);
	unlinkat(d->tmp_fd, tmp, 0);
	return 0;
}

/* ---- writing ---------------------------------------------------------------- */

/* Move a finished temp file (fd open, name tmp in tmp_fd) into place as key: fsync,
 * sidecar, rename, directory fsync. etag NULL: computed. Closes nothing; removes the
 * temp file on failure. */
int local_commit_temp(lexfs_drv *d, const char *key, int fd, const char *tmp, const char *etag,
		       const char *ctype, const struct lexfs_meta *meta,
		       struct lexfs_objinfo *out, struct lexfs_err *err)
{
	char base[NAME_MAX + 1], md5hex[2 * MD5_LEN + 1];
	struct stat st;
	int pfd = -1, rc, tries;

	if (d->do_fsync && fsync(fd) != 0) {
		rc = local_fail_errno(err, errno, "fsync", key);
		goto fail;
	}
	if (fstat(fd, &st) != 0) {
		rc = local_fail_errno(err, errno, "stat", key);
		goto fail;
	}
	if (!etag) {
		uint8_t md5[MD5_LEN];

		rc = crypto_md5_fd(fd, 0, (uint64_t)st.st_size, md5);
		if (rc) {
			rc = local_fail_errno(err, -rc, "hash", key);
			goto fail;
		}
		crypto_hex(md5, MD5_LEN, md5hex);
		etag = md5hex;
	}
	rc = side_write(d, key, &st, etag, ctype && *ctype ? ctype : "application/octet-stream",
			meta);
	if (rc) {
		rc = local_fail_errno(err, -rc, "write metadata of", key);
		goto fail;
	}
	/* A concurrent remove may prune the fresh parent between mkdir and rename. */
	for (tries = 0;; tries++) {
		pfd = open_parent(d, key, true, base);
		if (pfd < 0) {
			side_remove(d, key);
			rc = local_fail_errno(err, -pfd, "create directories of", key);
			pfd = -1;
			goto fail;
		}
		if (renameat(d->tmp_fd, tmp, pfd, base) == 0)
			break;
		rc = errno;
		close(pfd);
		pfd = -1;
		if (rc != ENOENT || tries >= 3) {
			side_remove(d, key);
			rc = local_fail_errno(err, rc == EISDIR ? EEXIST : rc, "store", key);
			goto fail;
		}
	}
	if (d->do_fsync)
		fsync(pfd);
	close(pfd);
	if (out) {
		out->size = (uint64_t)st.st_size;
		out->mtime = (int64_t)st.st_mtim.tv_sec;
		snprintf(out->etag, sizeof(out->etag), "%s", etag);
		snprintf(out->content_type, sizeof(out->content_type), "%s",
			 ctype && *ctype ? ctype : "application/octet-stream");
	}
	return 0;
fail:
	unlinkat(d->tmp_fd, tmp, 0);
	return rc;
}

/* Create (or update) the directory marker key ("dir/"). */
static int put_marker(lexfs_drv *d, const char *key, const char *ctype,
		      const struct lexfs_meta *meta, struct lexfs_objinfo *out,
		      struct lexfs_err *err)
{
	char path[LOCAL_KEY_MAX + 2];
	struct stat st;
	int fd, rc;

	local_data_path(key, path, sizeof(path));
	fd = mkdir_walk(d->root_fd, path);
	if (fd < 0)
		return local_fail_errno(err, fd == -ENOTDIR ? EEXIST : -fd, "create directory", key);
	if (fstat(fd, &st) != 0) {
		rc = local_fail_errno(err, errno, "stat", key);
		close(fd);
		return rc;
	}
	close(fd);
	rc = side_write(d, key, &st, "d41d8cd98f00b204e9800998ecf8427e",
			ctype && *ctype ? ctype : "application/x-directory", meta);
	if (rc)
		return local_fail_errno(err, -rc, "write metadata of", key);
	if (out) {
		out->size = 0;
		out->mtime = (int64_t)st.st_mtim.tv_sec;
		snprintf(out->etag, sizeof(out->etag), "d41d8cd98f00b204e9800998ecf8427e");
	}
	return 0;
}

int local_new_temp(lexfs_drv *d, char *tmp, size_t tmplen, const char *key,
		    struct lexfs_err *err)
{
	int fd;

	local_temp_name(d, tmp, tmplen);
	fd = openat(d->tmp_fd, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return local_fail_errno(err, errno, "create temp file for", key);
	return fd;
}

static int local_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
			const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
			struct lexfs_err *err)
{
	const char *ctype = opts ? opts->content_type : NULL;
	const struct lexfs_meta *meta = opts ? opts->meta : NULL;
	char tmp[64];
	int fd, rc;

	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	if (local_is_marker(key)) {
		if (src->len)
			return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
					  "local: directory marker \"%.200s\" with data", key);
		return put_marker(d, key, ctype, meta, out, err);
	}
	fd = local_new_temp(d, tmp, sizeof(tmp), key, err);
	if (fd < 0)
		return fd;
	rc = local_write_src(fd, src);
	if (rc) {
		unlinkat(d->tmp_fd, tmp, 0);
		close(fd);
		return local_fail_errno(err, -rc, "write", key);
	}
	rc = local_commit_temp(d, key, fd, tmp, NULL, ctype, meta, out, err);
	close(fd);
	return rc;
}

/* ---- reading ---------------------------------------------------------------- */

static int local_download(lexfs_drv *d, const char *key, uint64_t off, uint64_t len,
			  lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	struct stat st;
	uint64_t end;
	char *buf;
	int fd, rc = 0;

	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	fd = open_obj(d, key, &st);
	if (fd < 0)
		return local_fail_errno(err, -fd, "open", key);
	if (S_ISDIR(st.st_mode)) {
		close(fd);
		return 0;
	}
	end = (uint64_t)st.st_size;
	if (len != UINT64_MAX && off + len >= off && off + len < end)
		end = off + len;
	buf = malloc(LOCAL_CHUNK);
	if (!buf) {
		close(fd);
		return local_oom(err);
	}
	while (off < end) {
		size_t want = end - off > LOCAL_CHUNK ? LOCAL_CHUNK : (size_t)(end - off);
		ssize_t n = pread(fd, buf, want, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = local_fail_errno(err, errno, "read", key);
			break;
		}
		if (n == 0)
			break; /* truncated behind our back: deliver what exists */
		rc = sink(arg, buf, (size_t)n);
		if (rc) {
			rc = lexfs_fail(err, LEXFS_E_STORAGE, rc < 0 ? -rc : EIO,
					"local: download sink failed");
			break;
		}
		off += (uint64_t)n;
	}
	free(buf);
	close(fd);
	return rc;
}

static int local_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out,
		      struct lexfs_err *err)
{
	struct stat st;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	meta_init(&out->meta);
	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	fd = open_obj(d, key, &st);
	if (fd < 0)
		return local_fail_errno(err, -fd, "stat", key);
	close(fd);
	rc = local_fill_info(d, key, &st, out);
	if (rc) {
		objinfo_free(out);
		return local_oom(err);
	}
	return 0;
}

static int local_exists(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct stat st;
	int fd, rc;

	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	fd = open_obj(d, key, &st);
	if (fd == -ENOENT)
		return 0;
	if (fd < 0)
		return local_fail_errno(err, -fd, "stat", key);
	close(fd);
	return 1;
}

/* ---- removing --------------------------------------------------------------- */

/* Remove now-empty directories above key (deepest first), stopping at an explicit
 * marker, a non-empty directory or the root. */
static void prune_parents(lexfs_drv *d, const char *key)
{
	char dir[LOCAL_KEY_MAX + 2], marker[LOCAL_KEY_MAX + 3], base[NAME_MAX + 1];
	size_t n = strlen(key);

	if (n && key[n - 1] == '/')
		n--;
	snprintf(dir, sizeof(dir), "%.*s", (int)n, key);
	for (;;) {
		char *slash = strrchr(dir, '/');
		int pfd;

		if (!slash)
			return;
		*slash = '\0'; /* dir is now the parent directory's path */
		snprintf(marker, sizeof(marker), "%s/", dir);
		if (local_side_exists(d, marker))
			return;
		pfd = open_parent(d, marker, false, base);
		if (pfd < 0)
			return;
		if (unlinkat(pfd, base, AT_REMOVEDIR) != 0) {
			close(pfd);
			return;
		}
		close(pfd);
	}
}

static int remove_one(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	char base[NAME_MAX + 1];
	int pfd, rc;

	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	pfd = open_parent(d, key, false, base);
	if (pfd == -ENOENT || pfd == -ENOTDIR)
		return 0;
	if (pfd < 0)
		return local_fail_errno(err, -pfd, "remove", key);
	if (local_is_marker(key)) {
		side_remove(d, key);
		rc = unlinkat(pfd, base, AT_REMOVEDIR);
		/* a non-empty directory stays (implicit), like an object store's prefix */
		if (rc != 0 && errno != ENOENT && errno != ENOTEMPTY && errno != EEXIST &&
		    errno != ENOTDIR)
			rc = local_fail_errno(err, errno, "remove", key);
		else
			rc = 0;
	} else {
		struct stat st;

		if (fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISREG(st.st_mode)) {
			close(pfd);
			return 0; /* a directory or a symlink is not this object */
		}
		rc = unlinkat(pfd, base, 0);
		if (rc != 0 && errno != ENOENT)
			rc = local_fail_errno(err, errno, "remove", key);
		else
			rc = 0;
		side_remove(d, key);
	}
	if (d->do_fsync)
		fsync(pfd);
	close(pfd);
	if (rc == 0)
		prune_parents(d, key);
	return rc;
}

static int local_remove(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	return remove_one(d, key, err);
}

static int local_remove_many(lexfs_drv *d, const char *const *keys, size_t n,
			     struct lexfs_err *err)
{
	int first = 0;

	for (size_t i = 0; i < n; i++) {
		int rc = remove_one(d, keys[i], first ? NULL : err);

		if (rc && !first)
			first = rc;
	}
	return first;
}

static int local_get_url(lexfs_drv *d, const char *key, char **url, struct lexfs_err *err)
{
	*url = urlsign_plain_url(d->base_url, key);
	return *url ? 0 : local_oom(err);
}

/* ---- copy / move / set_meta ------------------------------------------------- */

static int local_set_meta(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
			  struct lexfs_err *err)
{
	struct stat st;
	struct side s;
	char etag[2 * MD5_LEN + 1];
	const char *et;
	int fd, rc;

	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	fd = open_obj(d, key, &st);
	if (fd < 0)
		return local_fail_errno(err, -fd, "open", key);
	rc = side_read(d, key, &st, &s);
	if (rc) {
		close(fd);
		return local_oom(err);
	}
	et = s.valid && s.etag[0] ? s.etag : NULL;
	if (!et && S_ISREG(st.st_mode)) {
		uint8_t md5[MD5_LEN];

		rc = crypto_md5_fd(fd, 0, (uint64_t)st.st_size, md5);
		if (rc == 0) {
			crypto_hex(md5, MD5_LEN, etag);
			et = etag;
		}
	}
	close(fd);
	rc = side_write(d, key, &st, et ? et : "",
			opts && opts->content_type ? opts->content_type
			: s.content_type[0]	   ? s.content_type
			: local_is_marker(key)	   ? "application/x-directory"
						   : "application/octet-stream",
			opts ? opts->meta : &s.meta);
	side_free(&s);
	if (rc)
		return local_fail_errno(err, -rc, "write metadata of", key);
	return 0;
}

static int local_copy(lexfs_drv *d, const char *src, const char *dst,
		      const struct lexfs_put_opts *opts, struct lexfs_err *err)
{
	struct stat st;
	struct side s;
	char tmp[64];
	int in, out, rc;

	rc = local_check_key(src, false, err);
	if (rc == 0)
		rc = local_check_key(dst, false, err);
	if (rc)
		return rc;
	if (local_is_marker(src) != local_is_marker(dst))
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
				  "local: cannot copy between a directory marker and an object");
	in = open_obj(d, src, &st);
	if (in < 0)
		return local_fail_errno(err, -in, "open", src);
	if (strcmp(src, dst) == 0) {
		close(in);
		return opts ? local_set_meta(d, dst, opts, err) : 0;
	}
	rc = side_read(d, src, &st, &s);
	if (rc) {
		close(in);
		return local_oom(err);
	}
	if (local_is_marker(src)) {
		close(in);
		rc = put_marker(d, dst, opts ? opts->content_type : s.content_type,
				opts ? opts->meta : &s.meta, NULL, err);
		side_free(&s);
		return rc;
	}
	out = local_new_temp(d, tmp, sizeof(tmp), dst, err);
	if (out < 0) {
		close(in);
		side_free(&s);
		return out;
	}
	rc = local_copy_range(in, 0, out, (uint64_t)st.st_size);
	close(in);
	if (rc) {
		unlinkat(d->tmp_fd, tmp, 0);
		rc = local_fail_errno(err, -rc, "copy", src);
	} else {
		rc = local_commit_temp(d, dst, out, tmp, s.valid && s.etag[0] ? s.etag : NULL,
				 opts ? opts->content_type : s.content_type,
				 opts ? opts->meta : &s.meta, NULL, err);
	}
	close(out);
	side_free(&s);
	return rc;
}

static int local_move(lexfs_drv *d, const char *src, const char *dst, struct lexfs_err *err)
{
	char sbase[NAME_MAX + 1], dbase[NAME_MAX + 1];
	struct stat st;
	struct side s;
	int fd, spfd = -1, dpfd = -1, rc;

	rc = local_check_key(src, false, err);
	if (rc == 0)
		rc = local_check_key(dst, false, err);
	if (rc)
		return rc;
	if (local_is_marker(src) || local_is_marker(dst)) {
		/* Markers: the children do not move with them. */
		rc = local_copy(d, src, dst, NULL, err);
		return rc ? rc : remove_one(d, src, err);
	}
	fd = open_obj(d, src, &st);
	if (fd < 0)
		return local_fail_errno(err, -fd, "open", src);
	close(fd);
	if (strcmp(src, dst) == 0)
		return 0;
	rc = side_read(d, src, &st, &s);
	if (rc)
		return local_oom(err);
	spfd = open_parent(d, src, false, sbase);
	if (spfd < 0) {
		rc = local_fail_errno(err, -spfd, "open", src);
		spfd = -1;
		goto out;
	}
	dpfd = open_parent(d, dst, true, dbase);
	if (dpfd < 0) {
		rc = local_fail_errno(err, -dpfd, "create directories of", dst);
		dpfd = -1;
		goto out;
	}
	/* rename keeps the inode, so the sidecar stays valid for the new name */
	if (s.valid) {
		rc = side_write(d, dst, &st, s.etag, s.content_type, &s.meta);
		if (rc) {
			rc = local_fail_errno(err, -rc, "write metadata of", dst);
			goto out;
		}
	}
	if (renameat(spfd, sbase, dpfd, dbase) != 0) {
		rc = local_fail_errno(err, errno == EISDIR ? EEXIST : errno, "rename", src);
		if (s.valid)
			side_remove(d, dst);
		goto out;
	}
	if (d->do_fsync) {
		fsync(dpfd);
		fsync(spfd);
	}
	side_remove(d, src);
	prune_parents(d, src);
out:
	if (spfd >= 0)
		close(spfd);
	if (dpfd >= 0)
		close(dpfd);
	side_free(&s);
	return rc;
}

/* ---- presign and controls --------------------------------------------------- */

static int64_t now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static int local_presign(lexfs_drv *d, const char *key, enum lexfs_method method,
			 int64_t expires_s, char **url, struct lexfs_err *err)
{
	int rc;

	*url = NULL;
	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	if (expires_s <= 0 || expires_s > d->presign_max)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "local: expiry %" PRId64 " s outside 1..%" PRId64
				  " (presign_max_expiry)",
				  expires_s, d->presign_max);
	rc = urlsign_make(d->base_url, key, method, now_s() + expires_s, d->signing_key,
			  d->signing_keylen, url);
	if (rc)
		return lexfs_fail(err, LEXFS_E_STORAGE, -rc, "local: cannot sign URL");
	return 0;
}

static int local_control(lexfs_drv *d, const char *name, const char *value,
			 struct lexfs_err *err)
{
	if (name && value && strcmp(name, "verify_url") == 0) {
		int rc = urlsign_verify(value, d->signing_key, d->signing_keylen, now_s(), NULL,
					NULL);

		if (rc == -EACCES)
			return lexfs_fail(err, LEXFS_E_PERMISSION, EACCES,
					  "local: URL signature does not match");
		if (rc == -ETIMEDOUT)
			return lexfs_fail(err, LEXFS_E_PERMISSION, ETIMEDOUT,
					  "local: URL has expired");
		if (rc)
			return lexfs_fail(err, LEXFS_E_STORAGE, -rc, "local: malformed URL");
		return 0;
	}
	return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP, "local: unknown control \"%.60s\"",
			  name ? name : "");
}

const struct lexfs_driver lexfs_driver_local = {
	.name = "local",
	.abi = LEXFS_DRIVER_ABI,
	.caps = LEXFS_CAP_SERVER_COPY | LEXFS_CAP_ATOMIC_MOVE | LEXFS_CAP_MULTIPART |
		LEXFS_CAP_PARALLEL_PARTS | LEXFS_CAP_RANGE_READ | LEXFS_CAP_SET_META |
		LEXFS_CAP_PRESIGN,
	.min_part_size = 1,
	.max_part_size = 5ull << 30,
	.max_parts = 10000,
	.max_object_size = 0,
	.open = local_open,
	.close = local_close,
	.health_check = local_health,
	.upload = local_upload,
	.download = local_download,
	.info = local_info,
	.list = local_list,
	.remove = local_remove,
	.get_url = local_get_url,
	.exists = local_exists,
	.copy = local_copy,
	.move = local_move,
	.set_meta = local_set_meta,
	.remove_many = local_remove_many,
	.mp_begin = local_mp_begin,
	.mp_part = local_mp_part,
	.mp_complete = local_mp_complete,
	.mp_abort = local_mp_abort,
	.presign = local_presign,
	.control = local_control,
	.server_time = NULL,
	.mp_list = local_mp_list,
	.mp_abort_id = local_mp_abort_id,
};
