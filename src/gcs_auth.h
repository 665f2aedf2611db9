/* gcs_auth.h - Google OAuth2 access tokens for the GCS driver.
 *
 * Credentials are found in the order Google's client libraries use:
 *   1. the credentials file given (storage.gcs.credentials_file), else
 *      GOOGLE_APPLICATION_CREDENTIALS, else gcloud's application-default file
 *      (~/.config/gcloud/application_default_credentials.json):
 *        "service_account"  -> RS256 JWT signed with the key, exchanged at the
 *                              key's token_uri (JWT-bearer grant)
 *        "authorized_user"  -> refresh-token grant at token_uri
 *   2. the GCE metadata server, when GCE_METADATA_HOST is set or the machine says
 *      it is a Google Compute Engine VM
 *   3. anonymous (public buckets; also the default against STORAGE_EMULATOR_HOST)
 *
 * The access token is cached and refreshed five minutes before it expires. One
 * mutex guards the cache; a thread that finds it stale fetches while holding it, so
 * concurrent callers wait for one exchange instead of starting their own.
 */
#ifndef LEXFS_GCS_AUTH_H
#define LEXFS_GCS_AUTH_H

#include <stdbool.h>

#include "src/errors.h"
#include "src/gcs_sign.h"
#include "src/http.h"

#define GCS_SCOPE "https://www.googleapis.com/auth/devstorage.full_control"

enum gcs_auth_kind {
	GCS_AUTH_ANONYMOUS,
	GCS_AUTH_SERVICE_ACCOUNT,
	GCS_AUTH_AUTHORIZED_USER,
	GCS_AUTH_METADATA,
};

struct gcs_auth_conf {
	const char *credentials_file; /* NULL: discover (see above) */
	bool anonymous;		      /* force anonymous access */
	bool emulator;		      /* STORAGE_EMULATOR_HOST in use: anonymous unless a
				       * credentials file was given explicitly */
	struct http_client *http;     /* used for token requests (not owned) */
};

struct gcs_auth;

/* Load credentials. 0 or -errno with err filled (the message names the file and
 * what is wrong with it, never a secret). *out: caller destroys. */
int gcs_auth_create(const struct gcs_auth_conf *conf, struct gcs_auth **out, struct lexfs_err *err);
void gcs_auth_destroy(struct gcs_auth *a);

enum gcs_auth_kind gcs_auth_kind(const struct gcs_auth *a);
const char *gcs_auth_kind_name(enum gcs_auth_kind kind);
/* The service account key (for V4 signed URLs); NULL without one. */
const struct gcs_key *gcs_auth_key(const struct gcs_auth *a);

/* "Bearer TOKEN" for an Authorization header, from the cache or a fresh exchange.
 * *value: caller frees; NULL (and 0 returned) for anonymous access. Thread-safe. */
int gcs_auth_header(struct gcs_auth *a, char **value, struct lexfs_err *err);

/* Forget the cached token (the server said 401): the next call fetches a new one. */
void gcs_auth_invalidate(struct gcs_auth *a);

#endif
