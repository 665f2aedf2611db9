/* metrics.c - Prometheus text exposition and the loopback metrics server. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "src/buf.h"
#include "src/log.h"
#include "src/metrics.h"

#define METRICS_MAX_TEXT (16u * 1024 * 1024)

void metrics_values_free(struct metrics_values *mv)
{
	free(mv->v);
	mv->v = NULL;
	mv->n = 0;
}

static void copy_name(char *dst, size_t len, const char *src)
{
	size_t i = 0;

	for (; src[i] && i + 1 < len; i++) {
		char c = src[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  c == ':' || (i > 0 && c >= '0' && c <= '9');

		dst[i] = ok ? c : '_';
	}
	dst[i] = '\0';
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

int metrics_values_add(struct metrics_values *mv, const char *name, enum metrics_type type,
		       const char *help, const char *label_name, const char *label_value,
		       double value)
{
	struct metrics_value *nv = realloc(mv->v, (mv->n + 1) * sizeof(*nv));
	struct metrics_value *x;

	if (!nv)
		return -ENOMEM;
	mv->v = nv;
	x = &nv[mv->n++];
	memset(x, 0, sizeof(*x));
	copy_name(x->name, sizeof(x->name), name);
	copy_str(x->help, sizeof(x->help), help);
	x->type = type;
	if (label_name && label_name[0]) {
		copy_name(x->label_name, sizeof(x->label_name), label_name);
		copy_str(x->label_value, sizeof(x->label_value), label_value);
	}
	x->value = value;
	return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);

	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int add_json_obj(struct metrics_values *mv, const char *path, json_t *obj, int depth,
			const char *label_name, const char *label_value)
{
	const char *k;
	json_t *v;

	if (depth > 4)
		return 0;
	json_object_foreach(obj, k, v)
	{
		char name[96];
		double d;
		enum metrics_type t;
		int ret;

		snprintf(name, sizeof(name), "%s_%s", path, k);
		if (json_is_object(v)) {
			ret = add_json_obj(mv, name, v, depth + 1, label_name, label_value);
			if (ret)
				return ret;
			continue;
		}
		if (json_is_integer(v))
			d = (double)json_integer_value(v);
		else if (json_is_real(v))
			d = json_real_value(v);
		else if (json_is_boolean(v))
			d = json_is_true(v) ? 1 : 0;
		else
			continue;
		t = METRICS_UNTYPED;
		if (ends_with(name, "_total") || ends_with(name, "hits") ||
		    ends_with(name, "misses") || ends_with(name, "errors") ||
		    ends_with(name, "calls") || ends_with(name, "retries") ||
		    ends_with(name, "bytes"))
			t = METRICS_COUNTER;
		/* A counter's sample name conventionally ends in _total. */
		if (t == METRICS_COUNTER && !ends_with(name, "_total"))
			snprintf(name + strlen(name), sizeof(name) - strlen(name), "_total");
		ret = metrics_values_add(mv, name, t, "from lexfs status JSON", label_name,
					 label_value, d);
		if (ret)
			return ret;
	}
	return 0;
}

int metrics_add_json(struct metrics_values *mv, const char *prefix, const char *json_text)
{
	return metrics_add_json_label(mv, prefix, json_text, NULL, NULL);
}

int metrics_add_json_label(struct metrics_values *mv, const char *prefix, const char *json_text,
			   const char *label_name, const char *label_value)
{
	json_error_t jerr;
	json_t *root;
	char path[64];
	int ret;

	if (!json_text)
		return -EINVAL;
	root = json_loads(json_text, 0, &jerr);
	if (!root)
		return -EINVAL;
	if (!json_is_object(root)) {
		json_decref(root);
		return -EINVAL;
	}
	snprintf(path, sizeof(path), "lexfs_%s", prefix);
	ret = add_json_obj(mv, path, root, 0, label_name, label_value);
	json_decref(root);
	return ret;
}

void metrics_backend_from_store(struct metrics_backend *b, const struct store *st)
{
	const struct lexfs_driver *d = store_driver(st);

	b->backend = store_backend_name(st);
	b->driver = d ? d->name : "";
	store_stats(st, b->stats);
}

