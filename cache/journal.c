/* journal.c - the write-back journal: what must still be uploaded survives a crash.
 *
 * In write-back mode close returns before the upload. Before it returns, the cache
 * file is fdatasync()ed and a PUT record naming it is appended to the journal and
 * fdatasync()ed. When the upload succeeds (or the file is unlinked) a DROP record
 * follows. At mount, the journal is replayed: every id whose last record is a PUT
 * becomes a pending entry again and is uploaded at once, under the key and with the
 * metadata of its last PUT (so renames, chmod and utimens of files not yet uploaded
 * survive too). Then the journal is rewritten with just those PUTs and cache files
 * that no record names are deleted.
 *
 * File <cache dir>/journal, all integers little-endian:
 *
 *   header, 64 bytes
 *     0   8  magic "LEXFSJN\0"
 *     8   4  format version, 1
 *     12  4  header size, 64 (records start there)
 *     16  8  creation time, seconds since the epoch
 *     24 40  spare, zero
 *   records, appended one write() each
 *     0   4  record magic 0x4A52434C
 *     4   4  payload length N (at most 1 MiB)
 *     8   4  CRC-32 (IEEE 802.3) of the payload
 *     12  N  payload
 *   payload
 *     0   1  type: 1 PUT (id must be uploaded as described), 2 DROP (id needs nothing)
 *     1   1  flags, 0
 *     2   2  reserved, 0
 *     4   8  id: the cache file is <cache dir>/data/<id as 16 hex digits>
 *     PUT only:
 *     12  8  size of the object (bytes [0, size) of the cache file)
 *     20     key: 2-byte length + bytes; content type: 2-byte length + bytes;
 *            metadata: 2-byte count, then per pair 2-byte length + name,
 *            2-byte length + value
 *     Bytes after these are ignored: room for version-1 extensions.
 *
 * Recovery rules: a header with another magic, another version or a bad header
 * size is refused (the mount fails, the log names the file and what to do, and
 * nothing in the cache directory is changed). A record whose magic, length or CRC
 * is wrong, or that the file ends inside of, ends the replay: only the last append
 * can be torn, and its close never returned; the records after it are not
 * believed either. A PUT whose cache file is missing (or shorter than its size)
 * is skipped with a warning naming it. After the replay the journal is rewritten
 * (compacted) to just the PUTs still pending.
 *
 * Locking: j->lock (a leaf) serialises appends. journal_put/drop hold e->lock while
 * they append, so the records of one entry are in the order of its changes.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/cache_int.h"
#include "src/buf.h"
#include "src/log.h"

#define J_MAGIC "LEXFSJN"
#define J_VERSION 1
#define J_HDR 64
#define R_MAGIC 0x4A52434Cu
#define R_MAX (1024 * 1024)
#define R_PUT 1
#define R_DROP 2

struct journal {
	pthread_mutex_t lock;
	int fd;
	int dirfd;	/* the data directory, fsynced when a file is first journaled */
	uint64_t live;	/* ids whose last record is a PUT */
	uint64_t bytes; /* current file size */
	char *path;
};

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1)));
	}
	return ~crc;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static int add_le(struct buf *b, uint64_t v, int n)
{
	unsigned char tmp[8];

	put_le(tmp, v, n);
	return buf_add(b, tmp, (size_t)n);
}

static int add_str(struct buf *b, const char *s)
{
	size_t n = strlen(s);
	int ret;

	if (n > 0xFFFF)
		return -ENAMETOOLONG;
	ret = add_le(b, n, 2);
	return ret ? ret : buf_add(b, s, n);
}

