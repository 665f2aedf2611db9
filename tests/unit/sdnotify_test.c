/* sdnotify_test.c - sd_notify_send delivers its datagram to $NOTIFY_SOCKET (path and
 * abstract names) and does nothing without it. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "src/sdnotify.h"
#include "tests/unit/check.h"

static int listen_at(const char *name, bool abstract)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	size_t len = strlen(name);

	memcpy(sa.sun_path, name, len);
	if (abstract)
		sa.sun_path[0] = '\0';
	if (bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void expect(int fd, const char *want)
{
	char got[256];
	ssize_t k = recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT);

	CHECK(k > 0);
	if (k > 0) {
		got[k] = '\0';
		CHECK_STR(got, want);
	}
}

int main(void)
{
	char path[64], abs_name[64];
	int fd;

	unsetenv("NOTIFY_SOCKET");
	CHECK_INT(sd_notify_send("READY=1"), 0);

	snprintf(path, sizeof(path), "/tmp/lexfs-notify-%ld", (long)getpid());
	unlink(path);
	fd = listen_at(path, false);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_INT(sd_notify_send("READY=1\nSTATUS=mounted"), 1);
	expect(fd, "READY=1\nSTATUS=mounted");
	close(fd);
	unlink(path);
	CHECK(sd_notify_send("READY=1") < 0); /* nobody listens any more */

	snprintf(abs_name, sizeof(abs_name), "@lexfs-notify-%ld", (long)getpid());
	fd = listen_at(abs_name, true);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", abs_name, 1);
	CHECK_INT(sd_notify_send("STOPPING=1"), 1);
	expect(fd, "STOPPING=1");
	close(fd);

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	CHECK_INT(sd_notify_send("READY=1"), -EINVAL);
	return check_done("sdnotify_test");
}