/* Label values escape backslash, double quote and newline. */
static int add_label_value(struct buf *out, const char *s)
{
	int ret = 0;

	for (; *s && !ret; s++) {
		if (*s == '\\')
			ret = buf_adds(out, "\\\\");
		else if (*s == '"')
			ret = buf_adds(out, "\\\"");
		else if (*s == '\n')
			ret = buf_adds(out, "\\n");
		else
			ret = buf_add(out, s, 1);
	}
	return ret;
}

/* Help text escapes backslash and newline. */
static int add_help(struct buf *out, const char *name, const char *help, const char *type)
{
	int ret = buf_addf(out, "# HELP %s ", name);

	for (const char *s = help; *s && !ret; s++) {
		if (*s == '\\')
			ret = buf_adds(out, "\\\\");
		else if (*s == '\n')
			ret = buf_adds(out, "\\n");
		else
			ret = buf_add(out, s, 1);
	}
	if (!ret)
		ret = buf_addf(out, "\n# TYPE %s %s\n", name, type);
	return ret;
}

static int add_sample(struct buf *out, const char *name, const char *backend, const char *driver,
		      const char *op, double value, bool integral)
{
	int ret = buf_addf(out, "%s{backend=\"", name);

	if (!ret)
		ret = add_label_value(out, backend ? backend : "");
	if (!ret)
		ret = buf_adds(out, "\",driver=\"");
	if (!ret)
		ret = add_label_value(out, driver ? driver : "");
	if (!ret && op)
		ret = buf_addf(out, "\",op=\"%s", op);
	if (!ret && integral)
		ret = buf_addf(out, "\"} %.0f\n", value);
	else if (!ret)
		ret = buf_addf(out, "\"} %.6f\n", value);
	return ret;
}

enum fam_field { F_CALLS, F_ERRORS, F_RETRIES, F_BYTES };

static double field_of(const struct store_opstat *s, enum fam_field f)
{
	switch (f) {
	case F_CALLS:
		return (double)s->calls;
	case F_ERRORS:
		return (double)s->errors;
	case F_RETRIES:
		return (double)s->retries;
	case F_BYTES:
		return (double)s->bytes;
	}
	return 0;
}

static int render_backends(struct buf *out, const struct metrics_backend *b, size_t nb)
{
	static const struct {
		const char *name, *help;
		enum fam_field f;
	} fams[] = {
	    {"lexfs_store_requests_total", "Backend operations through the store", F_CALLS},
	    {"lexfs_store_errors_total", "Backend operations that failed", F_ERRORS},
	    {"lexfs_store_retries_total", "Retries of backend operations", F_RETRIES},
	    {"lexfs_store_bytes_total", "Bytes moved by backend operations", F_BYTES},
	};
	int ret = 0;

	if (nb == 0)
		return 0;
	for (size_t f = 0; f < sizeof(fams) / sizeof(fams[0]) && !ret; f++) {
		ret = add_help(out, fams[f].name, fams[f].help, "counter");
		for (size_t i = 0; i < nb && !ret; i++)
			for (int op = 0; op < STORE_OP_COUNT && !ret; op++)
				ret = add_sample(out, fams[f].name, b[i].backend, b[i].driver,
						 store_op_name((enum store_op)op),
						 field_of(&b[i].stats[op], fams[f].f), true);
	}
	if (!ret)
		ret = add_help(out, "lexfs_store_request_duration_seconds",
			       "Wall time of backend operations, retries included", "summary");
	for (size_t i = 0; i < nb && !ret; i++) {
		for (int op = 0; op < STORE_OP_COUNT && !ret; op++) {
			const char *opn = store_op_name((enum store_op)op);

			ret = add_sample(out, "lexfs_store_request_duration_seconds_sum",
					 b[i].backend, b[i].driver, opn,
					 (double)b[i].stats[op].usec / 1e6, false);
			if (!ret)
				ret = add_sample(out, "lexfs_store_request_duration_seconds_count",
						 b[i].backend, b[i].driver, opn,
						 (double)b[i].stats[op].calls, true);
		}
	}
	if (!ret)
		ret =
		    add_help(out, "lexfs_store_bytes_up_total",
			     "Bytes sent to the backend (uploads and multipart parts)", "counter");
	for (size_t i = 0; i < nb && !ret; i++)
		ret = add_sample(out, "lexfs_store_bytes_up_total", b[i].backend, b[i].driver, NULL,
				 (double)(b[i].stats[STORE_OP_UPLOAD].bytes +
					  b[i].stats[STORE_OP_MP_PART].bytes),
				 true);
	if (!ret)
		ret = add_help(out, "lexfs_store_bytes_down_total",
			       "Bytes received from the backend (downloads)", "counter");
	for (size_t i = 0; i < nb && !ret; i++)
		ret = add_sample(out, "lexfs_store_bytes_down_total", b[i].backend, b[i].driver,
				 NULL, (double)b[i].stats[STORE_OP_DOWNLOAD].bytes, true);
	return ret;
}

