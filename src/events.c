/* events.c - event log, hooks and webhook (see events.h for the contract).
 *
 * Queue states of one event (item):
 *   emit:    JSON and environment built, log line appended, item pushed when a
 *            hook or the webhook wants it (or dropped + counted when full)
 *   worker:  pops in FIFO order, runs the matching hook (bounded by the hook
 *            timeout), then POSTs to the webhook (bounded by retries x timeout)
 *   destroy: stop flag set; the worker drains until the drain deadline, later
 *            items are dropped with one log line
 * Lock order: ev->lock (queue, counters) and ev->log_lock (log fd) are never held
 * together, and neither is held while a hook or a webhook runs.
 */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "src/buf.h"
#include "src/events.h"
#include "src/log.h"

extern char **environ;

#define EV_NENV 7
#define EV_STDERR_KEEP 200

struct ev_item {
	enum lexfs_event_type type;
	char *json;
	char *key;	    /* for log lines */
	char *env[EV_NENV]; /* "LEXFS_KEY=..." */
};

struct events {
	struct events_conf conf; /* strings below are our copies */
	char *log_path;
	char *webhook_url;
	char *bucket;	    /* default bucket, "" when none */
	char *backend;	    /* default backend name */
	char **argv_stored; /* NULL: no hook */
	char **argv_deleted;

	pthread_mutex_t log_lock;
	int log_fd; /* guarded by log_lock; -1: none */

	pthread_mutex_t lock;
	pthread_cond_t cond;	    /* signalled on push and on stop */
	struct ev_item **ring;	    /* guarded by lock */
	unsigned head, count;	    /* guarded by lock */
	bool stopping;		    /* guarded by lock */
	int64_t drain_deadline_ms;  /* guarded by lock */
	struct events_counters cnt; /* guarded by lock */
	bool have_worker;
	pthread_t worker;
};

static const char *const type_names[] = {"FileUploaded", "FileDownloaded", "FileDeleted"};

const char *events_type_name(enum lexfs_event_type t)
{
	if ((unsigned)t < sizeof(type_names) / sizeof(type_names[0]))
		return type_names[t];
	return "Unknown";
}

static int64_t now_ms(int clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void rfc3339_ms(int64_t ms, char out[32])
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;
	char base[24];

	gmtime_r(&s, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 32, "%s.%03dZ", base, (int)(ms % 1000));
}

static int64_t event_time(const struct lexfs_event *e)
{
	return e->occurred_ms > 0 ? e->occurred_ms : now_ms(CLOCK_REALTIME);
}

static char *json_of(const struct lexfs_event *e, int64_t ms)
{
	char when[32];
	json_t *o;
	char *text = NULL;

	rfc3339_ms(ms, when);
	o = json_object();
	if (!o)
		return NULL;
	if (json_object_set_new(o, "event", json_string(events_type_name(e->type))) ||
	    json_object_set_new(o, "key", json_string(e->key ? e->key : "")) ||
	    json_object_set_new(o, "bucket", json_string(e->bucket ? e->bucket : "")) ||
	    json_object_set_new(o, "backend", json_string(e->backend ? e->backend : "default")) ||
	    json_object_set_new(o, "size_bytes",
				e->has_size ? json_integer((json_int_t)e->size) : json_null()) ||
	    json_object_set_new(o, "etag",
				e->etag && e->etag[0] ? json_string(e->etag) : json_null()) ||
	    json_object_set_new(o, "occurred_at", json_string(when)))
		goto out;
	/* A key that is not valid UTF-8 makes json_string fail above; keys reach us
	 * from the store, which only holds UTF-8, so that is a caller bug. */
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(o);
	return text;
}

char *events_json(const struct lexfs_event *e)
{
	return json_of(e, event_time(e));
}

/* ---- command splitting ---- */

void events_argv_free(char **argv)
{
	if (!argv)
		return;
	for (size_t i = 0; argv[i]; i++)
		free(argv[i]);
	free(argv);
}

