/* pathkey.h - FUSE paths <-> store keys, and which listed names can be a path.
 *
 * A FUSE path is absolute ("/", "/a/b"); a key is relative to the bucket and
 * carries the mount prefix ("" or "photos/2024/"). A directory's key ends in '/'.
 * Pure functions: no I/O, no state, unit-tested in tests/unit/.
 */
#ifndef LEXFS_PATHKEY_H
#define LEXFS_PATHKEY_H

#include <stdbool.h>
#include <stddef.h>

/* The longest single name a listing may show (NAME_MAX). */
#define PATHKEY_NAME_MAX 255

/* Normalise a mount prefix: "" stays "", "a/b" and "/a/b/" become "a/b/".
 * Caller frees; NULL on ENOMEM or when the prefix itself holds an empty, "." or
 * ".." component. */
char *pathkey_prefix(const char *prefix);

/* The key of path under prefix; dir adds the trailing '/'. The root with dir
 * gives the prefix itself (possibly ""). Caller frees; NULL on ENOMEM. */
char *pathkey_key(const char *prefix, const char *path, bool dir);

/* Why a listed name cannot be a directory entry, or NULL when it can. The name
 * is what follows the listing prefix (trailing '/' of a common prefix removed). */
const char *pathkey_name_bad(const char *name, size_t len);

/* Is key a strict descendant of dirkey (which ends in '/' or is "")? */
bool pathkey_under(const char *dirkey, const char *key);

#endif