static const char *type_name(enum metrics_type t)
{
	return t == METRICS_GAUGE ? "gauge" : t == METRICS_COUNTER ? "counter" : "untyped";
}

static int render_values(struct buf *out, const struct metrics_values *mv)
{
	int ret = 0;

	for (size_t i = 0; i < mv->n && !ret; i++) {
		const struct metrics_value *x = &mv->v[i];
		bool seen = false;

		/* Samples of one family must be contiguous: emit the family when its first
		 * value comes up, with every later value of the same name. */
		for (size_t j = 0; j < i && !seen; j++)
			seen = strcmp(mv->v[j].name, x->name) == 0;
		if (seen)
			continue;
		ret = add_help(out, x->name, x->help[0] ? x->help : x->name, type_name(x->type));
		for (size_t j = i; j < mv->n && !ret; j++) {
			const struct metrics_value *y = &mv->v[j];
			double whole = (double)(long long)y->value;

			if (strcmp(y->name, x->name) != 0)
				continue;
			ret = buf_adds(out, y->name);
			if (!ret && y->label_name[0]) {
				ret = buf_addf(out, "{%s=\"", y->label_name);
				if (!ret)
					ret = add_label_value(out, y->label_value);
				if (!ret)
					ret = buf_adds(out, "\"}");
			}
			if (!ret && whole == y->value && y->value < 9e15 && y->value > -9e15)
				ret = buf_addf(out, " %lld\n", (long long)y->value);
			else if (!ret)
				ret = buf_addf(out, " %.6g\n", y->value);
		}
	}
	return ret;
}

char *metrics_render(const struct metrics_backend *b, size_t nb, const struct metrics_values *mv)
{
	struct buf out = BUF_INIT(METRICS_MAX_TEXT);
	int ret;

	ret = render_backends(&out, b, nb);
	if (!ret && mv)
		ret = render_values(&out, mv);
	if (!ret)
		ret = buf_add(&out, "", 0);
	if (ret) {
		buf_free(&out);
		return NULL;
	}
	if (!out.data)
		return strdup("");
	return buf_steal(&out);
}

/* ---- loopback HTTP server ---- */

struct metrics_server {
	int fd;
	int stop_pipe[2];
	int port;
	metrics_render_fn fn;
	void *arg;
	pthread_t thread;
};

static int parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[64];
	const char *colon, *hs, *he;
	char *end;
	long port;

	if (!addr || !*addr)
		return -EINVAL;
	if (addr[0] == '[') {
		hs = addr + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':')
			return -EINVAL;
		colon = he + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return -EINVAL;
		hs = addr;
		he = colon;
	}
	if ((size_t)(he - hs) >= sizeof(host) || he == hs)
		return -EINVAL;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno || *end || end == colon + 1 || port < 0 || port > 65535)
		return -EINVAL;
	memset(ss, 0, sizeof(*ss));
	if (strcmp(host, "localhost") == 0) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		*len = sizeof(*a);
		return 0;
	}
	{
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) == 1) {
			a->sin_family = AF_INET;
			a->sin_port = htons((uint16_t)port);
			*len = sizeof(*a);
			/* 127.0.0.0/8 only */
			return (ntohl(a->sin_addr.s_addr) >> 24) == 127 ? 0 : -EPERM;
		}
	}
	{
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) == 1) {
			a->sin6_family = AF_INET6;
			a->sin6_port = htons((uint16_t)port);
			*len = sizeof(*a);
			return IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ? 0 : -EPERM;
		}
	}
	/* Names other than localhost would need DNS, and could resolve anywhere. */
	return -EPERM;
}

static void send_all(int fd, const char *data, size_t len)
{
	while (len > 0) {
		ssize_t k = send(fd, data, len, MSG_NOSIGNAL);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		data += k;
		len -= (size_t)k;
	}
}

