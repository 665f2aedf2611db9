/* drivers_mt_test.c - memory and local drivers under concurrent use.
 *
 * Several threads write their own keys and overwrite one shared key while others read
 * it: every read must return one whole version (never a mix or a partial object), and
 * every thread's own keys must read back exactly.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/store.h"

#define NTHREADS 6
#define ROUNDS 60
#define VSIZE 20000

static int failures;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			pthread_mutex_lock(&fail_lock);                                            \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
			failures++;                                                                \
			pthread_mutex_unlock(&fail_lock);                                          \
		}                                                                                  \
	} while (0)

struct worker {
	struct store *st;
	int id;
};

/* A version is VSIZE copies of one byte: a mix of versions is easy to see. */
static bool whole_version(const unsigned char *b, size_t n)
{
	if (n != VSIZE)
		return false;
	for (size_t i = 1; i < n; i++)
		if (b[i] != b[0])
			return false;
	return true;
}

static void *work(void *arg)
{
	struct worker *w = arg;
	unsigned char *buf = malloc(VSIZE), *got = malloc(VSIZE + 1);
	char key[64];

	for (int r = 0; r < ROUNDS && buf && got; r++) {
		struct lexfs_src src = { .buf = buf, .fd = -1, .len = VSIZE };
		size_t n = 0;
		int rc;

		memset(buf, 'A' + (w->id * ROUNDS + r) % 26, VSIZE);
		snprintf(key, sizeof(key), "t%d/k%d", w->id, r % 7);
		CHECK(store_upload(w->st, key, &src, NULL, NULL, NULL) == 0);
		rc = store_read(w->st, key, 0, VSIZE + 1, got, &n, NULL);
		CHECK(rc == 0 && n == VSIZE && memcmp(got, buf, VSIZE) == 0);

		CHECK(store_upload(w->st, "shared/obj", &src, NULL, NULL, NULL) == 0);
		rc = store_read(w->st, "shared/obj", 0, VSIZE + 1, got, &n, NULL);
		CHECK(rc == 0 && whole_version(got, n));

		if (r % 10 == 0) {
			struct lexfs_list_page p = { 0 };

			CHECK(store_list(w->st, "", "/", NULL, 1000, &p, NULL) == 0);
			list_page_free(&p);
		}
		if (r % 5 == 4) {
			snprintf(key, sizeof(key), "t%d/k%d", w->id, (r + 3) % 7);
			CHECK(store_remove(w->st, key, NULL) == 0);
		}
	}
	free(buf);
	free(got);
	return NULL;
}

static void run(const char *driver, struct settings *s)
{
	struct store_conf conf = { 0 };
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	struct lexfs_err err;
	struct store *st;

	conf.driver = driver;
	conf.settings = s;
	if (store_create(&conf, &st, &err) != 0) {
		fprintf(stderr, "%s: open failed: %s\n", driver, err.message);
		failures++;
		return;
	}
	for (int i = 0; i < NTHREADS; i++) {
		w[i].st = st;
		w[i].id = i;
		pthread_create(&th[i], NULL, work, &w[i]);
	}
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	store_destroy(st);
}

int main(void)
{
	char base[] = "/tmp/lexfs-mt-test-XXXXXX", cmd[128];
	struct settings s;

	settings_init(&s);
	run("memory", &s);
	settings_free(&s);

	if (!mkdtemp(base))
		return 1;
	settings_init(&s);
	settings_set(&s, "root_dir", base, "test");
	settings_set(&s, "fsync", "false", "test");
	run("local", &s);
	settings_free(&s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", base);

	if (failures) {
		fprintf(stderr, "drivers_mt_test: %d failure(s)\n", failures);
		return 1;
	}
	printf("drivers_mt_test: all passed\n");
	return 0;
}
