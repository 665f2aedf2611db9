/* metrics_test.c - the Prometheus exposition of src/metrics.c counts what a workload
 * on the memory driver did, every line is valid text format, and the loopback
 * server answers GET /metrics only and refuses non-loopback addresses. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "drivers/store.h"
#include "src/log.h"
#include "src/metrics.h"
#include "src/opsrt.h"
#include "tests/unit/check.h"

/* Every line is a comment (# HELP / # TYPE) or a sample: name{labels} value. */
static int count_bad_lines(const char *text)
{
	regex_t sample, comment;
	int bad = 0;
	const char *p = text;

	regcomp(&sample,
		"^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\""
		"(,[a-zA-Z_][a-zA-Z0-9_]*=\"([^\"\\\\]|\\\\.)*\")*\\})? "
		"-?[0-9]+(\\.[0-9]+)?(e[-+]?[0-9]+)?$",
		REG_EXTENDED | REG_NOSUB);
	regcomp(&comment,
		"^# (HELP [a-zA-Z_:][a-zA-Z0-9_:]* .*|TYPE [a-zA-Z_:][a-zA-Z0-9_:]* "
		"(counter|gauge|summary|histogram|untyped))$",
		REG_EXTENDED | REG_NOSUB);
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		char line[1024];

		if (!nl || len >= sizeof(line)) {
			bad++; /* text must end with a newline; lines stay short */
			break;
		}
		memcpy(line, p, len);
		line[len] = '\0';
		if (regexec(&sample, line, 0, NULL, 0) != 0 &&
		    regexec(&comment, line, 0, NULL, 0) != 0) {
			fprintf(stderr, "bad line: %s\n", line);
			bad++;
		}
		p = nl + 1;
	}
	regfree(&sample);
	regfree(&comment);
	return bad;
}

static void test_render(void)
{
	struct settings s;
	struct store_conf sc = {.driver = "memory", .backend_name = "photos", .settings = &s};
	struct store *st = NULL;
	struct lexfs_src src = {.buf = "hello world", .len = 11};
	struct lexfs_objinfo oi = {0};
	struct metrics_backend b;
	struct metrics_values mv = {0};
	char buf[64];
	size_t got;
	char *text;

	settings_init(&s);
	CHECK_INT(store_create(&sc, &st, NULL), 0);
	if (!st)
		return;
	for (int i = 0; i < 3; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		CHECK_INT(store_upload(st, key, &src, NULL, NULL, NULL), 0);
	}
	CHECK_INT(store_read(st, "k0", 0, sizeof(buf), buf, &got, NULL), 0);
	CHECK_INT(store_read(st, "k1", 6, 5, buf, &got, NULL), 0);
	CHECK_INT(store_info(st, "missing", &oi, NULL), -ENOENT);

	metrics_backend_from_store(&b, st);
	CHECK_INT(metrics_values_add(&mv, "lexfs_cache_dirty_bytes", METRICS_GAUGE, "Dirty bytes",
				     NULL, NULL, 4096),
		  0);
	CHECK_INT(metrics_values_add(&mv, "lexfs_events_dropped_total", METRICS_COUNTER,
				     "Events dropped", "backend", "pho\"tos", 2),
		  0);
	CHECK_INT(metrics_add_json(&mv, "cache",
				   "{\"hits\":7,\"misses\":3,\"ratio\":0.7,"
				   "\"name\":\"x\",\"store\":{\"upload\":{\"calls\":3}}}"),
		  0);
	CHECK_INT(metrics_add_json(&mv, "cache", "[1]"), -EINVAL);
	text = metrics_render(&b, 1, &mv);
	CHECK(text != NULL);
	if (text) {
		CHECK_INT(count_bad_lines(text), 0);
		CHECK(strstr(text,
			     "lexfs_store_requests_total{backend=\"photos\",driver=\"memory\","
			     "op=\"upload\"} 3\n") != NULL);
		CHECK(strstr(text,
			     "lexfs_store_requests_total{backend=\"photos\",driver=\"memory\","
			     "op=\"download\"} 2\n") != NULL);
		CHECK(strstr(text,
			     "lexfs_store_requests_total{backend=\"photos\",driver=\"memory\","
			     "op=\"info\"} 1\n") != NULL);
		CHECK(strstr(text,
			     "lexfs_store_bytes_up_total{backend=\"photos\",driver=\"memory\"}"
			     " 33\n") != NULL);
		CHECK(strstr(text,
			     "lexfs_store_bytes_down_total{backend=\"photos\",driver=\"memory\"}"
			     " 16\n") != NULL);
		CHECK(strstr(text, "lexfs_store_request_duration_seconds_count{backend=\"photos\","
				   "driver=\"memory\",op=\"upload\"} 3\n") != NULL);
		CHECK(strstr(text, "# TYPE lexfs_store_request_duration_seconds summary\n") !=
		      NULL);
		CHECK(strstr(
			  text,
			  "# TYPE lexfs_cache_dirty_bytes gauge\nlexfs_cache_dirty_bytes 4096\n") !=
		      NULL);
		CHECK(strstr(text, "lexfs_events_dropped_total{backend=\"pho\\\"tos\"} 2\n") !=
		      NULL);
		CHECK(strstr(text, "lexfs_cache_hits_total 7\n") != NULL);
		CHECK(strstr(text, "lexfs_cache_misses_total 3\n") != NULL);
		CHECK(strstr(text, "lexfs_cache_ratio 0.7\n") != NULL);
		CHECK(strstr(text, "lexfs_cache_store_upload_calls_total 3\n") != NULL);
		CHECK(strstr(text, "lexfs_cache_name") == NULL);
	}
	free(text);
	metrics_values_free(&mv);
	store_destroy(st);
	settings_free(&s);
	CHECK_INT(count_bad_lines("x{a=\"b\"} 1\n"), 0);
	CHECK_INT(count_bad_lines("x{a=b} 1\n"), 1);
	CHECK_INT(count_bad_lines("1x 1\n"), 1);
}

