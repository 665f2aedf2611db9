/* azure_int.h - helpers of the Azure Blob driver shared with its unit tests. */
#ifndef LEXFS_AZURE_INT_H
#define LEXFS_AZURE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "drivers/driver.h"

/* Metadata names. Azure metadata names must be C# identifiers ([A-Za-z_][A-Za-z0-9_]*)
 * and are case-insensitive. lexfs names are [a-z0-9_-]: those that are identifiers
 * (mode, uid, gid, mtime, most user xattrs) are stored as they are. Any other name,
 * and any name that starts with the escape prefix itself, is stored as
 *     AZURE_META_ESC + lower-case hex of the name's bytes
 * ("user-tag" -> "lexfs_h_757365722d746167"), which is an identifier and decodes
 * back exactly. Caller frees; NULL on ENOMEM. */
#define AZURE_META_ESC "lexfs_h_"
char *azure_meta_encode_name(const char *name);
/* Inverse; a name that is not an escape is lower-cased and returned as is. */
char *azure_meta_decode_name(const char *name);

/* Parse a List Blobs response. Names must start with strip (the mount's key
 * prefix, "" for none); the prefix is removed. Items (blobs and BlobPrefixes) come
 * out sorted by key; blobs carry size, mtime, etag, content type and (has_meta)
 * decoded metadata. 0, -EIO (not a List Blobs document) or -ENOMEM. */
int azure_parse_list(const char *xml, size_t len, const char *strip,
		     struct lexfs_list_page *out);

/* Code and message of an error body (<Error><Code/><Message/></Error>); empty
 * strings when the body is not one. The message is cut at its first line (the
 * rest is a request id and time). */
void azure_parse_error(const char *xml, size_t len, char *code, size_t codelen, char *msg,
		       size_t msglen);

/* Block size of a whole-object upload of `size` bytes: `want` (0: 8 MiB), grown to
 * whole MiB so that 50,000 blocks cover the object; 0 when even 50,000 blocks of
 * 4000 MiB (the service's largest) cannot. */
uint64_t azure_block_size(uint64_t size, uint64_t want);

#endif
