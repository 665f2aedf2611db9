/* cache_test.c - the cache (cache/cache.h) on the memory driver, without FUSE.
 *
 * Each case checks what a user would: the bytes in the store, the errno of close,
 * the number of store calls. Run with a scratch directory as argv[1] (default: a
 * new directory under $TMPDIR).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cache/cache.h"
#include "cache/cache_int.h" /* white box: upload_drain() to look before destroy */
#include "cache/meta_cache.h"
#include "drivers/store.h"
#include "src/log.h"
#include "src/settings.h"
#include "tests/unit/check.h"

static char basedir[4096];
static int ncase;

struct fixture {
	struct settings set;
	struct cache *c;
	struct store *st;
	char dir[4200];
};

/* kv: memory-driver settings as name, value, ..., NULL (or NULL for none). */
static int make_cache_kv(struct fixture *fx, int writeback_s, const char *dir_or_null,
			 uint64_t size_limit, uint64_t part_size, const char *const *kv)
{
	struct store_conf sc = {0};
	struct cache_conf cc = {0};
	struct store *st = NULL;
	struct lexfs_err err = {0};
	int ret;

	settings_init(&fx->set);
	for (size_t i = 0; kv && kv[i]; i += 2)
		CHECK_INT(settings_set(&fx->set, kv[i], kv[i + 1], "test"), 0);
	sc.driver = "memory";
	sc.backend_name = "default";
	sc.settings = &fx->set;
	sc.max_retries = 3;
	sc.retry_base_ms = 1;
	sc.retry_max_ms = 5;
	ret = store_create(&sc, &st, &err);
	if (ret < 0) {
		fprintf(stderr, "store_create: %d %s\n", ret, err.message);
		return ret;
	}
	if (dir_or_null)
		snprintf(fx->dir, sizeof(fx->dir), "%s", dir_or_null);
	else
		snprintf(fx->dir, sizeof(fx->dir), "%s/case%d", basedir, ++ncase);
	cc.dir = fx->dir;
	cc.writeback_s = writeback_s;
	cc.upload_concurrency = 3;
	cc.part_size = part_size;
	cc.size_limit = size_limit;
	cc.stat_ttl_ms = 60000;
	cc.list_ttl_ms = 60000;
	fx->st = st;
	ret = cache_create(&cc, &st, &fx->c);
	CHECK(st == NULL);
	return ret;
}

static int make_cache(struct fixture *fx, int writeback_s, const char *dir_or_null,
		      uint64_t size_limit, uint64_t part_size)
{
	return make_cache_kv(fx, writeback_s, dir_or_null, size_limit, part_size, NULL);
}

static void drop_cache(struct fixture *fx)
{
	cache_destroy(fx->c);
	fx->c = NULL;
	settings_free(&fx->set);
}

/* The object's bytes (caller frees), or NULL when absent. */
static char *get_obj(struct cache *c, const char *key, uint64_t *size)
{
	struct lexfs_objinfo oi = {0};
	char *buf;
	size_t got = 0;

	if (store_info(cache_store(c), key, &oi, NULL) < 0)
		return NULL;
	*size = oi.size;
	objinfo_free(&oi);
	buf = malloc(*size + 1);
	if (!buf)
		return NULL;
	if (store_read(cache_store(c), key, 0, *size, buf, &got, NULL) < 0 || got != *size) {
		free(buf);
		return NULL;
	}
	buf[*size] = '\0';
	return buf;
}

static int put_obj(struct cache *c, const char *key, const void *data, size_t len)
{
	struct lexfs_src src = {.buf = data, .len = len};

	return store_upload(cache_store(c), key, &src, NULL, NULL, NULL);
}

static uint64_t store_calls(struct cache *c, enum store_op op)
{
	struct store_opstat s[STORE_OP_COUNT];

	store_stats(cache_store(c), s);
	return s[op].calls;
}

static int open_existing(struct cache *c, const char *key, int flags, struct cache_file **f)
{
	struct lexfs_objinfo oi = {0};
	int ret = store_info(cache_store(c), key, &oi, NULL);

	if (ret < 0)
		return ret;
	ret = cache_open(c, key, flags, &oi, NULL, NULL, f);
	objinfo_free(&oi);
	return ret;
}

static void test_new_file_sync(void)
{
	struct fixture fx;
	struct cache_file *f;
	struct lexfs_meta m;
	char *data;
	uint64_t size;

	CHECK_INT(make_cache(&fx, -1, NULL, 0, 0), 0);
	meta_init(&m);
	meta_set(&m, "mode", "33188");
	CHECK_INT(cache_open(fx.c, "a/hello.txt", O_WRONLY | O_CREAT, NULL, &m, "text/plain", &f),
		  0);
	/* pending before close: size and metadata from the cache */
	CHECK_INT(cache_write(f, "hello ", 6, 0), 6);
	CHECK_INT(cache_write(f, "world", 5, 6), 5);
	{
		uint64_t ps = 0;
		struct lexfs_meta pm;
		char ct[64];

		CHECK_INT(cache_pending(fx.c, "a/hello.txt", &ps, &pm, ct, sizeof(ct)), 0);
		CHECK_INT(ps, 11);
		CHECK_STR(meta_get(&pm, "mode"), "33188");
		CHECK_STR(ct, "text/plain");
		meta_free(&pm);
	}
	CHECK(get_obj(fx.c, "a/hello.txt", &size) == NULL); /* nothing up before close */
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	data = get_obj(fx.c, "a/hello.txt", &size);
	CHECK(data && size == 11 && memcmp(data, "hello world", 11) == 0);
	free(data);
	{
		struct lexfs_objinfo oi = {0};

		CHECK_INT(store_info(cache_store(fx.c), "a/hello.txt", &oi, NULL), 0);
		CHECK_STR(meta_get(&oi.meta, "mode"), "33188");
		CHECK_STR(oi.content_type, "text/plain");
		objinfo_free(&oi);
	}
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 1);
	CHECK_INT(cache_pending(fx.c, "a/hello.txt", NULL, NULL, NULL, 0), -ENOENT);
	/* an empty new file is created too */
	CHECK_INT(cache_open(fx.c, "empty", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	data = get_obj(fx.c, "empty", &size);
	CHECK(data && size == 0);
	free(data);
	meta_free(&m);
	drop_cache(&fx);
}

static void test_partial_write_fetches_by_range(void)
{
	struct fixture fx;
	struct cache_file *f;
	size_t big = 5 * 1024 * 1024 + 123;
	char *orig = malloc(big), *data, buf[100];
	uint64_t size, dl0;

	for (size_t i = 0; i < big; i++)
		orig[i] = (char)(i * 7 + i / 1000);
	CHECK_INT(make_cache(&fx, -1, NULL, 0, 0), 0);
	CHECK_INT(put_obj(fx.c, "big", orig, big), 0);
	CHECK_INT(open_existing(fx.c, "big", O_RDWR, &f), 0);
	dl0 = store_calls(fx.c, STORE_OP_DOWNLOAD);
	/* a write fetches nothing */
	CHECK_INT(cache_write(f, "XYZ", 3, 2 * 1024 * 1024 + 10), 3);
	memcpy(orig + 2 * 1024 * 1024 + 10, "XYZ", 3);
	CHECK_INT(store_calls(fx.c, STORE_OP_DOWNLOAD), dl0);
	/* a read fetches only its neighbourhood and sees the written bytes */
	CHECK_INT(cache_read(f, buf, 20, 2 * 1024 * 1024), 20);
	CHECK(memcmp(buf, orig + 2 * 1024 * 1024, 20) == 0);
	{
		char *sj = cache_stats_json(fx.c);
		json_t *j = json_loads(sj, 0, NULL);

		CHECK(j != NULL);
		CHECK(json_integer_value(json_object_get(j, "fetch_bytes")) <= 1024 * 1024);
		CHECK(json_object_get(j, "store") != NULL);
		json_decref(j);
		free(sj);
	}
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	data = get_obj(fx.c, "big", &size);
	CHECK(data && size == big && memcmp(data, orig, big) == 0);
	free(data);
	/* truncate down, then extend: the tail reads as zeros, nothing stale */
	CHECK_INT(open_existing(fx.c, "big", O_RDWR, &f), 0);
	CHECK_INT(cache_ftruncate(f, 1000), 0);
	CHECK_INT(cache_ftruncate(f, 3000), 0);
	CHECK_INT(cache_read(f, buf, 100, 990), 100);
	CHECK(memcmp(buf, orig + 990, 10) == 0);
	{
		static const char zeros[90];

		CHECK(memcmp(buf + 10, zeros, 90) == 0);
	}
	CHECK_INT(cache_release(f), 0); /* release without flush uploads too */
	data = get_obj(fx.c, "big", &size);
	CHECK(data && size == 3000 && memcmp(data, orig, 1000) == 0);
	free(data);
	free(orig);
	drop_cache(&fx);
}

static void test_shared_entry_and_direct_reads(void)
{
	struct fixture fx;
	struct cache_file *w, *r, *r2;
	char buf[64];
	uint64_t dl0;

	CHECK_INT(make_cache(&fx, -1, NULL, 0, 0), 0);
	CHECK_INT(put_obj(fx.c, "k", "0123456789", 10), 0);
	/* read-only handle: ranged GET straight into the buffer */
	CHECK_INT(open_existing(fx.c, "k", O_RDONLY, &r), 0);
	dl0 = store_calls(fx.c, STORE_OP_DOWNLOAD);
	CHECK_INT(cache_read(r, buf, 4, 3), 4);
	CHECK(memcmp(buf, "3456", 4) == 0);
	CHECK(store_calls(fx.c, STORE_OP_DOWNLOAD) > dl0);
	CHECK_INT(cache_write(r, "x", 1, 0), -EBADF);
	/* a writer shares the entry: the reader sees its bytes at once */
	CHECK_INT(open_existing(fx.c, "k", O_WRONLY, &w), 0);
	CHECK_INT(cache_write(w, "AB", 2, 8), 2);
	CHECK_INT(cache_write(w, "!", 1, 12), 1); /* a hole of zeros at 10..11 */
	CHECK_INT(cache_read(r, buf, 64, 6), 7);
	CHECK(memcmp(buf, "67AB\0\0!", 7) == 0);
	CHECK_INT(open_existing(fx.c, "k", O_RDONLY, &r2), 0);
	CHECK_INT(cache_read(r2, buf, 64, 0), 13);
	CHECK(memcmp(buf, "01234567AB\0\0!", 13) == 0);
	CHECK_INT(cache_flush(r2), 0);
	CHECK_INT(cache_release(r2), 0);
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 1); /* the put_obj only */
	CHECK_INT(cache_flush(w), 0);
	CHECK_INT(cache_release(w), 0);
	CHECK_INT(cache_release(r), 0);
	{
		uint64_t size;
		char *data = get_obj(fx.c, "k", &size);

		CHECK(data && size == 13 && memcmp(data, "01234567AB\0\0!", 13) == 0);
		free(data);
	}
	drop_cache(&fx);
}

