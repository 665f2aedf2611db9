/* events_test.c - the event log, hooks (argv split, env + stdin, timeout, queue
 * overflow, untrusted keys) and the webhook (retry after a 500) of src/events.c. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "src/events.h"
#include "src/log.h"
#include "tests/unit/check.h"

static char tmpdir[64];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *data;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	data = calloc(1, (size_t)n + 1);
	if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
		free(data);
		data = NULL;
	}
	fclose(f);
	return data;
}

static void path_in(char *out, size_t len, const char *name)
{
	snprintf(out, len, "%s/%s", tmpdir, name);
}

/* Wait up to 10 s for a file to hold `lines` lines. */
static char *wait_lines(const char *path, int lines)
{
	for (int i = 0; i < 1000; i++) {
		char *s = slurp(path);
		int n = 0;

		for (char *p = s; p && *p; p++)
			n += *p == '\n';
		if (s && n >= lines)
			return s;
		free(s);
		usleep(10000);
	}
	return slurp(path);
}

static void test_split(void)
{
	char **argv;

	CHECK_INT(events_split_command("/bin/echo  a 'b c' \"d \\\"e\\\"\" f\\ g", &argv), 0);
	CHECK_STR(argv[0], "/bin/echo");
	CHECK_STR(argv[1], "a");
	CHECK_STR(argv[2], "b c");
	CHECK_STR(argv[3], "d \"e\"");
	CHECK_STR(argv[4], "f g");
	CHECK(argv[5] == NULL);
	events_argv_free(argv);

	CHECK_INT(events_split_command("x '' $HOME", &argv), 0);
	CHECK_STR(argv[1], "");
	CHECK_STR(argv[2], "$HOME"); /* no expansion */
	events_argv_free(argv);

	CHECK_INT(events_split_command("x 'unterminated", &argv), -EINVAL);
	CHECK(argv == NULL);
	CHECK_INT(events_split_command("   ", &argv), -EINVAL);
}

static void test_json(void)
{
	struct lexfs_event e = {.type = LEXFS_EV_UPLOADED,
				.key = "dir/a \"q\".txt",
				.bucket = "photos",
				.backend = "default",
				.has_size = true,
				.size = 12345678901ULL,
				.etag = "abc",
				.occurred_ms = 1700000000123LL};
	char *s = events_json(&e);
	json_error_t jerr;
	json_t *o = json_loads(s, 0, &jerr);

	CHECK(o != NULL);
	CHECK_STR(json_string_value(json_object_get(o, "event")), "FileUploaded");
	CHECK_STR(json_string_value(json_object_get(o, "key")), "dir/a \"q\".txt");
	CHECK_STR(json_string_value(json_object_get(o, "bucket")), "photos");
	CHECK_STR(json_string_value(json_object_get(o, "backend")), "default");
	CHECK_INT(json_integer_value(json_object_get(o, "size_bytes")), 12345678901LL);
	CHECK_STR(json_string_value(json_object_get(o, "etag")), "abc");
	CHECK_STR(json_string_value(json_object_get(o, "occurred_at")), "2023-11-14T22:13:20.123Z");
	CHECK(strchr(s, '\n') == NULL);
	json_decref(o);
	free(s);

	e.type = LEXFS_EV_DELETED;
	e.has_size = false;
	e.etag = NULL;
	s = events_json(&e);
	o = json_loads(s, 0, &jerr);
	CHECK_STR(json_string_value(json_object_get(o, "event")), "FileDeleted");
	CHECK(json_is_null(json_object_get(o, "size_bytes")));
	CHECK(json_is_null(json_object_get(o, "etag")));
	json_decref(o);
	free(s);
}

/* The log gets every event; on_stored sees Uploaded only, on_deleted Deleted only,
 * each with the JSON on stdin and the LEXFS_* environment; a key full of shell
 * syntax is never executed. */
