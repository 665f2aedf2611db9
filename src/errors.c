/* errors.c - the one place where lexfs codes, errno values, HTTP statuses and
 * provider error codes meet. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "src/errors.h"

static const char *const code_names[] = {
	[LEXFS_OK] = "OK",
	[LEXFS_E_STORAGE] = "StorageError",
	[LEXFS_E_NOTFOUND] = "NotFound",
	[LEXFS_E_UNSUPPORTED] = "Unsupported",
	[LEXFS_E_TRANSACTION] = "TransactionError",
	[LEXFS_E_QUOTA] = "QuotaExceeded",
	[LEXFS_E_INVALID_PATH] = "InvalidPath",
	[LEXFS_E_UNAVAILABLE] = "Unavailable",
	[LEXFS_E_CHECKSUM] = "ChecksumMismatch",
	[LEXFS_E_PERMISSION] = "PermissionDenied",
};

const char *lexfs_code_name(enum lexfs_code code)
{
	if ((unsigned)code < sizeof(code_names) / sizeof(code_names[0]))
		return code_names[code];
	return "StorageError";
}

int lexfs_code_errno(enum lexfs_code code, int hint)
{
	switch (code) {
	case LEXFS_OK:
		return 0;
	case LEXFS_E_NOTFOUND:
		return ENOENT;
	case LEXFS_E_UNSUPPORTED:
		return ENOTSUP;
	case LEXFS_E_QUOTA:
		return hint == EDQUOT ? EDQUOT : EFBIG;
	case LEXFS_E_INVALID_PATH:
		return hint == ENAMETOOLONG ? ENAMETOOLONG : EINVAL;
	case LEXFS_E_UNAVAILABLE:
		return hint == ETIMEDOUT ? ETIMEDOUT : EIO;
	case LEXFS_E_PERMISSION:
		return EACCES;
	case LEXFS_E_STORAGE:
	case LEXFS_E_TRANSACTION:
	case LEXFS_E_CHECKSUM:
	default:
		return EIO;
	}
}

enum lexfs_code lexfs_errno_code(int err)
{
	if (err < 0)
		err = -err;
	switch (err) {
	case 0:
		return LEXFS_OK;
	case ENOENT:
		return LEXFS_E_NOTFOUND;
	case ENOTSUP:
		return LEXFS_E_UNSUPPORTED;
	case EFBIG:
	case EDQUOT:
	case ENOSPC:
		return LEXFS_E_QUOTA;
	case EINVAL:
	case ENAMETOOLONG:
	case ELOOP:
	case EXDEV:
		return LEXFS_E_INVALID_PATH;
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EAGAIN:
		return LEXFS_E_UNAVAILABLE;
	case EACCES:
	case EPERM:
		return LEXFS_E_PERMISSION;
	case EBADMSG:
		return LEXFS_E_CHECKSUM;
	default:
		return LEXFS_E_STORAGE;
	}
}

void lexfs_err_clear(struct lexfs_err *err)
{
	if (err)
		memset(err, 0, sizeof(*err));
}

int lexfs_fail(struct lexfs_err *err, enum lexfs_code code, int errnum, const char *fmt, ...)
{
	if (errnum < 0)
		errnum = -errnum;
	if (errnum == 0)
		errnum = lexfs_code_errno(code, 0);
	if (err) {
		va_list ap;

		err->code = code;
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	}
	return -errnum;
}

/* Provider error codes (S3, Azure x-ms-error-code, GCS reasons) with a meaning
 * more precise than their HTTP status. */