static int argv_push(char ***argv, size_t *n, struct buf *word)
{
	char **nv = realloc(*argv, (*n + 2) * sizeof(**argv));

	if (!nv)
		return -ENOMEM;
	*argv = nv;
	nv[*n] = buf_steal(word);
	if (!nv[*n]) {
		nv[*n] = strdup("");
		if (!nv[*n])
			return -ENOMEM;
	}
	(*n)++;
	nv[*n] = NULL;
	return 0;
}

int events_split_command(const char *cmd, char ***out)
{
	struct buf word = BUF_INIT(64 * 1024);
	char **argv = NULL;
	size_t n = 0;
	bool in_word = false;
	char quote = 0;
	int ret = 0;
	const char *p;

	*out = NULL;
	if (!cmd)
		return -EINVAL;
	for (p = cmd; *p; p++) {
		char c = *p;

		if (quote == '\'') {
			if (c == '\'')
				quote = 0;
			else if ((ret = buf_add(&word, &c, 1)))
				goto fail;
			continue;
		}
		if (quote == '"') {
			if (c == '"') {
				quote = 0;
				continue;
			}
			if (c == '\\' && (p[1] == '"' || p[1] == '\\'))
				c = *++p;
			ret = buf_add(&word, &c, 1);
			if (ret)
				goto fail;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\n') {
			if (in_word) {
				ret = argv_push(&argv, &n, &word);
				if (ret)
					goto fail;
				in_word = false;
			}
			continue;
		}
		in_word = true;
		if (c == '\'' || c == '"') {
			quote = c;
			continue;
		}
		if (c == '\\') {
			if (!p[1]) {
				ret = -EINVAL;
				goto fail;
			}
			c = *++p;
		}
		ret = buf_add(&word, &c, 1);
		if (ret)
			goto fail;
	}
	if (quote) {
		ret = -EINVAL;
		goto fail;
	}
	if (in_word) {
		ret = argv_push(&argv, &n, &word);
		if (ret)
			goto fail;
	}
	if (n == 0) {
		ret = -EINVAL;
		goto fail;
	}
	buf_free(&word);
	*out = argv;
	return 0;
fail:
	buf_free(&word);
	events_argv_free(argv);
	return ret;
}

/* ---- queue items ---- */

static void item_free(struct ev_item *it)
{
	if (!it)
		return;
	free(it->json);
	free(it->key);
	for (int i = 0; i < EV_NENV; i++)
		free(it->env[i]);
	free(it);
}

static char *env_pair(const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;
	char *s = malloc(len);

	if (s)
		snprintf(s, len, "%s=%s", name, value);
	return s;
}

static struct ev_item *item_new(const struct lexfs_event *e, char *json, int64_t ms)
{
	struct ev_item *it = calloc(1, sizeof(*it));
	char when[32], size[24] = "";

	if (!it)
		return NULL;
	rfc3339_ms(ms, when);
	if (e->has_size)
		snprintf(size, sizeof(size), "%llu", (unsigned long long)e->size);
	it->type = e->type;
	it->json = json;
	it->key = strdup(e->key ? e->key : "");
	it->env[0] = env_pair("LEXFS_EVENT", events_type_name(e->type));
	it->env[1] = env_pair("LEXFS_KEY", e->key ? e->key : "");
	it->env[2] = env_pair("LEXFS_BUCKET", e->bucket ? e->bucket : "");
	it->env[3] = env_pair("LEXFS_BACKEND", e->backend ? e->backend : "default");
	it->env[4] = env_pair("LEXFS_SIZE", size);
	it->env[5] = env_pair("LEXFS_ETAG", e->etag ? e->etag : "");
	it->env[6] = env_pair("LEXFS_OCCURRED_AT", when);
	if (!it->key)
		goto fail;
	for (int i = 0; i < EV_NENV; i++)
		if (!it->env[i])
			goto fail;
	return it;
fail:
	it->json = NULL; /* still the caller's */
	item_free(it);
	return NULL;
}

/* ---- hooks ---- */