static void test_log_and_hooks(void)
{
	char logp[300], script[300], hookout[300], pwned[300], stored[700], deleted[700];
	struct events_conf conf = {0};
	struct events *ev = NULL;
	struct events_counters cnt;
	const char *evil = "evil $(touch PWNED) `touch PWNED` ; touch PWNED 'x\".txt";
	struct lexfs_event up = {.type = LEXFS_EV_UPLOADED,
				 .key = "a/b.txt",
				 .bucket = "bkt",
				 .backend = "default",
				 .has_size = true,
				 .size = 5,
				 .etag = "e1"};
	struct lexfs_event down = {.type = LEXFS_EV_DOWNLOADED, .key = "a/b.txt", .bucket = "bkt"};
	struct lexfs_event del = {.type = LEXFS_EV_DELETED, .key = evil, .bucket = "bkt"};
	char *log, *out;
	FILE *f;

	path_in(logp, sizeof(logp), "events.log");
	path_in(script, sizeof(script), "hook.sh");
	path_in(hookout, sizeof(hookout), "hook.out");
	path_in(pwned, sizeof(pwned), "PWNED");
	f = fopen(script, "w");
	fprintf(f, "#!/bin/sh\n"
		   "out=\"$1\"\n"
		   "{ printf 'tag=%%s\\n' \"$2\"; printf 'stdin=%%s\\n' \"$(cat)\";\n"
		   "  printf 'LEXFS_EVENT=%%s\\n' \"$LEXFS_EVENT\"; printf 'LEXFS_KEY=%%s\\n' "
		   "\"$LEXFS_KEY\";\n"
		   "  printf 'LEXFS_BUCKET=%%s\\n' \"$LEXFS_BUCKET\"; printf "
		   "'LEXFS_BACKEND=%%s\\n' \"$LEXFS_BACKEND\";\n"
		   "  printf 'LEXFS_SIZE=%%s\\n' \"$LEXFS_SIZE\"; printf 'LEXFS_ETAG=%%s\\n' "
		   "\"$LEXFS_ETAG\";\n"
		   "  printf 'LEXFS_OCCURRED_AT=%%s\\n' \"$LEXFS_OCCURRED_AT\"; echo END; } >> "
		   "\"$out\"\n");
	fclose(f);
	chmod(script, 0755);
	/* Run from the temp dir so a "touch PWNED" would land where we look. */
	CHECK_INT(chdir(tmpdir), 0);
	snprintf(stored, sizeof(stored), "'%s' '%s' stored", script, hookout);
	snprintf(deleted, sizeof(deleted), "%s %s deleted", script, hookout);
	conf.log_path = logp;
	conf.on_stored = stored;
	conf.on_deleted = deleted;
	conf.hook_timeout_ms = 5000;
	CHECK_INT(events_create(&conf, &ev), 0);
	if (!ev)
		return;
	events_emit(ev, &up);
	events_emit(ev, &down);
	events_emit(ev, &del);

	/* The log is written synchronously, in order. */
	log = slurp(logp);
	CHECK(log != NULL);
	if (log) {
		char *l1 = log, *l2 = strchr(l1, '\n') + 1, *l3 = strchr(l2, '\n') + 1;
		json_t *o;

		const char *want =
		    "{\"event\":\"FileUploaded\",\"key\":\"a/b.txt\",\"bucket\":\"bkt\","
		    "\"backend\":\"default\",\"size_bytes\":5,\"etag\":\"e1\","
		    "\"occurred_at\":\"";

		CHECK(strncmp(l1, want, strlen(want)) == 0);
		CHECK(strncmp(l2, "{\"event\":\"FileDownloaded\"", 25) == 0);
		o = json_loads(l3, JSON_DISABLE_EOF_CHECK, NULL);
		CHECK_STR(json_string_value(json_object_get(o, "key")), evil);
		json_decref(o);
		CHECK(strchr(l3, '\n') && strchr(l3, '\n')[1] == '\0');
	}
	free(log);

	out = wait_lines(hookout, 18);
	CHECK(out != NULL);
	if (out) {
		char expect[512];

		CHECK(strstr(out,
			     "tag=stored\nstdin={\"event\":\"FileUploaded\",\"key\":\"a/b.txt\"") !=
		      NULL);
		CHECK(strstr(out, "LEXFS_EVENT=FileUploaded\nLEXFS_KEY=a/b.txt\nLEXFS_BUCKET=bkt\n"
				  "LEXFS_BACKEND=default\nLEXFS_SIZE=5\nLEXFS_ETAG=e1\n") != NULL);
		CHECK(strstr(out, "FileDownloaded") == NULL); /* no hook for downloads */
		snprintf(expect, sizeof(expect), "tag=deleted\nstdin={\"event\":\"FileDeleted\"");
		CHECK(strstr(out, expect) != NULL);
		snprintf(expect, sizeof(expect), "LEXFS_EVENT=FileDeleted\nLEXFS_KEY=%s\n", evil);
		CHECK(strstr(out, expect) != NULL);
		CHECK(strstr(out, "LEXFS_SIZE=\nLEXFS_ETAG=\n") != NULL);
		CHECK(strstr(out, "LEXFS_OCCURRED_AT=20") != NULL);
	}
	free(out);
	events_destroy(ev);
	CHECK(access(pwned, F_OK) != 0);
	events_counters(NULL, &cnt);
	CHECK_INT(cnt.emitted, 0);
}

