/* azure_auth.h - Azure Storage credentials and request signing.
 *
 * Three ways to authorize a Blob request:
 *   Shared Key  account name + base64 account key; every request carries
 *               "Authorization: SharedKey ACCOUNT:SIG" where SIG is the base64
 *               HMAC-SHA256 (key = the decoded account key) of the string to sign:
 *                 VERB\n Content-Encoding\n Content-Language\n Content-Length\n
 *                 Content-MD5\n Content-Type\n Date\n If-Modified-Since\n If-Match\n
 *                 If-None-Match\n If-Unmodified-Since\n Range\n
 *                 canonicalized x-ms-* headers ("name:value\n", names lower-cased,
 *                 sorted) + canonicalized resource ("/" ACCOUNT URL-PATH, then
 *                 "\nname:value" for each query parameter, names lower-cased and
 *                 sorted, values percent-decoded).
 *               A Content-Length of 0 signs as the empty string (version >= 2015-02-21).
 *   SAS         a token (account or service SAS, from config) appended to every URL.
 *   anonymous   nothing (public containers: read and list only).
 * A service SAS for one blob is generated from the account key (presigned URLs).
 *
 * The functions here are pure (no I/O, no clock) so tests can feed fixed input and
 * compare with the Azure SDK's own output byte for byte (tests/unit/azure_dump.c).
 */
#ifndef LEXFS_AZURE_AUTH_H
#define LEXFS_AZURE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "src/http.h"
#include "src/settings.h"

/* The one REST version lexfs speaks (also the "sv" of the SAS it makes). */
#define AZURE_API_VERSION "2021-12-02"

enum azure_auth_mode {
	AZURE_AUTH_SHARED_KEY = 0,
	AZURE_AUTH_SAS = 1,
	AZURE_AUTH_ANONYMOUS = 2,
};

/* Resolved credentials and endpoint (strings owned by the struct). */
struct azure_creds {
	enum azure_auth_mode mode;
	char *account;   /* account name (NULL only when anonymous with an explicit endpoint) */
	uint8_t *key;    /* decoded account key (Shared Key mode), keylen bytes */
	size_t keylen;
	char *sas_token; /* without the leading '?' (SAS mode) */
	char *endpoint;  /* blob service endpoint without trailing '/', e.g.
			  * https://acct.blob.core.windows.net or http://127.0.0.1:10000/acct */
	char *container; /* may be NULL when the caller gets it elsewhere */
	char origin[160]; /* where the credentials came from, for messages (no secret) */
};

void azure_creds_free(struct azure_creds *c);

/* Resolve credentials from the driver's settings (keys: account, account_key,
 * sas_token, connection_string, endpoint, container, anonymous) and, for what the
 * settings do not give, from the environment: AZURE_STORAGE_CONNECTION_STRING, then
 * AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY or AZURE_STORAGE_SAS_TOKEN.
 * `getenv_fn` is getenv (tests may pass a fake). 0 or -EINVAL with a message in
 * errbuf that names the setting and its origin (never its value). */
int azure_creds_resolve(const struct settings *s, const char *(*getenv_fn)(const char *),
			struct azure_creds *out, char *errbuf, size_t errlen);

/* Parse a connection string ("Key=Value;Key=Value", values may contain '=') into
 * out: AccountName, AccountKey, SharedAccessSignature, BlobEndpoint,
 * DefaultEndpointsProtocol, EndpointSuffix, UseDevelopmentStorage. Only fields
 * not yet set in out are filled. 0 or -EINVAL (message in errbuf). */
int azure_parse_connection_string(const char *cs, struct azure_creds *out, char *errbuf,
				  size_t errlen);

/* The Shared Key string to sign of a request. `content_length` is the body length
 * (the request's own Content-Length header, if any, takes precedence). *out:
 * caller frees. 0 or -ENOMEM / -EINVAL (URL without a path). */
int azure_sharedkey_string_to_sign(const char *account, const char *method, const char *url,
				   const struct http_headers *headers, uint64_t content_length,
				   char **out);

/* base64(HMAC-SHA256(key, data)). Caller frees; NULL on ENOMEM. */
char *azure_hmac_b64(const uint8_t *key, size_t keylen, const char *data);

/* Sign: set "Authorization: SharedKey ACCOUNT:SIG" in headers. If sts is not NULL it
 * receives the string to sign (caller frees). 0 or -errno. */
int azure_sharedkey_sign(const char *account, const uint8_t *key, size_t keylen,
			 const char *method, const char *url, struct http_headers *headers,
			 uint64_t content_length, char **sts);

/* Service SAS for one blob (sr=b, sv=AZURE_API_VERSION). `permissions` as Azure
 * spells them ("r", "cw"); start 0 omits st; encryption_scope may be NULL. The
 * query string (without '?') goes to *query, the string that was signed to *sts
 * (may be NULL). Both: caller frees. Field order and encoding follow the Azure
 * SDK's generate_blob_sas, so the same input gives the same token. */
int azure_blob_sas(const char *account, const uint8_t *key, size_t keylen,
		   const char *container, const char *blob, const char *permissions,
		   int64_t start, int64_t expiry, const char *encryption_scope, char **query,
		   char **sts);

/* Percent-encode like Python's urllib.parse.quote (safe: '/', and the unreserved
 * A-Z a-z 0-9 _ . - ~). Caller frees; NULL on ENOMEM. */
char *azure_quote(const char *s);

/* "2024-01-02T03:04:05Z" */
void azure_time_iso(int64_t t, char out[24]);

#endif
