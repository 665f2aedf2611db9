/* status_test.c - the progress bar of `lexfs status`: empty, partial, full, a done
 * count past the total (clamped), an unknown total, sizes past 2^59 bytes, and a
 * buffer too small for the bar. */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "src/status.h"
#include "tests/unit/check.h"

int main(void)
{
	char b[64];

	status_bar(0, 100, 10, b, sizeof(b));
	CHECK_STR(b, "[..........]");
	status_bar(47, 100, 10, b, sizeof(b));
	CHECK_STR(b, "[####......]");
	status_bar(100, 100, 10, b, sizeof(b));
	CHECK_STR(b, "[##########]");
	status_bar(250, 100, 10, b, sizeof(b));
	CHECK_STR(b, "[##########]");
	status_bar(5, 0, 4, b, sizeof(b));
	CHECK_STR(b, "[....]");
	status_bar(UINT64_MAX / 2, UINT64_MAX, 10, b, sizeof(b));
	CHECK_STR(b, "[####......]");
	status_bar(1, 2, 30, b, 32); /* needs 33 bytes */
	CHECK_STR(b, "");
	status_bar(1, 2, 30, b, 33);
	CHECK_INT(strlen(b), 32);
	return check_done("status_test");
}
