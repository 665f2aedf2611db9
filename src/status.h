/* status.h - `lexfs status MOUNTPOINT`: the mount's user.lexfs.stats for a person
 * or a program.
 *
 * Human form: "lexfs mount PATH", then one line per pending upload with a progress
 * bar ("  [#######.......]  47%  4.7 MiB / 10.0 MiB  KEY (uploading)"), then every
 * other value as "dotted.name   value". JSON form: the attribute as the mount
 * returns it.
 */
#ifndef LEXFS_STATUS_H
#define LEXFS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STATUS_BAR_WIDTH 30

/* Read the attribute `name` of path whole into *text (caller frees). The value
 * may grow between asking its size and reading it (a busy mount's statistics):
 * ERANGE (it grew in between) reads once more with room for the largest value the
 * kernel passes. 0 or -errno. */
int status_read_xattr(const char *path, const char *name, char **text);

/* "[####......]" for done of total, width '#' or '.' between the brackets, into out
 * (at least width + 3 bytes). total 0 is an empty bar. */
void status_bar(uint64_t done, uint64_t total, unsigned width, char *out, size_t outlen);

/* Print the statistics of mount mnt to out, as JSON text (json) or for a person.
 * 0, or -errno with a reason in why (not a mount, not JSON, ...). */
int status_run(const char *mnt, bool json, FILE *out, char *why, size_t whylen);

#endif
