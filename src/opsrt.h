/* opsrt.h - the operations side of one mount: events and hooks, the periodic health
 * check, Prometheus metrics (xattr and optional loopback server), SIGUSR1 (reopen
 * the log files) and SIGUSR2 (toggle debug logging), systemd readiness.
 *
 * Life cycle, as main() uses it:
 *   ops_create      before any thread exists (blocks SIGUSR1/SIGUSR2 in the caller so
 *                   every later thread inherits the mask; a signal thread takes them);
 *                   creates the event log and hook worker
 *   ops_events      handed to the cache (cache_conf.events) and kept by the fs layer
 *   ops_attach      once the stack is built: the health thread and the metrics
 *                   server start (both borrow the store and cache)
 *   ops_ready       after the mount appeared: READY=1 to systemd ($NOTIFY_SOCKET)
 *   ops_detach      before fs_destroy: health thread and metrics server stop
 *   ops_destroy     after fs_destroy (the final uploads have emitted their events)
 *
 * A mount of named backends (storage.backends) has one struct ops per backend (its
 * events, labelled with its name, and its health thread) and one mount-level ops,
 * the group, made first with no events and attached with no store: it alone runs
 * the signal thread (SIGUSR1 reopens every member's event log), the metrics server
 * and readiness, and its ops_metrics_text renders every member in one exposition.
 * Members name the group in ops_conf.group. Order: create the group before its
 * members; attach the members before the group; detach the group (its metrics
 * server reads the members' stores) before the members; destroy the members
 * before the group.
 *
 * Health state (ops_stats_json adds it to user.lexfs.stats as "health"):
 *   state "ok" | "failing" | "unknown" (no check yet), checks, failures,
 *   consecutive_failures, last_check / last_ok (RFC 3339), last_error.
 * A failing backend is not a fatal condition: operations fail with EIO after their
 * retries and work again as soon as the backend answers (no remount).
 */
#ifndef LEXFS_OPSRT_H
#define LEXFS_OPSRT_H

#include <stdbool.h>

#include "cache/cache.h"
#include "src/events.h"

struct ops_conf {
	struct events_conf events; /* log_path, hooks, webhook, bucket, backend */
	int health_interval_s;	   /* 0: no periodic check */
	int health_timeout_ms;	   /* 0: 10000 */
	const char *metrics_addr;  /* NULL: no metrics server */
	struct ops *group;	   /* NULL: this ops runs the mount's signals, metrics server
				    * and readiness; else the mount-level ops that does that
				    * for this backend (metrics_addr is then ignored) */
};

struct ops;

/* 0 or -errno (a message was logged). *out is the caller's. */
int ops_create(const struct ops_conf *conf, struct ops **out);
/* NULL when no event output is configured (events_emit accepts NULL). */
struct events *ops_events(struct ops *ops);
/* Start the health thread and the metrics server on this stack. 0 or -errno
 * (-EPERM: metrics_addr is not a loopback address). */
int ops_attach(struct ops *ops, struct store *st, struct cache *cache);
void ops_ready(struct ops *ops, const char *mountpoint);
void ops_detach(struct ops *ops);
void ops_destroy(struct ops *ops);

/* The Prometheus text of this backend, or of every member of a group (store,
 * cache, events, health; each sample labelled backend="..."). Caller frees; NULL
 * when there is nothing attached yet or on ENOMEM. */
char *ops_metrics_text(struct ops *ops);
/* cache_json with "health" and "events" members added. Caller frees; NULL ops or a
 * parse failure returns a copy of cache_json. */
char *ops_stats_json(struct ops *ops, const char *cache_json);
/* The metrics server's port (0 when none). */
int ops_metrics_port(struct ops *ops);

#endif
