/* gcs_int.h - what the GCS driver's files (gcs.c, gcs_upload.c) share. */
#ifndef LEXFS_GCS_INT_H
#define LEXFS_GCS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "drivers/driver.h"
#include "src/buf.h"
#include "src/gcs_auth.h"
#include "src/gcs_sign.h"
#include "src/http.h"

#define GCS_ALIGN (256u * 1024)		  /* resumable chunk granularity */
#define GCS_SIMPLE_MAX (8u * 1024 * 1024) /* larger uploads use a session */
#define GCS_CHUNK (16u * 1024 * 1024)	  /* chunk of a whole-object upload */

/* One driver instance; immutable after open (auth and http lock themselves). */
struct lexfs_drv {
	char *bucket;
	char *bucket_enc;
	char *base; /* scheme://authority */
	char *kms;  /* NULL or CMEK key name */
	struct gcs_endpoint ep;
	struct http_client *http;
	struct gcs_auth *auth;
	int max_retries;
};

/* Percent-encoded s (slashes too); caller frees. */
char *gcs_enc(const char *s);
/* URL of an object (or of the bucket's objects when key is NULL) under api
 * ("/storage/v1" or "/upload/storage/v1"), with an optional query; caller frees. */
char *gcs_obj_url(const struct lexfs_drv *d, const char *api, const char *key, const char *query);
/* http_perform with the bearer token; once more with a fresh token after a 401. */
int gcs_perform(struct lexfs_drv *d, struct http_req *req, struct http_resp *resp,
		struct lexfs_err *err);
/* A non-2xx response through lexfs_http_error (JSON reason or XML Code). -errno. */
int gcs_error(const struct http_resp *resp, const char *what, const char *key,
	      struct lexfs_err *err);
/* The response body as JSON (NULL when empty or not JSON); caller decrefs. */
json_t *gcs_resp_json(const struct http_resp *resp);
uint64_t gcs_json_u64(json_t *o, const char *name);
/* Object resource -> objinfo (key not set). 0 or -ENOMEM. */
int gcs_fill_info(json_t *r, struct lexfs_objinfo *out);
/* {"name", "contentType", "metadata"} as JSON text; caller frees. */
char *gcs_resource_json(const char *key, const struct lexfs_put_opts *opts, bool with_meta);
/* "&param=KMS" appended when CMEK is configured. */
int gcs_kms_query(const struct lexfs_drv *d, const char *param, struct buf *out);
void gcs_sleep_backoff(int attempt);

/* gcs_upload.c: the upload and multipart slots of the table. */
int gcs_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
	       const struct lexfs_put_opts *opts, struct lexfs_objinfo *out, struct lexfs_err *err);
int gcs_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts, lexfs_mpu **out,
		 struct lexfs_err *err);
int gcs_mp_part(lexfs_drv *d, lexfs_mpu *m, unsigned partno, const struct lexfs_src *src,
		struct lexfs_err *err);
int gcs_mp_complete(lexfs_drv *d, lexfs_mpu *m, unsigned nparts, struct lexfs_objinfo *out,
		    struct lexfs_err *err);
int gcs_mp_abort(lexfs_drv *d, lexfs_mpu *m, struct lexfs_err *err);

#endif
