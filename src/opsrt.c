/* opsrt.c - events, health thread, metrics, signals and readiness of one mount
 * (see opsrt.h). Lock: ops->lock guards the health state and the stop flag; it is
 * never held while the backend is called or a signal is handled. A group's
 * members_lock guards its member list; it may be taken before a member's lock,
 * never after. */
#include "config.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/log.h"
#include "src/metrics.h"
#include "src/opsrt.h"
#include "src/sdnotify.h"

struct health_state {
	bool checked;
	bool ok;
	uint64_t checks, failures;
	unsigned consecutive;
	int64_t last_check, last_ok; /* seconds since the epoch */
	char last_error[256];
};

struct ops {
	struct ops_conf conf;
	char *metrics_addr;
	struct events *events;

	struct store *st;    /* borrowed (owned by the cache) while attached */
	struct cache *cache; /* borrowed while attached */
	struct metrics_server *msrv;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;		    /* guarded by lock: the signal thread ends */
	bool health_stop;	    /* guarded by lock: the health thread ends */
	struct health_state health; /* guarded by lock */

	bool have_health, have_signals;
	pthread_t health_thread, signal_thread;
	int saved_level; /* signal thread only: level before SIGUSR2 */

	struct ops *group;	      /* the mount-level ops of a member, else NULL */
	pthread_mutex_t members_lock; /* guards members and nmembers */
	struct ops **members;	      /* a group's backends, in creation order */
	size_t nmembers;
};

/* Reopen the event logs of ops and of every member of it. 0 or the first -errno. */
static int reopen_events(struct ops *ops)
{
	int rc = events_reopen(ops->events);

	pthread_mutex_lock(&ops->members_lock);
	for (size_t i = 0; i < ops->nmembers; i++) {
		int r = events_reopen(ops->members[i]->events);

		if (r && !rc)
			rc = r;
	}
	pthread_mutex_unlock(&ops->members_lock);
	return rc;
}

