/* errors.h - lexfs error codes (the seed's table) and the one mapping to errno.
 *
 *   code  name                  errno
 *   001   StorageError          EIO
 *   002   NotFound              ENOENT
 *   003   Unsupported           ENOTSUP
 *   004   Transaction           EIO
 *   005   QuotaExceeded         EFBIG (object too large) or EDQUOT (quota)
 *   006   InvalidPath           EINVAL or ENAMETOOLONG
 *   007   Unavailable           EIO after retries, ETIMEDOUT for timeouts
 *   008   ChecksumMismatch      EIO
 *   009   PermissionDenied      EACCES   (HTTP 401/403)
 *
 * Every layer returns 0 or -errno; the detail errno cannot carry travels in an
 * optional struct lexfs_err and into the log as "LEXFS-00N".
 */
#ifndef LEXFS_ERRORS_H
#define LEXFS_ERRORS_H

#include <stdbool.h>

enum lexfs_code {
	LEXFS_OK = 0,
	LEXFS_E_STORAGE = 1,
	LEXFS_E_NOTFOUND = 2,
	LEXFS_E_UNSUPPORTED = 3,
	LEXFS_E_TRANSACTION = 4,
	LEXFS_E_QUOTA = 5,
	LEXFS_E_INVALID_PATH = 6,
	LEXFS_E_UNAVAILABLE = 7,
	LEXFS_E_CHECKSUM = 8,
	LEXFS_E_PERMISSION = 9,
};

/* Optional detail of a failed operation. Callers may pass NULL wherever a
 * struct lexfs_err * is accepted. */
struct lexfs_err {
	enum lexfs_code code;
	int http_status;        /* 0 when no HTTP was involved */
	char provider_code[64]; /* "NoSuchKey", "BlobNotFound", ... or "" */
	char message[256];      /* human text, never a secret */
	bool retryable;
};

const char *lexfs_code_name(enum lexfs_code code);

/* The errno a code maps to. `hint` disambiguates the codes that map to two errnos
 * (EFBIG/EDQUOT, EINVAL/ENAMETOOLONG, EIO/ETIMEDOUT); pass 0 for the default. */
int lexfs_code_errno(enum lexfs_code code, int hint);

/* The code an errno belongs to (inverse of the above, for drivers such as local
 * that see errno first). */
enum lexfs_code lexfs_errno_code(int err);

/* The one HTTP mapping: status + provider code ("NoSuchKey", "BlobNotFound",
 * "SlowDown", GCS reasons ...) -> lexfs code, -errno and retryability. Fills err when
 * not NULL and returns -errno (0 for 2xx). */
int lexfs_http_error(int http_status, const char *provider_code, const char *message,
		     struct lexfs_err *err);

/* Fill err (if not NULL) and return -errno. Format is printf-style. */
int lexfs_fail(struct lexfs_err *err, enum lexfs_code code, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

void lexfs_err_clear(struct lexfs_err *err);

#endif
