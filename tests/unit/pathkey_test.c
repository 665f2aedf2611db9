/* pathkey_test.c - path <-> key and listed-name checks (src/pathkey.c). */
#include <stdlib.h>
#include <string.h>

#include "src/pathkey.h"
#include "tests/unit/check.h"

static void check_prefix(const char *in, const char *want)
{
	char *p = pathkey_prefix(in);

	if (want)
		CHECK_STR(p, want);
	else
		CHECK(p == NULL);
	free(p);
}

static void check_key(const char *prefix, const char *path, int dir, const char *want)
{
	char *k = pathkey_key(prefix, path, dir);

	CHECK_STR(k, want);
	free(k);
}

int main(void)
{
	char longname[300];

	check_prefix(NULL, "");
	check_prefix("", "");
	check_prefix("/", "");
	check_prefix("photos", "photos/");
	check_prefix("/photos/2024/", "photos/2024/");
	check_prefix("a//b", "a/b/");
	check_prefix("a/../b", NULL);
	check_prefix("./a", NULL);

	check_key("", "/", 0, "");
	check_key("", "/", 1, "");
	check_key("p/", "/", 1, "p/");
	check_key("", "/a", 0, "a");
	check_key("", "/a/b.txt", 0, "a/b.txt");
	check_key("", "/a/b", 1, "a/b/");
	check_key("p/q/", "/a", 0, "p/q/a");
	check_key("p/q/", "/a/", 1, "p/q/a/");
	check_key("", "/with space/\xc3\xbc", 0, "with space/\xc3\xbc");

	CHECK(pathkey_name_bad("ok", 2) == NULL);
	CHECK(pathkey_name_bad("...", 3) == NULL);
	CHECK(pathkey_name_bad(".hidden", 7) == NULL);
	CHECK(pathkey_name_bad("", 0) != NULL);
	CHECK(pathkey_name_bad(".", 1) != NULL);
	CHECK(pathkey_name_bad("..", 2) != NULL);
	CHECK(pathkey_name_bad("a/b", 3) != NULL);
	memset(longname, 'x', sizeof(longname));
	CHECK(pathkey_name_bad(longname, 255) == NULL);
	CHECK(pathkey_name_bad(longname, 256) != NULL);

	CHECK(pathkey_under("a/", "a/b"));
	CHECK(pathkey_under("", "a"));
	CHECK(!pathkey_under("a/", "a/"));
	CHECK(!pathkey_under("a/", "ab/c"));
	CHECK(!pathkey_under("a/b/", "a/"));
	return check_done("pathkey_test");
}
