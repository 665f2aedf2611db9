/* local_test.c - the local driver refuses keys that would leave its root. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/store.h"

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

static int sink_count(void *arg, const void *data, size_t len)
{
	*(size_t *)arg += len;
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

/* Every operation on `key` must fail with -EINVAL / -ENAMETOOLONG and LEXFS-006. */
static void expect_refused(struct store *st, const char *key)
{
	struct lexfs_src src = { .buf = "x", .fd = -1, .len = 1 };
	struct lexfs_objinfo oi = { 0 };
	struct lexfs_err err;
	size_t got = 0;
	int rc;

	rc = store_upload(st, key, &src, NULL, NULL, &err);
	if (rc != -EINVAL && rc != -ENAMETOOLONG)
		fprintf(stderr, "upload %s -> %d\n", key, rc);
	CHECK(rc == -EINVAL || rc == -ENAMETOOLONG);
	CHECK(err.code == LEXFS_E_INVALID_PATH);

	rc = store_download(st, key, 0, UINT64_MAX, sink_count, &got, &err);
	CHECK(rc == -EINVAL || rc == -ENAMETOOLONG);
	CHECK(err.code == LEXFS_E_INVALID_PATH);
	CHECK(got == 0);

	rc = store_info(st, key, &oi, &err);
	CHECK(rc == -EINVAL || rc == -ENAMETOOLONG);
	CHECK(err.code == LEXFS_E_INVALID_PATH);
	objinfo_free(&oi);

	rc = store_remove(st, key, &err);
	CHECK(rc == -EINVAL || rc == -ENAMETOOLONG);
	CHECK(err.code == LEXFS_E_INVALID_PATH);
}

int main(void)
{
	char base[] = "/tmp/lexfs-local-test-XXXXXX";
	char root[300], outside[300], path[400], cmd[600];
	struct store_conf conf = { 0 };
	struct store *st = NULL;
	struct settings s;
	struct lexfs_err err;
	struct stat sb;
	char longname[300];
	int rc;

	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(root, sizeof(root), "%s/root", base);
	snprintf(outside, sizeof(outside), "%s/outside", base);
	mkdir(root, 0755);
	mkdir(outside, 0755);
	snprintf(path, sizeof(path), "%s/secret", outside);
	write_file(path, "secret");

	/* symlinks that point out: absolute, and relative climbing */
	snprintf(path, sizeof(path), "%s/abs", root);
	CHECK(symlink(outside, path) == 0);
	snprintf(path, sizeof(path), "%s/rel", root);
	CHECK(symlink("../outside", path) == 0);
	snprintf(path, sizeof(path), "%s/file-link", root);
	CHECK(symlink("../outside/secret", path) == 0);

	settings_init(&s);
	settings_set(&s, "root_dir", root, "test");
	settings_set(&s, "fsync", "false", "test");
	conf.driver = "local";
	conf.settings = &s;
	rc = store_create(&conf, &st, &err);
	CHECK(rc == 0);
	if (rc) {
		fprintf(stderr, "open: %s\n", err.message);
		return 1;
	}

	expect_refused(st, "../outside/secret");
	expect_refused(st, "a/../../outside/secret");
	expect_refused(st, "/etc/passwd");
	expect_refused(st, "a//b");
	expect_refused(st, "./a");
	expect_refused(st, ".lexfs/signing.key");
	expect_refused(st, "abs/secret");
	expect_refused(st, "rel/secret");
	expect_refused(st, "abs/new-file");
	/* a final symlink pointing out: reads refused; a write replaces the link itself
	 * (rename) and never writes through it */
	{
		struct lexfs_src src = { .buf = "new", .fd = -1, .len = 3 };
		struct lexfs_objinfo oi = { 0 };
		size_t got = 0;

		rc = store_download(st, "file-link", 0, UINT64_MAX, sink_count, &got, &err);
		CHECK(rc == -EINVAL && err.code == LEXFS_E_INVALID_PATH && got == 0);
		rc = store_info(st, "file-link", &oi, &err);
		CHECK(rc == -EINVAL && err.code == LEXFS_E_INVALID_PATH);
		objinfo_free(&oi);
		CHECK(store_upload(st, "file-link", &src, NULL, NULL, &err) == 0);
		snprintf(path, sizeof(path), "%s/file-link", root);
		CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size == 3);
	}
	memset(longname, 'n', 256);
	longname[256] = '\0';
	expect_refused(st, longname);

	/* nothing was written outside */
	snprintf(path, sizeof(path), "%s/new-file", outside);
	CHECK(stat(path, &sb) != 0 && errno == ENOENT);
	snprintf(path, sizeof(path), "%s/secret", outside);
	CHECK(stat(path, &sb) == 0 && sb.st_size == 6);

	/* a normal key still works, and .lexfs is never listed */
	{
		struct lexfs_src src = { .buf = "hello", .fd = -1, .len = 5 };
		struct lexfs_list_page page = { 0 };
		size_t got = 0;

		CHECK(store_upload(st, "ok/file", &src, NULL, NULL, &err) == 0);
		CHECK(store_download(st, "ok/file", 0, UINT64_MAX, sink_count, &got, &err) == 0);
		CHECK(got == 5);
		CHECK(store_list(st, "", "/", NULL, 1000, &page, &err) == 0);
		for (size_t i = 0; i < page.n; i++) {
			CHECK(strncmp(page.items[i].key, ".lexfs", 6) != 0);
			CHECK(strcmp(page.items[i].key, "abs/") != 0); /* symlinks not listed */
		}
		CHECK(page.n == 2 && strcmp(page.items[0].key, "file-link") == 0 &&
		      strcmp(page.items[1].key, "ok/") == 0);
		list_page_free(&page);
	}

	store_destroy(st);
	settings_free(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);
	if (failures) {
		fprintf(stderr, "local_test: %d failure(s)\n", failures);
		return 1;
	}
	printf("local_test: all passed\n");
	return 0;
}
