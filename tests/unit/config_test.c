/* config_test.c - the configuration merge and its checks (src/conf.c). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/conf.h"
#include "tests/unit/check.h"

static char dir[256];

static void write_file(const char *path, mode_t mode, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	CHECK_INT(write(fd, text, strlen(text)), (long long)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

/* Load with the given file text (NULL: no file), env and -o options ("k=v" list,
 * NULL-terminated). */
static int load(const char *file_text, mode_t mode, char **env, const char *const *o,
		const char *source, struct lexfs_config *cfg, char *err, size_t errlen)
{
	struct settings opts;
	char path[PATH_MAX + 32];
	int rc;

	settings_init(&opts);
	if (file_text != NULL) {
		snprintf(path, sizeof(path), "%s/lexfs.conf", dir);
		write_file(path, mode, file_text);
		settings_set(&opts, "config", path, "-o config");
	} else {
		settings_set(&opts, "config", "none", "-o config");
	}
	for (; o && *o; o++) {
		char k[128], origin[160];
		const char *eq = strchr(*o, '=');

		snprintf(k, sizeof(k), "%.*s", eq ? (int)(eq - *o) : (int)strlen(*o), *o);
		snprintf(origin, sizeof(origin), "-o %s", k);
		settings_set(&opts, k, eq ? eq + 1 : "", origin);
	}
	struct config_input in = {.source = source, .opts = &opts, .env = env};
	err[0] = '\0';
	rc = config_load(&in, cfg, err, errlen);
	settings_free(&opts);
	return rc;
}

static void test_precedence(void)
{
	struct lexfs_config cfg;
	char err[512], origin[PATH_MAX + 16];
	char *env[] = {"HOME=/nonexistent", "LEX_STORAGE__LOCAL__BASE_URL=http://127.0.0.1:9/s",
		       "LEX_STORAGE__CACHE_SIZE=2m", NULL};
	const char *o[] = {"base_url=http://localhost:1/o",
			   "uid=1234",
			   "umask=027",
			   "ro",
			   "_netdev",
			   "nodev",
			   NULL};
	const char *text = "# lexfs test\n"
			   "storage = {\n"
			   "  driver = \"local\";\n"
			   "  cache_size = \"1m\";\n"
			   "  writeback = 5;\n"
			   "  local = {\n"
			   "    root_dir = \"/srv/objects\";\n"
			   "    base_url = \"http://files.local/x\";\n"
			   "  };\n"
			   "};\n";

	CHECK_INT(load(text, 0600, env, o, NULL, &cfg, err, sizeof(err)), 0);
	if (err[0])
		fprintf(stderr, "  %s\n", err);
	CHECK_STR(cfg.driver, "local");
	CHECK_STR(settings_get(&cfg.drv, "root_dir"), "/srv/objects");
	snprintf(origin, sizeof(origin), "%s/lexfs.conf:7", dir);
	CHECK_STR(settings_origin(&cfg.drv, "root_dir"), origin);
	/* -o beats env beats file */
	CHECK_STR(settings_get(&cfg.drv, "base_url"), "http://localhost:1/o");
	CHECK_STR(settings_origin(&cfg.drv, "base_url"), "-o base_url");
	CHECK_INT(cfg.cache_size, 2 << 20);
	CHECK_INT(cfg.writeback_s, 5);
	CHECK_INT(cfg.uid, 1234);
	CHECK_INT(cfg.umask, 027);
	CHECK(cfg.read_only);
	CHECK_STR(cfg.fuse_opts, "nodev");
	CHECK_STR(cfg.prefix, "");
	CHECK_INT(cfg.max_file_size, 0);
	CHECK_INT(cfg.presign_expiry_s, 3600);
	config_free(&cfg);
}