/* The environment of a hook: ours minus any LEXFS_* entries, plus the event's.
 * Returns a NULL-terminated array of borrowed pointers; caller frees the array. */
static char **hook_envp(struct ev_item *it)
{
	size_t n = 0, k = 0;
	char **envp;

	for (char **e = environ; e && *e; e++)
		n++;
	envp = calloc(n + EV_NENV + 1, sizeof(*envp));
	if (!envp)
		return NULL;
	for (char **e = environ; e && *e; e++)
		if (strncmp(*e, "LEXFS_", 6) != 0)
			envp[k++] = *e;
	for (int i = 0; i < EV_NENV; i++)
		envp[k++] = it->env[i];
	envp[k] = NULL;
	return envp;
}

static bool past_drain_deadline(struct events *ev)
{
	bool past;

	pthread_mutex_lock(&ev->lock);
	past = ev->stopping && now_ms(CLOCK_MONOTONIC) > ev->drain_deadline_ms;
	pthread_mutex_unlock(&ev->lock);
	return past;
}

static void hook_count(struct events *ev, bool failed, bool timed_out)
{
	pthread_mutex_lock(&ev->lock);
	ev->cnt.hooks_run++;
	if (failed)
		ev->cnt.hook_failures++;
	if (timed_out)
		ev->cnt.hook_timeouts++;
	pthread_mutex_unlock(&ev->lock);
}