static void test_failure_keeps_data(void)
{
	struct fixture fx;
	struct cache_file *f;
	uint64_t size;
	char *data;

	CHECK_INT(make_cache(&fx, -1, NULL, 0, 0), 0);
	CHECK_INT(cache_open(fx.c, "f", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "precious", 8, 0), 8);
	CHECK_INT(store_control(cache_store(fx.c), "fault", "error_rate=1", NULL), 0);
	CHECK_INT(cache_flush(f), -EIO);
	CHECK(get_obj(fx.c, "f", &size) == NULL); /* no (partial) object */
	CHECK_INT(cache_release(f), 0);		  /* flush already reported it */
	/* the data is still held: stat sees it, a later flush retries */
	CHECK_INT(cache_pending(fx.c, "f", &size, NULL, NULL, 0), 0);
	CHECK_INT(size, 8);
	CHECK_INT(store_control(cache_store(fx.c), "fault", "off", NULL), 0);
	CHECK_INT(cache_open(fx.c, "f", O_WRONLY, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_fsync(f), 0);
	CHECK_INT(cache_release(f), 0);
	data = get_obj(fx.c, "f", &size);
	CHECK(data && size == 8 && memcmp(data, "precious", 8) == 0);
	free(data);
	{
		char *sj = cache_stats_json(fx.c);
		json_t *j = json_loads(sj, 0, NULL);

		CHECK(json_integer_value(json_object_get(j, "upload_errors")) >= 1);
		json_decref(j);
		free(sj);
	}
	drop_cache(&fx);
}

static void test_pending_rename_unlink_meta(void)
{
	struct fixture fx;
	struct cache_file *f;
	struct lexfs_meta m;
	uint64_t size;
	char *data;

	CHECK_INT(make_cache(&fx, -1, NULL, 0, 0), 0);
	CHECK_INT(cache_open(fx.c, ".x.tmp", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "abc", 3, 0), 3);
	meta_init(&m);
	meta_set(&m, "mode", "33261");
	CHECK_INT(cache_set_meta(fx.c, ".x.tmp", &m), 1);
	CHECK_INT(cache_rename(fx.c, ".x.tmp", "x"), 1);
	CHECK_INT(cache_pending(fx.c, ".x.tmp", NULL, NULL, NULL, 0), -ENOENT);
	CHECK_INT(cache_pending(fx.c, "x", &size, NULL, NULL, 0), 0);
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	CHECK(get_obj(fx.c, ".x.tmp", &size) == NULL);
	data = get_obj(fx.c, "x", &size);
	CHECK(data && size == 3 && memcmp(data, "abc", 3) == 0);
	free(data);
	{
		struct lexfs_objinfo oi = {0};

		CHECK_INT(store_info(cache_store(fx.c), "x", &oi, NULL), 0);
		CHECK_STR(meta_get(&oi.meta, "mode"), "33261");
		objinfo_free(&oi);
	}
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 1);
	CHECK_INT(store_calls(fx.c, STORE_OP_COPY), 0);
	/* not held: 0 */
	CHECK_INT(cache_rename(fx.c, "nothere", "y"), 0);
	CHECK_INT(cache_unlink(fx.c, "nothere"), 0);
	CHECK_INT(cache_set_meta(fx.c, "nothere", &m), 0);
	/* unlink of an open new file: never uploaded, handle keeps working */
	CHECK_INT(cache_open(fx.c, "gone", O_RDWR | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "zz", 2, 0), 2);
	CHECK_INT(cache_unlink(fx.c, "gone"), 1);
	{
		char buf[4];

		CHECK_INT(cache_read(f, buf, 4, 0), 2);
	}
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	CHECK(get_obj(fx.c, "gone", &size) == NULL);
	meta_free(&m);
	drop_cache(&fx);
}

static int64_t stat_of(struct cache *c, const char *name)
{
	char *sj = cache_stats_json(c);
	json_t *j = sj ? json_loads(sj, 0, NULL) : NULL;
	int64_t v = j ? (int64_t)json_integer_value(json_object_get(j, name)) : -1;

	json_decref(j);
	free(sj);
	return v;
}

static void fill_pattern(char *p, size_t n, unsigned seed)
{
	uint32_t x = seed * 2654435761u + 1;

	for (size_t i = 0; i < n; i++) {
		x = x * 1103515245u + 12345u;
		p[i] = (char)(x >> 16);
	}
}

#define MIB (1024 * 1024)

static void test_streaming_upload(void)
{
	struct fixture fx;
	struct cache_file *f;
	size_t total = 20 * MIB + 4321, chunk = 128 * 1024;
	char *ref = malloc(total), *data;
	uint64_t size;

	fill_pattern(ref, total, 1);
	CHECK_INT(make_cache(&fx, -1, NULL, 0, MIB), 0);
	CHECK_INT(cache_open(fx.c, "stream.bin", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	for (size_t off = 0; off < total; off += chunk) {
		size_t n = total - off < chunk ? total - off : chunk;

		CHECK_INT(cache_write(f, ref + off, n, (off_t)off), (long long)n);
	}
	/* parts went up while writing: the store saw them before close */
	CHECK(store_calls(fx.c, STORE_OP_MP_BEGIN) == 1);
	CHECK(store_calls(fx.c, STORE_OP_MP_PART) >= 10);
	CHECK(stat_of(fx.c, "streams") == 1);
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(store_calls(fx.c, STORE_OP_MP_COMPLETE), 1);
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 0);
	CHECK_INT(store_calls(fx.c, STORE_OP_MP_PART), 21); /* each part once */
	data = get_obj(fx.c, "stream.bin", &size);
	CHECK(data && size == total && memcmp(data, ref, total) == 0);
	free(data);

	/* a write behind the frontier re-sends only the parts it touched */
	CHECK_INT(cache_open(fx.c, "stream2.bin", O_RDWR | O_CREAT, NULL, NULL, NULL, &f), 0);
	for (size_t off = 0; off < 10 * MIB; off += chunk)
		CHECK_INT(cache_write(f, ref + off, chunk, (off_t)off), (long long)chunk);
	memcpy(ref + MIB + 100, "behind the frontier", 19);
	CHECK_INT(cache_write(f, ref + MIB + 100, 19, MIB + 100), 19);
	for (size_t off = 10 * MIB; off < total; off += chunk) {
		size_t n = total - off < chunk ? total - off : chunk;

		CHECK_INT(cache_write(f, ref + off, n, (off_t)off), (long long)n);
	}
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	data = get_obj(fx.c, "stream2.bin", &size);
	CHECK(data && size == total && memcmp(data, ref, total) == 0);
	free(data);
	CHECK(stat_of(fx.c, "stream_fallbacks") >= 1);
	CHECK(store_calls(fx.c, STORE_OP_MP_PART) <= 21 + 21 + 2);

	/* a small file is one PUT */
	CHECK_INT(cache_open(fx.c, "small", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, ref, 1000, 0), 1000);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 1);
	free(ref);
	drop_cache(&fx);
}

