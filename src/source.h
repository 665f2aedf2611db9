/* source.h - the mount source: "s3://bucket/prefix", "/srv/data", "mem://", ...
 *
 *   source                   driver   setting            prefix
 *   s3://bucket[/prefix]     s3       bucket=bucket      "prefix/"
 *   r2://bucket[/prefix]     r2       bucket=bucket      "prefix/"
 *   gs://bucket[/prefix]     gcs      bucket=bucket      "prefix/"   (also gcs://)
 *   az://container[/prefix]  azure    container=...      "prefix/"   (also azure://)
 *   file:///dir              local    root_dir=/dir      ""
 *   /dir, ./dir, dir         local    root_dir=/abs/dir  ""
 *   mem://                   memory   -                  ""
 *
 * The prefix is "" or ends in exactly one '/'. Components "." and "..", empty
 * components ("a//b") and control characters are refused, so a source can never
 * reach outside what it names.
 */
#ifndef LEXFS_SOURCE_H
#define LEXFS_SOURCE_H

#include <stddef.h>

struct lexfs_source {
	char driver[16];   /* registry name */
	char *setting_key; /* "bucket", "container", "root_dir" or NULL (memory) */
	char *setting_val; /* its value */
	char *prefix;	   /* "" or "a/b/" */
};

/* Parse `text`. A relative directory is made absolute against the current
 * directory. 0, or -EINVAL with a message in errbuf. *out is the caller's; free
 * with source_free (also after a failure). */
int source_parse(const char *text, struct lexfs_source *out, char *errbuf, size_t errlen);
void source_free(struct lexfs_source *src);

/* Check that a store key given on the command line (presign KEY) is a plain
 * relative key: no leading '/', no "." / ".." / empty components, no control
 * characters. 0 or -EINVAL with a message in errbuf. */
int source_check_key(const char *key, char *errbuf, size_t errlen);

/* 0 when the driver `name` is compiled in (or loadable from plugin_dir); -ENOENT
 * for a name nobody knows, -ENOTSUP for a known driver that is not built, each
 * with a message in errbuf that says so. */
int source_check_driver(const char *name, const char *plugin_dir, char *errbuf, size_t errlen);

#endif