static void run_hook(struct events *ev, const char *which, char **argv, struct ev_item *it)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int sv[2] = {-1, -1}, ep[2] = {-1, -1};
	char **envp = NULL;
	char errtext[EV_STDERR_KEEP + 1] = "";
	size_t errlen = 0, sent = 0, jlen = strlen(it->json) + 1;
	char *payload = NULL;
	pid_t pid = -1;
	int status = 0, ret;
	bool exited = false, timed_out = false, fa_ok = false, attr_ok = false;
	int64_t deadline = now_ms(CLOCK_MONOTONIC) + ev->conf.hook_timeout_ms;

	payload = malloc(jlen);
	envp = hook_envp(it);
	if (!payload || !envp) {
		ret = ENOMEM;
		goto spawn_failed;
	}
	memcpy(payload, it->json, jlen - 1);
	payload[jlen - 1] = '\n';
	/* stdin is a socket so that writing to a hook that never reads gives EPIPE
	 * (MSG_NOSIGNAL), not a SIGPIPE for the daemon. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || pipe2(ep, O_CLOEXEC)) {
		ret = errno;
		goto spawn_failed;
	}
	ret = posix_spawn_file_actions_init(&fa);
	if (ret)
		goto spawn_failed;
	fa_ok = true;
	ret = posix_spawnattr_init(&attr);
	if (ret)
		goto spawn_failed;
	attr_ok = true;
	sigemptyset(&none);
	sigfillset(&all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	if ((ret = posix_spawn_file_actions_adddup2(&fa, sv[1], 0)) ||
	    (ret = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)) ||
	    (ret = posix_spawn_file_actions_adddup2(&fa, ep[1], 2)) ||
	    (ret = posix_spawn_file_actions_addclosefrom_np(&fa, 3)) ||
	    (ret = posix_spawnattr_setpgroup(&attr, 0)) ||
	    (ret = posix_spawnattr_setsigmask(&attr, &none)) ||
	    (ret = posix_spawnattr_setsigdefault(&attr, &all)) ||
	    (ret = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						       POSIX_SPAWN_SETSIGDEF)))
		goto spawn_failed;
	ret = posix_spawnp(&pid, argv[0], &fa, &attr, argv, envp);
	if (ret)
		goto spawn_failed;
	close(sv[1]);
	sv[1] = -1;
	close(ep[1]);
	ep[1] = -1;
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fcntl(ep[0], F_SETFL, O_NONBLOCK);

	for (;;) {
		struct pollfd pfd[2];
		int nfd = 0;
		int64_t left;
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid) {
			exited = true;
			break;
		}
		left = deadline - now_ms(CLOCK_MONOTONIC);
		if (left <= 0 || past_drain_deadline(ev)) {
			timed_out = true;
			kill(-pid, SIGKILL);
			kill(pid, SIGKILL);
			while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
				;
			break;
		}
		if (sv[0] >= 0) {
			pfd[nfd].fd = sv[0];
			pfd[nfd].events = POLLOUT;
			nfd++;
		}
		if (ep[0] >= 0) {
			pfd[nfd].fd = ep[0];
			pfd[nfd].events = POLLIN;
			nfd++;
		}
		/* Short polls: waitpid has no fd here, so check it every 20 ms. */
		poll(pfd, (nfds_t)nfd, left < 20 ? (int)left : 20);
		if (sv[0] >= 0) {
			ssize_t k = send(sv[0], payload + sent, jlen - sent, MSG_NOSIGNAL);

			if (k > 0)
				sent += (size_t)k;
			if ((k < 0 && errno != EAGAIN && errno != EINTR) || sent == jlen) {
				close(sv[0]); /* EOF for the hook (or it stopped reading) */
				sv[0] = -1;
			}
		}
		while (ep[0] >= 0) {
			char tmp[512];
			ssize_t k = read(ep[0], tmp, sizeof(tmp));

			if (k > 0) {
				size_t keep = EV_STDERR_KEEP - errlen;

				if ((size_t)k < keep)
					keep = (size_t)k;
				memcpy(errtext + errlen, tmp, keep);
				errlen += keep;
				continue;
			}
			if (k == 0) {
				close(ep[0]);
				ep[0] = -1;
			}
			break;
		}
	}
	errtext[errlen] = '\0';
	for (size_t i = 0; i < errlen; i++)
		if (errtext[i] == '\n' || errtext[i] == '\r' || errtext[i] == '\t')
			errtext[i] = ' ';
	if (timed_out) {
		log_warn("events: hook %s (%s) for %s \"%s\" killed after %d ms timeout", which,
			 argv[0], events_type_name(it->type), it->key, ev->conf.hook_timeout_ms);
		hook_count(ev, true, true);
	} else if (exited && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		hook_count(ev, false, false);
	} else if (exited && WIFEXITED(status)) {
		log_warn("events: hook %s (%s) for %s \"%s\" failed: exit status %d%s%s", which,
			 argv[0], events_type_name(it->type), it->key, WEXITSTATUS(status),
			 errlen ? ": " : "", errtext);
		hook_count(ev, true, false);
	} else {
		log_warn("events: hook %s (%s) for %s \"%s\" failed: killed by signal %d", which,
			 argv[0], events_type_name(it->type), it->key,
			 WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		hook_count(ev, true, false);
	}
	goto out;

spawn_failed:
	log_warn("events: hook %s (%s) could not start: %s", which, argv[0], strerror(ret));
	hook_count(ev, true, false);
out:
	if (fa_ok)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_ok)
		posix_spawnattr_destroy(&attr);
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		if (ep[i] >= 0)
			close(ep[i]);
	}
	free(envp);
	free(payload);
}

/* ---- webhook ---- */

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
	return size * nmemb;
}

/* Sleep ms unless the drain deadline passes first. false: give up. */
static bool backoff_wait(struct events *ev, int ms)
{
	struct timespec until;
	bool give_up;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ev->lock);
	while (!ev->stopping) {
		if (pthread_cond_timedwait(&ev->cond, &ev->lock, &until) == ETIMEDOUT)
			break;
	}
	give_up = ev->stopping && now_ms(CLOCK_MONOTONIC) > ev->drain_deadline_ms;
	pthread_mutex_unlock(&ev->lock);
	return !give_up;
}