static const struct {
	const char *code;
	enum lexfs_code lexfs;
	int errnum;
	bool retryable;
} provider_codes[] = {
	/* S3 */
	{ "NoSuchKey", LEXFS_E_NOTFOUND, ENOENT, false },
	{ "NoSuchBucket", LEXFS_E_NOTFOUND, ENOENT, false },
	{ "NoSuchUpload", LEXFS_E_NOTFOUND, ENOENT, false },
	{ "AccessDenied", LEXFS_E_PERMISSION, EACCES, false },
	{ "SignatureDoesNotMatch", LEXFS_E_PERMISSION, EACCES, false },
	{ "InvalidAccessKeyId", LEXFS_E_PERMISSION, EACCES, false },
	{ "ExpiredToken", LEXFS_E_PERMISSION, EACCES, false },
	{ "RequestTimeTooSkewed", LEXFS_E_PERMISSION, EACCES, true },
	{ "SlowDown", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "InternalError", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "ServiceUnavailable", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "RequestTimeout", LEXFS_E_UNAVAILABLE, ETIMEDOUT, true },
	{ "EntityTooLarge", LEXFS_E_QUOTA, EFBIG, false },
	{ "QuotaExceeded", LEXFS_E_QUOTA, EDQUOT, false },
	{ "BadDigest", LEXFS_E_CHECKSUM, EIO, true },
	{ "InvalidDigest", LEXFS_E_CHECKSUM, EIO, false },
	{ "KeyTooLongError", LEXFS_E_INVALID_PATH, ENAMETOOLONG, false },
	{ "PreconditionFailed", LEXFS_E_TRANSACTION, EIO, false },
	{ "InvalidRange", LEXFS_E_STORAGE, EIO, false },
	/* Azure */
	{ "BlobNotFound", LEXFS_E_NOTFOUND, ENOENT, false },
	{ "ContainerNotFound", LEXFS_E_NOTFOUND, ENOENT, false },
	{ "AuthorizationFailure", LEXFS_E_PERMISSION, EACCES, false },
	{ "AuthenticationFailed", LEXFS_E_PERMISSION, EACCES, false },
	{ "AuthorizationPermissionMismatch", LEXFS_E_PERMISSION, EACCES, false },
	{ "InsufficientAccountPermissions", LEXFS_E_PERMISSION, EACCES, false },
	{ "ServerBusy", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "OperationTimedOut", LEXFS_E_UNAVAILABLE, ETIMEDOUT, true },
	{ "Md5Mismatch", LEXFS_E_CHECKSUM, EIO, false },
	{ "ConditionNotMet", LEXFS_E_TRANSACTION, EIO, false },
	/* GCS (error reasons) */
	{ "notFound", LEXFS_E_NOTFOUND, ENOENT, false },
	{ "forbidden", LEXFS_E_PERMISSION, EACCES, false },
	{ "authError", LEXFS_E_PERMISSION, EACCES, false },
	{ "required", LEXFS_E_PERMISSION, EACCES, false },
	{ "rateLimitExceeded", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "userRateLimitExceeded", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "backendError", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "internalError", LEXFS_E_UNAVAILABLE, EIO, true },
	{ "conditionNotMet", LEXFS_E_TRANSACTION, EIO, false },
	{ "quotaExceeded", LEXFS_E_QUOTA, EDQUOT, false },
};

int lexfs_http_error(int status, const char *provider_code, const char *message,
		     struct lexfs_err *err)
{
	enum lexfs_code code;
	int errnum;
	bool retryable = false;

	if (status >= 200 && status < 300 && !(provider_code && *provider_code))
		return 0;

	if (provider_code && *provider_code) {
		for (size_t i = 0; i < sizeof(provider_codes) / sizeof(provider_codes[0]); i++) {
			if (strcmp(provider_codes[i].code, provider_code) == 0) {
				code = provider_codes[i].lexfs;
				errnum = provider_codes[i].errnum;
				retryable = provider_codes[i].retryable;
				goto out;
			}
		}
	}

	switch (status) {
	case 400:
		code = LEXFS_E_STORAGE;
		errnum = EINVAL;
		break;
	case 401:
	case 403:
		code = LEXFS_E_PERMISSION;
		errnum = EACCES;
		break;
	case 404:
	case 410:
		code = LEXFS_E_NOTFOUND;
		errnum = ENOENT;
		break;
	case 405:
	case 501:
		code = LEXFS_E_UNSUPPORTED;
		errnum = ENOTSUP;
		break;
	case 408:
		code = LEXFS_E_UNAVAILABLE;
		errnum = ETIMEDOUT;
		retryable = true;
		break;
	case 409:
	case 412:
		code = LEXFS_E_TRANSACTION;
		errnum = EIO;
		break;
	case 413:
		code = LEXFS_E_QUOTA;
		errnum = EFBIG;
		break;
	case 416:
		code = LEXFS_E_STORAGE;
		errnum = EIO;
		break;
	case 429:
	case 500:
	case 502:
	case 503:
	case 504:
		code = LEXFS_E_UNAVAILABLE;
		errnum = status == 504 ? ETIMEDOUT : EIO;
		retryable = true;
		break;
	default:
		code = LEXFS_E_STORAGE;
		errnum = EIO;
		break;
	}
out:
	if (err) {
		err->code = code;
		err->http_status = status;
		err->retryable = retryable;
		snprintf(err->provider_code, sizeof(err->provider_code), "%s",
			 provider_code ? provider_code : "");
		snprintf(err->message, sizeof(err->message), "HTTP %d%s%s%s%s", status,
			 provider_code && *provider_code ? " " : "",
			 provider_code ? provider_code : "", message && *message ? ": " : "",
			 message ? message : "");
	}
	return -errnum;
}