/* Faults during a streamed upload: the store holds the right bytes or close fails
 * and there is no object at all. */
static void test_streaming_faults(void)
{
	const char *specs[] = {"error_rate=0.2", "fail_after=7", "error_rate=0.5,latency_ms=1"};
	size_t total = 8 * MIB + 77, chunk = 256 * 1024;
	char *ref = malloc(total);
	int ok = 0, failed = 0;

	fill_pattern(ref, total, 2);
	for (unsigned t = 0; t < 3 * 3; t++) {
		struct fixture fx;
		struct cache_file *f;
		uint64_t size;
		char *data;
		int ret;

		CHECK_INT(make_cache(&fx, -1, NULL, 0, MIB), 0);
		CHECK_INT(store_control(cache_store(fx.c), "fault", specs[t % 3], NULL), 0);
		CHECK_INT(cache_open(fx.c, "f.bin", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
		for (size_t off = 0; off < total; off += chunk) {
			size_t n = total - off < chunk ? total - off : chunk;

			CHECK_INT(cache_write(f, ref + off, n, (off_t)off), (long long)n);
		}
		ret = cache_flush(f);
		CHECK(ret == 0 || ret == -EIO);
		CHECK_INT(store_control(cache_store(fx.c), "fault", "off", NULL), 0);
		data = get_obj(fx.c, "f.bin", &size);
		if (ret == 0) {
			ok++;
			CHECK(data && size == total && memcmp(data, ref, total) == 0);
		} else {
			failed++;
			CHECK(data == NULL); /* never a half object */
			/* data kept: the next flush succeeds with the right bytes */
			CHECK_INT(cache_fsync(f), 0);
			free(data);
			data = get_obj(fx.c, "f.bin", &size);
			CHECK(data && size == total && memcmp(data, ref, total) == 0);
		}
		free(data);
		CHECK_INT(cache_release(f), 0);
		{
			char *sj = cache_stats_json(fx.c);
			json_t *j = json_loads(sj, 0, NULL);
			json_t *st = json_object_get(j, "store");

			CHECK(st != NULL);
			json_decref(j);
			free(sj);
		}
		drop_cache(&fx);
	}
	CHECK(ok + failed == 9);
	printf("streaming faults: %d uploads succeeded, %d reported EIO and kept data\n", ok,
	       failed);
	free(ref);
}

static void test_writeback_drain_and_rsync_pattern(void)
{
	struct fixture fx;
	struct cache_file *f;
	struct lexfs_meta m;
	uint64_t size;
	char *data;

	CHECK_INT(make_cache(&fx, 3600, NULL, 0, MIB), 0);
	/* rsync: write a temp file, set mode and times, rename onto the final name */
	CHECK_INT(
	    cache_open(fx.c, "d/.f.XXXXXX", O_WRONLY | O_CREAT | O_EXCL, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "rsync data", 10, 0), 10);
	CHECK_INT(cache_flush(f), 0);
	CHECK_INT(cache_release(f), 0);
	CHECK(get_obj(fx.c, "d/.f.XXXXXX", &size) == NULL); /* close returned at once */
	meta_init(&m);
	meta_set(&m, "mode", "33188");
	meta_set(&m, "mtime", "1700000000");
	CHECK_INT(cache_set_meta(fx.c, "d/.f.XXXXXX", &m), 1);
	CHECK_INT(cache_rename(fx.c, "d/.f.XXXXXX", "d/f"), 1);
	CHECK(stat_of(fx.c, "pending_uploads") == 1);
	/* fsync always uploads now */
	CHECK_INT(cache_open(fx.c, "now", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "x", 1, 0), 1);
	CHECK_INT(cache_fsync(f), 0);
	data = get_obj(fx.c, "now", &size);
	CHECK(data && size == 1);
	free(data);
	CHECK_INT(cache_release(f), 0);
	/* unmount drains: the pending file goes up under its final name, once */
	upload_drain(fx.c);
	CHECK(stat_of(fx.c, "pending_uploads") == 0);
	CHECK(get_obj(fx.c, "d/.f.XXXXXX", &size) == NULL);
	data = get_obj(fx.c, "d/f", &size);
	CHECK(data && size == 10 && memcmp(data, "rsync data", 10) == 0);
	free(data);
	{
		struct lexfs_objinfo oi = {0};

		CHECK_INT(store_info(cache_store(fx.c), "d/f", &oi, NULL), 0);
		CHECK_STR(meta_get(&oi.meta, "mtime"), "1700000000");
		objinfo_free(&oi);
	}
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 2); /* "now" and "d/f" */
	CHECK_INT(store_calls(fx.c, STORE_OP_COPY), 0);
	CHECK_INT(store_calls(fx.c, STORE_OP_MOVE), 0);
	meta_free(&m);
	drop_cache(&fx);
}

/* A daemon killed with -9 in write-back mode: a child process writes and closes
 * files, renames and unlinks some, then dies without any teardown. The next cache on
 * the same directory uploads every closed file under its final name. */
static void test_writeback_crash_replay(void)
{
	struct fixture fx;
	char dir[4200];
	int nfiles = 200, status = 0;
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/crash", basedir);
	pid = fork();
	if (pid == 0) {
		struct fixture cf;
		struct cache_file *f;
		char key[64], body[64];

		if (make_cache(&cf, 3600, dir, 0, MIB) != 0)
			_exit(3);
		for (int i = 0; i < nfiles; i++) {
			snprintf(key, sizeof(key), "dir/file%03d", i);
			snprintf(body, sizeof(body), "content of file %d", i);
			if (cache_open(cf.c, key, O_WRONLY | O_CREAT, NULL, NULL, NULL, &f) ||
			    cache_write(f, body, strlen(body), 0) != (ssize_t)strlen(body) ||
			    cache_flush(f) || cache_release(f))
				_exit(4);
		}
		/* a big one too */
		{
			char *big = malloc(3 * MIB + 5);

			fill_pattern(big, 3 * MIB + 5, 9);
			if (cache_open(cf.c, "big", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f) ||
			    cache_write(f, big, 3 * MIB + 5, 0) != 3 * MIB + 5 || cache_release(f))
				_exit(5);
			free(big);
		}
		if (cache_rename(cf.c, "dir/file000", "dir/renamed") != 1)
			_exit(6);
		if (cache_unlink(cf.c, "dir/file001") != 1)
			_exit(7);
		/* written but never closed: not promised */
		if (cache_open(cf.c, "open", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f) ||
		    cache_write(f, "x", 1, 0) != 1)
			_exit(8);
		_exit(0); /* like kill -9: no destroy, no drain */
	}
	CHECK(pid > 0);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

	CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
	upload_drain(fx.c);
	for (int i = 2; i < nfiles; i++) {
		char key[64], body[64];
		uint64_t size = 0;
		char *data;

		snprintf(key, sizeof(key), "dir/file%03d", i);
		snprintf(body, sizeof(body), "content of file %d", i);
		data = get_obj(fx.c, key, &size);
		CHECK(data && size == strlen(body) && memcmp(data, body, size) == 0);
		free(data);
	}
	{
		uint64_t size = 0;
		char *data = get_obj(fx.c, "dir/renamed", &size), *big;

		CHECK(data && strcmp(data, "content of file 0") == 0);
		free(data);
		CHECK(get_obj(fx.c, "dir/file000", &size) == NULL);
		CHECK(get_obj(fx.c, "dir/file001", &size) == NULL);
		CHECK(get_obj(fx.c, "open", &size) == NULL);
		big = malloc(3 * MIB + 5);
		fill_pattern(big, 3 * MIB + 5, 9);
		data = get_obj(fx.c, "big", &size);
		CHECK(data && size == 3 * MIB + 5 && memcmp(data, big, size) == 0);
		free(data);
		free(big);
	}
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
	drop_cache(&fx);
	/* everything went up: a third mount has nothing to do */
	CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
	drop_cache(&fx);
}

static void test_readahead(void)
{
	struct fixture fx;
	struct cache_file *f;
	size_t total = 32 * MIB + 1000, chunk = 128 * 1024;
	char *ref = malloc(total), *buf = malloc(chunk);
	uint64_t dl0, dl1, bytes0;
	struct store_opstat s[STORE_OP_COUNT];

	fill_pattern(ref, total, 5);
	CHECK_INT(make_cache(&fx, -1, NULL, 0, MIB), 0);
	CHECK_INT(put_obj(fx.c, "ra", ref, total), 0);
	CHECK_INT(open_existing(fx.c, "ra", O_RDONLY, &f), 0);
	dl0 = store_calls(fx.c, STORE_OP_DOWNLOAD);
	for (size_t off = 0; off < total; off += chunk) {
		size_t want = total - off < chunk ? total - off : chunk;
		ssize_t n = cache_read(f, buf, chunk, (off_t)off);

		CHECK_INT(n, (long long)want);
		if (n != (ssize_t)want || memcmp(buf, ref + off, want) != 0) {
			CHECK(!"sequential read bytes differ");
			break;
		}
	}
	CHECK_INT(cache_read(f, buf, chunk, (off_t)total), 0);
	dl1 = store_calls(fx.c, STORE_OP_DOWNLOAD);
	/* 257 reads of 128 KiB, but few and growing ranged GETs */
	printf("sequential 32 MiB read: %llu ranged GETs\n", (unsigned long long)(dl1 - dl0));
	CHECK(dl1 - dl0 <= 40);
	CHECK(stat_of(fx.c, "readahead_hits") > 200);
	CHECK_INT(cache_release(f), 0);

	/* random 4 KiB reads do not download the object */
	CHECK_INT(open_existing(fx.c, "ra", O_RDONLY, &f), 0);
	store_stats(cache_store(fx.c), s);
	bytes0 = s[STORE_OP_DOWNLOAD].bytes;
	for (int i = 0; i < 100; i++) {
		uint64_t off = ((uint64_t)i * 7919 * 4096) % (total - 4096);

		CHECK_INT(cache_read(f, buf, 4096, (off_t)off), 4096);
		CHECK(memcmp(buf, ref + off, 4096) == 0);
	}
	store_stats(cache_store(fx.c), s);
	CHECK(s[STORE_OP_DOWNLOAD].bytes - bytes0 <= 100 * 4096 * 2);
	CHECK_INT(cache_release(f), 0);
	free(buf);
	free(ref);
	drop_cache(&fx);
}

/* With a size limit, closed files stay as clean cached data; a change in the store
 * behind our back is noticed at the next open (size / etag). */
static void test_clean_cache_and_staleness(void)
{
	struct fixture fx;
	struct cache_file *f;
	char buf[32];
	uint64_t dl0;

	CHECK_INT(make_cache(&fx, -1, NULL, 64 * MIB, MIB), 0);
	CHECK_INT(cache_open(fx.c, "k", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "cached!", 7, 0), 7);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(stat_of(fx.c, "cached_files"), 1);
	dl0 = store_calls(fx.c, STORE_OP_DOWNLOAD);
	CHECK_INT(open_existing(fx.c, "k", O_RDONLY, &f), 0);
	CHECK_INT(cache_read(f, buf, sizeof(buf), 0), 7);
	CHECK(memcmp(buf, "cached!", 7) == 0);
	CHECK_INT(store_calls(fx.c, STORE_OP_DOWNLOAD), dl0); /* served from the disk */
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(put_obj(fx.c, "k", "changed behind", 14), 0);
	CHECK_INT(open_existing(fx.c, "k", O_RDONLY, &f), 0);
	CHECK_INT(cache_read(f, buf, sizeof(buf), 0), 14);
	CHECK(memcmp(buf, "changed behind", 14) == 0);
	CHECK_INT(cache_release(f), 0);
	/* invalidate drops clean cached data */
	cache_invalidate(fx.c, "");
	CHECK_INT(stat_of(fx.c, "cached_files"), 0);
	CHECK_INT(stat_of(fx.c, "cache_used"), 0);
	drop_cache(&fx);
}

static void test_meta_cache(void)
{
	struct fixture fx;
	struct lexfs_objinfo oi = {0}, got = {0};
	struct lexfs_list_page page = {0}, lp = {0};
	struct cache_file *f;

	CHECK_INT(make_cache(&fx, -1, NULL, 0, MIB), 0);
	CHECK_INT(meta_cache_stat_get(fx.c, "a/x", &got), 0); /* miss */
	oi.size = 42;
	snprintf(oi.etag, sizeof(oi.etag), "e1");
	meta_init(&oi.meta);
	meta_set(&oi.meta, "mode", "33188");
	oi.has_meta = true;
	meta_cache_stat_put(fx.c, "a/x", &oi, meta_cache_epoch(fx.c));
	CHECK_INT(meta_cache_stat_get(fx.c, "a/x", &got), 1);
	CHECK_INT(got.size, 42);
	CHECK_STR(meta_get(&got.meta, "mode"), "33188");
	objinfo_free(&got);
	meta_cache_stat_put(fx.c, "a/none", NULL, meta_cache_epoch(fx.c));
	CHECK_INT(meta_cache_stat_get(fx.c, "a/none", &got), -ENOENT);

	/* a listing with metadata answers stat of its entries */
	page.n = 2;
	page.items = calloc(2, sizeof(*page.items));
	page.items[0].key = strdup("a/y");
	page.items[0].size = 7;
	page.items[0].has_meta = true;
	meta_init(&page.items[0].meta);
	page.items[1].key = strdup("a/sub/");
	page.items[1].is_prefix = true;
	meta_init(&page.items[1].meta);
	meta_cache_list_put(fx.c, "a/", &page, meta_cache_epoch(fx.c));
	CHECK_INT(meta_cache_list_get(fx.c, "a/", &lp), 1);
	CHECK_INT(lp.n, 2);
	CHECK_STR(lp.items[0].key, "a/sub/"); /* kept in key order */
	CHECK_STR(lp.items[1].key, "a/y");
	list_page_free(&lp);
	/* the listing answers lookups of its names */
	CHECK_INT(meta_cache_list_find(fx.c, "a/", "a/y", &got), 1);
	CHECK(got.has_meta && got.size == 7);
	objinfo_free(&got);
	CHECK_INT(meta_cache_list_find(fx.c, "a/", "a/sub", &got), 2);
	CHECK_INT(meta_cache_list_find(fx.c, "a/", "a/nope", &got), -ENOENT);
	CHECK_INT(meta_cache_list_find(fx.c, "b/", "b/x", &got), 0);
	CHECK_INT(meta_cache_stat_get(fx.c, "a/y", &got), 1);
	CHECK_INT(got.size, 7);
	objinfo_free(&got);

	/* our own upload puts the object into the stat cache and its directory's
	 * listing (the negative entry goes) */
	CHECK_INT(cache_open(fx.c, "a/none", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(meta_cache_stat_get(fx.c, "a/none", &got), 1);
	CHECK_INT(got.size, 0);
	objinfo_free(&got);
	CHECK_INT(meta_cache_list_get(fx.c, "a/", &lp), 1);
	CHECK_INT(lp.n, 3);
	CHECK_STR(lp.items[0].key, "a/none");
	list_page_free(&lp);
	CHECK_INT(meta_cache_stat_get(fx.c, "a/x", &got), 1);
	objinfo_free(&got);
	/* a new key two levels down: its directory shows in the cached listing */
	CHECK_INT(cache_open(fx.c, "a/new/deep", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(meta_cache_list_find(fx.c, "a/", "a/new", &got), 2);
	/* a delete takes the key out of the listing and leaves a negative entry */
	CHECK_INT(cache_unlink(fx.c, "a/none"), 0);
	CHECK_INT(meta_cache_list_find(fx.c, "a/", "a/none", &got), -ENOENT);
	CHECK_INT(meta_cache_list_find(fx.c, "a/", "a/y", &got), 1);
	objinfo_free(&got);
	CHECK_INT(meta_cache_stat_get(fx.c, "a/none", &got), -ENOENT);
	/* the last entry of a directory: the listings above it go (it may be gone) */
	meta_cache_note_delete(fx.c, "a/new/deep");
	CHECK_INT(meta_cache_list_get(fx.c, "a/", &lp), 0);
	/* an answer the store gave before our own change is not remembered after it */
	{
		uint64_t before = meta_cache_epoch(fx.c);

		meta_cache_forget(fx.c, "a/z");
		meta_cache_stat_put(fx.c, "a/z", NULL, before);
		CHECK_INT(meta_cache_stat_get(fx.c, "a/z", &got), 0);
		meta_cache_list_put(fx.c, "a/", &page, before);
		CHECK_INT(meta_cache_list_get(fx.c, "a/", &lp), 0);
	}
	/* invalidate drops everything under the prefix */
	cache_invalidate(fx.c, "a/");
	CHECK_INT(meta_cache_stat_get(fx.c, "a/x", &got), 0);
	CHECK_INT(meta_cache_stat_get(fx.c, "a/y", &got), 0);
	list_page_free(&page);
	objinfo_free(&oi);
	drop_cache(&fx);

	/* TTL: entries expire */
	{
		struct fixture fx2;
		struct store_conf sc = {0};
		struct cache_conf cc = {0};
		struct store *st = NULL;
		char dir[4200];

		settings_init(&fx2.set);
		sc.driver = "memory";
		sc.settings = &fx2.set;
		CHECK_INT(store_create(&sc, &st, NULL), 0);
		snprintf(dir, sizeof(dir), "%s/ttl", basedir);
		cc.dir = dir;
		cc.writeback_s = -1;
		cc.stat_ttl_ms = 50;
		cc.list_ttl_ms = 50;
		CHECK_INT(cache_create(&cc, &st, &fx2.c), 0);
		meta_cache_stat_put(fx2.c, "k", NULL, meta_cache_epoch(fx2.c));
		CHECK_INT(meta_cache_stat_get(fx2.c, "k", &got), -ENOENT);
		usleep(80 * 1000);
		CHECK_INT(meta_cache_stat_get(fx2.c, "k", &got), 0);
		cache_destroy(fx2.c);
		settings_free(&fx2.set);
	}
}

/* ---- the journal, crafted from the format documented in cache/journal.c ------ */

#define JHDR 64
#define JREC_MAGIC 0x4A52434Cu

/* An independent CRC-32 (IEEE 802.3), checked against the published check value. */
static uint32_t test_crc32(const unsigned char *p, size_t n)
{
	uint32_t crc = 0xFFFFFFFFu;

	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
	}
	return ~crc;
}

static void le_put(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t le_get(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

struct jbytes {
	unsigned char b[64 * 1024];
	size_t len;
};

static void jb_header(struct jbytes *j, const char *magic, uint32_t version, uint32_t hsz)
{
	memset(j->b, 0, JHDR);
	memcpy(j->b, magic, 8); /* the literal's NUL is the eighth byte */
	le_put(j->b + 8, version, 4);
	le_put(j->b + 12, hsz, 4);
	le_put(j->b + 16, 1700000000, 8);
	j->len = JHDR;
}

static void jb_str(struct jbytes *j, size_t *pos, const char *s)
{
	size_t n = strlen(s);

	le_put(j->b + *pos, n, 2);
	memcpy(j->b + *pos + 2, s, n);
	*pos += 2 + n;
}

/* Append one record (type 1 PUT, 2 DROP); meta: name, value, ..., NULL. Returns the
 * offset of the record. */
static size_t jb_record(struct jbytes *j, int type, uint64_t id, uint64_t size, const char *key,
			const char *ct, const char *const *meta)
{
	size_t start = j->len, pos = start + 12, n = 0;

	memset(j->b + pos, 0, 12);
	j->b[pos] = (unsigned char)type;
	le_put(j->b + pos + 4, id, 8);
	pos += 12;
	if (type == 1) {
		le_put(j->b + pos, size, 8);
		pos += 8;
		jb_str(j, &pos, key);
		jb_str(j, &pos, ct ? ct : "");
		while (meta && meta[2 * n])
			n++;
		le_put(j->b + pos, n, 2);
		pos += 2;
		for (size_t i = 0; i < n; i++) {
			jb_str(j, &pos, meta[2 * i]);
			jb_str(j, &pos, meta[2 * i + 1]);
		}
	}
	le_put(j->b + start, JREC_MAGIC, 4);
	le_put(j->b + start + 4, pos - start - 12, 4);
	le_put(j->b + start + 8, test_crc32(j->b + start + 12, pos - start - 12), 4);
	j->len = pos;
	return start;
}

static size_t jb_put(struct jbytes *j, uint64_t id, const char *key, const char *body)
{
	return jb_record(j, 1, id, strlen(body), key, NULL, NULL);
}

static int write_bytes(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, data, len);
	close(fd);
	return n == (ssize_t)len ? 0 : -EIO;
}

/* The whole file (caller frees), NULL when it cannot be read. */
static unsigned char *read_bytes(const char *path, size_t *len)
{
	struct stat stbuf;
	unsigned char *d;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &stbuf) < 0) {
		close(fd);
		return NULL;
	}
	d = malloc((size_t)stbuf.st_size + 1);
	n = d ? read(fd, d, (size_t)stbuf.st_size) : -1;
	close(fd);
	if (n != stbuf.st_size) {
		free(d);
		return NULL;
	}
	d[n] = '\0';
	*len = (size_t)n;
	return d;
}

static bool file_has(const char *path, const char *needle)
{
	size_t len;
	unsigned char *d = read_bytes(path, &len);
	bool found = d && strstr((const char *)d, needle) != NULL;

	free(d);
	return found;
}

/* A fresh cache directory with its data/ subdirectory, and its journal's path. */
static void jdir(const char *name, char *dir, size_t dlen, char *journal, size_t jlen)
{
	char data[4300];

	snprintf(dir, dlen, "%s/%s", basedir, name);
	snprintf(data, sizeof(data), "%s/data", dir);
	CHECK(mkdir(dir, 0700) == 0);
	CHECK(mkdir(data, 0700) == 0);
	snprintf(journal, jlen, "%s/journal", dir);
}

static void data_path(const char *dir, uint64_t id, char *out, size_t outlen)
{
	snprintf(out, outlen, "%s/data/%016llx", dir, (unsigned long long)id);
}

static void data_file(const char *dir, uint64_t id, const char *body)
{
	char path[4300];

	data_path(dir, id, path, sizeof(path));
	CHECK_INT(write_bytes(path, body, strlen(body)), 0);
}

static bool data_exists(const char *dir, uint64_t id)
{
	char path[4300];

	data_path(dir, id, path, sizeof(path));
	return access(path, F_OK) == 0;
}

/* Log warnings and errors of the next steps to path (appended), to look at them. */
static void log_to(const char *path)
{
	CHECK_INT(log_open(LOG_SINK_FILE, path, LOG_NOTICE), 0);
}

static void log_back(void)
{
	log_open(LOG_SINK_STDERR, NULL, LOG_WARNING);
}

static bool obj_is(struct cache *c, const char *key, const char *body)
{
	uint64_t size = 0;
	char *data = get_obj(c, key, &size);
	bool ok = data && size == strlen(body) && memcmp(data, body, size) == 0;

	free(data);
	return ok;
}

static bool obj_absent(struct cache *c, const char *key)
{
	struct lexfs_objinfo oi = {0};
	int ret = store_info(cache_store(c), key, &oi, NULL);

	objinfo_free(&oi);
	return ret == -ENOENT;
}

/* One record of a journal as a test reads it. */
struct jview {
	int type;
	uint64_t id, size;
	char key[128], ct[64], meta[256]; /* meta: "name=value;" each */
};

static void jv_str(const unsigned char *p, size_t *pos, char *out, size_t outlen)
{
	size_t n = (size_t)le_get(p + *pos, 2);

	snprintf(out, outlen, "%.*s", (int)n, (const char *)p + *pos + 2);
	*pos += 2 + n;
}

/* The records of a journal file in order: their number, or -1 when the header is
 * not a version-1 lexfs journal. Stops at the first record that is not whole. */
static int jview_read(const char *path, struct jview *out, int max)
{
	size_t len = 0, pos = JHDR;
	unsigned char *d = read_bytes(path, &len);
	int n = 0;

	if (!d || len < JHDR || memcmp(d, "LEXFSJN\0", 8) != 0 || le_get(d + 8, 4) != 1 ||
	    le_get(d + 12, 4) != JHDR) {
		free(d);
		return -1;
	}
	while (n < max && pos + 12 <= len) {
		size_t plen = (size_t)le_get(d + pos + 4, 4), p = pos + 12 + 12;
		struct jview *v = &out[n];

		if (le_get(d + pos, 4) != JREC_MAGIC || pos + 12 + plen > len ||
		    test_crc32(d + pos + 12, plen) != le_get(d + pos + 8, 4))
			break;
		memset(v, 0, sizeof(*v));
		v->type = d[pos + 12];
		v->id = le_get(d + pos + 16, 8);
		if (v->type == 1) {
			unsigned nmeta;
			size_t ml = 0;

			v->size = le_get(d + p, 8);
			p += 8;
			jv_str(d, &p, v->key, sizeof(v->key));
			jv_str(d, &p, v->ct, sizeof(v->ct));
			nmeta = (unsigned)le_get(d + p, 2);
			p += 2;
			for (unsigned i = 0; i < nmeta; i++) {
				char name[64], value[64];

				jv_str(d, &p, name, sizeof(name));
				jv_str(d, &p, value, sizeof(value));
				ml += (size_t)snprintf(v->meta + ml, sizeof(v->meta) - ml, "%s=%s;",
						       name, value);
			}
		}
		pos += 12 + plen;
		n++;
	}
	free(d);
	return n;
}

/* Is key's id live (its last record a PUT) in these records? */
static bool jview_live(const struct jview *v, int n, const char *key)
{
	for (int i = n - 1; i >= 0; i--) {
		if (v[i].type != 1 || strcmp(v[i].key, key) != 0)
			continue;
		for (int k = i + 1; k < n; k++)
			if (v[k].id == v[i].id)
				return false;
		return true;
	}
	return false;
}

/* A journal the mount does not understand is refused: cache_create fails, says
 * which file and what to do, and leaves the journal and the cache files as they
 * were (their uploads are not lost to a downgrade or a stray file). */
static void test_journal_refused(void)
{
	static const struct {
		const char *what, *magic;
		uint32_t version, hsz;
		size_t cut; /* 0: the whole file; else its length */
		const char *says;
	} bad[] = {
	    {"another magic", "LEXFSJX", 1, JHDR, 0, "is not a lexfs journal"},
	    {"a newer version", "LEXFSJN", 2, JHDR, 0, "is a version 2 journal"},
	    {"a header size below 64", "LEXFSJN", 1, 32, 0, "header size of 32"},
	    {"a file shorter than a header", "LEXFSJN", 1, JHDR, 40, "is not a lexfs journal"},
	};
	static struct jbytes j;

	CHECK_INT(test_crc32((const unsigned char *)"123456789", 9), 0xCBF43926u);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct fixture fx;
		char dir[4200], jpath[4300], logp[4300], name[32];
		unsigned char *after;
		size_t len = 0, wlen;
		int ret;

		snprintf(name, sizeof(name), "refused%zu", i);
		jdir(name, dir, sizeof(dir), jpath, sizeof(jpath));
		snprintf(logp, sizeof(logp), "%s.log", dir);
		jb_header(&j, bad[i].magic, bad[i].version, bad[i].hsz);
		jb_put(&j, 1, "pending", "precious");
		wlen = bad[i].cut ? bad[i].cut : j.len;
		CHECK_INT(write_bytes(jpath, j.b, wlen), 0);
		data_file(dir, 1, "precious");

		log_to(logp);
		ret = make_cache(&fx, 3600, dir, 0, MIB);
		log_back();
		if (ret != -EPROTO)
			fprintf(stderr, "journal with %s: cache_create %d\n", bad[i].what, ret);
		CHECK_INT(ret, -EPROTO);
		CHECK(fx.c == NULL);
		settings_free(&fx.set);
		after = read_bytes(jpath, &len);
		CHECK(after && len == wlen && memcmp(after, j.b, wlen) == 0); /* untouched */
		free(after);
		CHECK(data_exists(dir, 1));
		CHECK(file_has(logp, jpath));	    /* names the file */
		CHECK(file_has(logp, bad[i].says)); /* says what is wrong */
		CHECK(file_has(logp, "move it away"));
	}
}

/* A torn last record ends the replay: every whole PUT before it is uploaded, the torn
 * one and anything after it is not (its close never returned). */
static void test_journal_torn_tail(void)
{
	static const char *const kinds[] = {
	    "payload cut short", "header cut short",	"bad record magic",
	    "length over 1 MiB", "length past the end", "bad CRC",
	};
	static struct jbytes j;

	for (size_t t = 0; t < sizeof(kinds) / sizeof(kinds[0]); t++) {
		struct fixture fx;
		char dir[4200], jpath[4300], logp[4300], name[32];
		size_t off;

		snprintf(name, sizeof(name), "torn%zu", t);
		jdir(name, dir, sizeof(dir), jpath, sizeof(jpath));
		snprintf(logp, sizeof(logp), "%s.log", dir);
		jb_header(&j, "LEXFSJN", 1, JHDR);
		jb_put(&j, 7, "was/uploaded", "old");
		jb_record(&j, 2, 7, 0, NULL, NULL, NULL);
		jb_put(&j, 8, "t/a", "alpha");
		jb_put(&j, 9, "t/b", "bravo");
		off = jb_put(&j, 10, "t/c", "charlie");
		data_file(dir, 8, "alpha");
		data_file(dir, 9, "bravo");
		data_file(dir, 10, "charlie");
		switch (t) {
		case 0:
			j.len = off + 12 + 5;
			break;
		case 1:
			j.len = off + 7;
			break;
		case 2:
			j.b[off] ^= 0xFF;
			break;
		case 3:
			le_put(j.b + off + 4, 1024 * 1024 + 1, 4);
			break;
		case 4:
			le_put(j.b + off + 4, 1000, 4);
			break;
		default:
			j.b[off + 12 + 24] ^= 0x20; /* a byte of the key: "t/C" */
			break;
		}
		if (t >= 2 && t != 4) {
			/* a whole record after the bad one is not believed either */
			jb_put(&j, 11, "t/d", "delta");
			data_file(dir, 11, "delta");
		}
		CHECK_INT(write_bytes(jpath, j.b, j.len), 0);

		log_to(logp);
		CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
		upload_drain(fx.c);
		log_back();
		if (!obj_is(fx.c, "t/a", "alpha") || !obj_is(fx.c, "t/b", "bravo"))
			fprintf(stderr, "torn journal (%s): a PUT before it was lost\n", kinds[t]);
		CHECK(obj_is(fx.c, "t/a", "alpha"));
		CHECK(obj_is(fx.c, "t/b", "bravo"));
		CHECK(obj_absent(fx.c, "t/c"));
		CHECK(obj_absent(fx.c, "t/C"));
		CHECK(obj_absent(fx.c, "t/d"));
		CHECK(obj_absent(fx.c, "was/uploaded"));
		CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 2);
		CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
		CHECK(!data_exists(dir, 10)); /* nothing names them any more */
		CHECK(!data_exists(dir, 11));
		CHECK(file_has(logp, "torn record"));
		drop_cache(&fx);
	}
}

/* A PUT whose cache file is missing (or shorter than the record says) is skipped
 * with a warning naming it; the PUTs around it are uploaded. */
static void test_journal_missing_cache_file(void)
{
	static struct jbytes j;
	struct fixture fx;
	char dir[4200], jpath[4300], logp[4300];

	jdir("missing", dir, sizeof(dir), jpath, sizeof(jpath));
	snprintf(logp, sizeof(logp), "%s.log", dir);
	jb_header(&j, "LEXFSJN", 1, JHDR);
	jb_put(&j, 1, "m/first", "first");
	jb_put(&j, 2, "m/missing", "no cache file");
	jb_put(&j, 3, "m/short", "longer than its file");
	jb_put(&j, 4, "m/last", "last one");
	CHECK_INT(write_bytes(jpath, j.b, j.len), 0);
	data_file(dir, 1, "first");
	data_file(dir, 3, "longer");
	data_file(dir, 4, "last one");

	log_to(logp);
	CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
	upload_drain(fx.c);
	log_back();
	CHECK(obj_is(fx.c, "m/first", "first"));
	CHECK(obj_is(fx.c, "m/last", "last one"));
	CHECK(obj_absent(fx.c, "m/missing"));
	CHECK(obj_absent(fx.c, "m/short"));
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
	CHECK(file_has(logp, "m/missing"));
	CHECK(file_has(logp, "m/short"));
	CHECK(file_has(logp, "skipped"));
	drop_cache(&fx);
}

/* Is an upload of some file running now (user.lexfs.stats "files"[].uploading)? */
static bool uploading_now(struct cache *c)
{
	char *sj = cache_stats_json(c);
	json_t *j = sj ? json_loads(sj, 0, NULL) : NULL, *v;
	size_t i;
	bool any = false;

	json_array_foreach(json_object_get(j, "files"), i, v)
	{
		if (json_is_true(json_object_get(v, "uploading")))
			any = true;
	}
	json_decref(j);
	free(sj);
	return any;
}

/* After replay the journal holds just the PUTs still pending, last record of each
 * id, the later of two ids with one key, in their order, with key, size, content
 * type and metadata; cache files nobody needs are gone. The store refuses every
 * call here (EACCES, not retried), so nothing is uploaded while we look. */
static void test_journal_compacted(void)
{
	static const char *const m3[] = {"mode", "33261", "mtime", "1700000001", NULL};
	static const char *const kv[] = {"fault_error_rate", "1", "fault_errno", "EACCES", NULL};
	static struct jbytes j;
	struct jview v[16];
	struct fixture fx;
	char dir[4200], jpath[4300], logp[4300];
	int n;

	jdir("compact", dir, sizeof(dir), jpath, sizeof(jpath));
	snprintf(logp, sizeof(logp), "%s.log", dir);
	jb_header(&j, "LEXFSJN", 1, JHDR);
	jb_put(&j, 1, "c/one", "one");		 /* uploaded: dropped */
	jb_put(&j, 2, "c/two", "two, first id"); /* replaced by id 5 */
	jb_record(&j, 2, 1, 0, NULL, NULL, NULL);
	jb_put(&j, 3, "c/.three.tmp", "three");		       /* then renamed ... */
	jb_record(&j, 1, 3, 5, "c/three", "text/x-three", m3); /* ... with mode, mtime */
	jb_put(&j, 4, "c/gone", "no cache file");
	jb_put(&j, 5, "c/two", "two");
	jb_put(&j, 6, "c/six", "six");
	jb_record(&j, 2, 6, 0, NULL, NULL, NULL);
	CHECK_INT(write_bytes(jpath, j.b, j.len), 0);
	data_file(dir, 1, "one");
	data_file(dir, 2, "two, first id");
	data_file(dir, 3, "three");
	data_file(dir, 5, "two");
	data_file(dir, 6, "six");
	data_file(dir, 0x77, "a left-over of an earlier mount");

	log_to(logp);
	CHECK_INT(make_cache_kv(&fx, 3600, dir, 0, MIB, kv), 0);
	n = jview_read(jpath, v, 16);
	CHECK_INT(n, 2);
	if (n == 2) {
		CHECK_INT(v[0].type, 1);
		CHECK_INT(v[0].id, 3);
		CHECK_INT(v[0].size, 5);
		CHECK_STR(v[0].key, "c/three");
		CHECK_STR(v[0].ct, "text/x-three");
		CHECK_STR(v[0].meta, "mode=33261;mtime=1700000001;");
		CHECK_INT(v[1].type, 1);
		CHECK_INT(v[1].id, 5);
		CHECK_INT(v[1].size, 3);
		CHECK_STR(v[1].key, "c/two");
	}
	{
		size_t len = 0;
		unsigned char *d = read_bytes(jpath, &len);

		/* a new header: created now, spare bytes zero */
		CHECK(d && len >= JHDR && le_get(d + 16, 8) > 1700000000);
		CHECK(d && memcmp(d + 24, (const char[40]){0}, 40) == 0);
		free(d);
	}
	CHECK(!data_exists(dir, 1));
	CHECK(!data_exists(dir, 2));
	CHECK(data_exists(dir, 3));
	CHECK(data_exists(dir, 5));
	CHECK(!data_exists(dir, 6));
	CHECK(!data_exists(dir, 0x77));
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 2);
	/* the store works again: exactly the two pending files go up (once the
	 * replay's failing tries are over: an upload running when the drain begins
	 * is that file's try) */
	for (int i = 0; i < 500 && uploading_now(fx.c); i++)
		usleep(10 * 1000);
	CHECK_INT(store_control(cache_store(fx.c), "fault", "off", NULL), 0);
	upload_drain(fx.c);
	log_back();
	CHECK(obj_is(fx.c, "c/three", "three"));
	CHECK(obj_is(fx.c, "c/two", "two"));
	{
		struct lexfs_objinfo oi = {0};

		CHECK_INT(store_info(cache_store(fx.c), "c/three", &oi, NULL), 0);
		CHECK_STR(meta_get(&oi.meta, "mode"), "33261");
		CHECK_STR(oi.content_type, "text/x-three");
		objinfo_free(&oi);
	}
	CHECK(obj_absent(fx.c, "c/one"));
	CHECK(obj_absent(fx.c, "c/.three.tmp"));
	CHECK(obj_absent(fx.c, "c/gone"));
	CHECK(obj_absent(fx.c, "c/six"));
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
	drop_cache(&fx);
	/* the next mount finds nothing pending and starts an empty journal */
	CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
	CHECK_INT(jview_read(jpath, v, 16), 0);
	drop_cache(&fx);
}