static void run_webhook(struct events *ev, CURL *h, struct ev_item *it)
{
	struct curl_slist *hdrs = NULL;
	int attempts = ev->conf.webhook_retries < 0 ? 1 : ev->conf.webhook_retries + 1;
	long status = 0;
	CURLcode rc = CURLE_OK;
	bool ok = false;

	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	for (int i = 0; i < attempts; i++) {
		if (i > 0) {
			int ms = ev->conf.retry_base_ms << (i - 1 < 6 ? i - 1 : 6);

			if (!backoff_wait(ev, ms))
				break;
		}
		curl_easy_reset(h);
		curl_easy_setopt(h, CURLOPT_URL, ev->webhook_url);
		curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, it->json);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(it->json));
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)ev->conf.webhook_timeout_ms);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
		rc = curl_easy_perform(h);
		status = 0;
		if (rc == CURLE_OK)
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
		if (rc == CURLE_OK && status >= 200 && status < 300) {
			ok = true;
			break;
		}
		/* 4xx other than 429 will not get better by asking again. */
		if (rc == CURLE_OK && status >= 400 && status < 500 && status != 429)
			break;
	}
	curl_slist_free_all(hdrs);
	pthread_mutex_lock(&ev->lock);
	if (ok)
		ev->cnt.webhook_sent++;
	else
		ev->cnt.webhook_failures++;
	pthread_mutex_unlock(&ev->lock);
	/* The URL may carry a token: log neither it nor its query. */
	if (!ok && rc != CURLE_OK)
		log_warn("events: webhook POST of %s \"%s\" failed: %s", events_type_name(it->type),
			 it->key, curl_easy_strerror(rc));
	else if (!ok)
		log_warn("events: webhook POST of %s \"%s\" failed: HTTP %ld",
			 events_type_name(it->type), it->key, status);
}

/* ---- worker ---- */

static void *worker_main(void *arg)
{
	struct events *ev = arg;
	CURL *h = ev->webhook_url ? curl_easy_init() : NULL;
	uint64_t dropped_at_stop = 0;

	if (ev->webhook_url && !h)
		log_err("events: cannot create a curl handle; the webhook is disabled");
	for (;;) {
		struct ev_item *it = NULL;

		pthread_mutex_lock(&ev->lock);
		while (ev->count == 0 && !ev->stopping)
			pthread_cond_wait(&ev->cond, &ev->lock);
		if (ev->count == 0) {
			pthread_mutex_unlock(&ev->lock);
			break;
		}
		if (ev->stopping && now_ms(CLOCK_MONOTONIC) > ev->drain_deadline_ms) {
			while (ev->count) {
				item_free(ev->ring[ev->head]);
				ev->ring[ev->head] = NULL;
				ev->head = (ev->head + 1) % ev->conf.queue_max;
				ev->count--;
				ev->cnt.dropped++;
				dropped_at_stop++;
			}
			ev->cnt.queued = 0;
			pthread_mutex_unlock(&ev->lock);
			break;
		}
		it = ev->ring[ev->head];
		ev->ring[ev->head] = NULL;
		ev->head = (ev->head + 1) % ev->conf.queue_max;
		ev->count--;
		ev->cnt.queued = ev->count;
		pthread_mutex_unlock(&ev->lock);

		if (it->type == LEXFS_EV_UPLOADED && ev->argv_stored)
			run_hook(ev, "on_stored", ev->argv_stored, it);
		else if (it->type == LEXFS_EV_DELETED && ev->argv_deleted)
			run_hook(ev, "on_deleted", ev->argv_deleted, it);
		if (h)
			run_webhook(ev, h, it);
		item_free(it);
	}
	if (dropped_at_stop)
		log_warn("events: shutting down: %llu queued events dropped before their hooks ran",
			 (unsigned long long)dropped_at_stop);
	if (h)
		curl_easy_cleanup(h);
	return NULL;
}

/* ---- life cycle ---- */

static int open_log(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);

	return fd < 0 ? -errno : fd;
}

