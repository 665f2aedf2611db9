/* cloud_test.c - sizes the cloud drivers choose before any request: Azure's block
 * size, so that 50,000 blocks cover an object, for whole-object uploads and for
 * the cache's streamed parts (store_part_size on the Azure table). */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include "drivers/azure_int.h"
#include "drivers/store.h"
#include "tests/unit/check.h"

#define MIB (1024ull * 1024ull)
#define GIB (1024 * MIB)
#define TIB (1024 * GIB)
#define MAX_BLOCKS 50000ull
#define MAX_BLOCK (4000 * MIB)

static uint64_t blocks(uint64_t size, uint64_t bs)
{
	return (size + bs - 1) / bs;
}

static void test_block_size_covers_the_object(void)
{
	static const uint64_t sizes[] = {1,
					 200 * MIB,
					 390 * GIB,
					 391 * GIB,
					 1 * TIB,
					 50 * TIB,
					 MAX_BLOCKS * 2048 * MIB + 1,
					 190 * TIB,
					 MAX_BLOCKS * MAX_BLOCK};

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t bs = azure_block_size(sizes[i], 8 * MIB);

		CHECK(bs >= 8 * MIB);
		CHECK(bs <= MAX_BLOCK);
		CHECK(bs % MIB == 0);
		CHECK(blocks(sizes[i], bs) <= MAX_BLOCKS);
	}
	/* small objects keep the configured size; large ones grow only as needed */
	CHECK_INT(azure_block_size(200 * MIB, 8 * MIB), 8 * MIB);
	CHECK_INT(azure_block_size(MAX_BLOCKS * 8 * MIB, 8 * MIB), 8 * MIB);
	CHECK_INT(azure_block_size(MAX_BLOCKS * 8 * MIB + 1, 8 * MIB), 9 * MIB);
	CHECK_INT(azure_block_size(1 * TIB, 8 * MIB), 21 * MIB);
	CHECK_INT(azure_block_size(100, 0), 8 * MIB);
	/* up to the service's limit, and not past it */
	CHECK_INT(azure_block_size(MAX_BLOCKS * MAX_BLOCK, 8 * MIB), MAX_BLOCK);
	CHECK_INT(azure_block_size(MAX_BLOCKS * MAX_BLOCK + 1, 8 * MIB), 0);
	CHECK_INT(azure_block_size(10, 8000 * MIB), MAX_BLOCK);
}

static void test_streamed_parts_cover_the_object(void)
{
	struct settings s;
	struct store_conf conf = {0};
	struct store *st = NULL;
	struct lexfs_err err;
	static const uint64_t hints[] = {100 * MIB, 391 * GIB, 5 * TIB, 190 * TIB};

	/* Opening the driver makes no request: nothing listens on port 9. */
	settings_init(&s);
	settings_set(&s, "container", "c-c-c", "test");
	settings_set(&s, "account", "devstoreaccount1", "test");
	settings_set(&s, "account_key", "a2V5LWZvci10aGUtYmxvY2stc2l6ZS10ZXN0LW9ubHk=", "test");
	settings_set(&s, "endpoint", "http://127.0.0.1:9/devstoreaccount1", "test");
	conf.driver = "azure";
	conf.backend_name = "default";
	conf.settings = &s;
	lexfs_err_clear(&err);
	CHECK_INT(store_create(&conf, &st, &err), 0);
	if (!st) {
		fprintf(stderr, "azure store: %s\n", err.message);
		settings_free(&s);
		return;
	}
	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++) {
		uint64_t part = store_part_size(st, hints[i], 8 * MIB);

		CHECK(part >= 8 * MIB);
		CHECK(blocks(hints[i], part) <= MAX_BLOCKS);
	}
	CHECK_INT(store_part_size(st, 100 * MIB, 8 * MIB), 8 * MIB);
	store_destroy(st);
	settings_free(&s);
}

int main(void)
{
	test_block_size_covers_the_object();
	test_streamed_parts_cover_the_object();
	return check_done("cloud_test");
}
