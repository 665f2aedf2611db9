/* settings.h - a flat, ordered set of string settings with their origin.
 *
 * config.c merges the libconfig file, the LEX_STORAGE__* environment and -o options
 * into one struct settings per driver group ("s3", "local", ...). A driver reads
 * only its own group, so config.c knows no driver's keys and a plugin driver gets
 * its settings the same way. Each value remembers where it came from
 * ("/etc/lexfs.conf:12", "env LEX_STORAGE__S3__BUCKET", "-o bucket") so an error can
 * name it. Values marked secret are never printed.
 */
#ifndef LEXFS_SETTINGS_H
#define LEXFS_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct setting {
	char *key;    /* lower case, e.g. "root_dir" */
	char *value;  /* as given */
	char *origin; /* where it was set */
	bool used;    /* a reader asked for it (unknown keys can be reported) */
	bool secret;  /* the key names a credential (settings_key_is_secret): never print
		       * the value, show settings_display() instead */
};

struct settings {
	struct setting *v;
	size_t n;
};

void settings_init(struct settings *s);
void settings_free(struct settings *s);
/* Set or replace (a later source overrides an earlier one). 0 or -ENOMEM. */
int settings_set(struct settings *s, const char *key, const char *value, const char *origin);
/* NULL when absent. Marks the key used. The pointers live as long as the set. */
const char *settings_get(const struct settings *s, const char *key);
const char *settings_origin(const struct settings *s, const char *key);
/* Typed readers: the default when absent; -EINVAL (with a message naming the key and
 * its origin in errbuf) when the value does not parse. */
int settings_get_bool(const struct settings *s, const char *key, bool dflt, bool *out,
		      char *errbuf, size_t errlen);
int settings_get_u64(const struct settings *s, const char *key, uint64_t dflt, uint64_t *out,
		     char *errbuf, size_t errlen);
/* Sizes accept suffixes k, m, g, t (binary). */
int settings_get_size(const struct settings *s, const char *key, uint64_t dflt, uint64_t *out,
		      char *errbuf, size_t errlen);
int settings_copy(struct settings *dst, const struct settings *src);

/* True for keys that hold credentials: names containing "secret", "password",
 * "passwd", "passphrase", "token", "credential", "connection_string", and "key" or
 * names ending in "_key" (account_key, signing_key, private_key, access_key).
 * Not secrets: names ending in "_id", "_name", "_file", "_path", "_dir", "_url",
 * "_env" (key_id, kms_key_id, key_name, credentials_file: they name, not hold).
 * settings_set marks such keys `secret`. */
bool settings_key_is_secret(const char *key);
/* The value for printing: "(hidden)" for a secret, the value otherwise, NULL when
 * absent. Does not mark the key used. */
const char *settings_display(const struct settings *s, const char *key);
/* True when the key is present (does not mark it used). */
bool settings_has(const struct settings *s, const char *key);

#endif