/* Build a framed record: type, id and for PUT the rest. */
static int build_record(struct buf *b, int type, uint64_t id, uint64_t size, const char *key,
			const char *ct, const struct lexfs_meta *meta)
{
	struct buf pl = BUF_INIT(R_MAX);
	unsigned char hdr[12];
	int ret;

	ret = add_le(&pl, (uint64_t)type, 1);
	ret = ret ? ret : add_le(&pl, 0, 3);
	ret = ret ? ret : add_le(&pl, id, 8);
	if (type == R_PUT) {
		ret = ret ? ret : add_le(&pl, size, 8);
		ret = ret ? ret : add_str(&pl, key);
		ret = ret ? ret : add_str(&pl, ct ? ct : "");
		ret = ret ? ret : add_le(&pl, meta ? meta->n : 0, 2);
		for (size_t i = 0; meta && i < meta->n && ret == 0; i++) {
			ret = add_str(&pl, meta->kv[i].name);
			ret = ret ? ret : add_str(&pl, meta->kv[i].value);
		}
	}
	if (ret == 0) {
		put_le(hdr, R_MAGIC, 4);
		put_le(hdr + 4, pl.len, 4);
		put_le(hdr + 8, crc32_ieee((const unsigned char *)pl.data, pl.len), 4);
		ret = buf_add(b, hdr, sizeof(hdr));
		ret = ret ? ret : buf_add(b, pl.data, pl.len);
	}
	buf_free(&pl);
	return ret;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void make_header(unsigned char *h)
{
	memset(h, 0, J_HDR);
	memcpy(h, J_MAGIC, 8);
	put_le(h + 8, J_VERSION, 4);
	put_le(h + 12, J_HDR, 4);
	put_le(h + 16, (uint64_t)time(NULL), 8);
}

/* Append one record and make it durable. */
static int j_append(struct journal *j, const struct buf *rec, bool sync_dir)
{
	int ret;

	pthread_mutex_lock(&j->lock);
	ret = write_all(j->fd, rec->data, rec->len);
	if (ret == 0 && fdatasync(j->fd) < 0)
		ret = -errno;
	if (ret == 0 && sync_dir && j->dirfd >= 0)
		(void)fsync(j->dirfd);
	if (ret == 0)
		j->bytes += rec->len;
	pthread_mutex_unlock(&j->lock);
	return ret;
}

int journal_put(struct cache *c, struct centry *e)
{
	struct journal *j = c->jn;
	struct buf rec = BUF_INIT(2 * R_MAX);
	bool first;
	char *key;
	int ret;

	if (!j)
		return -ENOSYS;
	pthread_mutex_lock(&e->lock);
	key = centry_key_dup(e);
	if (!key) {
		pthread_mutex_unlock(&e->lock);
		return -ENOMEM;
	}
	first = !e->journaled;
	ret = build_record(&rec, R_PUT, e->id, e->size, key, e->content_type, &e->meta);
	if (ret == 0)
		ret = j_append(j, &rec, first);
	if (ret == 0 && first) {
		e->journaled = true;
		__atomic_add_fetch(&j->live, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&e->lock);
	if (ret < 0)
		log_err("cache: journal append for %s: %s", key, strerror(-ret));
	free(key);
	buf_free(&rec);
	return ret;
}

void journal_drop(struct cache *c, struct centry *e)
{
	struct journal *j = c->jn;
	struct buf rec = BUF_INIT(1024);
	int ret;

	if (!j)
		return;
	pthread_mutex_lock(&e->lock);
	if (!e->journaled) {
		pthread_mutex_unlock(&e->lock);
		return;
	}
	ret = build_record(&rec, R_DROP, e->id, 0, NULL, NULL, NULL);
	if (ret == 0)
		ret = j_append(j, &rec, false);
	if (ret == 0) {
		e->journaled = false;
		__atomic_sub_fetch(&j->live, 1, __ATOMIC_RELAXED);
	}
	pthread_mutex_unlock(&e->lock);
	buf_free(&rec);
	if (ret < 0) {
		log_warn("cache: journal append: %s", strerror(-ret));
		return;
	}
	/* nothing pending: start the file afresh so it never grows without bound */
	pthread_mutex_lock(&j->lock);
	if (__atomic_load_n(&j->live, __ATOMIC_RELAXED) == 0 && j->bytes > R_MAX &&
	    ftruncate(j->fd, J_HDR) == 0) {
		(void)fdatasync(j->fd);
		j->bytes = J_HDR;
	}
	pthread_mutex_unlock(&j->lock);
}

/* ---- replay ------------------------------------------------------------------- */

struct jrec {
	uint64_t seq, id, size;
	int type;
	bool superseded; /* a later live record has the same key */
	char *key, *ct;
	struct lexfs_meta meta;
};

static int rd_str(const unsigned char *p, size_t n, size_t *pos, char **out)
{
	size_t len;

	if (*pos + 2 > n)
		return -EINVAL;
	len = (size_t)get_le(p + *pos, 2);
	*pos += 2;
	if (*pos + len > n)
		return -EINVAL;
	*out = strndup((const char *)p + *pos, len);
	*pos += len;
	return *out ? 0 : -ENOMEM;
}

static int parse_payload(const unsigned char *p, size_t n, struct jrec *r)
{
	size_t pos = 12;
	unsigned nmeta;
	int ret;

	if (n < 12)
		return -EINVAL;
	r->type = p[0];
	r->id = get_le(p + 4, 8);
	meta_init(&r->meta);
	if (r->type == R_DROP)
		return 0;
	if (r->type != R_PUT || n < 20)
		return -EINVAL;
	r->size = get_le(p + 12, 8);
	pos = 20;
	ret = rd_str(p, n, &pos, &r->key);
	ret = ret ? ret : rd_str(p, n, &pos, &r->ct);
	if (ret)
		return ret;
	if (pos + 2 > n)
		return -EINVAL;
	nmeta = (unsigned)get_le(p + pos, 2);
	pos += 2;
	for (unsigned i = 0; i < nmeta; i++) {
		char *name = NULL, *value = NULL;

		ret = rd_str(p, n, &pos, &name);
		ret = ret ? ret : rd_str(p, n, &pos, &value);
		if (ret == 0)
			ret = meta_set(&r->meta, name, value);
		free(name);
		free(value);
		if (ret)
			return ret;
	}
	return 0;
}

static void jrec_free(struct jrec *r)
{
	free(r->key);
	free(r->ct);
	meta_free(&r->meta);
}

static int cmp_id_seq(const void *a, const void *b)
{
	const struct jrec *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int cmp_seq(const void *a, const void *b)
{
	const struct jrec *x = *(struct jrec *const *)a, *y = *(struct jrec *const *)b;

	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int cmp_key_seq(const void *a, const void *b)
{
	const struct jrec *x = *(struct jrec *const *)a, *y = *(struct jrec *const *)b;
	int k = strcmp(x->key, y->key);

	if (k)
		return k;
	return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static int read_file(int fd, unsigned char **out, size_t *len)
{
	struct stat stbuf;
	unsigned char *data;
	size_t done = 0;

	if (fstat(fd, &stbuf) < 0)
		return -errno;
	data = malloc((size_t)stbuf.st_size + 1);
	if (!data)
		return -ENOMEM;
	while (done < (size_t)stbuf.st_size) {
		ssize_t n = pread(fd, data + done, (size_t)stbuf.st_size - done, (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	*out = data;
	*len = done;
	return 0;
}

/* Parse the journal into recs (caller frees). -EPROTO for a file we must not touch. */
static int parse_journal(const char *path, const unsigned char *d, size_t len, struct jrec **out,
			 size_t *nout)
{
	struct jrec *recs = NULL;
	size_t n = 0, cap = 0, pos;
	uint64_t ver, hsz;

	*out = NULL;
	*nout = 0;
	/* Refusals change nothing on disk: the journal and the cache files it names
	 * stay as they are, for a lexfs that reads them or for the user to move away. */
	if (len < J_HDR || memcmp(d, J_MAGIC, 8) != 0) {
		log_err("cache: %s is not a lexfs journal; nothing was changed: move it away "
			"(or use another cache_dir) to mount",
			path);
		return -EPROTO;
	}
	ver = get_le(d + 8, 4);
	hsz = get_le(d + 12, 4);
	if (ver != J_VERSION) {
		log_err("cache: %s is a version %" PRIu64 " journal and this lexfs reads version "
			"%d; nothing was changed: mount it with a lexfs that reads version %" PRIu64
			" (its pending uploads then go up), or move it away (they are then lost)",
			path, ver, J_VERSION, ver);
		return -EPROTO;
	}
	if (hsz < J_HDR || hsz > len) {
		log_err("cache: %s has a header size of %" PRIu64 " (%d to %zu expected); nothing "
			"was changed: move it away to mount",
			path, hsz, J_HDR, len);
		return -EPROTO;
	}
	for (pos = hsz; pos < len;) {
		uint64_t plen = pos + 12 <= len ? get_le(d + pos + 4, 4) : 0;
		struct jrec r = {0};

		/* a record header cut short is torn too */
		if (pos + 12 > len || get_le(d + pos, 4) != R_MAGIC || plen > R_MAX ||
		    pos + 12 + plen > len ||
		    crc32_ieee(d + pos + 12, plen) != get_le(d + pos + 8, 4)) {
			log_warn("cache: journal %s ends with a torn record at %zu; ignored", path,
				 pos);
			break;
		}
		if (parse_payload(d + pos + 12, plen, &r) < 0) {
			jrec_free(&r);
			log_warn("cache: journal %s: unreadable record at %zu; stopping there",
				 path, pos);
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct jrec *nr = realloc(recs, ncap * sizeof(*nr));

			if (!nr) {
				jrec_free(&r);
				for (size_t i = 0; i < n; i++)
					jrec_free(&recs[i]);
				free(recs);
				return -ENOMEM;
			}
			recs = nr;
			cap = ncap;
		}
		r.seq = n;
		recs[n++] = r;
		pos += 12 + plen;
	}
	*out = recs;
	*nout = n;
	return 0;
}

/* Write a fresh journal holding PUTs of the adopted entries; atomically replace. */
static int rewrite_journal(struct cache *c, struct journal *j, struct centry **ents, size_t n)
{
	char tmp[4200];
	unsigned char hdr[J_HDR];
	struct buf all = BUF_INIT(SIZE_MAX / 2);
	int fd, ret = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp", j->path);
	make_header(hdr);
	ret = buf_add(&all, hdr, sizeof(hdr));
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct centry *e = ents[i];

		ret = build_record(&all, R_PUT, e->id, e->size, e->key, e->content_type, &e->meta);
	}
	if (ret < 0)
		goto out;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	ret = write_all(fd, all.data, all.len);
	if (ret == 0 && fsync(fd) < 0)
		ret = -errno;
	close(fd);
	if (ret == 0 && rename(tmp, j->path) < 0)
		ret = -errno;
	if (ret < 0) {
		unlink(tmp);
		goto out;
	}
	{
		int dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	j->bytes = all.len;
out:
	buf_free(&all);
	return ret;
}

static bool parse_id(const char *name, uint64_t *id)
{
	char *end;

	if (strlen(name) != 16)
		return false;
	errno = 0;
	*id = strtoull(name, &end, 16);
	return errno == 0 && *end == '\0';
}

static int id_in(uint64_t id, struct centry **ents, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (ents[i]->id == id)
			return 1;
	return 0;
}

int journal_open(struct cache *c)
{
	struct journal *j;
	unsigned char *data = NULL;
	size_t len = 0, nrec = 0, nlive = 0;
	struct jrec *recs = NULL, **live = NULL;
	struct centry **ents = NULL;
	size_t nents = 0;
	char path[4200];
	uint64_t maxid = 0;
	int fd = -1, ret;
	DIR *dir;

	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	pthread_mutex_init(&j->lock, NULL);
	j->fd = -1;
	j->dirfd = -1;
	snprintf(path, sizeof(path), "%s/journal", c->dir);
	j->path = strdup(path);
	if (!j->path) {
		ret = -ENOMEM;
		goto fail;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ret = read_file(fd, &data, &len);
		close(fd);
		fd = -1;
		if (ret < 0)
			goto fail;
		if (len > 0) {
			ret = parse_journal(path, data, len, &recs, &nrec);
			if (ret < 0)
				goto fail;
		}
	} else if (errno != ENOENT) {
		ret = -errno;
		log_err("cache: cannot read %s: %s", path, strerror(-ret));
		goto fail;
	}

	/* the last record of each id decides */
	if (nrec)
		qsort(recs, nrec, sizeof(*recs), cmp_id_seq);
	live = calloc(nrec + 1, sizeof(*live));
	ents = calloc(nrec + 1, sizeof(*ents));
	if (!live || !ents) {
		ret = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < nrec; i++) {
		if (i + 1 < nrec && recs[i + 1].id == recs[i].id)
			continue;
		if (recs[i].type == R_PUT)
			live[nlive++] = &recs[i];
	}
	/* two live ids with one key (a rename onto a pending file): the later wins */
	qsort(live, nlive, sizeof(*live), cmp_key_seq);
	for (size_t i = 0; i + 1 < nlive; i++)
		if (strcmp(live[i]->key, live[i + 1]->key) == 0)
			live[i]->superseded = true;
	qsort(live, nlive, sizeof(*live), cmp_seq);
	for (size_t i = 0; i < nlive; i++) {
		struct jrec *r = live[i];
		struct centry *e;
		struct stat stbuf;
		int dfd;

		if (r->superseded)
			continue;

		cache_data_path(c, r->id, path, sizeof(path));
		dfd = open(path, O_RDWR | O_CLOEXEC);
		if (dfd < 0 || fstat(dfd, &stbuf) < 0 || (uint64_t)stbuf.st_size < r->size) {
			log_warn("cache: journaled file %s: cache file %s is missing or short; "
				 "skipped",
				 r->key, path);
			if (dfd >= 0)
				close(dfd);
			continue;
		}
		if ((uint64_t)stbuf.st_size > r->size && ftruncate(dfd, (off_t)r->size) < 0) {
			close(dfd);
			continue;
		}
		ret = cache_adopt(c, r->key, r->id, dfd, r->size, &r->meta, r->ct, &e);
		if (ret < 0) {
			close(dfd);
			goto fail;
		}
		ents[nents++] = e;
	}
	j->live = nents;
	ret = rewrite_journal(c, j, ents, nents);
	if (ret < 0) {
		log_err("cache: cannot write the journal in %s: %s", c->dir, strerror(-ret));
		goto fail;
	}
	j->fd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
	if (j->fd < 0) {
		ret = -errno;
		goto fail;
	}
	j->dirfd = open(c->datadir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	c->jn = j;

	/* cache files nobody names are left-overs of an earlier mount */
	dir = opendir(c->datadir);
	if (dir) {
		struct dirent *de;

		while ((de = readdir(dir)) != NULL) {
			uint64_t id;

			if (!parse_id(de->d_name, &id))
				continue;
			if (id > maxid)
				maxid = id;
			if (!id_in(id, ents, nents)) {
				cache_data_path(c, id, path, sizeof(path));
				unlink(path);
			}
		}
		closedir(dir);
	}
	if (maxid > c->next_id)
		c->next_id = maxid;
	if (nents)
		log_notice("cache: %zu file(s) from the journal of %s will be uploaded", nents,
			   c->dir);
	for (size_t i = 0; i < nents; i++)
		upload_enqueue(c, ents[i], 0);
	ret = 0;
	goto out;
fail:
	if (j->fd >= 0)
		close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
	c->jn = NULL;
out:
	for (size_t i = 0; i < nrec; i++)
		jrec_free(&recs[i]);
	free(recs);
	free(live);
	free(ents);
	free(data);
	return ret;
}

void journal_close(struct cache *c)
{
	struct journal *j = c->jn;

	if (!j)
		return;
	close(j->fd);
	if (j->dirfd >= 0)
		close(j->dirfd);
	pthread_mutex_destroy(&j->lock);
	free(j->path);
	free(j);
	c->jn = NULL;
}