static void test_env_nesting(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {"LEX_STORAGE__DRIVER=memory", "LEX_STORAGE__MEMORY__FOO=bar",
		       "LEX_STORAGE__MAX_FILE_SIZE_MB=3", NULL};

	CHECK_INT(load(NULL, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.driver, "memory");
	CHECK_STR(settings_get(&cfg.drv, "foo"), "bar");
	CHECK_STR(settings_origin(&cfg.drv, "foo"), "env LEX_STORAGE__MEMORY__FOO");
	CHECK_INT(cfg.max_file_size, 3 << 20);
	config_free(&cfg);

	{
		char *bad[] = {"LEX_STORAGE__A__B__C=1", NULL};

		CHECK_INT(load(NULL, 0600, bad, NULL, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "LEX_STORAGE__A__B__C") != NULL);
		config_free(&cfg);
	}
	{
		char *bad[] = {"LEX_STORAGE__CACHE_SIZ=1", NULL};

		CHECK_INT(load(NULL, 0600, bad, NULL, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "unknown key storage.cache_siz") != NULL);
		CHECK(strstr(err, "env LEX_STORAGE__CACHE_SIZ") != NULL);
		config_free(&cfg);
	}
}

static void test_source(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {NULL};
	const char *text = "storage = { driver = \"local\"; memory = { x = 1; }; };\n";

	/* The source beats the file's driver. */
	CHECK_INT(load(text, 0600, env, NULL, "mem://", &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.driver, "memory");
	CHECK_STR(settings_get(&cfg.drv, "x"), "1");
	config_free(&cfg);

	CHECK_INT(load(NULL, 0600, env, NULL, "/srv/a", &cfg, err, sizeof(err)), 0);
	CHECK_STR(settings_get(&cfg.drv, "root_dir"), "/srv/a");
	CHECK_STR(settings_origin(&cfg.drv, "root_dir"), "source /srv/a");
	config_free(&cfg);

	CHECK_INT(load(NULL, 0600, env, NULL, "ftp://x", &cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unknown scheme") != NULL);
	config_free(&cfg);

	{
		const char *o[] = {"prefix=../up", NULL};

		CHECK_INT(load(NULL, 0600, env, o, "mem://", &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "prefix") != NULL);
		config_free(&cfg);
	}
	{
		const char *o[] = {"prefix=a/b", NULL};

		CHECK_INT(load(NULL, 0600, env, o, "mem://", &cfg, err, sizeof(err)), 0);
		CHECK_STR(cfg.prefix, "a/b/");
		config_free(&cfg);
	}
}

static void test_errors(void)
{
	struct lexfs_config cfg;
	char err[512], want[PATH_MAX + 16];
	char *env[] = {NULL};

	CHECK_INT(load("storage = { cache_sise = \"1m\"; };\n", 0600, env, NULL, NULL, &cfg, err,
		       sizeof(err)),
		  -EINVAL);
	snprintf(want, sizeof(want), "(from %s/lexfs.conf:1)", dir);
	CHECK(strstr(err, "unknown key storage.cache_sise") != NULL);
	CHECK(strstr(err, want) != NULL);
	config_free(&cfg);

	CHECK_INT(load("storage = {\n cache_size = \"lots\";\n};\n", 0600, env, NULL, NULL, &cfg,
		       err, sizeof(err)),
		  -EINVAL);
	snprintf(want, sizeof(want), "%s/lexfs.conf:2", dir);
	CHECK(strstr(err, "cache_size") != NULL);
	CHECK(strstr(err, want) != NULL);
	config_free(&cfg);

	CHECK_INT(
	    load("storage = {\n driver = ;\n};\n", 0600, env, NULL, NULL, &cfg, err, sizeof(err)),
	    -EINVAL); /* a syntax error names file and line */
	CHECK(strstr(err, "lexfs.conf:2") != NULL);
	config_free(&cfg);

	CHECK_INT(load("mount = { uid = 1; };\n", 0600, env, NULL, NULL, &cfg, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "unknown key 'mount'") != NULL);
	config_free(&cfg);

	{
		const char *o[] = {"driver=nosuch", NULL};

		CHECK(load(NULL, 0600, env, o, NULL, &cfg, err, sizeof(err)) < 0);
		CHECK(strstr(err, "unknown driver") != NULL);
		CHECK(strstr(err, "-o driver") != NULL);
		config_free(&cfg);
	}
	{
		const char *o[] = {"umask=999", NULL};

		CHECK_INT(load(NULL, 0600, env, o, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "umask") != NULL);
		config_free(&cfg);
	}
	{
		const char *o[] = {"entry_timeout=-1", NULL};

		CHECK_INT(load(NULL, 0600, env, o, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "entry_timeout (from -o entry_timeout)") != NULL);
		config_free(&cfg);
	}
	{
		const char *o[] = {"trace=http:nonsense", NULL};

		CHECK_INT(load(NULL, 0600, env, o, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "trace") != NULL);
		config_free(&cfg);
	}
	{
		const char *o[] = {"config=/nonexistent/lexfs.conf", NULL};
		struct settings opts;
		struct config_input in = {.opts = &opts, .env = env};

		settings_init(&opts);
		settings_set(&opts, "config", o[0] + 7, "-o config");
		CHECK_INT(config_load(&in, &cfg, err, sizeof(err)), -ENOENT);
		CHECK(strstr(err, "/nonexistent/lexfs.conf") != NULL);
		settings_free(&opts);
		config_free(&cfg);
	}
}

static void test_unused(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {NULL};
	const char *o[] = {"bukket=x", NULL};

	CHECK_INT(load(NULL, 0600, env, o, "mem://", &cfg, err, sizeof(err)), 0);
	CHECK_INT(config_check_unused(&cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "unknown option bukket (from -o bukket)") != NULL);
	(void)settings_get(&cfg.drv, "bukket");
	CHECK_INT(config_check_unused(&cfg, err, sizeof(err)), 0);
	config_free(&cfg);
}

static void test_secrets(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {NULL};
	const char *text = "storage = {\n"
			   "  driver = \"local\";\n"
			   "  local = {\n"
			   "    root_dir = \"/srv/x\";\n"
			   "    signing_key = \"0123456789abcdef-real-secret\";\n"
			   "  };\n"
			   "};\n";

	CHECK(settings_key_is_secret("secret_access_key"));
	CHECK(settings_key_is_secret("account_key"));
	CHECK(settings_key_is_secret("sas_token"));
	CHECK(settings_key_is_secret("signing_key"));
	CHECK(settings_key_is_secret("connection_string"));
	CHECK(settings_key_is_secret("password"));
	CHECK(settings_key_is_secret("key"));
	CHECK(!settings_key_is_secret("access_key_id"));
	CHECK(!settings_key_is_secret("kms_key_id"));
	CHECK(!settings_key_is_secret("credentials_file"));
	CHECK(!settings_key_is_secret("key_file"));
	CHECK(!settings_key_is_secret("bucket"));
	CHECK(!settings_key_is_secret("root_dir"));

	/* Readable by others: refused, and the secret is not in the message. */
	CHECK_INT(load(text, 0644, env, NULL, NULL, &cfg, err, sizeof(err)), -EACCES);
	CHECK(strstr(err, "chmod 600") != NULL);
	CHECK(strstr(err, "storage.local.signing_key, line 5") != NULL);
	CHECK(strstr(err, "real-secret") == NULL);
	config_free(&cfg);
	CHECK_INT(load(text, 0640, env, NULL, NULL, &cfg, err, sizeof(err)), -EACCES);
	config_free(&cfg);
	CHECK_INT(load(text, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), 0);
	CHECK(cfg.drv.n > 0);
	CHECK_STR(settings_display(&cfg.drv, "signing_key"), "(hidden)");
	CHECK_STR(settings_display(&cfg.drv, "root_dir"), "/srv/x");
	config_free(&cfg);
	/* No secret: any mode is fine. */
	CHECK_INT(load("storage = { driver = \"memory\"; };\n", 0644, env, NULL, NULL, &cfg, err,
		       sizeof(err)),
		  0);
	config_free(&cfg);

	/* Placeholders: refused off loopback, accepted on it. */
	{
		const char *o[] = {"signing_key=changeme", "base_url=https://files.example.com/x",
				   NULL};

		CHECK_INT(load(NULL, 0600, env, o, "/srv/y", &cfg, err, sizeof(err)), -EACCES);
		CHECK(strstr(err, "signing_key (from -o signing_key)") != NULL);
		CHECK(strstr(err, "placeholder") != NULL);
		CHECK(strstr(err, "changeme") == NULL);
		config_free(&cfg);
	}
	{
		const char *o[] = {"signing_key=MinioAdmin", "base_url=http://127.0.0.1:8000/x",
				   NULL};

		CHECK_INT(load(NULL, 0600, env, o, "/srv/y", &cfg, err, sizeof(err)), 0);
		config_free(&cfg);
	}
	CHECK(config_is_placeholder_secret("changeme"));
	CHECK(config_is_placeholder_secret("MINIOADMIN"));
	CHECK(config_is_placeholder_secret("password"));
	CHECK(config_is_placeholder_secret(""));
	CHECK(!config_is_placeholder_secret("q8Vd2kL0pWm3xZ"));
	CHECK(config_is_loopback("http://127.0.0.1:9000"));
	CHECK(config_is_loopback("https://localhost/"));
	CHECK(config_is_loopback("http://[::1]:80/x"));
	CHECK(config_is_loopback("127.0.0.5"));
	CHECK(config_is_loopback("http://user@localhost:1"));
	CHECK(!config_is_loopback("https://s3.amazonaws.com"));
	CHECK(!config_is_loopback("http://127.0.0.1.evil.com/"));
	CHECK(!config_is_loopback("http://localhost.evil.com/"));
	CHECK(!config_is_loopback("http://evil.com/?localhost"));
}

static void test_default_file(void)
{
	struct lexfs_config cfg;
	struct settings opts;
	char err[512], home[PATH_MAX + 8], path[PATH_MAX + 64], henv[PATH_MAX + 16];
	char *env[] = {henv, NULL};

	snprintf(home, sizeof(home), "%s/home", dir);
	snprintf(path, sizeof(path), "%s/.config", home);
	mkdir(home, 0700);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/.config/lexfs", home);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/.config/lexfs/lexfs.conf", home);
	write_file(path, 0600, "storage = { driver = \"memory\"; };\n");
	snprintf(henv, sizeof(henv), "HOME=%s", home);
	settings_init(&opts);
	struct config_input in = {.opts = &opts, .env = env};
	CHECK_INT(config_load(&in, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.driver, "memory");
	CHECK_STR(cfg.file, path);
	config_free(&cfg);
	settings_free(&opts);
	unlink(path);
}

static void test_paths_absolute(void)
{
	struct lexfs_config cfg;
	char err[512], cwd[PATH_MAX], want[PATH_MAX + 16];
	char *env[] = {NULL};
	const char *o[] = {"cache_dir=rel/cache", NULL};

	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT(load(NULL, 0600, env, o, NULL, &cfg, err, sizeof(err)), 0);
	CHECK_STR(cfg.driver, "local");
	snprintf(want, sizeof(want), "%s/storage", cwd);
	CHECK_STR(settings_get(&cfg.drv, "root_dir"), want);
	snprintf(want, sizeof(want), "%s/rel/cache", cwd);
	CHECK_STR(cfg.cache_dir, want);
	config_free(&cfg);
}

/* storage.backends: names, drivers, prefixes and groups, in file order. */
static void test_backends(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {"HOME=/nonexistent", NULL};
	const char *o[] = {"writeback=3", NULL};
	const char *text = "storage = {\n"
			   "  cache_size = \"8m\";\n"
			   "  backends = (\n"
			   "    { name = \"photos\"; driver = \"local\"; prefix = \"2024/jan\";\n"
			   "      local = { root_dir = \"/srv/photos\"; }; },\n"
			   "    { name = \"scratch-1\"; driver = \"memory\"; }\n"
			   "  );\n"
			   "  events = { log = \"/var/log/lexfs.events\"; };\n"
			   "};\n";

	CHECK_INT(load(text, 0644, env, o, NULL, &cfg, err, sizeof(err)), 0);
	CHECK_STR(err, "");
	CHECK_INT(cfg.nbackends, 2);
	CHECK(cfg.driver == NULL);
	CHECK_STR(cfg.prefix, "");
	CHECK_INT(cfg.cache_size, 8 << 20);
	CHECK_INT(cfg.writeback_s, 3);
	CHECK_STR(cfg.events_log, "/var/log/lexfs.events");
	if (cfg.nbackends == 2) {
		char want[PATH_MAX + 32];

		CHECK_STR(cfg.backends[0].name, "photos");
		CHECK_STR(cfg.backends[0].driver, "local");
		CHECK_STR(cfg.backends[0].prefix, "2024/jan/");
		CHECK_STR(settings_display(&cfg.backends[0].drv, "root_dir"), "/srv/photos");
		snprintf(want, sizeof(want), "%s/lexfs.conf:5", dir);
		CHECK_STR(settings_origin(&cfg.backends[0].drv, "root_dir"), want);
		snprintf(want, sizeof(want), "%s/lexfs.conf:4", dir);
		CHECK_STR(cfg.backends[0].origin, want);
		CHECK_STR(cfg.backends[1].name, "scratch-1");
		CHECK_STR(cfg.backends[1].driver, "memory");
		CHECK_STR(cfg.backends[1].prefix, "");
		CHECK_INT(cfg.backends[1].drv.n, 0);
		/* The driver reads what it knows; the rest is reported with the backend. */
		CHECK_INT(config_check_backend_unused(&cfg.backends[0], err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "unknown option root_dir") != NULL);
		CHECK(strstr(err, "the local driver of backend photos") != NULL);
		(void)settings_get(&cfg.backends[0].drv, "root_dir");
		CHECK_INT(config_check_backend_unused(&cfg.backends[0], err, sizeof(err)), 0);
	}
	config_free(&cfg);

	CHECK(config_backend_name_ok("a"));
	CHECK(config_backend_name_ok("photos_2024-raw"));
	CHECK(config_backend_name_ok("9lives"));
	CHECK(!config_backend_name_ok(""));
	CHECK(!config_backend_name_ok("-x"));
	CHECK(!config_backend_name_ok("_x"));
	CHECK(!config_backend_name_ok("Photos"));
	CHECK(!config_backend_name_ok("a.b"));
	CHECK(!config_backend_name_ok("a/b"));
	CHECK(!config_backend_name_ok("a b"));
	CHECK(config_backend_name_ok(
	    "a23456789012345678901234567890123456789012345678901234567890123"));
	CHECK(!config_backend_name_ok(
	    "a234567890123456789012345678901234567890123456789012345678901234"));
}

/* A bad storage.backends fails with a message naming file:line and what to do. */
static void backends_error(const char *body, int want_rc, const char *want_line,
			   const char *want_text)
{
	struct lexfs_config cfg;
	char err[512], text[2048], want[PATH_MAX + 16];
	char *env[] = {NULL};

	snprintf(text, sizeof(text), "storage = {\n  backends = (\n%s  );\n};\n", body);
	CHECK_INT(load(text, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), want_rc);
	if (want_line != NULL) {
		snprintf(want, sizeof(want), "%s/lexfs.conf:%s", dir, want_line);
		CHECK(strstr(err, want) != NULL);
	}
	CHECK(strstr(err, want_text) != NULL);
	if (strstr(err, want_text) == NULL || (want_line && strstr(err, want) == NULL))
		fprintf(stderr, "  message was: %s\n", err);
	config_free(&cfg);
}

static void test_backends_errors(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {NULL};

	backends_error("    { name = \"a\"; driver = \"memory\"; },\n"
		       "    { name = \"a\"; driver = \"memory\"; }\n",
		       -EINVAL, "4", "backend name 'a' is used twice (first at ");
	backends_error("    { name = \"Photos\"; driver = \"memory\"; }\n", -EINVAL, "3",
		       "backend name 'Photos' is not a valid name");
	backends_error("    { name = \"a/b\"; driver = \"memory\"; }\n", -EINVAL, "3",
		       "not a valid name");
	backends_error("    { name = \"a\"; driver = \"nosuch\"; }\n", -ENOENT, "3",
		       "backend a: unknown driver");
	backends_error("    { name = \"a\"; }\n", -EINVAL, "3", "backend a has no driver");
	backends_error("    { driver = \"memory\"; }\n", -EINVAL, "3",
		       "storage.backends entry 1 has no name");
	backends_error("    { name = \"a\"; driver = \"memory\";\n      cache_size = \"1m\"; }\n",
		       -EINVAL, "4", "unknown key 'cache_size' in storage.backends entry 1");
	backends_error(
	    "    { name = \"a\"; driver = \"memory\"; local = { root_dir = \"/x\"; }; }\n", -EINVAL,
	    "3", "group 'local' of backend a does not belong to its driver memory");
	backends_error("    { name = \"a\"; driver = \"local\"; local = {}; memory = {}; }\n",
		       -EINVAL, "3", "two driver groups");
	backends_error("    { name = \"a\"; driver = \"local\"; }\n", -EINVAL, "3",
		       "needs local = { root_dir");
	backends_error("    { name = \"a\"; driver = \"memory\"; prefix = \"x/../y\"; }\n", -EINVAL,
		       "3", "backend a: prefix (from ");
	backends_error("    { name = \"a\"; driver = \"memory\"; name = \"b\"; }\n", -EINVAL, "3",
		       "");
	/* libconfig gives a scalar list element the line after it */
	backends_error("    \"memory\"\n", -EINVAL, NULL, "must be a group");
	backends_error("", -EINVAL, "2", "storage.backends is empty");

	CHECK_INT(load("storage = { backends = { name = \"a\"; }; };\n", 0600, env, NULL, NULL,
		       &cfg, err, sizeof(err)),
		  -EINVAL);
	CHECK(strstr(err, "must be a list of groups") != NULL);
	config_free(&cfg);

	/* What configures the single backend is refused beside the named ones. */
	{
		const char *text = "storage = {\n"
				   "  driver = \"s3\";\n"
				   "  backends = ( { name = \"a\"; driver = \"memory\"; } );\n"
				   "};\n";

		CHECK_INT(load(text, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "storage.driver (from ") != NULL);
		CHECK(strstr(err, "exclude each other") != NULL);
		config_free(&cfg);
	}
	{
		const char *text = "storage = {\n"
				   "  s3 = { bucket = \"x\"; };\n"
				   "  backends = ( { name = \"a\"; driver = \"memory\"; } );\n"
				   "};\n";

		CHECK_INT(load(text, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "storage.s3.bucket (from ") != NULL);
		CHECK(strstr(err, "each backend's group") != NULL);
		config_free(&cfg);
	}
	{
		const char *text =
		    "storage = { backends = ( { name = \"a\"; driver = \"memory\"; } ); };\n";
		char *env2[] = {"LEX_STORAGE__S3__BUCKET=x", NULL};
		const char *o[] = {"bucket=y", NULL};

		CHECK_INT(load(text, 0600, env2, NULL, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "env LEX_STORAGE__S3__BUCKET") != NULL);
		config_free(&cfg);
		CHECK_INT(load(text, 0600, env, o, NULL, &cfg, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "unknown option bucket (from -o bucket)") != NULL);
		config_free(&cfg);
	}
}

/* The environment and -o cannot spell a list: backends come from the file. */
static void test_backends_only_in_file(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {"LEX_STORAGE__BACKENDS=a", NULL}, *none[] = {NULL};
	const char *o[] = {"backends=a", NULL};

	CHECK_INT(load(NULL, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "env LEX_STORAGE__BACKENDS: named backends are set only in the "
			  "config file") != NULL);
	config_free(&cfg);
	CHECK_INT(load(NULL, 0600, none, o, NULL, &cfg, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "-o backends: named backends") != NULL);
	config_free(&cfg);
}

/* A mount source wins over storage.backends; the backends are checked anyway. */
static void test_backends_source(void)
{
	struct lexfs_config cfg;
	char err[512], want[PATH_MAX + 16];
	char *env[] = {NULL};
	const char *text = "storage = {\n"
			   "  backends = ( { name = \"a\"; driver = \"memory\"; } );\n"
			   "};\n";

	CHECK_INT(load(text, 0600, env, NULL, "mem://", &cfg, err, sizeof(err)), 0);
	CHECK_INT(cfg.nbackends, 0);
	CHECK_STR(cfg.driver, "memory");
	snprintf(want, sizeof(want), "%s/lexfs.conf:2", dir);
	CHECK_STR(cfg.backends_ignored, want);
	config_free(&cfg);
	CHECK(load("storage = { backends = ( { name = \"a\"; driver = \"nosuch\"; } ); };\n", 0600,
		   env, NULL, "mem://", &cfg, err, sizeof(err)) < 0);
	CHECK(strstr(err, "backend a") != NULL);
	config_free(&cfg);
}

/* A backend's secrets follow the single-backend rules. */
static void test_backends_secrets(void)
{
	struct lexfs_config cfg;
	char err[512];
	char *env[] = {NULL};
	const char *text =
	    "storage = {\n"
	    "  backends = (\n"
	    "    { name = \"a\"; driver = \"local\";\n"
	    "      local = { root_dir = \"/srv/a\"; signing_key = \"9f8e7d6c-real-secret\"; }; }\n"
	    "  );\n"
	    "};\n";
	const char *placeholder =
	    "storage = {\n"
	    "  backends = (\n"
	    "    { name = \"a\"; driver = \"local\";\n"
	    "      local = { root_dir = \"/srv/a\"; signing_key = \"changeme\";\n"
	    "                base_url = \"https://files.example.com/\"; }; }\n"
	    "  );\n"
	    "};\n";

	CHECK_INT(load(text, 0644, env, NULL, NULL, &cfg, err, sizeof(err)), -EACCES);
	CHECK(strstr(err, "storage.backends entry 1: local.signing_key, line 4") != NULL);
	CHECK(strstr(err, "chmod 600") != NULL);
	CHECK(strstr(err, "real-secret") == NULL);
	config_free(&cfg);
	CHECK_INT(load(text, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), 0);
	if (cfg.nbackends == 1)
		CHECK_STR(settings_display(&cfg.backends[0].drv, "signing_key"), "(hidden)");
	config_free(&cfg);
	CHECK_INT(load(placeholder, 0600, env, NULL, NULL, &cfg, err, sizeof(err)), -EACCES);
	CHECK(strstr(err, "placeholder") != NULL);
	CHECK(strstr(err, "lexfs.conf:4") != NULL);
	config_free(&cfg);
}

int main(void)
{
	char path[PATH_MAX + 16];

	snprintf(dir, sizeof(dir), "/tmp/lexfs-config-test-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_precedence();
	test_env_nesting();
	test_source();
	test_errors();
	test_unused();
	test_secrets();
	test_default_file();
	test_paths_absolute();
	test_backends();
	test_backends_errors();
	test_backends_only_in_file();
	test_backends_source();
	test_backends_secrets();
	snprintf(path, sizeof(path), "%s/lexfs.conf", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/home/.config/lexfs", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/home/.config", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/home", dir);
	rmdir(path);
	rmdir(dir);
	return check_done("config_test");
}
