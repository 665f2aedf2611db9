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
 *   clock         skew between this machine's clock and the Date header of the
 *                 server's latest answer (store_server_time): fail past max_skew_s
 *                 (SigV4, Shared Key and SAS refuse requests 15 minutes off), warn
 *                 past 60 s; skip for drivers without a server clock (local, memory)
 *   probe-*       under .lexfs-doctor/: put, info, get, list, copy, presign (+ fetch
 *                 of the URL with libcurl when it is http or https), remove
 *   multipart     begin + abort of a multipart upload
 *   stale-uploads incomplete multipart uploads under the mount's prefix started more
 *                 than a day ago (driver.h, mp_list): warn with their number, the
 *                 oldest's age and key; with abort_stale, abort them (fail if one
 *                 cannot be); skip for a driver that cannot list them
 *   cache-dir     exists (or can be created), is writable, has free space
 *   fuse          /dev/fuse opens read-write, fusermount3 is on PATH and usable
 *
 * Line format: "STATUS CHECK: MESSAGE[ -- fix: WHAT TO DO]" with STATUS one of
 * pass, warn, fail, skip (a check that cannot run because an earlier one failed).
 * With json: one object {"ok":..,"checks":[{"check","status","message","fix"}],
 * "summary":{"pass":N,"warn":N,"fail":N,"skip":N}}.
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
	int max_skew_s;		 /* 0: 900 (SigV4 and SAS refuse past 15 min) */

	const char *prefix;  /* the mount's key prefix; NULL: "" (the whole bucket) */
	bool abort_stale;    /* abort the stale uploads found (--abort-stale) */
	int64_t stale_age_s; /* an upload this old is stale; 0: 86400, < 0: any age
			      * (--stale-age, for tests: a fresh upload counts) */
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
