/* s3_int.h - what the S3 driver's files share: s3.c (requests, objects, multipart
 * uploads of one writer, the driver tables) and s3_mpu.c (listing and aborting
 * the incomplete multipart uploads of a bucket). struct lexfs_drv stays private
 * to s3.c; the other files reach the bucket only through s3_perform.
 */
#ifndef LEXFS_S3_INT_H
#define LEXFS_S3_INT_H

#include <stdbool.h>

#include "drivers/driver.h"
#include "src/http.h"

/* One S3 request: bucket-level when key is NULL. */
struct s3_call {
	const char *method;
	const char *key;   /* NULL: bucket-level */
	const char *query; /* encoded, NULL when none */
	const struct lexfs_src *body;
	struct http_headers headers; /* moved into the request; the caller frees */
	lexfs_sink_fn sink;
	void *sink_arg;
	const char *trace; /* what to show in trace lines */
	bool no_retry;
};

/* Run one S3 request: signed (again on every attempt), retried by the HTTP layer,
 * sent once more after a RequestTimeTooSkewed with the server's clock. 0 when the
 * exchange completed (resp->status says how), or -errno for a transport failure
 * (err filled). resp must be initialised; the caller frees it and call->headers. */
int s3_perform(struct lexfs_drv *d, struct s3_call *call, struct http_resp *resp,
	       struct lexfs_err *err);

/* Map a non-2xx response (or a 200 carrying <Error>) to -errno, with a message
 * naming op, the bucket and key (NULL: the bucket). */
int s3_status_error(struct lexfs_drv *d, const struct http_resp *resp, const char *op,
		    const char *key, struct lexfs_err *err);

/* The mp_list (s3_mpu.c) and mp_abort_id (s3.c) slots (driver.h). */
int s3_mp_list(struct lexfs_drv *d, const char *prefix, const char *token, unsigned max,
	       struct lexfs_upload_page *out, struct lexfs_err *err);
int s3_mp_abort_id(struct lexfs_drv *d, const char *key, const char *upload_id,
		   struct lexfs_err *err);

#endif
