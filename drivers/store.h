/* store.h - the one entry point to a backend.
 *
 * struct store wraps a driver instance. Every call goes through a store_*()
 * function, which: supplies the generic fallback for a NULL optional slot (copy =
 * download + upload, move = copy + remove, multipart = buffered single upload,
 * set_meta = copy onto itself, remove_many = remove each), retries retryable
 * failures with capped exponential backoff and jitter (unless the driver retries
 * itself: LEXFS_CAP_OWN_RETRY), traces each call (-o trace=store) and keeps
 * per-operation statistics. Thread-safe.
 */
#ifndef LEXFS_STORE_H
#define LEXFS_STORE_H

#include <stdint.h>
#include <stdio.h>
#include "drivers/driver.h"

enum store_op {
	STORE_OP_HEALTH,
	STORE_OP_UPLOAD,
	STORE_OP_DOWNLOAD,
	STORE_OP_INFO,
	STORE_OP_LIST,
	STORE_OP_REMOVE,
	STORE_OP_GET_URL,
	STORE_OP_EXISTS,
	STORE_OP_COPY,
	STORE_OP_MOVE,
	STORE_OP_SET_META,
	STORE_OP_REMOVE_MANY,
	STORE_OP_MP_BEGIN,
	STORE_OP_MP_PART,
	STORE_OP_MP_COMPLETE,
	STORE_OP_MP_ABORT,
	STORE_OP_PRESIGN,
	STORE_OP_MP_LIST,
	STORE_OP_COUNT
};

struct store_opstat {
	uint64_t calls;
	uint64_t errors;
	uint64_t retries;
	uint64_t bytes; /* bytes moved (upload/part: sent, download: received) */
	uint64_t usec;  /* total wall time */
};

struct store_conf {
	const char *driver;       /* registry name */
	const struct lexfs_driver *table; /* NULL: look `driver` up in the registry */
	const char *backend_name; /* "default" or the named backend */
	const struct settings *settings;
	const char *plugin_dir;   /* NULL: none */
	int timeout_ms;
	int max_retries;          /* default 4 */
	int retry_base_ms;        /* default 100 */
	int retry_max_ms;         /* default 5000 */
};

struct store;
typedef struct lexfs_mpu_handle store_mpu;

/* Resolve the driver by name (built-in, unavailable stub, or plugin), open it.
 * *out is the caller's; destroy with store_destroy. */
int store_create(const struct store_conf *conf, struct store **out, struct lexfs_err *err);
void store_destroy(struct store *st);

const struct lexfs_driver *store_driver(const struct store *st);
const char *store_backend_name(const struct store *st);
unsigned store_caps(const struct store *st);

int store_health_check(struct store *st, int timeout_ms, struct lexfs_err *err);
int store_upload(struct store *st, const char *key, const struct lexfs_src *src,
		 const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		 struct lexfs_err *err);
int store_download(struct store *st, const char *key, uint64_t off, uint64_t len,
		   lexfs_sink_fn sink, void *arg, struct lexfs_err *err);
/* Convenience: download [off, off+len) into buf; *got is the number of bytes read. */
int store_read(struct store *st, const char *key, uint64_t off, size_t len, void *buf,
	       size_t *got, struct lexfs_err *err);
/* Convenience: download [off, off+len) into fd at fd_off (pwrite). */
int store_download_fd(struct store *st, const char *key, uint64_t off, uint64_t len, int fd,
		      off_t fd_off, uint64_t *got, struct lexfs_err *err);
int store_info(struct store *st, const char *key, struct lexfs_objinfo *out,
	       struct lexfs_err *err);
/* info of n keys at once, at most `parallel` calls in flight (a listing that does
 * not carry metadata costs a HEAD per object; in parallel they cost about n /
 * parallel round trips). rcs[i] is 0 (outs[i] filled: caller frees each with
 * objinfo_free), -ENOENT or -errno. Returns 0; when threads cannot be started the
 * calls run one after another in the caller's thread. */
