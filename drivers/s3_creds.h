/* s3_creds.h - AWS credentials and region, looked up in the usual AWS order:
 *
 *   1. driver settings access_key_id / secret_access_key / session_token
 *   2. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *   3. web identity: AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN through STS
 *      AssumeRoleWithWebIdentity (endpoint AWS_ENDPOINT_URL_STS or sts_endpoint)
 *   4. the shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config), profile from the `profile` setting, else
 *      AWS_PROFILE, else "default"
 *   5. ECS container credentials: AWS_CONTAINER_CREDENTIALS_FULL_URI or
 *      AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (+ AWS_CONTAINER_AUTHORIZATION_TOKEN)
 *   6. EC2 instance metadata, IMDSv2 token flow: only with `imds=true` or
 *      AWS_EC2_METADATA_SERVICE_ENDPOINT set (so a machine that is not on EC2 never
 *      sends a packet to 169.254.169.254), and never with
 *      AWS_EC2_METADATA_DISABLED=true
 *
 * Temporary credentials (3, 5, 6) carry an expiry; the driver calls
 * s3_creds_refresh() before they run out. A mount that finds nothing fails with a
 * message saying where it looked (or runs anonymously with `anonymous=true`).
 */
#ifndef LEXFS_S3_CREDS_H
#define LEXFS_S3_CREDS_H

#include <stddef.h>
#include <stdint.h>
#include "src/settings.h"

enum s3_creds_kind { S3_CREDS_STATIC, S3_CREDS_WEB_IDENTITY, S3_CREDS_ECS, S3_CREDS_IMDS };

struct s3_creds {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL when none */
	char source[96];     /* where they came from, for messages (never the values) */
	enum s3_creds_kind kind;
	int64_t expiry;      /* seconds since the epoch; 0: does not expire */
	char sts_endpoint[256]; /* web identity: the STS endpoint used */
};

/* 0, -ENOENT when nothing was found (errbuf says where we looked), -EINVAL for a
 * half-given pair, -ENOMEM. */
int s3_creds_resolve(const struct settings *s, struct s3_creds *out, char *errbuf,
		     size_t errlen);
/* Fetch fresh temporary credentials of the same kind into c (replaced only on
 * success). 0 or -errno with errbuf filled. */
int s3_creds_refresh(struct s3_creds *c, char *errbuf, size_t errlen);
/* The region of the profile in the config file; NULL when none. Caller frees. */
char *s3_profile_region(const struct settings *s);
void s3_creds_free(struct s3_creds *c);

#endif
