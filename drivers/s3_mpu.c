/* s3_mpu.c - the incomplete multipart uploads of a bucket: ListMultipartUploads
 * and AbortMultipartUpload by id (the mp_list and mp_abort_id slots, driver.h).
 *
 * A writer that dies between CreateMultipartUpload and Complete or Abort leaves
 * its parts on the server: billed, and invisible to object listings. S3 has
 * lifecycle rules for them, radosgw and most S3-compatible services need someone
 * to ask; lexfs doctor lists them and, with --abort-stale, aborts the old ones.
 *
 * Paging: S3 goes on after a (key-marker, upload-id-marker) pair. The page token
 * carries both as "UPLOAD-ID\nKEY": upload ids never hold a newline, keys may, so
 * the first newline splits them.
 *
 * Keys travel as XML text, not URL-encoded as in the object listing: asked for
 * encoding-type=url, radosgw encodes the keys but neither says so (no
 * <EncodingType>) nor encodes the markers, so a client cannot tell an encoded key
 * from a raw one. The cost: a key holding a control character XML cannot carry
 * makes the listing fail (the doctor then warns) instead of showing it.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/s3_int.h"
#include "drivers/s3_xml.h"
#include "src/buf.h"
#include "src/log.h"

/* The query of one ListMultipartUploads page into q. */
static int list_query(struct buf *q, const char *prefix, const char *token, unsigned max)
{
	char *ep = http_uri_encode(prefix, false), *ek = NULL, *eu = NULL, *id = NULL;
	const char *nl = token ? strchr(token, '\n') : NULL;
	int rc = -ENOMEM;

	if (token && !nl) {
		rc = -EINVAL;
		goto out;
	}
	if (nl) {
		id = strndup(token, (size_t)(nl - token));
		ek = http_uri_encode(nl + 1, false);
		eu = id ? http_uri_encode(id, false) : NULL;
		if (!ek || !eu)
			goto out;
	}
	if (!ep)
		goto out;
	rc = buf_addf(q, "max-uploads=%u&prefix=%s&uploads", max, ep);
	if (!rc && nl)
		rc = buf_addf(q, "&key-marker=%s&upload-id-marker=%s", ek, eu);
out:
	free(ep);
	free(ek);
	free(eu);
	free(id);
	return rc;
}

int s3_mp_list(struct lexfs_drv *d, const char *prefix, const char *token, unsigned max,
	       struct lexfs_upload_page *out, struct lexfs_err *err)
{
	struct s3_call call = {.method = "GET", .key = NULL, .trace = "(uploads)"};
	struct buf q = BUF_INIT(0);
	struct http_resp resp;
	int rc;

	memset(out, 0, sizeof(*out));
	http_resp_init(&resp);
	rc = list_query(&q, prefix, token, max); /* store_mp_list: prefix set, max 1..1000 */
	if (rc) {
		rc = rc == -EINVAL ? lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
						"ListMultipartUploads: not a page token of lexfs")
				   : lexfs_fail(err, LEXFS_E_STORAGE, ENOMEM, "out of memory");
		goto out;
	}
	call.query = buf_cstr(&q);
	rc = s3_perform(d, &call, &resp, err);
	if (rc)
		goto out;
	if (resp.status < 200 || resp.status >= 300) {
		rc = s3_status_error(d, &resp, "ListMultipartUploads",
				     *prefix ? prefix : NULL, err);
		goto out;
	}
	rc = s3_xml_uploads(resp.body.data, resp.body.len, out);
	if (rc)
		rc = lexfs_fail(err, LEXFS_E_STORAGE, -rc,
				"ListMultipartUploads: the server's answer could not be parsed");
	else
		log_trace(LOGC_S3, "s3: ListMultipartUploads %s: %zu uploads%s", prefix, out->n,
			  out->next_token ? ", more" : "");
out:
	http_headers_free(&call.headers);
	http_resp_free(&resp);
	buf_free(&q);
	return rc;
}
