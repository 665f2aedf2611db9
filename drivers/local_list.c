/* local_list.c - listings of the local driver: one directory (delimiter "/") or a
 * depth-first walk (recursive), in key order, paginated by the last key returned.
 *
 * Key order over a tree: a directory's entries sort as if a directory's name ended
 * with '/', so a depth-first walk yields keys in byte order ("a.b" < "a/x" < "a0").
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/local_int.h"
#include "src/buf.h"


/* The c-th byte of an entry's key form (a directory's name ends with '/'), 0 past it. */
static int ent_char(const struct ent *e, size_t i)
{
	if (i < e->len)
		return (unsigned char)e->name[i];
	return (i == e->len && e->dir) ? '/' : 0;
}

static int cmp_ent(const void *a, const void *b)
{
	const struct ent *x = a, *y = b;

	for (size_t i = 0;; i++) {
		int c1 = ent_char(x, i), c2 = ent_char(y, i);

		if (c1 != c2)
			return c1 - c2;
		if (c1 == 0)
			return 0;
	}
}

void local_ents_free(struct ent *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

/* Read the entries of dirfd (files and directories; no symlinks, no .lexfs at the
 * root), sorted in key order. */
int local_read_dir(lexfs_drv *d, int dirfd, bool at_root, const char *name_prefix,
		    struct ent **out, size_t *nout)
{
	struct ent *v = NULL;
	size_t n = 0, cap = 0, pl = strlen(name_prefix);
	struct dirent *de;
	DIR *dir;
	int fd, rc = 0;

	*out = NULL;
	*nout = 0;
	fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((de = readdir(dir)) != NULL) {
		bool isdir;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (at_root && strcmp(de->d_name, ".lexfs") == 0)
			continue;
		if (strncmp(de->d_name, name_prefix, pl) != 0)
			continue;
		if (de->d_type == DT_DIR) {
			isdir = true;
		} else if (de->d_type == DT_REG) {
			isdir = false;
		} else if (de->d_type == DT_UNKNOWN) {
			struct stat st;

			if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
				continue;
			if (S_ISDIR(st.st_mode))
				isdir = true;
			else if (S_ISREG(st.st_mode))
				isdir = false;
			else
				continue;
		} else {
			continue; /* symlinks, devices, sockets: not objects */
		}
		if (n == cap) {
			size_t nc = cap ? cap * 2 : 64;
			struct ent *nv = realloc(v, nc * sizeof(*nv));

			if (!nv) {
				rc = -ENOMEM;
				break;
			}
			v = nv;
			cap = nc;
		}
		v[n].name = strdup(de->d_name);
		v[n].len = strlen(de->d_name);
		v[n].dir = isdir;
		if (!v[n].name) {
			rc = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(dir);
	if (rc) {
		local_ents_free(v, n);
		return rc;
	}
	if (n)
		qsort(v, n, sizeof(*v), cmp_ent);
	*out = v;
	*nout = n;
	return 0;
}

struct lister {
	lexfs_drv *d;
	const char *token;
	unsigned max;     /* collect up to max + 1 to know whether more exist */
	struct lexfs_objinfo *items;
	size_t n;
	struct buf key;   /* current key being built */
};

/* Append one item. 1 when the lister is full (stop), 0 to go on, -errno. */
static int add_item(struct lister *L, const char *key, bool is_prefix, int dirfd,
		    const char *name)
{
	struct lexfs_objinfo *it;
	struct stat st;
	int rc;

	if (L->token && strcmp(key, L->token) <= 0)
		return 0;
	if (L->n > L->max)
		return 1;
	it = &L->items[L->n];
	memset(it, 0, sizeof(*it));
	meta_init(&it->meta);
	it->key = strdup(key);
	if (!it->key)
		return -ENOMEM;
	L->n++;
	it->is_prefix = is_prefix;
	if (!is_prefix && fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		rc = local_fill_info(L->d, key, &st, it);
		if (rc)
			return rc;
	}
	return L->n > L->max ? 1 : 0;
}

/* Recursive walk of dirfd whose keys start with L->key's current content. */
static int walk(struct lister *L, int dirfd, bool at_root, const char *name_prefix)
{
	struct ent *v;
	size_t n, i, base = L->key.len;
	int rc;

	rc = local_read_dir(L->d, dirfd, at_root, name_prefix, &v, &n);
	if (rc)
		return rc;
	for (i = 0; i < n && rc == 0; i++) {
		L->key.len = base;
		rc = buf_adds(&L->key, v[i].name);
		if (rc == 0 && v[i].dir)
			rc = buf_adds(&L->key, "/");
		if (rc)
			break;
		if (!v[i].dir) {
			rc = add_item(L, buf_cstr(&L->key), false, dirfd, v[i].name);
			continue;
		}
		/* Skip a subtree whose keys all sort before the token. */
		if (L->token && strcmp(buf_cstr(&L->key), L->token) < 0 &&
		    strncmp(L->token, buf_cstr(&L->key), L->key.len) != 0)
			continue;
		{
			int sub = openat(dirfd, v[i].name,
					 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			bool empty = false;

			if (sub < 0)
				continue; /* vanished or replaced: skip */
			if (!local_side_exists(L->d, buf_cstr(&L->key))) {
				struct ent *cv;
				size_t cn;

				if (local_read_dir(L->d, sub, false, "", &cv, &cn) == 0) {
					empty = cn == 0;
					local_ents_free(cv, cn);
				}
			} else {
				empty = true; /* explicit marker: listed */
			}
			if (empty)
				rc = add_item(L, buf_cstr(&L->key), false, dirfd, v[i].name);
			if (rc == 0)
				rc = walk(L, sub, false, "");
			close(sub);
		}
	}
	L->key.len = base;
	if (L->key.data)
		L->key.data[base] = '\0';
	local_ents_free(v, n);
	return rc;
}

int local_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
		      unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	char dirpart[LOCAL_KEY_MAX + 2], path[LOCAL_KEY_MAX + 2];
	struct lister L = { 0 };
	const char *namepart, *slash;
	int dfd, rc = 0;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (!prefix)
		prefix = "";
	if (delim && !*delim)
		delim = NULL;
	if (delim && strcmp(delim, "/") != 0)
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,
				  "local: only \"/\" is supported as a delimiter");
	if (max_keys == 0 || max_keys > 1000)
		max_keys = 1000;
	if (strlen(prefix) > LOCAL_KEY_MAX)
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, ENAMETOOLONG, "local: prefix too long");
	slash = strrchr(prefix, '/');
	if (slash) {
		snprintf(dirpart, sizeof(dirpart), "%.*s", (int)(slash + 1 - prefix), prefix);
		namepart = slash + 1;
	} else {
		dirpart[0] = '\0';
		namepart = prefix;
	}
	rc = local_check_key(dirpart, true, err);
	if (rc)
		return rc;
	if (dirpart[0] == '\0' && strcmp(namepart, ".lexfs") == 0)
		return 0;
	local_data_path(dirpart, path, sizeof(path));
	dfd = local_open_beneath(d, d->root_fd, path, O_RDONLY | O_DIRECTORY, 0);
	if (dfd == -ENOENT || dfd == -ENOTDIR)
		return 0; /* nothing under this prefix */
	if (dfd < 0)
		return local_fail_errno(err, -dfd, "list", prefix);

	L.d = d;
	L.token = token && *token ? token : NULL;
	L.max = max_keys;
	L.items = calloc(max_keys + 1, sizeof(*L.items));
	buf_init(&L.key, LOCAL_KEY_MAX * 4);
	if (!L.items) {
		close(dfd);
		return local_oom(err);
	}
	/* The marker "dir/" itself, when the prefix is exactly that directory. */
	if (dirpart[0] && !namepart[0] && local_side_exists(d, dirpart)) {
		struct stat st;

		if (fstat(dfd, &st) == 0) {
			rc = add_item(&L, dirpart, false, dfd, ".");
			if (rc < 0)
				goto done;
		}
	}
	rc = buf_adds(&L.key, dirpart);
	if (rc)
		goto done;
	if (!delim) {
		rc = walk(&L, dfd, dirpart[0] == '\0', namepart);
	} else {
		struct ent *v;
		size_t n;

		rc = local_read_dir(d, dfd, dirpart[0] == '\0', namepart, &v, &n);
		if (rc)
			goto done;
		for (i = 0; rc == 0 && i < n; i++) {
			L.key.len = strlen(dirpart);
			rc = buf_adds(&L.key, v[i].name);
			if (rc == 0 && v[i].dir)
				rc = buf_adds(&L.key, "/");
			if (rc == 0)
				rc = add_item(&L, buf_cstr(&L.key), v[i].dir, dfd, v[i].name);
		}
		local_ents_free(v, n);
	}
done:
	close(dfd);
	buf_free(&L.key);
	if (rc < 0) {
		for (i = 0; i < L.n; i++)
			objinfo_free(&L.items[i]);
		free(L.items);
		return rc == -ENOMEM ? local_oom(err) : local_fail_errno(err, -rc, "list", prefix);
	}
	if (L.n > max_keys) {
		objinfo_free(&L.items[max_keys]);
		L.n = max_keys;
		out->next_token = strdup(L.items[max_keys - 1].key);
		if (!out->next_token) {
			for (i = 0; i < L.n; i++)
				objinfo_free(&L.items[i]);
			free(L.items);
			return local_oom(err);
		}
	}
	out->items = L.items;
	out->n = L.n;
	return 0;
}
