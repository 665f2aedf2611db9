/* fs_route.h - the FUSE operations of a mount of named backends (storage.backends).
 *
 * The root of the mount lists one directory per backend; "/NAME/rest" is "/rest" of
 * that backend's fs layer (src/fs.h), which keeps its own store, cache, journal,
 * events and health. What the root itself answers:
 *
 *   getattr, readdir    a directory, mode 0555 & ~umask, mount uid/gid, listing the
 *                       backend names
 *   mkdir, create, symlink, link, unlink, rmdir and rename that would add, remove
 *   or rename an entry of the root   EPERM: its entries are the configured
 *                       backends, for everyone (root included), so it is not a
 *                       permission a chmod could grant (EACCES would say that)
 *   chmod, chown, utimens of the root   EPERM, for the same reason
 *   rename or link between two backends   EXDEV, so mv copies and deletes
 *   user.lexfs.stats    {"backends":{NAME:<that backend's stats>,...}, sums of
 *                       pending_uploads, dirty_bytes, bytes_in_flight,
 *                       upload_errors and fs.open_handles/open_dirs, and
 *                       health.state: failing if any backend fails, ok if all pass}
 *   user.lexfs.metrics  the Prometheus text of every backend (ops group)
 *   user.lexfs.invalidate (set)   passed to every backend
 *
 * A backend's own directory is its fs layer's root: its stats, metrics and
 * controls (user.lexfs.control.NAME) are set and read there.
 */
#ifndef LEXFS_FS_ROUTE_H
#define LEXFS_FS_ROUTE_H

#include <sys/types.h>

#include "src/fs.h"

struct ops;

struct route_conf {
	uid_t uid; /* owner of the root */
	gid_t gid;
	mode_t umask;
	struct ops *ops; /* the mount-level ops group (user.lexfs.metrics), or NULL */
};

struct route;

/* 0 or -ENOMEM. *out is the caller's; destroy with route_destroy. */
int route_create(const struct route_conf *conf, struct route **out);
/* Add a backend under `name` (config_backend_name_ok; not checked again here).
 * Takes ownership of *fs (NULLed) in all cases. 0, -EEXIST or -ENOMEM. */
int route_add(struct route *r, const char *name, struct fs **fs);
/* Destroys every backend's fs layer (each drains its uploads), the last added
 * first, then the router. */
void route_destroy(struct route *r);
/* Hand these and the struct route to fuse_new. */
const struct fuse_operations *route_operations(void);

#endif