static void reply(int fd, int status, const char *reason, const char *ctype, const char *body)
{
	char head[256];
	size_t blen = body ? strlen(body) : 0;
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n",
			 status, reason, ctype, blen);

	send_all(fd, head, (size_t)n);
	if (blen)
		send_all(fd, body, blen);
}

static void serve_one(struct metrics_server *srv, int c)
{
	char req[4096];
	size_t got = 0;
	struct timeval tv = {.tv_sec = 2};
	char *line_end;

	setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	while (got < sizeof(req) - 1) {
		ssize_t k = recv(c, req + got, sizeof(req) - 1 - got, 0);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
		req[got] = '\0';
		if (strstr(req, "\r\n\r\n") || strstr(req, "\n\n"))
			break;
	}
	req[got] = '\0';
	line_end = strpbrk(req, "\r\n");
	if (!line_end) {
		reply(c, 400, "Bad Request", "text/plain", "bad request\n");
		return;
	}
	*line_end = '\0';
	if (strncmp(req, "GET ", 4) != 0 && strncmp(req, "HEAD ", 5) != 0) {
		reply(c, 405, "Method Not Allowed", "text/plain", "only GET /metrics\n");
		return;
	}
	{
		const char *path = strchr(req, ' ') + 1;
		size_t plen = strcspn(path, " ?");
		char *body;

		if (plen != 8 || strncmp(path, "/metrics", 8) != 0) {
			reply(c, 404, "Not Found", "text/plain", "only GET /metrics\n");
			return;
		}
		body = srv->fn(srv->arg);
		if (!body) {
			reply(c, 500, "Internal Server Error", "text/plain", "no metrics\n");
			return;
		}
		reply(c, 200, "OK", "text/plain; version=0.0.4; charset=utf-8",
		      strncmp(req, "HEAD ", 5) == 0 ? NULL : body);
		free(body);
	}
}

static void *server_main(void *arg)
{
	struct metrics_server *srv = arg;

	for (;;) {
		struct pollfd pfd[2] = {{srv->fd, POLLIN, 0}, {srv->stop_pipe[0], POLLIN, 0}};
		int c;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		c = accept4(srv->fd, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0)
			continue;
		serve_one(srv, c);
		close(c);
	}
	return NULL;
}

int metrics_server_start(const char *addr, metrics_render_fn fn, void *arg,
			 struct metrics_server **out)
{
	struct sockaddr_storage ss;
	socklen_t len = 0;
	struct metrics_server *srv;
	int one = 1, ret;

	*out = NULL;
	ret = parse_addr(addr, &ss, &len);
	if (ret)
		return ret;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return -ENOMEM;
	srv->fn = fn;
	srv->arg = arg;
	srv->stop_pipe[0] = srv->stop_pipe[1] = -1;
	srv->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (srv->fd < 0) {
		ret = -errno;
		goto fail;
	}
	setsockopt(srv->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(srv->fd, (struct sockaddr *)&ss, len) || listen(srv->fd, 16)) {
		ret = -errno;
		goto fail;
	}
	len = sizeof(ss);
	if (getsockname(srv->fd, (struct sockaddr *)&ss, &len)) {
		ret = -errno;
		goto fail;
	}
	srv->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						  : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (pipe2(srv->stop_pipe, O_CLOEXEC)) {
		ret = -errno;
		goto fail;
	}
	ret = -pthread_create(&srv->thread, NULL, server_main, srv);
	if (ret)
		goto fail;
	*out = srv;
	return 0;
fail:
	if (srv->fd >= 0)
		close(srv->fd);
	if (srv->stop_pipe[0] >= 0) {
		close(srv->stop_pipe[0]);
		close(srv->stop_pipe[1]);
	}
	free(srv);
	return ret;
}

int metrics_server_port(const struct metrics_server *srv)
{
	return srv ? srv->port : 0;
}

void metrics_server_stop(struct metrics_server *srv)
{
	if (!srv)
		return;
	if (write(srv->stop_pipe[1], "x", 1) < 0)
		log_warn("metrics: cannot signal the server thread: %s", strerror(errno));
	pthread_join(srv->thread, NULL);
	close(srv->fd);
	close(srv->stop_pipe[0]);
	close(srv->stop_pipe[1]);
	free(srv);
}
