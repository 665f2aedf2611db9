/* doctor_test.c - doctor_run on the memory and local drivers: a passing run, a
 * local root that cannot exist, an unusable cache directory, a failed config,
 * the JSON form, and a stale multipart upload warned about, then aborted. */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/store.h"
#include "src/doctor.h"
#include "src/log.h"
#include "tests/unit/check.h"

static char tmpdir[64];

static int run(const struct doctor_conf *c, bool json, char **text)
{
	size_t len = 0;
	FILE *f = open_memstream(text, &len);
	int rc = doctor_run(c, f, json);

	fclose(f);
	return rc;
}

static bool has_line(const char *text, const char *prefix)
{
	const char *p = text;

	while (p && *p) {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			return true;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return false;
}

static void test_memory_pass(void)
{
	struct settings s;
	struct doctor_conf c = {.driver = "memory", .cache_dir = tmpdir};
	char *text = NULL;

	settings_init(&s);
	c.settings = &s;
	CHECK_INT(run(&c, false, &text), 0);
	CHECK(has_line(text, "pass config: no config file"));
	CHECK(has_line(text, "pass credentials: driver memory needs none"));
	CHECK(has_line(text, "pass driver: driver memory opened"));
	CHECK(has_line(text, "pass endpoint: health check passed"));
	CHECK(has_line(text, "skip clock: driver memory has no server clock to compare with"));
	CHECK(has_line(text, "pass probe-put: put .lexfs-doctor/probe-"));
	CHECK(has_line(text, "pass probe-info: size 35"));
	CHECK(has_line(text, "pass probe-get: bytes match"));
	CHECK(has_line(text, "pass probe-list: listed under .lexfs-doctor/"));
	CHECK(has_line(text, "pass probe-copy:"));
	CHECK(has_line(text, "pass probe-presign: presigned URL made and verified by the driver"));
	CHECK(has_line(text, "pass probe-remove: removed"));
	CHECK(has_line(text, "pass multipart: begin + abort"));
	CHECK(has_line(text, "skip stale-uploads: driver memory cannot list incomplete multipart "
			     "uploads"));
	CHECK(has_line(text, "pass cache-dir: "));
	CHECK(has_line(text, "pass fuse: /dev/fuse usable"));
	CHECK(strstr(text, "0 failed") != NULL);
	if (check_failures)
		fputs(text, stderr);
	free(text);
	settings_free(&s);
}

static void test_local_failures(void)
{
	struct settings s;
	struct doctor_conf c = {.driver = "local"};
	char root[128], file[128], *text = NULL;
	FILE *f;

	/* A root under a regular file can never be created. */
	snprintf(file, sizeof(file), "%s/plainfile", tmpdir);
	f = fopen(file, "w");
	fclose(f);
	snprintf(root, sizeof(root), "%s/plainfile/root", tmpdir);
	settings_init(&s);
	settings_set(&s, "root_dir", root, "-o root_dir");
	c.settings = &s;
	c.cache_dir = file; /* not a directory */
	CHECK_INT(run(&c, false, &text), 1);
	CHECK(has_line(text, "fail driver: driver local did not open") ||
	      has_line(text, "fail endpoint: "));
	CHECK(has_line(text, "skip probe-put: ") || has_line(text, "fail probe-put: "));
	CHECK(has_line(text, "fail cache-dir: "));
	CHECK(strstr(text, "is not a directory -- fix: point cache_dir at a directory") != NULL);
	free(text);
	settings_free(&s);

	/* A working local root with an unwritable cache directory below a file. */
	snprintf(root, sizeof(root), "%s/root", tmpdir);
	mkdir(root, 0700);
	settings_init(&s);
	settings_set(&s, "root_dir", root, "-o root_dir");
	c.settings = &s;
	snprintf(file, sizeof(file), "%s/plainfile/cache", tmpdir);
	c.cache_dir = file;
	CHECK_INT(run(&c, true, &text), 1);
	{
		json_t *o = json_loads(text, 0, NULL);
		json_t *checks = json_object_get(o, "checks");
		size_t i;
		json_t *x;
		int fails = 0;

		CHECK(o != NULL);
		CHECK(json_is_false(json_object_get(o, "ok")));
		json_array_foreach(checks, i, x)
		{
			const char *name = json_string_value(json_object_get(x, "check"));
			const char *st = json_string_value(json_object_get(x, "status"));

			if (strcmp(st, "fail") == 0) {
				fails++;
				CHECK_STR(name, "cache-dir");
				CHECK(json_is_string(json_object_get(x, "fix")));
			}
			if (strcmp(name, "probe-get") == 0)
				CHECK_STR(st, "pass");
		}
		CHECK_INT(fails, 1);
		CHECK_INT(
		    json_integer_value(json_object_get(json_object_get(o, "summary"), "fail")), 1);
		json_decref(o);
	}
	free(text);
	settings_free(&s);
}

/* An upload a writer left (begun, never completed) under the prefix is stale at
 * age 0; --abort-stale aborts it and leaves the one outside the prefix. */
static void test_local_stale_upload(void)
{
	struct settings s;
	struct store_conf sc = {.driver = "local", .backend_name = "t"};
	struct doctor_conf c = {.driver = "local", .cache_dir = tmpdir, .prefix = "in/"};
	struct lexfs_upload_page pg;
	struct store *st = NULL;
	store_mpu *m1 = NULL, *m2 = NULL;
	char root[128], *text = NULL;

	snprintf(root, sizeof(root), "%s/staleroot", tmpdir);
	mkdir(root, 0700);
	settings_init(&s);
	settings_set(&s, "root_dir", root, "-o root_dir");
	sc.settings = &s;
	c.settings = &s;
	CHECK_INT(store_create(&sc, &st, NULL), 0);
	CHECK_INT(store_mp_begin(st, "in/left.bin", NULL, &m1, NULL), 0);
	CHECK_INT(store_mp_begin(st, "out/other.bin", NULL, &m2, NULL), 0);

	CHECK_INT(run(&c, false, &text), 0);
	CHECK(has_line(text, "pass stale-uploads: no incomplete multipart upload older than 24 h "
			     "under \"in/\" (1 in progress)"));
	free(text);
	c.stale_age_s = -1;
	CHECK_INT(run(&c, false, &text), 0);
	CHECK(has_line(text, "warn stale-uploads: 1 incomplete multipart upload older than 0 s "
			     "under \"in/\" (of 1 in progress); the oldest, "));
	CHECK(strstr(text, "is for in/left.bin -- fix: lexfs doctor --abort-stale\n") != NULL);
	free(text);
	c.abort_stale = true;
	CHECK_INT(run(&c, false, &text), 0);
	CHECK(has_line(text, "pass stale-uploads: aborted 1 incomplete multipart upload older "
			     "than 0 s under \"in/\""));
	free(text);

	CHECK_INT(store_mp_list(st, "", NULL, 0, &pg, NULL), 0);
	CHECK_INT(pg.n, 1);
	if (pg.n == 1)
		CHECK_STR(pg.items[0].key, "out/other.bin");
	upload_page_free(&pg);
	/* The aborted one's handle is gone on disk: its abort still succeeds. */
	CHECK_INT(store_mp_abort(st, m1, NULL), 0);
	CHECK_INT(store_mp_abort(st, m2, NULL), 0);
	CHECK_INT(store_mp_list(st, "", NULL, 0, &pg, NULL), 0);
	CHECK_INT(pg.n, 0);
	upload_page_free(&pg);
	store_destroy(st);
	settings_free(&s);
}

static void test_config_failure(void)
{
	struct doctor_conf c = {.config_status = -22,
				.config_message = "storage.bogus: unknown key (from x.conf:3)",
				.cache_dir = tmpdir};
	char *text = NULL;

	CHECK_INT(run(&c, false, &text), 1);
	CHECK(has_line(text, "fail config: storage.bogus: unknown key (from x.conf:3) -- fix:"));
	CHECK(has_line(text, "skip driver: configuration did not load"));
	free(text);
}

/* Named backends: config once, a section per backend, fuse once. */
static void test_backends_sections(void)
{
	struct settings mem, loc;
	struct doctor_conf c[2] = {
	    {.driver = "memory",
	     .backend_name = "scratch",
	     .cache_dir = tmpdir,
	     .config_file = "/etc/lexfs.conf"},
	    {.driver = "local", .backend_name = "docs", .cache_dir = tmpdir},
	};
	char root[128], *text = NULL;
	size_t len = 0;
	FILE *f;

	settings_init(&mem);
	settings_init(&loc);
	snprintf(root, sizeof(root), "%s/docs-root", tmpdir);
	settings_set(&loc, "root_dir", root, "test");
	c[0].settings = &mem;
	c[1].settings = &loc;
	f = open_memstream(&text, &len);
	CHECK(doctor_run_backends(c, 2, f, false) >= 0);
	fclose(f);
	CHECK(has_line(text, "pass config: /etc/lexfs.conf parsed and validated (backends "
			     "scratch (memory), docs (local))"));
	CHECK(has_line(text, "pass scratch/driver: driver memory opened"));
	CHECK(has_line(text, "pass scratch/probe-get: bytes match"));
	CHECK(has_line(text, "pass scratch/cache-dir: "));
	CHECK(has_line(text, "pass docs/credentials: driver local needs none"));
	CHECK(has_line(text, "pass docs/probe-get: bytes match"));
	CHECK(has_line(text, "pass fuse: "));
	CHECK(!has_line(text, "pass driver:")); /* every backend check is in a section */
	if (check_failures)
		fputs(text, stderr);
	free(text);
	text = NULL;
	f = open_memstream(&text, &len);
	CHECK(doctor_run_backends(c, 1, f, true) == 0);
	fclose(f);
	CHECK(text && strstr(text, "\"backend\": \"scratch\"") != NULL);
	free(text);
	settings_free(&mem);
	settings_free(&loc);
}

int main(void)
{
	char cmd[100];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lexfs-doctor-test-XXXXXX");
	if (!mkdtemp(tmpdir))
		return 1;
	log_open(LOG_SINK_STDERR, NULL, LOG_CRIT);
	test_memory_pass();
	test_local_failures();
	test_local_stale_upload();
	test_config_failure();
	test_backends_sections();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return check_done("doctor_test");
}
