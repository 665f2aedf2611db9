/* s3_creds.h - AWS credentials and region, looked up in the usual AWS order:
 *
 *   1. driver settings access_key_id / secret_access_key / session_token
 *   2. AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *   3. the shared files: AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *      AWS_CONFIG_FILE (~/.aws/config), profile from the `profile` setting, else
 *      AWS_PROFILE, else "default"
 *
 * Web-identity, ECS container and EC2 instance-metadata credentials are not
 * implemented; a mount that finds none of the above fails with a message saying
 * where it looked (or runs anonymously with `anonymous=true`).
 */
#ifndef LEXFS_S3_CREDS_H
#define LEXFS_S3_CREDS_H

#include <stddef.h>
#include "src/settings.h"

struct s3_creds {
	char *access_key;
	char *secret_key;
	char *session_token; /* NULL when none */
	char source[96];     /* where they came from, for messages (never the values) */
};

/* 0, -ENOENT when nothing was found (errbuf says where we looked), -EINVAL for a
 * half-given pair, -ENOMEM. */
int s3_creds_resolve(const struct settings *s, struct s3_creds *out, char *errbuf,
		     size_t errlen);
/* The region of the profile in the config file; NULL when none. Caller frees. */
char *s3_profile_region(const struct settings *s);
void s3_creds_free(struct s3_creds *c);

#endif
