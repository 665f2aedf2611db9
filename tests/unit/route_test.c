/* route_test.c - the router of named backends (src/fs_route.c) mirrors every
 * operation of the fs layer. It calls the fs layer's own operations, and libfuse
 * decides what to ask the kernel for by which slots are filled, so an operation
 * added to fs_operations() and not to route_operations() would silently vanish
 * from mounts of named backends. */
#define FUSE_USE_VERSION 31
#include "config.h"

#include <errno.h>
#include <fuse.h>
#include <stdint.h>
#include <string.h>

#include "src/fs.h"
#include "src/fs_route.h"
#include "tests/unit/check.h"

typedef void (*slot_fn)(void);

/* struct fuse_operations holds function pointers only: compare it slot by slot. */
static void test_same_slots(void)
{
	const struct fuse_operations *fs = fs_operations(), *route = route_operations();
	size_t n = sizeof(struct fuse_operations) / sizeof(slot_fn);
	int filled = 0;

	CHECK_INT(sizeof(struct fuse_operations) % sizeof(slot_fn), 0);
	for (size_t i = 0; i < n; i++) {
		slot_fn a, b;

		memcpy(&a, (const char *)fs + i * sizeof(slot_fn), sizeof(a));
		memcpy(&b, (const char *)route + i * sizeof(slot_fn), sizeof(b));
		if ((a == NULL) != (b == NULL))
			fprintf(stderr, "slot %zu: fs %s, route %s\n", i, a ? "set" : "empty",
				b ? "set" : "empty");
		CHECK((a == NULL) == (b == NULL));
		filled += a != NULL;
	}
	CHECK(filled > 20);
	CHECK(route->init != NULL && route->getattr != NULL && route->rename != NULL);
}

static void test_route_add(void)
{
	struct route_conf rc = {.uid = 1, .gid = 2, .umask = 022};
	struct route *r = NULL;
	struct fs *none = NULL;

	CHECK_INT(route_create(&rc, &r), 0);
	if (!r)
		return;
	/* A NULL fs layer is accepted (destroying it is a no-op): names are what is
	 * checked here. */
	CHECK_INT(route_add(r, "photos", &none), 0);
	CHECK_INT(route_add(r, "docs", &none), 0);
	CHECK_INT(route_add(r, "photos", &none), -EEXIST);
	route_destroy(r);
}

int main(void)
{
	test_same_slots();
	test_route_add();
	return check_done("route_test");
}