/* Unmount while the store fails every call: the drain gives up after the store's
 * retries, promptly, and leaves every file in the journal; the next cache on the
 * same directory uploads them with their final names, bytes and metadata. */
static void test_unmount_keeps_what_it_cannot_upload(void)
{
	struct fixture fx;
	struct cache_file *f;
	struct lexfs_meta m;
	struct jview v[64];
	char dir[4200], jpath[4300], logp[4300];
	size_t big = 3 * MIB + 7;
	char *ref = malloc(big);
	int64_t t0, ms;
	int n;

	jdir("unmount-fail", dir, sizeof(dir), jpath, sizeof(jpath));
	snprintf(logp, sizeof(logp), "%s.log", dir);
	fill_pattern(ref, big, 11);
	CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
	CHECK_INT(cache_open(fx.c, "u/small", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "small file", 10, 0), 10);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(cache_open(fx.c, "u/big", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	for (size_t off = 0; off < big; off += 256 * 1024) {
		size_t len = big - off < 256 * 1024 ? big - off : 256 * 1024;

		CHECK_INT(cache_write(f, ref + off, len, (off_t)off), (long long)len);
	}
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(cache_open(fx.c, "u/.r.tmp", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, "renamed", 7, 0), 7);
	CHECK_INT(cache_release(f), 0);
	meta_init(&m);
	meta_set(&m, "mode", "33216");
	CHECK_INT(cache_set_meta(fx.c, "u/.r.tmp", &m), 1);
	CHECK_INT(cache_rename(fx.c, "u/.r.tmp", "u/r"), 1);
	meta_free(&m);
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 3);

	/* every call fails, retryably: the store retries each upload, then gives up */
	CHECK_INT(store_control(cache_store(fx.c), "fault", "error_rate=1", NULL), 0);
	log_to(logp);
	t0 = cache_now_ms();
	drop_cache(&fx);
	ms = cache_now_ms() - t0;
	log_back();
	printf("unmount with a failing store: %lld ms\n", (long long)ms);
	CHECK(ms < 10000);
	CHECK(file_has(logp, "still to upload"));
	CHECK(file_has(logp, "could not be uploaded"));
	CHECK(file_has(logp, "u/small not uploaded; kept for the next mount"));
	n = jview_read(jpath, v, 64);
	CHECK(n >= 3);
	CHECK(jview_live(v, n, "u/small"));
	CHECK(jview_live(v, n, "u/big"));
	CHECK(jview_live(v, n, "u/r"));
	CHECK(!jview_live(v, n, "u/.r.tmp"));

	/* the next mount (a store that works) uploads them all */
	snprintf(logp, sizeof(logp), "%s-next.log", dir);
	log_to(logp);
	CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
	upload_drain(fx.c);
	log_back();
	CHECK(file_has(logp, "3 file(s) from the journal"));
	CHECK(obj_is(fx.c, "u/small", "small file"));
	CHECK(obj_is(fx.c, "u/r", "renamed"));
	CHECK(obj_absent(fx.c, "u/.r.tmp"));
	{
		uint64_t size = 0;
		char *data = get_obj(fx.c, "u/big", &size);
		struct lexfs_objinfo oi = {0};

		CHECK(data && size == big && memcmp(data, ref, big) == 0);
		free(data);
		CHECK_INT(store_info(cache_store(fx.c), "u/r", &oi, NULL), 0);
		CHECK_STR(meta_get(&oi.meta, "mode"), "33216");
		objinfo_free(&oi);
	}
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
	drop_cache(&fx);
	free(ref);
}

/* An upload that runs when the unmount begins is that file's last try there: the
 * drain queues no second one, so its bound is one upload per pending file. */
static void test_drain_does_not_repeat_a_running_upload(void)
{
	static const char *const kv[] = {"fault_error_rate", "1",   "fault_errno", "EACCES",
					 "fault_latency_ms", "300", NULL};
	static struct jbytes j;
	struct jview v[8];
	struct fixture fx;
	char dir[4200], jpath[4300], logp[4300];
	int n;

	jdir("running", dir, sizeof(dir), jpath, sizeof(jpath));
	snprintf(logp, sizeof(logp), "%s.log", dir);
	jb_header(&j, "LEXFSJN", 1, JHDR);
	jb_put(&j, 1, "r/one", "one");
	CHECK_INT(write_bytes(jpath, j.b, j.len), 0);
	data_file(dir, 1, "one");
	log_to(logp);
	CHECK_INT(make_cache_kv(&fx, 3600, dir, 0, MIB, kv), 0);
	for (int i = 0; i < 500 && !uploading_now(fx.c); i++)
		usleep(10 * 1000); /* the replayed upload starts at once */
	CHECK(uploading_now(fx.c));
	upload_drain(fx.c);
	log_back();
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD), 1);
	CHECK(file_has(logp, "1 of 1 file(s) could not be uploaded"));
	n = jview_read(jpath, v, 8);
	CHECK(jview_live(v, n, "r/one"));
	CHECK_INT(store_control(cache_store(fx.c), "fault", "off", NULL), 0);
	drop_cache(&fx); /* now it goes up */
}

