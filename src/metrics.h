/* metrics.h - Prometheus text exposition (format 0.0.4) of lexfs's counters, and
 * an optional loopback HTTP server for it (-o metrics_addr=127.0.0.1:PORT).
 *
 * Families rendered from store statistics (drivers/store.h), labelled
 * backend="..." and op="upload|download|info|list|..." (store_op_name):
 *   lexfs_store_requests_total         counter  calls
 *   lexfs_store_errors_total           counter  calls that failed
 *   lexfs_store_retries_total          counter  retries
 *   lexfs_store_bytes_total            counter  bytes moved by the op
 *   lexfs_store_request_duration_seconds summary _sum / _count (wall time)
 *   lexfs_store_bytes_up_total         counter  upload + multipart parts, per backend
 *   lexfs_store_bytes_down_total       counter  download, per backend
 * Extra values a caller passes (struct metrics_value): cache hits and misses,
 * dirty bytes, upload queue, events ... each rendered as its own family.
 * metrics_add_json turns the numeric members of a JSON object (for example
 * cache_stats_json) into values named lexfs_<prefix>_<member>.
 *
 * Every function is thread-safe as long as the inputs are not changed meanwhile.
 */
#ifndef LEXFS_METRICS_H
#define LEXFS_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include "drivers/store.h"

struct metrics_backend {
	const char *backend; /* label value, e.g. "default" or a named backend */
	const char *driver;  /* label value, e.g. "s3" */
	struct store_opstat stats[STORE_OP_COUNT];
};

enum metrics_type { METRICS_GAUGE, METRICS_COUNTER, METRICS_UNTYPED };

struct metrics_value {
	char name[96]; /* full metric name, [a-zA-Z_:][a-zA-Z0-9_:]* */
	char help[128];
	enum metrics_type type;
	char label_name[32]; /* "" for none */
	char label_value[96];
	double value;
};

/* A growable list of extra values. */
struct metrics_values {
	struct metrics_value *v;
	size_t n;
};

void metrics_values_free(struct metrics_values *mv);
/* Append one value; name is sanitised to the metric name alphabet. 0 or -ENOMEM. */
int metrics_values_add(struct metrics_values *mv, const char *name, enum metrics_type type,
		       const char *help, const char *label_name, const char *label_value,
		       double value);
/* Every number (integer, real, true/false) in the JSON object text, nested
 * objects flattened with '_', as lexfs_<prefix>_<path> (untyped, or counter when
 * the path ends in "_total", "hits", "misses", "errors", "calls", "retries" or
 * "bytes"). Strings and arrays are skipped. 0, -EINVAL (not a JSON object),
 * -ENOMEM. */
int metrics_add_json(struct metrics_values *mv, const char *prefix, const char *json_text);
/* The same, every value with one label (backend="photos"), so the JSON of several
 * backends can share one exposition. */
int metrics_add_json_label(struct metrics_values *mv, const char *prefix, const char *json_text,
			   const char *label_name, const char *label_value);

/* Fill b from a store (stats, backend and driver names). */
void metrics_backend_from_store(struct metrics_backend *b, const struct store *st);

/* The exposition text: backends' families, then the extra values in order
 * (values sharing a name are one family, HELP/TYPE from the first). Caller frees;
 * NULL on ENOMEM. */
char *metrics_render(const struct metrics_backend *b, size_t nb, const struct metrics_values *mv);

/* ---- loopback HTTP server ---- */

/* Produces the body for GET /metrics; returns malloc'd text (caller = server frees)
 * or NULL (answered with 500). Called on the server thread. */
typedef char *(*metrics_render_fn)(void *arg);

struct metrics_server;

/* addr is "127.0.0.1:PORT", "[::1]:PORT" or "localhost:PORT" (PORT 0: any free
 * port). Any other address is refused with -EPERM (metrics are not for the
 * network: put a proxy in front if you must). -EINVAL for a malformed address,
 * -errno from bind. Serves GET /metrics (200), other paths 404, other methods
 * 405, one connection at a time with a 2 s read timeout. */
int metrics_server_start(const char *addr, metrics_render_fn fn, void *arg,
			 struct metrics_server **out);
/* The bound port (useful with PORT 0). */
int metrics_server_port(const struct metrics_server *srv);
/* Stops the thread and closes the socket; NULL is fine. */
void metrics_server_stop(struct metrics_server *srv);

#endif