/* A hook that sleeps 30 s: emit returns at once, the hook is killed at its timeout,
 * later events still reach the hook, and a full queue drops (counted). */
static void test_slow_hook(void)
{
	struct events_conf conf = {0};
	struct events *ev = NULL;
	struct events_counters cnt;
	struct lexfs_event up = {.type = LEXFS_EV_UPLOADED, .key = "slow"};
	double t0, t1;

	conf.on_stored = "sleep 30";
	conf.hook_timeout_ms = 300;
	conf.queue_max = 2;
	CHECK_INT(events_create(&conf, &ev), 0);
	if (!ev)
		return;
	t0 = now_s();
	for (int i = 0; i < 6; i++)
		events_emit(ev, &up);
	t1 = now_s();
	CHECK(t1 - t0 < 0.2);
	events_counters(ev, &cnt);
	CHECK_INT(cnt.emitted, 6);
	/* The worker took at most one; the queue holds two; the rest were dropped. */
	CHECK(cnt.dropped >= 3);
	/* Wait for the queued hooks to be killed at their timeouts (3 x 300 ms). */
	for (int i = 0; i < 300; i++) {
		events_counters(ev, &cnt);
		if (cnt.hooks_run + cnt.dropped >= 6)
			break;
		usleep(10000);
	}
	t1 = now_s();
	CHECK(t1 - t0 < 2.5);
	CHECK_INT(cnt.hooks_run + cnt.dropped, 6);
	CHECK_INT(cnt.hook_timeouts, cnt.hooks_run);
	CHECK_INT(cnt.hook_failures, cnt.hooks_run);
	events_destroy(ev);

	/* A failing hook is counted, never fatal; a missing program too. */
	conf.on_stored = "sh -c 'echo boom >&2; exit 3'";
	conf.on_deleted = "/nonexistent/program";
	conf.hook_timeout_ms = 5000;
	conf.queue_max = 0;
	CHECK_INT(events_create(&conf, &ev), 0);
	if (!ev)
		return;
	events_emit(ev, &up);
	up.type = LEXFS_EV_DELETED;
	events_emit(ev, &up);
	for (int i = 0; i < 500; i++) {
		events_counters(ev, &cnt);
		if (cnt.hooks_run >= 2)
			break;
		usleep(10000);
	}
	CHECK_INT(cnt.hooks_run, 2);
	CHECK_INT(cnt.hook_failures, 2);
	CHECK_INT(cnt.hook_timeouts, 0);
	events_destroy(ev);

	/* Destroy with a hung hook running returns within the hook timeout. */
	conf.on_stored = "sleep 30";
	conf.on_deleted = NULL;
	conf.hook_timeout_ms = 500;
	up.type = LEXFS_EV_UPLOADED;
	CHECK_INT(events_create(&conf, &ev), 0);
	events_emit(ev, &up);
	events_emit(ev, &up);
	t0 = now_s();
	events_destroy(ev);
	CHECK(now_s() - t0 < 1.5);

	/* Bad configuration is refused at create. */
	conf.on_stored = "x 'open";
	CHECK_INT(events_create(&conf, &ev), -EINVAL);
	CHECK(ev == NULL);
	conf.on_stored = NULL;
	conf.webhook_url = "ftp://127.0.0.1/x";
	CHECK_INT(events_create(&conf, &ev), -EINVAL);
}

