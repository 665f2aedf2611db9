/* s3_xml.h - the S3 XML documents lexfs reads and writes (libxml2).
 *
 * Parsers never trust the server: a malformed document gives -EIO (or -EPROTO
 * where noted), never a crash; every string they return is the caller's.
 */
#ifndef LEXFS_S3_XML_H
#define LEXFS_S3_XML_H

#include <stdbool.h>
#include <stddef.h>
#include "drivers/driver.h"
#include "src/buf.h"

/* <Error><Code>..</Code><Message>..</Message></Error>: 0 when the document is an
 * Error (code/msg filled, possibly empty), -ENOENT when it is not one. */
int s3_xml_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
		 size_t msglen);

/* ListObjectsV2 result into page (items in key order, prefixes first merged by
 * key). url_decode: keys/prefixes are URL-encoded (encoding-type=url). */
int s3_xml_list(const char *body, size_t len, struct lexfs_list_page *page);

/* ListMultipartUploadsResult into page: each <Upload>'s Key, UploadId and Initiated,
 * in the server's order (key, then initiation). When IsTruncated, next_token is
 * "NextUploadIdMarker\nNextKeyMarker" (s3_mpu.c). Keys and markers are URL-decoded
 * when the document says EncodingType url. */
int s3_xml_uploads(const char *body, size_t len, struct lexfs_upload_page *page);

/* The text of the first element named `name` anywhere in the document (UploadId,
 * ETag of CopyObjectResult / CopyPartResult ...). Caller frees *out. -ENOENT when
 * absent. */
int s3_xml_find(const char *body, size_t len, const char *name, char **out);

/* DeleteObjects result: the first <Error> whose Code is not NoSuchKey; 0 when none. */
int s3_xml_delete_errors(const char *body, size_t len, char *key, size_t keylen, char *code,
			 size_t codelen);

/* Escape text for an XML element body into b. */
int s3_xml_escape(struct buf *b, const char *s);

/* Strip the quotes of an ETag into out (size outlen). */
void s3_etag_unquote(const char *in, char *out, size_t outlen);

#endif
