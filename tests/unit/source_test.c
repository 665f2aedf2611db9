/* source_test.c - mount source parsing and key checks (src/source.c). */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "src/source.h"
#include "tests/unit/check.h"

struct ok_case {
	const char *text;
	const char *driver;
	const char *key;
	const char *val;
	const char *prefix;
};

static const struct ok_case ok_cases[] = {
    {"s3://photos", "s3", "bucket", "photos", ""},
    {"s3://photos/", "s3", "bucket", "photos", ""},
    {"s3://photos/2024", "s3", "bucket", "photos", "2024/"},
    {"s3://photos/2024/july/", "s3", "bucket", "photos", "2024/july/"},
    {"s3://my.bucket-1/a", "s3", "bucket", "my.bucket-1", "a/"},
    {"r2://assets/x/y", "r2", "bucket", "assets", "x/y/"},
    {"gs://my_bucket/p", "gcs", "bucket", "my_bucket", "p/"},
    {"gcs://logs", "gcs", "bucket", "logs", ""},
    {"az://container1/deep/er", "azure", "container", "container1", "deep/er/"},
    {"azure://cont", "azure", "container", "cont", ""},
    {"file:///srv/data", "local", "root_dir", "/srv/data", ""},
    {"file:///srv/data/", "local", "root_dir", "/srv/data", ""},
    {"file://localhost/srv/x", "local", "root_dir", "/srv/x", ""},
    {"/var/lib/objects", "local", "root_dir", "/var/lib/objects", ""},
    {"/", "local", "root_dir", "/", ""},
    {"mem://", "memory", NULL, NULL, ""},
    {"S3://caps", "s3", "bucket", "caps", ""},
};

static const char *const bad_cases[] = {
    "",
    "ftp://host/x",
    "s3://",
    "s3:///prefix",
    "s3://ab",
    "s3://Photos",
    "s3://bad_underscore",
    "s3://-dash",
    "s3://bucket/../etc",
    "s3://bucket/a/../../b",
    "s3://bucket/./a",
    "s3://bucket/a//b",
    "s3://bucket/a\nb",
    "az://has.dot",
    "file://host/dir",
    "file://relative",
    "mem://something",
};

static void test_ok(void)
{
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct lexfs_source s;
		int rc = source_parse(c->text, &s, err, sizeof(err));

		CHECK_INT(rc, 0);
		if (rc != 0) {
			fprintf(stderr, "  %s: %s\n", c->text, err);
			source_free(&s);
			continue;
		}
		CHECK_STR(s.driver, c->driver);
		if (c->key) {
			CHECK_STR(s.setting_key, c->key);
			CHECK_STR(s.setting_val, c->val);
		} else {
			CHECK(s.setting_key == NULL);
		}
		CHECK_STR(s.prefix, c->prefix);
		source_free(&s);
	}
}

static void test_relative_dir(void)
{
	char cwd[PATH_MAX], want[PATH_MAX + 16], err[256];
	struct lexfs_source s;

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	snprintf(want, sizeof(want), "%s/some/dir", strcmp(cwd, "/") == 0 ? "" : cwd);
	CHECK_INT(source_parse("some/dir/", &s, err, sizeof(err)), 0);
	CHECK_STR(s.driver, "local");
	CHECK_STR(s.setting_val, want);
	source_free(&s);
}

static void test_bad(void)
{
	char err[512];
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		struct lexfs_source s;
		int rc;

		err[0] = '\0';
		rc = source_parse(bad_cases[i], &s, err, sizeof(err));
		CHECK_INT(rc, -EINVAL);
		if (rc == 0)
			fprintf(stderr, "  accepted: \"%s\"\n", bad_cases[i]);
		CHECK(err[0] != '\0');
		source_free(&s);
	}
	/* The message says what is wrong. */
	{
		struct lexfs_source s;

		source_parse("s3://bucket/../etc", &s, err, sizeof(err));
		CHECK(strstr(err, "traversal") != NULL);
		source_free(&s);
		source_parse("ftp://host/x", &s, err, sizeof(err));
		CHECK(strstr(err, "unknown scheme 'ftp'") != NULL);
		source_free(&s);
	}
}

static void test_keys(void)
{
	char err[256];

	CHECK_INT(source_check_key("a/b.txt", err, sizeof(err)), 0);
	CHECK_INT(source_check_key("file", err, sizeof(err)), 0);
	CHECK_INT(source_check_key("..", err, sizeof(err)), -EINVAL);
	CHECK_INT(source_check_key("../etc/passwd", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "traversal") != NULL);
	CHECK_INT(source_check_key("a/../../b", err, sizeof(err)), -EINVAL);
	CHECK_INT(source_check_key("/etc/passwd", err, sizeof(err)), -EINVAL);
	CHECK_INT(source_check_key("a//b", err, sizeof(err)), -EINVAL);
	CHECK_INT(source_check_key("", err, sizeof(err)), -EINVAL);
	CHECK_INT(source_check_key("a\x01", err, sizeof(err)), -EINVAL);
}

static void test_drivers(void)
{
	char err[512];

	CHECK_INT(source_check_driver("local", NULL, err, sizeof(err)), 0);
	CHECK_INT(source_check_driver("memory", NULL, err, sizeof(err)), 0);
	CHECK_INT(source_check_driver("nosuch", NULL, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, "unknown driver") != NULL);
	/* A cloud driver is built, or it says how this lexfs was configured. */
#ifdef HAVE_DRIVER_AZURE
	CHECK_INT(source_check_driver("azure", NULL, err, sizeof(err)), 0);
#else
	CHECK_INT(source_check_driver("azure", NULL, err, sizeof(err)), -ENOTSUP);
	CHECK(strstr(err, "the azure driver is not built into this lexfs: it was configured "
			  "with --disable-azure") != NULL);
#endif
#ifdef HAVE_DRIVER_S3
	CHECK_INT(source_check_driver("r2", NULL, err, sizeof(err)), 0);
#else
	CHECK_INT(source_check_driver("r2", NULL, err, sizeof(err)), -ENOTSUP);
	CHECK(strstr(err, "--disable-s3") != NULL);
#endif
}

int main(void)
{
	test_ok();
	test_relative_dir();
	test_bad();
	test_keys();
	test_drivers();
	return check_done("source_test");
}