int events_create(const struct events_conf *conf, struct events **out)
{
	struct events *ev;
	int ret;

	*out = NULL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	ev->conf = *conf;
	ev->log_fd = -1;
	pthread_mutex_init(&ev->log_lock, NULL);
	pthread_mutex_init(&ev->lock, NULL);
	pthread_cond_init(&ev->cond, NULL);
	if (ev->conf.hook_timeout_ms <= 0)
		ev->conf.hook_timeout_ms = 10000;
	if (ev->conf.queue_max == 0)
		ev->conf.queue_max = 1024;
	if (ev->conf.webhook_retries == 0)
		ev->conf.webhook_retries = 3;
	if (ev->conf.webhook_timeout_ms <= 0)
		ev->conf.webhook_timeout_ms = 10000;
	if (ev->conf.retry_base_ms <= 0)
		ev->conf.retry_base_ms = 500;
	ev->conf.log_path = ev->conf.on_stored = ev->conf.on_deleted = NULL;
	ev->conf.webhook_url = ev->conf.bucket = ev->conf.backend = NULL;
	ev->bucket = strdup(conf->bucket ? conf->bucket : "");
	ev->backend = strdup(conf->backend ? conf->backend : "default");
	if (!ev->bucket || !ev->backend) {
		ret = -ENOMEM;
		goto fail;
	}

	if (conf->on_stored && conf->on_stored[0]) {
		ret = events_split_command(conf->on_stored, &ev->argv_stored);
		if (ret) {
			log_err("events: events.on_stored: %s",
				ret == -EINVAL ? "empty command or unterminated quote"
					       : strerror(-ret));
			goto fail;
		}
	}
	if (conf->on_deleted && conf->on_deleted[0]) {
		ret = events_split_command(conf->on_deleted, &ev->argv_deleted);
		if (ret) {
			log_err("events: events.on_deleted: %s",
				ret == -EINVAL ? "empty command or unterminated quote"
					       : strerror(-ret));
			goto fail;
		}
	}
	if (conf->webhook_url && conf->webhook_url[0]) {
		if (strncmp(conf->webhook_url, "http://", 7) != 0 &&
		    strncmp(conf->webhook_url, "https://", 8) != 0) {
			log_err("events: events.webhook must be an http:// or https:// URL");
			ret = -EINVAL;
			goto fail;
		}
		ev->webhook_url = strdup(conf->webhook_url);
		if (!ev->webhook_url) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	if (conf->log_path && conf->log_path[0]) {
		ev->log_path = strdup(conf->log_path);
		if (!ev->log_path) {
			ret = -ENOMEM;
			goto fail;
		}
		ev->log_fd = open_log(ev->log_path);
		if (ev->log_fd < 0) {
			ret = ev->log_fd;
			ev->log_fd = -1;
			log_err("events: cannot open the event log %s: %s", ev->log_path,
				strerror(-ret));
			goto fail;
		}
	}
	if (ev->argv_stored || ev->argv_deleted || ev->webhook_url) {
		ev->ring = calloc(ev->conf.queue_max, sizeof(*ev->ring));
		if (!ev->ring) {
			ret = -ENOMEM;
			goto fail;
		}
		ret = -pthread_create(&ev->worker, NULL, worker_main, ev);
		if (ret)
			goto fail;
		ev->have_worker = true;
	}
	*out = ev;
	return 0;
fail:
	events_destroy(ev);
	return ret;
}

void events_destroy(struct events *ev)
{
	if (!ev)
		return;
	if (ev->have_worker) {
		int64_t grace = ev->conf.hook_timeout_ms;

		if (ev->webhook_url)
			grace += ev->conf.webhook_timeout_ms;
		pthread_mutex_lock(&ev->lock);
		ev->stopping = true;
		ev->drain_deadline_ms = now_ms(CLOCK_MONOTONIC) + grace;
		pthread_cond_broadcast(&ev->cond);
		pthread_mutex_unlock(&ev->lock);
		pthread_join(ev->worker, NULL);
	}
	if (ev->ring) {
		for (unsigned i = 0; i < ev->conf.queue_max; i++)
			item_free(ev->ring[i]);
		free(ev->ring);
	}
	if (ev->log_fd >= 0)
		close(ev->log_fd);
	events_argv_free(ev->argv_stored);
	events_argv_free(ev->argv_deleted);
	free(ev->webhook_url);
	free(ev->log_path);
	free(ev->bucket);
	free(ev->backend);
	pthread_cond_destroy(&ev->cond);
	pthread_mutex_destroy(&ev->lock);
	pthread_mutex_destroy(&ev->log_lock);
	free(ev);
}

int events_reopen(struct events *ev)
{
	int fd, ret = 0;

	if (!ev || !ev->log_path)
		return 0;
	fd = open_log(ev->log_path);
	pthread_mutex_lock(&ev->log_lock);
	if (fd >= 0) {
		if (ev->log_fd >= 0)
			close(ev->log_fd);
		ev->log_fd = fd;
	} else {
		ret = fd;
	}
	pthread_mutex_unlock(&ev->log_lock);
	if (ret)
		log_err("events: cannot reopen the event log %s: %s", ev->log_path, strerror(-ret));
	return ret;
}

static int write_log_line(struct events *ev, const char *json)
{
	size_t len = strlen(json);
	char *line = malloc(len + 1);
	ssize_t k = -1;
	int ret = 0;

	if (!line)
		return -ENOMEM;
	memcpy(line, json, len);
	line[len] = '\n';
	/* One write with O_APPEND: lines of concurrent emitters never interleave. */
	pthread_mutex_lock(&ev->log_lock);
	if (ev->log_fd >= 0) {
		do
			k = write(ev->log_fd, line, len + 1);
		while (k < 0 && errno == EINTR);
		if (k < 0)
			ret = -errno;
		else if ((size_t)k != len + 1)
			ret = -ENOSPC;
	}
	pthread_mutex_unlock(&ev->log_lock);
	free(line);
	return ret;
}

void events_emit(struct events *ev, const struct lexfs_event *e)
{
	int64_t ms;
	char *json;
	struct ev_item *it = NULL;
	bool wanted, dropped = false;
	int ret = 0;

	if (!ev || !e)
		return;
	if (!e->bucket || !e->backend) {
		struct lexfs_event filled = *e;

		if (!filled.bucket)
			filled.bucket = ev->bucket;
		if (!filled.backend)
			filled.backend = ev->backend;
		events_emit(ev, &filled);
		return;
	}
	ms = event_time(e);
	json = json_of(e, ms);
	if (!json) {
		log_err(
		    "events: cannot encode %s event for \"%s\" (out of memory or non-UTF-8 key)",
		    events_type_name(e->type), e->key ? e->key : "");
		pthread_mutex_lock(&ev->lock);
		ev->cnt.emitted++;
		ev->cnt.log_errors++;
		pthread_mutex_unlock(&ev->lock);
		return;
	}
	if (ev->log_fd >= 0)
		ret = write_log_line(ev, json);

	wanted = ev->webhook_url || (e->type == LEXFS_EV_UPLOADED && ev->argv_stored) ||
		 (e->type == LEXFS_EV_DELETED && ev->argv_deleted);
	if (wanted) {
		it = item_new(e, json, ms);
		if (it)
			json = NULL;
	}
	pthread_mutex_lock(&ev->lock);
	ev->cnt.emitted++;
	if (ret)
		ev->cnt.log_errors++;
	if (wanted) {
		if (it && ev->count < ev->conf.queue_max && !ev->stopping) {
			ev->ring[(ev->head + ev->count) % ev->conf.queue_max] = it;
			ev->count++;
			ev->cnt.queued = ev->count;
			it = NULL;
			pthread_cond_signal(&ev->cond);
		} else {
			ev->cnt.dropped++;
			dropped = true;
		}
	}
	pthread_mutex_unlock(&ev->lock);
	if (ret)
		log_err("events: cannot write the event log %s: %s", ev->log_path, strerror(-ret));
	if (dropped)
		log_warn("events: hook queue full (%u): %s \"%s\" dropped for hooks and webhook",
			 ev->conf.queue_max, events_type_name(e->type), e->key ? e->key : "");
	item_free(it);
	free(json);
}

void events_counters(struct events *ev, struct events_counters *out)
{
	memset(out, 0, sizeof(*out));
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	*out = ev->cnt;
	pthread_mutex_unlock(&ev->lock);
}