static void rfc3339(int64_t t, char out[32])
{
	time_t s = (time_t)t;
	struct tm tm;

	gmtime_r(&s, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- signals ---- */

static void *signal_main(void *arg)
{
	struct ops *ops = arg;
	sigset_t set;
	struct timespec tick = {.tv_sec = 0, .tv_nsec = 200 * 1000000L};

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	for (;;) {
		bool stop;
		int sig;

		pthread_mutex_lock(&ops->lock);
		stop = ops->stopping;
		pthread_mutex_unlock(&ops->lock);
		if (stop)
			break;
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGUSR1) {
			int a = log_reopen(), b = reopen_events(ops);

			if (a || b)
				log_warn("SIGUSR1: reopening the log files failed: %s",
					 strerror(-(a ? a : b)));
			else
				log_notice("SIGUSR1: log files reopened");
		} else if (sig == SIGUSR2) {
			if (log_level_current < LOG_DEBUG) {
				ops->saved_level = log_level_current;
				log_level_current = LOG_DEBUG;
				log_notice("SIGUSR2: debug logging on");
			} else {
				log_level_current = ops->saved_level;
				log_notice("SIGUSR2: debug logging off");
			}
		}
	}
	return NULL;
}

/* ---- health ---- */

static void health_once(struct ops *ops)
{
	struct lexfs_err err = {0};
	int timeout = ops->conf.health_timeout_ms > 0 ? ops->conf.health_timeout_ms : 10000;
	int rc = store_health_check(ops->st, timeout, &err);
	int64_t now = (int64_t)time(NULL);
	bool was_ok, was_checked;
	unsigned consecutive;

	pthread_mutex_lock(&ops->lock);
	was_ok = ops->health.ok;
	was_checked = ops->health.checked;
	ops->health.checked = true;
	ops->health.checks++;
	ops->health.last_check = now;
	if (rc == 0) {
		ops->health.ok = true;
		ops->health.consecutive = 0;
		ops->health.last_ok = now;
	} else {
		ops->health.ok = false;
		ops->health.failures++;
		ops->health.consecutive++;
		snprintf(ops->health.last_error, sizeof(ops->health.last_error),
			 "LEXFS-%03d %s: %.200s", (int)err.code, strerror(-rc),
			 err.message[0] ? err.message : "health check failed");
	}
	consecutive = ops->health.consecutive;
	pthread_mutex_unlock(&ops->lock);

	/* Log transitions only, so an outage is two lines, not one per interval. */
	if (rc != 0 && (was_ok || !was_checked))
		log_warn("health: backend %s is failing: %s (%s); operations fail with EIO "
			 "until it answers again",
			 store_backend_name(ops->st), strerror(-rc), err.message);
	else if (rc == 0 && was_checked && !was_ok)
		log_notice("health: backend %s answers again after %u failed checks",
			   store_backend_name(ops->st), consecutive);
}

static void *health_main(void *arg)
{
	struct ops *ops = arg;

	for (;;) {
		struct timespec until;
		bool stop;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += ops->conf.health_interval_s;
		pthread_mutex_lock(&ops->lock);
		while (!ops->health_stop &&
		       pthread_cond_timedwait(&ops->cond, &ops->lock, &until) != ETIMEDOUT)
			;
		stop = ops->health_stop;
		pthread_mutex_unlock(&ops->lock);
		if (stop)
			break;
		health_once(ops);
	}
	return NULL;
}

/* ---- metrics ---- */

static char *render_cb(void *arg)
{
	return ops_metrics_text(arg);
}

/* One backend's samples: its store statistics into b, the rest into mv, every one
 * labelled with the backend's name. */
static void metrics_collect(struct ops *ops, struct metrics_backend *b, struct metrics_values *mv)
{
	struct events_counters ec;
	struct health_state h;
	char *cj;
	const char *be;

	metrics_backend_from_store(b, ops->st);
	be = b->backend;
	cj = ops->cache ? cache_stats_json(ops->cache) : NULL;
	if (cj) {
		json_t *root = json_loads(cj, 0, NULL);

		/* Store statistics are rendered with labels above, not again here. */
		if (root && json_is_object(root)) {
			char *flat;

			json_object_del(root, "store");
			flat = json_dumps(root, JSON_COMPACT);
			if (flat)
				metrics_add_json_label(mv, "cache", flat, "backend", be);
			free(flat);
		}
		json_decref(root);
		free(cj);
	}
	events_counters(ops->events, &ec);
	metrics_values_add(mv, "lexfs_events_emitted_total", METRICS_COUNTER,
			   "Events recorded (FileUploaded, FileDownloaded, FileDeleted)", "backend",
			   be, (double)ec.emitted);
	metrics_values_add(mv, "lexfs_events_dropped_total", METRICS_COUNTER,
			   "Events dropped for hooks and webhook (queue full)", "backend", be,
			   (double)ec.dropped);
	metrics_values_add(mv, "lexfs_hooks_run_total", METRICS_COUNTER, "Hook commands run",
			   "backend", be, (double)ec.hooks_run);
	metrics_values_add(mv, "lexfs_hook_failures_total", METRICS_COUNTER,
			   "Hook commands that failed or timed out", "backend", be,
			   (double)ec.hook_failures);
	metrics_values_add(mv, "lexfs_events_queued", METRICS_GAUGE,
			   "Events waiting for hooks and webhook", "backend", be,
			   (double)ec.queued);
	pthread_mutex_lock(&ops->lock);
	h = ops->health;
	pthread_mutex_unlock(&ops->lock);
	metrics_values_add(mv, "lexfs_backend_up", METRICS_GAUGE,
			   "1 when the last health check passed (or none ran yet)", "backend", be,
			   !h.checked || h.ok ? 1 : 0);
	metrics_values_add(mv, "lexfs_health_checks_total", METRICS_COUNTER,
			   "Periodic health checks", "backend", be, (double)h.checks);
	metrics_values_add(mv, "lexfs_health_failures_total", METRICS_COUNTER,
			   "Periodic health checks that failed", "backend", be, (double)h.failures);
}

char *ops_metrics_text(struct ops *ops)
{
	struct metrics_backend *b;
	struct metrics_values mv = {0};
	char *text = NULL;
	size_t nb = 0;

	if (!ops)
		return NULL;
	pthread_mutex_lock(&ops->members_lock);
	b = calloc(ops->nmembers + 1, sizeof(*b));
	if (b && ops->st)
		metrics_collect(ops, &b[nb++], &mv);
	for (size_t i = 0; b && i < ops->nmembers; i++) {
		if (ops->members[i]->st)
			metrics_collect(ops->members[i], &b[nb++], &mv);
	}
	pthread_mutex_unlock(&ops->members_lock);
	if (b && nb > 0)
		text = metrics_render(b, nb, &mv);
	metrics_values_free(&mv);
	free(b);
	return text;
}

char *ops_stats_json(struct ops *ops, const char *cache_json)
{
	json_t *root, *h, *e;
	struct health_state hs;
	struct events_counters ec;
	char when[32];
	char *out;

	if (!cache_json)
		return NULL;
	root = ops ? json_loads(cache_json, 0, NULL) : NULL;
	if (!root || !json_is_object(root)) {
		json_decref(root);
		return strdup(cache_json);
	}
	pthread_mutex_lock(&ops->lock);
	hs = ops->health;
	pthread_mutex_unlock(&ops->lock);
	h = json_object();
	json_object_set_new(h, "state",
			    json_string(!hs.checked ? "unknown"
					: hs.ok	    ? "ok"
						    : "failing"));
	json_object_set_new(h, "interval_s", json_integer(ops->conf.health_interval_s));
	json_object_set_new(h, "checks", json_integer((json_int_t)hs.checks));
	json_object_set_new(h, "failures", json_integer((json_int_t)hs.failures));
	json_object_set_new(h, "consecutive_failures", json_integer(hs.consecutive));
	if (hs.last_check) {
		rfc3339(hs.last_check, when);
		json_object_set_new(h, "last_check", json_string(when));
	} else {
		json_object_set_new(h, "last_check", json_null());
	}
	if (hs.last_ok) {
		rfc3339(hs.last_ok, when);
		json_object_set_new(h, "last_ok", json_string(when));
	} else {
		json_object_set_new(h, "last_ok", json_null());
	}
	json_object_set_new(h, "last_error",
			    hs.last_error[0]
				? json_stringn_nocheck(hs.last_error, strlen(hs.last_error))
				: json_null());
	json_object_set_new(root, "health", h);
	events_counters(ops->events, &ec);
	e = json_object();
	json_object_set_new(e, "emitted", json_integer((json_int_t)ec.emitted));
	json_object_set_new(e, "dropped", json_integer((json_int_t)ec.dropped));
	json_object_set_new(e, "queued", json_integer((json_int_t)ec.queued));
	json_object_set_new(e, "hooks_run", json_integer((json_int_t)ec.hooks_run));
	json_object_set_new(e, "hook_failures", json_integer((json_int_t)ec.hook_failures));
	json_object_set_new(e, "webhook_sent", json_integer((json_int_t)ec.webhook_sent));
	json_object_set_new(e, "webhook_failures", json_integer((json_int_t)ec.webhook_failures));
	json_object_set_new(root, "events", e);
	out = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	return out ? out : strdup(cache_json);
}

/* ---- life cycle ---- */

int ops_create(const struct ops_conf *conf, struct ops **out)
{
	struct ops *ops;
	sigset_t set;
	int ret;

	*out = NULL;
	ops = calloc(1, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	ops->conf = *conf;
	ops->saved_level = log_level_current;
	pthread_mutex_init(&ops->lock, NULL);
	pthread_cond_init(&ops->cond, NULL);
	pthread_mutex_init(&ops->members_lock, NULL);
	if (conf->group) {
		/* The group runs signals and the metrics server for its members. */
		struct ops *g = conf->group, **nm;

		ops->group = g;
		pthread_mutex_lock(&g->members_lock);
		nm = realloc(g->members, (g->nmembers + 1) * sizeof(*nm));
		if (nm) {
			g->members = nm;
			g->members[g->nmembers++] = ops;
		}
		pthread_mutex_unlock(&g->members_lock);
		ops->conf.metrics_addr = NULL;
		ret = -ENOMEM;
		if (!nm)
			goto fail;
		goto events;
	}
	if (conf->metrics_addr && conf->metrics_addr[0]) {
		ops->metrics_addr = strdup(conf->metrics_addr);
		if (!ops->metrics_addr) {
			ret = -ENOMEM;
			goto fail;
		}
	}
	ops->conf.metrics_addr = NULL;

	/* Every thread made from here on inherits the mask; only the signal thread
	 * takes SIGUSR1/SIGUSR2, so the handlers may lock and allocate. */
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	ret = -pthread_create(&ops->signal_thread, NULL, signal_main, ops);
	if (ret)
		goto fail;
	ops->have_signals = true;

events:
	if (conf->events.log_path || conf->events.on_stored || conf->events.on_deleted ||
	    conf->events.webhook_url) {
		ret = events_create(&conf->events, &ops->events);
		if (ret)
			goto fail;
	}
	*out = ops;
	return 0;
fail:
	ops_destroy(ops);
	return ret;
}

struct events *ops_events(struct ops *ops)
{
	return ops ? ops->events : NULL;
}

int ops_attach(struct ops *ops, struct store *st, struct cache *cache)
{
	int ret;

	ops->st = st;
	ops->cache = cache;
	if (ops->conf.health_interval_s > 0) {
		ret = -pthread_create(&ops->health_thread, NULL, health_main, ops);
		if (ret)
			return ret;
		ops->have_health = true;
	}
	if (ops->metrics_addr) {
		ret = metrics_server_start(ops->metrics_addr, render_cb, ops, &ops->msrv);
		if (ret == -EPERM) {
			log_err("metrics_addr %s: only loopback addresses (127.0.0.1:PORT, "
				"[::1]:PORT, localhost:PORT) are served",
				ops->metrics_addr);
			return ret;
		}
		if (ret) {
			log_err("metrics_addr %s: %s", ops->metrics_addr, strerror(-ret));
			return ret;
		}
		log_notice("metrics served on http://%s/metrics (port %d)", ops->metrics_addr,
			   metrics_server_port(ops->msrv));
	}
	return 0;
}

void ops_ready(struct ops *ops, const char *mountpoint)
{
	char state[4200];
	int rc;

	if (!ops || ops->group)
		return; /* the group tells systemd, once per mount */
	snprintf(state, sizeof(state), "READY=1\nSTATUS=mounted on %s", mountpoint);
	rc = sd_notify_send(state);
	if (rc < 0)
		log_warn("systemd notification failed: %s", strerror(-rc));
}

int ops_metrics_port(struct ops *ops)
{
	return ops ? metrics_server_port(ops->msrv) : 0;
}

void ops_detach(struct ops *ops)
{
	if (!ops)
		return;
	metrics_server_stop(ops->msrv);
	ops->msrv = NULL;
	if (ops->have_health) {
		pthread_mutex_lock(&ops->lock);
		ops->health_stop = true;
		pthread_cond_broadcast(&ops->cond);
		pthread_mutex_unlock(&ops->lock);
		pthread_join(ops->health_thread, NULL);
		ops->have_health = false;
	}
	ops->st = NULL;
	ops->cache = NULL;
}

void ops_destroy(struct ops *ops)
{
	if (!ops)
		return;
	ops_detach(ops);
	if (ops->group) {
		struct ops *g = ops->group;

		pthread_mutex_lock(&g->members_lock);
		for (size_t i = 0; i < g->nmembers; i++) {
			if (g->members[i] == ops) {
				memmove(&g->members[i], &g->members[i + 1],
					(g->nmembers - i - 1) * sizeof(g->members[0]));
				g->nmembers--;
				break;
			}
		}
		pthread_mutex_unlock(&g->members_lock);
	} else {
		sd_notify_send("STOPPING=1");
	}
	pthread_mutex_lock(&ops->lock);
	ops->stopping = true;
	pthread_cond_broadcast(&ops->cond);
	pthread_mutex_unlock(&ops->lock);
	if (ops->have_signals)
		pthread_join(ops->signal_thread, NULL);
	events_destroy(ops->events);
	free(ops->metrics_addr);
	free(ops->members);
	pthread_cond_destroy(&ops->cond);
	pthread_mutex_destroy(&ops->lock);
	pthread_mutex_destroy(&ops->members_lock);
	free(ops);
}
