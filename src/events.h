/* events.h - the seed's storage events (FileUploaded, FileDownloaded, FileDeleted),
 * an event log, hooks and an optional webhook.
 *
 * Who emits what (the cache and fs layers call events_emit):
 *   FileUploaded    after an object is durable in the store (upload or multipart
 *                   complete succeeded), with size and etag when known.
 *   FileDownloaded  once per open that read data from the store.
 *   FileDeleted     after a delete succeeded.
 *   rename          is reported as FileDeleted for the old key followed by
 *                   FileUploaded for the new key (there is no Renamed event): a
 *                   consumer that mirrors the bucket needs nothing else.
 *
 * Event log (events.log = FILE): one JSON object per line, written synchronously
 * by events_emit with a single append write, so the log is complete and in order
 * even when hooks are slow:
 *   {"event":"FileUploaded","key":"a/b.txt","bucket":"photos","backend":"default",
 *    "size_bytes":12,"etag":"9a0364b9e99bb480dd25e1f0284c8555",
 *    "occurred_at":"2026-01-02T03:04:05.678Z"}
 * size_bytes and etag are null when unknown; occurred_at is RFC 3339, UTC.
 *
 * Hooks (events.on_stored for FileUploaded, events.on_deleted for FileDeleted):
 * the command text is split into argv by lexfs itself - whitespace separates words,
 * '...' and "..." quote, backslash escapes - and run with posix_spawnp, never
 * through a shell; no $variables or globs are expanded. Keys are untrusted input
 * and travel only in the environment and on stdin, never in argv:
 *   stdin: the event JSON (one line)
 *   env:   LEXFS_EVENT, LEXFS_KEY, LEXFS_BUCKET, LEXFS_BACKEND, LEXFS_SIZE (empty when
 *          unknown), LEXFS_ETAG (empty when unknown), LEXFS_OCCURRED_AT
 * A user who wants a shell writes it explicitly: on_stored = "/bin/sh -c 'echo \"$LEXFS_KEY\"'"
 * (the shell then sees the key only as a variable value, never as code).
 * Each hook runs in its own process group with a timeout (then SIGKILL to the
 * group); stdout is discarded, the first bytes of stderr go into the log line of
 * a failure (non-zero exit, signal, timeout).
 *
 * Webhook (events.webhook = URL): the event JSON POSTed (Content-Type:
 * application/json) for every event, retried with backoff on connection errors
 * and 5xx/429.
 *
 * Hooks and webhook run on one worker thread fed by a bounded queue; events_emit
 * never waits for them. When the queue is full the event is dropped for the
 * hooks (still in the event log) and a warning is logged.
 *
 * Thread safety: events_emit and events_counters may be called from any thread.
 */
#ifndef LEXFS_EVENTS_H
#define LEXFS_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

enum lexfs_event_type {
	LEXFS_EV_UPLOADED = 0, /* "FileUploaded" */
	LEXFS_EV_DOWNLOADED,   /* "FileDownloaded" */
	LEXFS_EV_DELETED,      /* "FileDeleted" */
};

struct lexfs_event {
	enum lexfs_event_type type;
	const char *key;     /* store key (required) */
	const char *bucket;  /* the backend's bucket / container / root name; NULL: the
			      * events_conf default, else "" */
	const char *backend; /* backend name; NULL: the events_conf default, else "default" */
	bool has_size;
	uint64_t size;	     /* size_bytes when has_size */
	const char *etag;    /* NULL or "": unknown */
	int64_t occurred_ms; /* milliseconds since the epoch; 0: now */
};

struct events_conf {
	const char *log_path;	 /* NULL: no event log */
	const char *on_stored;	 /* NULL: no hook for FileUploaded */
	const char *on_deleted;	 /* NULL: no hook for FileDeleted */
	const char *webhook_url; /* NULL: no webhook */
	int hook_timeout_ms;	 /* 0: 10000 */
	unsigned queue_max;	 /* 0: 1024 events waiting for hooks/webhook */
	int webhook_retries;	 /* 0: 3 (attempts after the first); -1: none */
	int webhook_timeout_ms;	 /* 0: 10000 */
	int retry_base_ms;	 /* 0: 500; webhook backoff base */
	const char *bucket;	 /* default of lexfs_event.bucket (bucket/container/root) */
	const char *backend;	 /* default of lexfs_event.backend; NULL: "default" */
};

struct events_counters {
	uint64_t emitted;    /* events_emit calls */
	uint64_t log_errors; /* event-log writes that failed */
	uint64_t hooks_run;
	uint64_t hook_failures; /* non-zero exit, signal, timeout, spawn error */
	uint64_t hook_timeouts;
	uint64_t webhook_sent;
	uint64_t webhook_failures; /* after all retries */
	uint64_t dropped;	   /* queue full */
	uint64_t queued;	   /* waiting now */
};

struct events;

/* Validate conf (hook commands must split), open the log (O_APPEND, created 0600),
 * start the worker when a hook or webhook is set. *out is the caller's; destroy
 * with events_destroy. 0 or -errno with a log line naming the problem. */
int events_create(const struct events_conf *conf, struct events **out);
/* Waits for queued hooks up to one hook timeout (plus webhook retries), then drops
 * the rest with a log line. NULL is fine. */
void events_destroy(struct events *ev);

/* Record ev: event log line now, hooks/webhook queued. Never blocks on a hook and
 * never fails the caller (failures are counted and logged). NULL ev: no-op. */
void events_emit(struct events *ev, const struct lexfs_event *e);

/* Reopen the event log (SIGUSR1, logrotate). 0 or -errno. */
int events_reopen(struct events *ev);
void events_counters(struct events *ev, struct events_counters *out);

/* "FileUploaded", ... */
const char *events_type_name(enum lexfs_event_type t);
/* The event as one line of JSON text (no newline). Caller frees; NULL on ENOMEM. */
char *events_json(const struct lexfs_event *e);
/* Split a hook command into argv (see above). *argv is NULL-terminated, caller
 * frees with events_argv_free. -EINVAL for an unterminated quote or an empty
 * command, -ENOMEM. */
int events_split_command(const char *cmd, char ***argv);
void events_argv_free(char **argv);

#endif