int store_info_many(struct store *st, const char *const *keys, size_t n, unsigned parallel,
		    struct lexfs_objinfo *outs, int *rcs);
int store_list(struct store *st, const char *prefix, const char *delim, const char *token,
	       unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err);
int store_remove(struct store *st, const char *key, struct lexfs_err *err);
int store_remove_many(struct store *st, const char *const *keys, size_t n,
		      struct lexfs_err *err);
int store_get_url(struct store *st, const char *key, char **url, struct lexfs_err *err);
int store_exists(struct store *st, const char *key, struct lexfs_err *err);
int store_copy(struct store *st, const char *src, const char *dst,
	       const struct lexfs_put_opts *opts, struct lexfs_err *err);
int store_move(struct store *st, const char *src, const char *dst, struct lexfs_err *err);
int store_set_meta(struct store *st, const char *key, const struct lexfs_put_opts *opts,
		   struct lexfs_err *err);
int store_presign(struct store *st, const char *key, enum lexfs_method method,
		  int64_t expires_s, char **url, struct lexfs_err *err);
int store_control(struct store *st, const char *name, const char *value,
		  struct lexfs_err *err);

/* Multipart through the store: native when the driver has it, otherwise parts
 * are kept in memory (bounded by the caller's part sizes) and uploaded in one
 * piece at complete. complete and abort free *mpu. */
int store_mp_begin(struct store *st, const char *key, const struct lexfs_put_opts *opts,
		   store_mpu **mpu, struct lexfs_err *err);
int store_mp_part(struct store *st, store_mpu *mpu, unsigned partno,
		  const struct lexfs_src *src, struct lexfs_err *err);
int store_mp_complete(struct store *st, store_mpu *mpu, unsigned nparts,
		      struct lexfs_objinfo *out, struct lexfs_err *err);
int store_mp_abort(struct store *st, store_mpu *mpu, struct lexfs_err *err);

/* The server's clock (driver.h, server_time): the Date of a recent response and
 * this machine's clock when it came. When the driver has seen no response yet,
 * one health check (timeout_ms) is made first. -ENOTSUP for a driver without the
 * operation (local, memory: there is no other clock). */
int store_server_time(struct store *st, int timeout_ms, int64_t *server, int64_t *local,
		      struct lexfs_err *err);

/* Incomplete multipart uploads (driver.h, mp_list / mp_abort_id): -ENOTSUP when
 * the driver cannot list them. mp_list calls are counted as "mp_list", aborts as
 * "mp_abort". Free the page with upload_page_free. */
int store_mp_list(struct store *st, const char *prefix, const char *token, unsigned max_uploads,
		  struct lexfs_upload_page *out, struct lexfs_err *err);
int store_mp_abort_id(struct store *st, const char *key, const char *upload_id,
		      struct lexfs_err *err);

/* Part size for an object of (estimated) size: at least the driver's minimum and
 * `want`, and large enough that max_parts parts cover max(size, max_object_size
 * when size is unknown). Constant for the whole upload (equal non-final parts). */
uint64_t store_part_size(const struct store *st, uint64_t size_hint, uint64_t want);

void store_stats(const struct store *st, struct store_opstat out[STORE_OP_COUNT]);
void store_stats_reset(struct store *st);
const char *store_op_name(enum store_op op);
/* Statistics as a JSON object text {"upload":{"calls":..},...}; caller frees. */
char *store_stats_json(const struct store *st);

/* Registry. */
/* The driver named `name`: built-in (possibly the unavailable stub of a driver
 * left out at build time) or a plugin from plugin_dir, whose dlopen handle goes to
 * *handle (dlclose it after the driver is closed). NULL with a reason in `why`. */
const struct lexfs_driver *registry_load(const char *name, const char *plugin_dir, void **handle,
					 char *why, size_t whylen);
/* Names of built-in drivers, NULL-terminated. */
const char *const *registry_names(void);
bool registry_available(const char *name);

#endif
