/* doctor.h - `lexfs doctor`: check, in order, everything a mount needs and say
 * what to do about each failure.
 *
 * Checks, one line each (several for the probe):
 *   config        the configuration parsed and validated (result passed in)
 *   credentials   which credential settings / environment variables were found and
 *                 where from (names and origins only, never a value)
 *   driver        the driver opened with its settings
 *   endpoint      store_health_check: endpoint resolves, TLS verifies, one
 *                 authenticated round trip; the latency
 *   clock         skew against the server's Date header, from the optional control
 *                 "server_date" (see below); warn when the driver cannot measure it
 *   probe-*       under .lexfs-doctor/: put, info, get, list, copy, presign (+ fetch
 *                 of the URL with libcurl when it is http or https), remove
 *   multipart     begin + abort of a multipart upload
 *   cache-dir     exists (or can be created), is writable, has free space
 *   fuse          /dev/fuse opens read-write, fusermount3 is on PATH and usable
 *
 * Line format: "STATUS CHECK: MESSAGE[ -- fix: WHAT TO DO]" with STATUS one of
 * pass, warn, fail, skip (a check that cannot run because an earlier one failed).
 * With json: one object {"ok":..,"checks":[{"check","status","message","fix"}],
 * "summary":{"pass":N,"warn":N,"fail":N,"skip":N}}.
 *
 * The "server_date" control: store_control(st, "server_date", "", &err) makes
 * one request and, on success, returns 0 with the server's Date header copied
 * into err.message (IMF-fixdate, "Tue, 02 Jan 2026 03:04:05 GMT", or decimal
 * seconds since the epoch). Drivers that cannot tell answer -ENOTSUP.
 */
#ifndef LEXFS_DOCTOR_H
#define LEXFS_DOCTOR_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "src/settings.h"

struct doctor_conf {
	/* Result of loading the configuration (config_load): 0 or -errno and its
	 * message; file is the config file read (NULL: none). */
	int config_status;
	const char *config_message;
	const char *config_file;

	/* How to open the backend (ignored when config_status != 0). */
	const char *driver;		 /* registry name */
	const char *backend_name;	 /* NULL: "default" */
	const struct settings *settings; /* the driver's group */
	const char *plugin_dir;
	int timeout_ms;		  /* health check and requests; 0: 10000 */
	const char *probe_prefix; /* NULL: ".lexfs-doctor/" (under the mount prefix) */

	const char *cache_dir;	 /* NULL: not configured (warn) */
	uint64_t cache_min_free; /* below: fail; 0: 64 MiB (warn below 1 GiB) */

	const char *fuse_device; /* NULL: /dev/fuse */
	const char *fusermount;	 /* NULL: fusermount3 from PATH */
	int64_t clock_offset_s;	 /* test-only: added to our clock (simulates skew) */
	int max_skew_s;		 /* 0: 900 (SigV4 and SAS refuse past 15 min) */
};

/* Run every check, print to out. Returns 0 when nothing failed, 1 otherwise
 * (the exit status of `lexfs doctor`), or -ENOMEM. */
int doctor_run(const struct doctor_conf *conf, FILE *out, bool json);
/* The same for the n named backends of one configuration (storage.backends),
 * conf[i].backend_name each: config once (from conf[0]), then credentials through
 * cache-dir in a section per backend, whose lines read "STATUS NAME/CHECK: ..."
 * (JSON: a "backend" member), then fuse once. */
int doctor_run_backends(const struct doctor_conf *conf, size_t n, FILE *out, bool json);

#endif