/* ---- a one-connection-at-a-time HTTP server: 500 first, then 200 ---- */

struct srv {
	int fd;
	int port;
	int requests;
	char body[2048];
};

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	for (int i = 0; i < 2; i++) {
		char req[8192];
		size_t got = 0;
		int c = accept(s->fd, NULL, NULL);
		char *hdr_end = NULL;
		long clen = 0;
		const char *reply;

		if (c < 0)
			return NULL;
		while (got < sizeof(req) - 1) {
			ssize_t k = read(c, req + got, sizeof(req) - 1 - got);

			if (k <= 0)
				break;
			got += (size_t)k;
			req[got] = '\0';
			hdr_end = strstr(req, "\r\n\r\n");
			if (hdr_end) {
				char *cl = strcasestr(req, "Content-Length:");

				clen = cl ? strtol(cl + 15, NULL, 10) : 0;
				if (got >= (size_t)(hdr_end + 4 - req) + (size_t)clen)
					break;
			}
		}
		s->requests++;
		if (hdr_end && clen > 0 && (size_t)clen < sizeof(s->body)) {
			memcpy(s->body, hdr_end + 4, (size_t)clen);
			s->body[clen] = '\0';
		}
		reply = i == 0
			    ? "HTTP/1.1 500 Oops\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
			    : "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
		if (write(c, reply, strlen(reply)) < 0)
			s->requests += 100;
		close(c);
	}
	return NULL;
}

static void test_webhook(void)
{
	struct srv s = {0};
	struct sockaddr_in a = {0};
	socklen_t alen = sizeof(a);
	pthread_t th;
	char url[128];
	struct events_conf conf = {0};
	struct events *ev = NULL;
	struct events_counters cnt;
	struct lexfs_event e = {.type = LEXFS_EV_DELETED, .key = "w/x", .bucket = "b"};

	s.fd = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_INT(bind(s.fd, (struct sockaddr *)&a, sizeof(a)), 0);
	CHECK_INT(listen(s.fd, 4), 0);
	getsockname(s.fd, (struct sockaddr *)&a, &alen);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook?token=t0p", ntohs(a.sin_port));
	pthread_create(&th, NULL, srv_main, &s);

	conf.webhook_url = url;
	conf.retry_base_ms = 50;
	CHECK_INT(events_create(&conf, &ev), 0);
	events_emit(ev, &e);
	for (int i = 0; i < 500; i++) {
		events_counters(ev, &cnt);
		if (cnt.webhook_sent + cnt.webhook_failures >= 1)
			break;
		usleep(10000);
	}
	CHECK_INT(cnt.webhook_sent, 1);
	CHECK_INT(cnt.webhook_failures, 0);
	events_destroy(ev);
	pthread_join(th, NULL);
	close(s.fd);
	CHECK_INT(s.requests, 2);
	CHECK(strncmp(s.body, "{\"event\":\"FileDeleted\",\"key\":\"w/x\",\"bucket\":\"b\"", 47) ==
	      0);
}

int main(void)
{
	char cmd[300];

	snprintf(tmpdir, sizeof(tmpdir), "/tmp/lexfs-events-test-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	log_open(LOG_SINK_STDERR, NULL, LOG_WARNING);
	test_split();
	test_json();
	test_log_and_hooks();
	test_slow_hook();
	test_webhook();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return check_done("events_test");
}