/* Unmount with many files pending: a store that refuses each file (EACCES) is asked
 * about every one, but a store that is down (EIO after the retries) ends the drain
 * after the uploads already running, instead of one upload's retries per file. All
 * of them stay in the journal, and the next drain with a working store sends them. */
static void test_drain_stops_when_the_store_is_down(void)
{
	enum { NFILES = 30 };
	struct jview v[NFILES * 4];
	struct fixture fx;
	struct cache_file *f;
	char dir[4200], jpath[4300], logp[4300], key[32], body[32];
	uint64_t up0;
	int n, live = 0;

	jdir("store-down", dir, sizeof(dir), jpath, sizeof(jpath));
	snprintf(logp, sizeof(logp), "%s.log", dir);
	CHECK_INT(make_cache(&fx, 3600, dir, 0, MIB), 0);
	for (int i = 0; i < NFILES; i++) {
		snprintf(key, sizeof(key), "d/f%02d", i);
		snprintf(body, sizeof(body), "file %d", i);
		CHECK_INT(cache_open(fx.c, key, O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
		CHECK_INT(cache_write(f, body, strlen(body), 0), (long long)strlen(body));
		CHECK_INT(cache_release(f), 0);
	}
	CHECK_INT(stat_of(fx.c, "pending_uploads"), NFILES);

	/* refused, file by file: each one is tried */
	CHECK_INT(store_control(cache_store(fx.c), "fault", "error_rate=1,errno=EACCES", NULL), 0);
	up0 = store_calls(fx.c, STORE_OP_UPLOAD);
	log_to(logp);
	upload_drain(fx.c);
	log_back();
	CHECK_INT(store_calls(fx.c, STORE_OP_UPLOAD) - up0, NFILES);
	CHECK(!file_has(logp, "the store looks down"));

	/* down: the drain stops after what was running (upload_concurrency = 3) */
	CHECK_INT(store_control(cache_store(fx.c), "fault", "off,error_rate=1", NULL), 0);
	up0 = store_calls(fx.c, STORE_OP_UPLOAD);
	snprintf(logp, sizeof(logp), "%s-down.log", dir);
	log_to(logp);
	upload_drain(fx.c);
	log_back();
	printf("drain of %d files with the store down: %llu uploads tried\n", NFILES,
	       (unsigned long long)(store_calls(fx.c, STORE_OP_UPLOAD) - up0));
	CHECK(store_calls(fx.c, STORE_OP_UPLOAD) - up0 <= 3);
	CHECK(file_has(logp, "the store looks down"));
	CHECK(file_has(logp, "30 of 30 file(s) could not be uploaded"));
	CHECK_INT(stat_of(fx.c, "pending_uploads"), NFILES);
	n = jview_read(jpath, v, NFILES * 4);
	for (int i = 0; i < NFILES; i++) {
		snprintf(key, sizeof(key), "d/f%02d", i);
		live += jview_live(v, n, key);
	}
	CHECK_INT(live, NFILES);

	/* back: the next drain sends every one */
	CHECK_INT(store_control(cache_store(fx.c), "fault", "off", NULL), 0);
	upload_drain(fx.c);
	for (int i = 0; i < NFILES; i++) {
		snprintf(key, sizeof(key), "d/f%02d", i);
		snprintf(body, sizeof(body), "file %d", i);
		CHECK(obj_is(fx.c, key, body));
	}
	CHECK_INT(stat_of(fx.c, "pending_uploads"), 0);
	drop_cache(&fx);
}

/* Clean cached data is evicted least recently used first; a file used again moves
 * to the front. Files written through the cache stay as clean data after their
 * upload (reads of other files go to the store and keep nothing on disk). */
static void test_eviction_is_lru(void)
{
	const char *names[] = {"A", "B", "C", "D"};
	size_t sz = MIB;
	char *ref = malloc(sz), *buf = malloc(sz);
	struct fixture fx;
	struct cache_file *f;
	uint64_t dl;

	CHECK_INT(make_cache(&fx, -1, NULL, 3 * MIB + MIB / 2, 8 * MIB), 0);
	for (int i = 0; i < 3; i++) {
		fill_pattern(ref, sz, 20 + (unsigned)i);
		CHECK_INT(cache_open(fx.c, names[i], O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
		CHECK_INT(cache_write(f, ref, sz, 0), (long long)sz);
		CHECK_INT(cache_release(f), 0);
	}
	CHECK_INT(stat_of(fx.c, "cached_files"), 3);
	/* A is used again: B is now the least recently used */
	dl = store_calls(fx.c, STORE_OP_DOWNLOAD);
	CHECK_INT(open_existing(fx.c, "A", O_RDONLY, &f), 0);
	CHECK_INT(cache_read(f, buf, sz, 0), (long long)sz);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(store_calls(fx.c, STORE_OP_DOWNLOAD), dl);
	fill_pattern(ref, sz, 23);
	CHECK_INT(cache_open(fx.c, "D", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, ref, sz, 0), (long long)sz);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(stat_of(fx.c, "evictions"), 1);
	CHECK(stat_of(fx.c, "cache_used") <= 3 * MIB + MIB / 2);
	/* A, C and D come from the disk, B from the store */
	for (int i = 0; i < 4; i++) {
		uint64_t before = store_calls(fx.c, STORE_OP_DOWNLOAD);

		fill_pattern(ref, sz, 20 + (unsigned)i);
		CHECK_INT(open_existing(fx.c, names[i], O_RDONLY, &f), 0);
		CHECK_INT(cache_read(f, buf, sz, 0), (long long)sz);
		CHECK(memcmp(buf, ref, sz) == 0);
		CHECK_INT(cache_release(f), 0);
		if (i == 1)
			CHECK(store_calls(fx.c, STORE_OP_DOWNLOAD) > before);
		else
			CHECK_INT(store_calls(fx.c, STORE_OP_DOWNLOAD), before);
	}
	free(ref);
	free(buf);
	drop_cache(&fx);
}

/* Dirty data is never evicted: a file open for writing keeps its bytes while other
 * writers need room; only clean data goes, and past that the limit is a target. */
static void test_eviction_spares_dirty(void)
{
	size_t sz = MIB;
	char *ref = malloc(sz), *keep = malloc(2 * sz);
	struct fixture fx;
	struct cache_file *f, *w, *d;
	uint64_t size;
	char *data;

	CHECK_INT(make_cache(&fx, -1, NULL, 2 * MIB + MIB / 2, 8 * MIB), 0);
	fill_pattern(ref, sz, 30);
	CHECK_INT(cache_open(fx.c, "clean1", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, ref, sz, 0), (long long)sz);
	CHECK_INT(cache_release(f), 0);
	CHECK_INT(cache_open(fx.c, "clean2", O_WRONLY | O_CREAT, NULL, NULL, NULL, &f), 0);
	CHECK_INT(cache_write(f, ref, sz, 0), (long long)sz);
	CHECK_INT(cache_release(f), 0);
	/* the dirty file: written, still open */
	fill_pattern(keep, 2 * sz, 31);
	CHECK_INT(cache_open(fx.c, "dirty", O_WRONLY | O_CREAT, NULL, NULL, NULL, &w), 0);
	CHECK_INT(cache_write(w, keep, sz, 0), (long long)sz);
	CHECK_INT(cache_open(fx.c, "other", O_WRONLY | O_CREAT, NULL, NULL, NULL, &d), 0);
	for (size_t off = 0; off < 2 * sz; off += sz / 4)
		CHECK_INT(cache_write(d, ref, sz / 4, (off_t)off), (long long)(sz / 4));
	CHECK_INT(stat_of(fx.c, "evictions"), 2); /* both clean files, nothing else */
	CHECK_INT(cache_write(w, keep + sz, sz, (off_t)sz), (long long)sz);
	CHECK_INT(cache_release(d), 0);
	CHECK_INT(cache_release(w), 0);
	data = get_obj(fx.c, "dirty", &size);
	CHECK(data && size == 2 * sz && memcmp(data, keep, 2 * sz) == 0);
	free(data);
	free(ref);
	free(keep);
	drop_cache(&fx);
}

int main(int argc, char **argv)
{
	log_open(LOG_SINK_STDERR, NULL, LOG_WARNING);
	if (argc > 1) {
		snprintf(basedir, sizeof(basedir), "%s", argv[1]);
	} else {
		const char *t = getenv("TMPDIR");

		snprintf(basedir, sizeof(basedir), "%s/lexfs-cache-test-XXXXXX", t ? t : "/tmp");
		if (!mkdtemp(basedir)) {
			perror("mkdtemp");
			return 2;
		}
	}
	test_new_file_sync();
	test_partial_write_fetches_by_range();
	test_shared_entry_and_direct_reads();
	test_failure_keeps_data();
	test_pending_rename_unlink_meta();
	test_streaming_upload();
	test_streaming_faults();
	test_writeback_drain_and_rsync_pattern();
	test_writeback_crash_replay();
	test_readahead();
	test_clean_cache_and_staleness();
	test_meta_cache();
	test_journal_refused();
	test_journal_torn_tail();
	test_journal_missing_cache_file();
	test_journal_compacted();
	test_unmount_keeps_what_it_cannot_upload();
	test_drain_does_not_repeat_a_running_upload();
	test_drain_stops_when_the_store_is_down();
	test_eviction_is_lru();
	test_eviction_spares_dirty();
	return check_done("cache_test");
}