static char *text_for_server(void *arg)
{
	return strdup((const char *)arg);
}

/* One HTTP request on a fresh connection; the whole response. */
static char *http(int port, const char *request)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	static char resp[8192];
	size_t got = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		close(fd);
		return NULL;
	}
	if (write(fd, request, strlen(request)) < 0) {
		close(fd);
		return NULL;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t k = read(fd, resp + got, sizeof(resp) - 1 - got);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	resp[got] = '\0';
	close(fd);
	return resp;
}

static void test_server(void)
{
	struct metrics_server *srv = NULL;
	char *r;
	int port;

	CHECK_INT(metrics_server_start("0.0.0.0:0", text_for_server, "x 1\n", &srv), -EPERM);
	CHECK_INT(metrics_server_start("10.1.2.3:9100", text_for_server, "x 1\n", &srv), -EPERM);
	CHECK_INT(metrics_server_start("[::]:0", text_for_server, "x 1\n", &srv), -EPERM);
	CHECK_INT(metrics_server_start("example.org:80", text_for_server, "x 1\n", &srv), -EPERM);
	CHECK_INT(metrics_server_start("127.0.0.1", text_for_server, "x 1\n", &srv), -EINVAL);
	CHECK_INT(metrics_server_start("127.0.0.1:99999", text_for_server, "x 1\n", &srv), -EINVAL);
	CHECK(srv == NULL);
	CHECK_INT(metrics_server_start("127.0.0.1:0", text_for_server, "lexfs_up 1\n", &srv), 0);
	if (!srv)
		return;
	port = metrics_server_port(srv);
	CHECK(port > 0);
	r = http(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
	CHECK(r && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
	CHECK(r && strstr(r, "Content-Type: text/plain; version=0.0.4") != NULL);
	CHECK(r && strstr(r, "\r\n\r\nlexfs_up 1\n") != NULL);
	r = http(port, "GET /other HTTP/1.1\r\n\r\n");
	CHECK(r && strncmp(r, "HTTP/1.1 404", 12) == 0);
	r = http(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
	CHECK(r && strncmp(r, "HTTP/1.1 405", 12) == 0);
	r = http(port, "garbage");
	CHECK(r && strncmp(r, "HTTP/1.1 400", 12) == 0);
	metrics_server_stop(srv);
	CHECK(http(port, "GET /metrics HTTP/1.1\r\n\r\n") == NULL);
}

/* Two backends in one exposition (a mount of named backends): each family is
 * declared once, every sample says its backend. */
static void test_render_two_backends(void)
{
	static const char *const names[] = {"photos", "docs"};
	struct metrics_backend b[2];
	struct metrics_values mv = {0};
	struct store *st[2] = {NULL, NULL};
	struct settings s;
	char *text;

	settings_init(&s);
	for (int i = 0; i < 2; i++) {
		struct store_conf sc = {
		    .driver = "memory", .backend_name = names[i], .settings = &s};

		CHECK_INT(store_create(&sc, &st[i], NULL), 0);
		if (!st[i])
			goto out;
		metrics_backend_from_store(&b[i], st[i]);
		CHECK_INT(metrics_add_json_label(&mv, "cache", "{\"hits\":1,\"dirty_bytes\":5}",
						 "backend", names[i]),
			  0);
	}
	text = metrics_render(b, 2, &mv);
	CHECK(text != NULL);
	if (text) {
		const char *p = text;
		int types = 0;

		CHECK_INT(count_bad_lines(text), 0);
		while ((p = strstr(p, "# TYPE lexfs_cache_hits_total ")) != NULL) {
			types++;
			p++;
		}
		CHECK_INT(types, 1);
		CHECK(strstr(text, "lexfs_cache_hits_total{backend=\"photos\"} 1\n"
				   "lexfs_cache_hits_total{backend=\"docs\"} 1\n") != NULL);
		CHECK(strstr(text, "lexfs_cache_dirty_bytes_total{backend=\"docs\"} 5\n") != NULL);
		CHECK(strstr(text,
			     "lexfs_store_bytes_up_total{backend=\"photos\",driver=\"memory\"}"
			     " 0\nlexfs_store_bytes_up_total{backend=\"docs\","
			     "driver=\"memory\"} 0\n") != NULL);
	}
	free(text);
out:
	metrics_values_free(&mv);
	store_destroy(st[0]);
	store_destroy(st[1]);
	settings_free(&s);
}

/* The mount-level ops of named backends renders every member once; a member
 * renders only itself. */
static void test_ops_group(void)
{
	static const char *const names[] = {"photos", "docs"};
	struct ops_conf gc = {0};
	struct ops *group = NULL, *member[2] = {NULL, NULL};
	struct store *st[2] = {NULL, NULL};
	struct settings s;
	char *text;

	settings_init(&s);
	CHECK_INT(ops_create(&gc, &group), 0);
	for (int i = 0; i < 2 && group; i++) {
		struct store_conf sc = {
		    .driver = "memory", .backend_name = names[i], .settings = &s};
		struct ops_conf mc = {.events = {.backend = names[i]}, .group = group};

		CHECK_INT(store_create(&sc, &st[i], NULL), 0);
		CHECK_INT(ops_create(&mc, &member[i]), 0);
		if (member[i] && st[i])
			CHECK_INT(ops_attach(member[i], st[i], NULL), 0);
	}
	if (group)
		CHECK_INT(ops_attach(group, NULL, NULL), 0);
	text = ops_metrics_text(group);
	CHECK(text != NULL);
	if (text) {
		CHECK_INT(count_bad_lines(text), 0);
		CHECK(strstr(text, "lexfs_backend_up{backend=\"photos\"} 1\n"
				   "lexfs_backend_up{backend=\"docs\"} 1\n") != NULL);
		CHECK(strstr(strstr(text, "# TYPE lexfs_backend_up ") + 1,
			     "# TYPE lexfs_backend_up ") == NULL);
	}
	free(text);
	text = ops_metrics_text(member[1]);
	CHECK(text != NULL && strstr(text, "backend=\"docs\"") != NULL &&
	      strstr(text, "backend=\"photos\"") == NULL);
	free(text);
	ops_detach(group);
	for (int i = 1; i >= 0; i--) {
		ops_destroy(member[i]);
		store_destroy(st[i]);
	}
	text = ops_metrics_text(group);
	CHECK(text == NULL); /* no members left, no store of its own */
	free(text);
	ops_destroy(group);
	settings_free(&s);
}

int main(void)
{
	log_open(LOG_SINK_STDERR, NULL, LOG_WARNING);
	test_render();
	test_render_two_backends();
	test_ops_group();
	test_server();
	return check_done("metrics_test");
}
