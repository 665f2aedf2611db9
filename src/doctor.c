/* doctor.c - `lexfs doctor` checks (see doctor.h). Each check records a result;
 * text mode prints it at once, JSON mode prints them all at the end. */
#include "config.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "drivers/store.h"
#include "src/buf.h"
#include "src/doctor.h"
#include "src/log.h"

enum dstatus { D_PASS, D_WARN, D_FAIL, D_SKIP };

static const char *const status_names[] = {"pass", "warn", "fail", "skip"};

struct dresult {
	char backend[64]; /* the named backend the check is about, "" for the mount */
	char check[32];
	enum dstatus status;
	char message[512];
	char fix[256];
};

struct doctor {
	const struct doctor_conf *conf; /* the backend being checked */
	const char *section;		/* its name, for named backends; else NULL */
	FILE *out;
	bool json;
	struct dresult *r;
	size_t n;
	unsigned count[4];
	int oom;
};

static void report(struct doctor *d, const char *check, enum dstatus st, const char *fix,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void report(struct doctor *d, const char *check, enum dstatus st, const char *fix,
		   const char *fmt, ...)
{
	struct dresult *nr = realloc(d->r, (d->n + 1) * sizeof(*nr));
	struct dresult *x;
	va_list ap;

	if (!nr) {
		d->oom = 1;
		return;
	}
	d->r = nr;
	x = &nr[d->n++];
	snprintf(x->backend, sizeof(x->backend), "%s", d->section ? d->section : "");
	snprintf(x->check, sizeof(x->check), "%s", check);
	x->status = st;
	va_start(ap, fmt);
	vsnprintf(x->message, sizeof(x->message), fmt, ap);
	va_end(ap);
	snprintf(x->fix, sizeof(x->fix), "%s", fix && st != D_PASS ? fix : "");
	d->count[st]++;
	if (!d->json) {
		fprintf(d->out, "%s %s%s%s: %s", status_names[st], x->backend,
			x->backend[0] ? "/" : "", x->check, x->message);
		if (x->fix[0])
			fprintf(d->out, " -- fix: %s", x->fix);
		fputc('\n', d->out);
		fflush(d->out);
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The message of a failed store call, never a secret (drivers keep secrets out of
 * lexfs_err by contract). */
static const char *errtext(const struct lexfs_err *e, int rc, char *buf, size_t len)
{
	const char *sys = strerror(-rc);
	bool said = strstr(e->message, sys) != NULL;

	if (e->message[0] && e->code)
		snprintf(buf, len, "LEXFS-%03d %s%s%s%s", (int)e->code, e->message,
			 said ? "" : " (", said ? "" : sys, said ? "" : ")");
	else if (e->message[0])
		snprintf(buf, len, "%s%s%s%s", e->message, said ? "" : " (", said ? "" : sys,
			 said ? "" : ")");
	else
		snprintf(buf, len, "%s", strerror(-rc));
	return buf;
}

/* ---- config, credentials ---- */

static void check_config(struct doctor *d, size_t nsections)
{
	const struct doctor_conf *c = d->conf;

	if (!c->config_status && nsections > 0) {
		struct buf names = BUF_INIT(4096);

		for (size_t i = 0; i < nsections; i++)
			buf_addf(&names, "%s%s (%s)", i ? ", " : "", c[i].backend_name,
				 c[i].driver ? c[i].driver : "?");
		report(d, "config", D_PASS, NULL, "%s parsed and validated (backends %s)",
		       c->config_file ? c->config_file : "?", buf_cstr(&names));
		buf_free(&names);
		return;
	}
	if (c->config_status)
		report(d, "config", D_FAIL, "correct the setting named above (see lexfs(1))", "%s",
		       c->config_message && c->config_message[0] ? c->config_message
								 : strerror(-c->config_status));
	else if (c->config_file)
		report(d, "config", D_PASS, NULL, "%s parsed and validated (driver %s)",
		       c->config_file, c->driver ? c->driver : "?");
	else
		report(d, "config", D_PASS, NULL,
		       "no config file; environment and options validated (driver %s)",
		       c->driver ? c->driver : "?");
}

/* Names that hold or point at credentials. Values are never read here. */
static bool is_credential_key(const char *k)
{
	static const char *const words[] = {
	    "secret",	  "password",	 "passwd",	"token", "credential", "connection_string",
	    "access_key", "account_key", "private_key", "sas",	 "key_file",   "service_account",
	    "profile"};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(k, words[i]))
			return true;
	return false;
}

struct env_cred {
	const char *driver;
	const char *var;
};

static const struct env_cred env_creds[] = {
    {"s3", "AWS_ACCESS_KEY_ID"},
    {"s3", "AWS_SECRET_ACCESS_KEY"},
    {"s3", "AWS_SESSION_TOKEN"},
    {"s3", "AWS_PROFILE"},
    {"s3", "AWS_SHARED_CREDENTIALS_FILE"},
    {"r2", "AWS_ACCESS_KEY_ID"},
    {"r2", "AWS_SECRET_ACCESS_KEY"},
    {"gcs", "GOOGLE_APPLICATION_CREDENTIALS"},
    {"azure", "AZURE_STORAGE_CONNECTION_STRING"},
    {"azure", "AZURE_STORAGE_KEY"},
    {"azure", "AZURE_STORAGE_SAS_TOKEN"},
};

static void check_credentials(struct doctor *d)
{
	const struct doctor_conf *c = d->conf;
	const struct settings *s = c->settings;
	struct buf found = BUF_INIT(4096);
	bool any = false, cloud;
	const char *home = getenv("HOME");

	if (c->config_status) {
		report(d, "credentials", D_SKIP, NULL, "configuration did not load");
		return;
	}
	cloud = c->driver && (strcmp(c->driver, "s3") == 0 || strcmp(c->driver, "r2") == 0 ||
			      strcmp(c->driver, "gcs") == 0 || strcmp(c->driver, "azure") == 0);
	for (size_t i = 0; s && i < s->n; i++) {
		if (!is_credential_key(s->v[i].key))
			continue;
		buf_addf(&found, "%s%s from %s", any ? ", " : "", s->v[i].key,
			 s->v[i].origin ? s->v[i].origin : "?");
		any = true;
	}
	for (size_t i = 0; c->driver && i < sizeof(env_creds) / sizeof(env_creds[0]); i++) {
		if (strcmp(env_creds[i].driver, c->driver) != 0 || !getenv(env_creds[i].var))
			continue;
		buf_addf(&found, "%senv %s", any ? ", " : "", env_creds[i].var);
		any = true;
	}
	if (c->driver && (strcmp(c->driver, "s3") == 0 || strcmp(c->driver, "r2") == 0) && home) {
		char path[512];

		snprintf(path, sizeof(path), "%s/.aws/credentials", home);
		if (access(path, R_OK) == 0) {
			buf_addf(&found, "%s~/.aws/credentials (profile file)", any ? ", " : "");
			any = true;
		}
	}
	if (any)
		report(d, "credentials", D_PASS, NULL, "found %s (values not shown)",
		       buf_cstr(&found));
	else if (cloud)
		report(d, "credentials", D_WARN,
		       "set them in the storage.<driver> group of the config file (mode 0600) or "
		       "the provider's environment variables",
		       "none found in settings or environment for driver %s; anonymous access "
		       "or a metadata-service role would be used",
		       c->driver);
	else
		report(d, "credentials", D_PASS, NULL, "driver %s needs none",
		       c->driver ? c->driver : "?");
	buf_free(&found);
}

/* ---- backend ---- */

static struct store *check_driver(struct doctor *d)
{
	const struct doctor_conf *c = d->conf;
	struct store_conf sc = {0};
	struct lexfs_err e = {0};
	struct store *st = NULL;
	char eb[400];
	int rc;

	if (c->config_status) {
		report(d, "driver", D_SKIP, NULL, "configuration did not load");
		return NULL;
	}
	sc.driver = c->driver;
	sc.backend_name = c->backend_name ? c->backend_name : "default";
	sc.settings = c->settings;
	sc.plugin_dir = c->plugin_dir;
	sc.timeout_ms = c->timeout_ms;
	sc.max_retries = 1; /* a doctor reports; it does not wait out an outage */
	rc = store_create(&sc, &st, &e);
	if (rc) {
		report(d, "driver", D_FAIL, "check the driver name and its settings (lexfs(1))",
		       "driver %s did not open: %s", c->driver ? c->driver : "?",
		       errtext(&e, rc, eb, sizeof(eb)));
		return NULL;
	}
	/* A setting the driver never read is a typo or belongs to another driver. */
	for (size_t i = 0; c->settings && i < c->settings->n; i++) {
		const struct setting *it = &c->settings->v[i];

		if (!it->used) {
			report(d, "driver", D_FAIL,
			       "remove it or correct its name (lexfs(1) lists "
			       "each driver's settings)",
			       "unknown option %s (from %s): the %s "
			       "driver has no such setting",
			       it->key, it->origin ? it->origin : "?", c->driver);
			return st;
		}
	}
	report(d, "driver", D_PASS, NULL, "driver %s opened", c->driver);
	return st;
}

static bool check_endpoint(struct doctor *d, struct store *st)
{
	struct lexfs_err e = {0};
	int64_t t0 = mono_ms();
	char eb[400];
	int rc;

	if (!st) {
		report(d, "endpoint", D_SKIP, NULL, "no driver");
		return false;
	}
	rc = store_health_check(st, d->conf->timeout_ms, &e);
	if (rc == -EACCES)
		report(d, "endpoint", D_FAIL,
		       "the credentials were refused: check key id and secret, their origin "
		       "above, and the clock",
		       "reached, but access denied: %s", errtext(&e, rc, eb, sizeof(eb)));
	else if (rc == -ENOENT)
		report(d, "endpoint", D_FAIL,
		       "check the bucket / container / root_dir name, or create it",
		       "the bucket or root does not exist: %s", errtext(&e, rc, eb, sizeof(eb)));
	else if (rc)
		report(d, "endpoint", D_FAIL,
		       "check the endpoint setting, DNS, network, proxy and TLS (ca_file)",
		       "health check failed: %s", errtext(&e, rc, eb, sizeof(eb)));
	else
		report(d, "endpoint", D_PASS, NULL, "health check passed in %lld ms",
		       (long long)(mono_ms() - t0));
	return rc == 0;
}

/* "3 h", "2 d": an age for a message, rounded to the nearest unit (a skew
 * measured as 7199 s is "2 h"). */
static void age_text(int64_t s, char *out, size_t len)
{
	int64_t d = (s + 43200) / 86400, h = (s + 1800) / 3600, m = (s + 30) / 60;

	if (d >= 2)
		snprintf(out, len, "%lld d", (long long)d);
	else if (h >= 2)
		snprintf(out, len, "%lld h", (long long)h);
	else if (m >= 2)
		snprintf(out, len, "%lld min", (long long)m);
	else
		snprintf(out, len, "%lld s", (long long)s);
}

/* Skew against the Date of the server's latest answer (the endpoint check just
 * made one), taken when it arrived: no request of its own, no network delay in
 * the measure beyond the one-second resolution of Date. */
static void check_clock(struct doctor *d, struct store *st, bool reachable)
{
	struct lexfs_err e = {0};
	int64_t server, local, skew, mag;
	int max = d->conf->max_skew_s > 0 ? d->conf->max_skew_s : 900;
	char eb[400], age[32];
	int rc;

	if (!st || !reachable) {
		report(d, "clock", D_SKIP, NULL, "endpoint not reachable");
		return;
	}
	rc = store_server_time(st, d->conf->timeout_ms, &server, &local, &e);
	if (rc == -ENOTSUP) {
		report(d, "clock", D_SKIP, NULL,
		       "driver %s has no server clock to compare with (it signs and checks "
		       "with this machine's clock)",
		       store_driver(st)->name);
		return;
	}
	if (rc) {
		report(d, "clock", D_WARN, NULL, "could not read the server's clock: %s",
		       errtext(&e, rc, eb, sizeof(eb)));
		return;
	}
	skew = local - server;
	mag = skew < 0 ? -skew : skew;
	age_text(mag, age, sizeof(age));
	if (mag > max)
		report(d, "clock", D_FAIL,
		       "synchronise the clock (chrony, systemd-timesyncd or ntpd): signed "
		       "requests (SigV4, Shared Key, SAS) are refused more than 15 minutes off, "
		       "and presigned URLs start or expire at the wrong time",
		       "local clock is %lld s (%s) %s the server's Date", (long long)mag, age,
		       skew > 0 ? "ahead of" : "behind");
	else if (mag > 60)
		report(d, "clock", D_WARN,
		       "synchronise the clock (chrony, systemd-timesyncd or ntpd) before it "
		       "drifts past 15 minutes",
		       "local clock is %lld s %s the server's Date", (long long)mag,
		       skew > 0 ? "ahead of" : "behind");
	else
		report(d, "clock", D_PASS, NULL, "skew %lld s against the server's Date",
		       (long long)skew);
}

struct fetch {
	struct buf body;
};

static size_t fetch_sink(char *p, size_t size, size_t nmemb, void *arg)
{
	struct fetch *f = arg;

	return buf_add(&f->body, p, size * nmemb) ? 0 : size * nmemb;
}

/* GET url with libcurl; 0 and the body, or a message. */
static int fetch_url(const char *url, int timeout_ms, struct buf *body, long *status, char *why,
		     size_t whylen)
{
	CURL *h = curl_easy_init();
	struct fetch f = {.body = BUF_INIT(1024 * 1024)};
	CURLcode rc;

	*status = 0;
	if (!h) {
		snprintf(why, whylen, "cannot create a curl handle");
		return -ENOMEM;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, fetch_sink);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		snprintf(why, whylen, "%s", curl_easy_strerror(rc));
		buf_free(&f.body);
		return -EIO;
	}
	*body = f.body;
	return 0;
}

static const char probe_body[] = "lexfs doctor probe: safe to delete\n";

static void probe_presign(struct doctor *d, struct store *st, const char *key)
{
	struct lexfs_err e = {0};
	char *url = NULL, eb[400], why[256];
	struct buf body = BUF_INIT(1024);
	long status;
	int rc;

	rc = store_presign(st, key, LEXFS_GET, 300, &url, &e);
	if (rc == -ENOTSUP) {
		report(d, "probe-presign", D_WARN, NULL,
		       "driver has no presigned URLs (user.lexfs.presigned_url will be ENOTSUP)");
		return;
	}
	if (rc) {
		report(d, "probe-presign", D_FAIL,
		       "presigning needs credentials that can sign (not an anonymous or "
		       "token-only setup)",
		       "presign failed: %s", errtext(&e, rc, eb, sizeof(eb)));
		return;
	}
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
		lexfs_err_clear(&e);
		if (store_control(st, "verify_url", url, &e) == 0)
			report(d, "probe-presign", D_PASS, NULL,
			       "presigned URL made and verified by the driver (not http(s))");
		else
			report(d, "probe-presign", D_PASS, NULL,
			       "presigned URL made (not http(s): not fetched)");
		free(url);
		return;
	}
	rc = fetch_url(url, d->conf->timeout_ms, &body, &status, why, sizeof(why));
	if (rc) {
		/* Local and memory URLs point at a server the operator runs (base_url);
		 * when nothing serves it here, let the driver check the signature. */
		lexfs_err_clear(&e);
		if (store_control(st, "verify_url", url, &e) == 0)
			report(d, "probe-presign", D_WARN,
			       "serve base_url, or set it to where the files are served",
			       "presigned URL made and its signature verified, but fetching it "
			       "failed: %s",
			       why);
		else
			report(
			    d, "probe-presign", D_FAIL,
			    "the URL's host must be reachable from clients (endpoint / base_url)",
			    "presigned URL made, fetching it failed: %s", why);
		free(url);
		return;
	}
	free(url); /* carries a signature: never printed */
	if (status != 200)
		report(d, "probe-presign", D_FAIL,
		       "check the clock and that the signing credentials may read the object",
		       "presigned URL made, fetching it gave HTTP %ld", status);
	else if (body.len != sizeof(probe_body) - 1 || memcmp(body.data, probe_body, body.len) != 0)
		report(d, "probe-presign", D_FAIL, "report this as a lexfs bug",
		       "presigned URL fetched, but the bytes differ from the probe's");
	else
		report(d, "probe-presign", D_PASS, NULL, "presigned GET URL fetched, bytes match");
	buf_free(&body);
}

static void check_probe(struct doctor *d, struct store *st, bool reachable)
{
	const char *prefix = d->conf->probe_prefix ? d->conf->probe_prefix : ".lexfs-doctor/";
	struct lexfs_src src = {.buf = probe_body, .len = sizeof(probe_body) - 1};
	struct lexfs_objinfo oi = {0};
	struct lexfs_list_page page = {0};
	struct lexfs_err e = {0};
	char key[512], copy[560], eb[400], got[128];
	const char *perm_fix = "grant the credentials this permission on the bucket (or "
			       "mount read-only with -o ro)";
	size_t n = 0;
	bool listed = false, copied = false;
	int rc;
	static const char *const names[] = {"probe-put",    "probe-info", "probe-get",
					    "probe-list",   "probe-copy", "probe-presign",
					    "probe-remove", "multipart"};

	if (!st || !reachable) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			report(d, names[i], D_SKIP, NULL, "endpoint not reachable");
		return;
	}
	snprintf(key, sizeof(key), "%sprobe-%ld-%lld", prefix, (long)getpid(),
		 (long long)time(NULL));
	snprintf(copy, sizeof(copy), "%s.copy", key);

	rc = store_upload(st, key, &src, NULL, NULL, &e);
	if (rc) {
		report(d, "probe-put", D_FAIL, perm_fix, "put %s failed: %s", key,
		       errtext(&e, rc, eb, sizeof(eb)));
		for (size_t i = 1; i < sizeof(names) / sizeof(names[0]) - 1; i++)
			report(d, names[i], D_SKIP, NULL, "no probe object");
		goto multipart;
	}
	report(d, "probe-put", D_PASS, NULL, "put %s (%zu bytes)", key, sizeof(probe_body) - 1);

	lexfs_err_clear(&e);
	rc = store_info(st, key, &oi, &e);
	if (rc)
		report(d, "probe-info", D_FAIL, perm_fix, "info failed: %s",
		       errtext(&e, rc, eb, sizeof(eb)));
	else if (oi.size != sizeof(probe_body) - 1)
		report(d, "probe-info", D_FAIL, "report this as a lexfs or server bug",
		       "info says %llu bytes, %zu were put", (unsigned long long)oi.size,
		       sizeof(probe_body) - 1);
	else
		report(d, "probe-info", D_PASS, NULL, "size %llu, etag %s",
		       (unsigned long long)oi.size, oi.etag[0] ? oi.etag : "(none)");
	objinfo_free(&oi);

	lexfs_err_clear(&e);
	rc = store_read(st, key, 0, sizeof(got), got, &n, &e);
	if (rc)
		report(d, "probe-get", D_FAIL, perm_fix, "get failed: %s",
		       errtext(&e, rc, eb, sizeof(eb)));
	else if (n != sizeof(probe_body) - 1 || memcmp(got, probe_body, n) != 0)
		report(d, "probe-get", D_FAIL, "report this as a lexfs or server bug",
		       "get returned %zu bytes that differ from the probe's", n);
	else
		report(d, "probe-get", D_PASS, NULL, "bytes match");

	lexfs_err_clear(&e);
	rc = store_list(st, prefix, "/", NULL, 1000, &page, &e);
	for (size_t i = 0; !rc && i < page.n; i++)
		if (page.items[i].key && strcmp(page.items[i].key, key) == 0)
			listed = true;
	if (rc)
		report(d, "probe-list", D_FAIL, perm_fix, "list %s failed: %s", prefix,
		       errtext(&e, rc, eb, sizeof(eb)));
	else if (!listed)
		report(d, "probe-list", D_FAIL,
		       "the listing does not show a key just written: check the prefix setting",
		       "list %s did not show the probe (%zu entries)", prefix, page.n);
	else
		report(d, "probe-list", D_PASS, NULL, "listed under %s", prefix);
	list_page_free(&page);

	lexfs_err_clear(&e);
	rc = store_copy(st, key, copy, NULL, &e);
	if (rc)
		report(d, "probe-copy", D_FAIL, "grant read and write (rename uses copy)",
		       "copy failed: %s", errtext(&e, rc, eb, sizeof(eb)));
	else
		report(d, "probe-copy", D_PASS, NULL, "%s",
		       store_caps(st) & LEXFS_CAP_SERVER_COPY ? "server-side copy"
							      : "copy (through lexfs)");
	copied = rc == 0;

	probe_presign(d, st, key);

	lexfs_err_clear(&e);
	rc = store_remove(st, key, &e);
	if (!rc && copied)
		rc = store_remove(st, copy, &e);
	if (!rc) {
		rc = store_exists(st, key, &e);
		if (rc == 1) {
			report(d, "probe-remove", D_FAIL, "report this as a server bug",
			       "the probe still exists after remove");
			goto multipart;
		}
		rc = rc < 0 ? rc : 0;
	}
	if (rc)
		report(d, "probe-remove", D_FAIL, perm_fix, "remove failed: %s (delete %s by hand)",
		       errtext(&e, rc, eb, sizeof(eb)), key);
	else
		report(d, "probe-remove", D_PASS, NULL, "removed");

multipart : {
	store_mpu *mpu = NULL;
	char mkey[560];

	snprintf(mkey, sizeof(mkey), "%s.mpu", key);
	lexfs_err_clear(&e);
	rc = store_mp_begin(st, mkey, NULL, &mpu, &e);
	if (!rc)
		rc = store_mp_abort(st, mpu, &e);
	if (rc)
		report(d, "multipart", D_FAIL,
		       "grant multipart permissions (s3:AbortMultipartUpload ...)",
		       "begin/abort failed: %s", errtext(&e, rc, eb, sizeof(eb)));
	else
		report(d, "multipart", D_PASS, NULL, "begin + abort %s",
		       store_caps(st) & LEXFS_CAP_MULTIPART
			   ? "(native)"
			   : "(buffered by lexfs: the driver has no native multipart)");
}
}

/* ---- housekeeping ---- */

#define STALE_MAX 10000 /* stale uploads remembered for --abort-stale per run */
#define LIST_PAGES_MAX 1000

struct stale {
	struct lexfs_upload *v; /* the first STALE_MAX stale ones (key, id: ours) */
	size_t n, cap;
	size_t stale;	/* stale uploads seen (n of them kept) */
	size_t total;	/* incomplete uploads seen, stale or not */
	int64_t oldest; /* initiated of the oldest stale one */
	const char *oldest_key;
};

static void stale_free(struct stale *sl)
{
	for (size_t i = 0; i < sl->n; i++) {
		free(sl->v[i].key);
		free(sl->v[i].upload_id);
	}
	free(sl->v);
}

/* Every incomplete upload under prefix; the stale ones (started age_s or more
 * ago) into sl. An upload whose start the backend does not say is never stale.
 * 0 or -errno. */
static int collect_stale(struct store *st, const char *prefix, int64_t age_s, struct stale *sl,
			 struct lexfs_err *e)
{
	int64_t now = (int64_t)time(NULL);
	char *token = NULL;
	int rc = 0;

	for (int page = 0; page < LIST_PAGES_MAX; page++) {
		struct lexfs_upload_page pg;

		rc = store_mp_list(st, prefix, token, 1000, &pg, e);
		free(token);
		token = NULL;
		if (rc)
			break;
		for (size_t i = 0; i < pg.n && !rc; i++) {
			struct lexfs_upload *u = &pg.items[i], *nv;

			sl->total++;
			if (!u->initiated || now - u->initiated < age_s)
				continue;
			if (sl->stale++ >= STALE_MAX)
				continue;
			if (sl->n == sl->cap) {
				size_t cap = sl->cap ? 2 * sl->cap : 16;

				nv = realloc(sl->v, cap * sizeof(*nv));
				if (!nv) {
					rc = -ENOMEM;
					break;
				}
				sl->v = nv;
				sl->cap = cap;
			}
			sl->v[sl->n] = *u; /* take key and id from the page */
			u->key = u->upload_id = NULL;
			if (!sl->oldest || sl->v[sl->n].initiated < sl->oldest) {
				sl->oldest = sl->v[sl->n].initiated;
				sl->oldest_key = sl->v[sl->n].key;
			}
			sl->n++;
		}
		token = pg.next_token;
		pg.next_token = NULL;
		upload_page_free(&pg);
		if (rc || !token)
			break;
	}
	free(token);
	return rc;
}

/* Incomplete multipart uploads older than a day cost storage and are never
 * listed as objects: a writer died between begin and complete or abort. */
static void check_stale_uploads(struct doctor *d, struct store *st, bool reachable)
{
	const struct doctor_conf *c = d->conf;
	const char *prefix = c->prefix ? c->prefix : "";
	int64_t age_s = c->stale_age_s > 0 ? c->stale_age_s : c->stale_age_s < 0 ? 0 : 86400;
	struct stale sl = {0};
	struct lexfs_err e = {0};
	char eb[400], age[32], oldest[32];
	size_t aborted = 0, failed = 0;
	int rc;

	if (!st || !reachable) {
		report(d, "stale-uploads", D_SKIP, NULL, "endpoint not reachable");
		return;
	}
	age_text(age_s, age, sizeof(age));
	rc = collect_stale(st, prefix, age_s, &sl, &e);
	if (rc == -ENOTSUP) {
		report(d, "stale-uploads", D_SKIP, NULL,
		       "driver %s cannot list incomplete multipart uploads",
		       store_driver(st)->name);
		goto out;
	}
	if (rc) {
		report(d, "stale-uploads", D_WARN,
		       "grant the credentials the listing of multipart uploads "
		       "(s3:ListBucketMultipartUploads)",
		       "could not list incomplete multipart uploads: %s",
		       errtext(&e, rc, eb, sizeof(eb)));
		goto out;
	}
	if (sl.n == 0) {
		report(d, "stale-uploads", D_PASS, NULL,
		       "no incomplete multipart upload older than %s under \"%s\" (%zu in "
		       "progress)",
		       age, prefix, sl.total);
		goto out;
	}
	age_text((int64_t)time(NULL) - sl.oldest, oldest, sizeof(oldest));
	if (!c->abort_stale) {
		report(d, "stale-uploads", D_WARN, "lexfs doctor --abort-stale",
		       "%zu incomplete multipart upload%s older than %s under \"%s\" (of %zu in "
		       "progress); the oldest, %s old, is for %s",
		       sl.stale, sl.stale == 1 ? "" : "s", age, prefix, sl.total, oldest,
		       sl.oldest_key);
		goto out;
	}
	for (size_t i = 0; i < sl.n; i++) {
		lexfs_err_clear(&e);
		rc = store_mp_abort_id(st, sl.v[i].key, sl.v[i].upload_id, &e);
		if (rc == 0) {
			aborted++;
			continue;
		}
		if (failed++ == 0)
			errtext(&e, rc, eb, sizeof(eb));
	}
	if (failed)
		report(d, "stale-uploads", D_FAIL,
		       "grant the credentials s3:AbortMultipartUpload, or abort them with the "
		       "provider's tools",
		       "aborted %zu of %zu incomplete multipart uploads older than %s; %zu failed: "
		       "%s",
		       aborted, sl.n, age, failed, eb);
	else if (sl.stale > sl.n)
		report(d, "stale-uploads", D_WARN, "run lexfs doctor --abort-stale again",
		       "aborted %zu incomplete multipart uploads older than %s under \"%s\"; "
		       "%zu more remain (at most %d per run)",
		       aborted, age, prefix, sl.stale - sl.n, STALE_MAX);
	else
		report(d, "stale-uploads", D_PASS, NULL,
		       "aborted %zu incomplete multipart upload%s older than %s under \"%s\"",
		       aborted, aborted == 1 ? "" : "s", age, prefix);
out:
	stale_free(&sl);
}

/* ---- local machine ---- */

static void check_cache_dir(struct doctor *d)
{
	const char *dir = d->conf->cache_dir;
	uint64_t min_free = d->conf->cache_min_free ? d->conf->cache_min_free : 64ull << 20;
	struct statvfs vfs;
	struct stat sb;
	char probe[4200];
	uint64_t avail;
	int fd;

	if (!dir) {
		report(d, "cache-dir", D_WARN, "set -o cache_dir=DIR on a local disk",
		       "not configured; lexfs will pick a per-mount default");
		return;
	}
	if (stat(dir, &sb) != 0) {
		int err = errno;
		char parent[4096];
		char *slash;

		snprintf(parent, sizeof(parent), "%s", dir);
		slash = strrchr(parent, '/');
		if (slash && slash != parent)
			*slash = '\0';
		else
			snprintf(parent, sizeof(parent), "/");
		if (err == ENOENT && access(parent, W_OK) == 0) {
			report(d, "cache-dir", D_WARN, NULL,
			       "%s does not exist yet; lexfs will create it", dir);
			return;
		}
		report(d, "cache-dir", D_FAIL,
		       "create it, or point cache_dir at a writable "
		       "local directory",
		       "%s: %s", dir, strerror(err));
		return;
	}
	if (!S_ISDIR(sb.st_mode)) {
		report(d, "cache-dir", D_FAIL, "point cache_dir at a directory",
		       "%s is not a directory", dir);
		return;
	}
	snprintf(probe, sizeof(probe), "%s/.lexfs-doctor-XXXXXX", dir);
	fd = mkstemp(probe);
	if (fd < 0 || write(fd, "x", 1) != 1) {
		int err = errno;

		if (fd >= 0) {
			close(fd);
			unlink(probe);
		}
		report(d, "cache-dir", D_FAIL,
		       "make it writable by the user that mounts (chown/chmod), or choose "
		       "another cache_dir",
		       "%s is not writable: %s", dir, strerror(err));
		return;
	}
	close(fd);
	unlink(probe);
	if (statvfs(dir, &vfs) != 0) {
		report(d, "cache-dir", D_WARN, NULL, "%s writable; free space unknown (%s)", dir,
		       strerror(errno));
		return;
	}
	avail = (uint64_t)vfs.f_bavail * vfs.f_frsize;
	if (avail < min_free)
		report(d, "cache-dir", D_FAIL, "free space on that file system or move cache_dir",
		       "%s writable but only %llu MiB free", dir,
		       (unsigned long long)(avail >> 20));
	else if (avail < (1ull << 30))
		report(d, "cache-dir", D_WARN,
		       "free space or move cache_dir: large files are "
		       "staged here whole",
		       "%s writable, %llu MiB free", dir, (unsigned long long)(avail >> 20));
	else
		report(d, "cache-dir", D_PASS, NULL, "%s writable, %llu MiB free", dir,
		       (unsigned long long)(avail >> 20));
}

/* The program's full path from PATH (or as given when it has a '/'). */
static bool find_program(const char *name, char *out, size_t len)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, len, "%s", name);
		return access(out, X_OK) == 0;
	}
	if (!path)
		path = "/usr/bin:/bin:/usr/sbin:/sbin";
	while (*path) {
		size_t l = strcspn(path, ":");

		snprintf(out, len, "%.*s/%s", (int)l, path, name);
		if (l && access(out, X_OK) == 0)
			return true;
		path += l;
		if (*path == ':')
			path++;
	}
	return false;
}

static void check_fuse(struct doctor *d)
{
	const char *dev = d->conf->fuse_device ? d->conf->fuse_device : "/dev/fuse";
	const char *fm = d->conf->fusermount ? d->conf->fusermount : "fusermount3";
	char path[4096];
	struct stat sb;
	int fd;

	if (stat(dev, &sb) != 0) {
		report(
		    d, "fuse", D_FAIL,
		    "load the module (modprobe fuse) or, in a container, pass --device /dev/fuse",
		    "%s: %s", dev, strerror(errno));
		return;
	}
	if (!S_ISCHR(sb.st_mode)) {
		report(d, "fuse", D_FAIL, "the FUSE device must be a character device",
		       "%s is not a character device", dev);
		return;
	}
	fd = open(dev, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		report(d, "fuse", D_FAIL,
		       "check the device's permissions (crw-rw-rw- root root is usual)",
		       "%s cannot be opened: %s", dev, strerror(errno));
		return;
	}
	close(fd);
	if (!find_program(fm, path, sizeof(path))) {
		report(d, "fuse", D_FAIL, "install fuse3 (apt-get install fuse3)",
		       "%s usable, but %s not found on PATH", dev, fm);
		return;
	}
	if (stat(path, &sb) == 0 && geteuid() != 0 && !(sb.st_mode & S_ISUID)) {
		report(d, "fuse", D_FAIL, "reinstall fuse3 (fusermount3 must be setuid root)",
		       "%s usable; %s is not setuid root, so unprivileged mounts fail", dev, path);
		return;
	}
	report(d, "fuse", D_PASS, NULL, "%s usable, %s found", dev, path);
}

/* ---- output ---- */

static int print_json(struct doctor *d)
{
	json_t *root = json_object(), *arr = json_array(), *sum = json_object();
	char *text;
	int ret = -ENOMEM;

	if (!root || !arr || !sum)
		goto out;
	for (size_t i = 0; i < d->n; i++) {
		json_t *o = json_object();

		if (!o)
			goto out;
		if (d->r[i].backend[0])
			json_object_set_new(o, "backend", json_string(d->r[i].backend));
		json_object_set_new(o, "check", json_string(d->r[i].check));
		json_object_set_new(o, "status", json_string(status_names[d->r[i].status]));
		/* Messages hold paths and keys that may not be UTF-8: keep them anyway. */
		json_object_set_new(o, "message",
				    json_stringn_nocheck(d->r[i].message, strlen(d->r[i].message)));
		json_object_set_new(o, "fix",
				    d->r[i].fix[0] ? json_string(d->r[i].fix) : json_null());
		json_array_append_new(arr, o);
	}
	for (int s = 0; s < 4; s++)
		json_object_set_new(sum, status_names[s], json_integer(d->count[s]));
	json_object_set_new(root, "ok", json_boolean(d->count[D_FAIL] == 0));
	json_object_set(root, "checks", arr);
	json_object_set(root, "summary", sum);
	text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (!text)
		goto out;
	fprintf(d->out, "%s\n", text);
	free(text);
	ret = 0;
out:
	json_decref(arr);
	json_decref(sum);
	json_decref(root);
	return ret;
}

/* The checks of one backend, from its credentials to its cache directory. */
static void backend_checks(struct doctor *d)
{
	struct store *st;
	bool reachable;

	check_credentials(d);
	st = check_driver(d);
	reachable = check_endpoint(d, st);
	check_clock(d, st, reachable);
	check_probe(d, st, reachable);
	check_stale_uploads(d, st, reachable);
	store_destroy(st);
	check_cache_dir(d);
}

/* nsections: 0 for the one backend of a mount, else conf[0..nsections) are named
 * backends, each checked in its own section. */
static int run(const struct doctor_conf *conf, size_t nsections, FILE *out, bool json)
{
	struct doctor d = {.conf = conf, .out = out, .json = json};
	int ret;

	check_config(&d, nsections);
	if (nsections == 0 || conf->config_status) {
		backend_checks(&d);
	} else {
		for (size_t i = 0; i < nsections; i++) {
			d.conf = &conf[i];
			d.section = conf[i].backend_name;
			backend_checks(&d);
		}
		d.conf = conf;
		d.section = NULL;
	}
	check_fuse(&d);
	if (json) {
		ret = print_json(&d);
		if (ret) {
			free(d.r);
			return ret;
		}
	} else {
		fprintf(out, "%u passed, %u warnings, %u failed, %u skipped\n", d.count[D_PASS],
			d.count[D_WARN], d.count[D_FAIL], d.count[D_SKIP]);
	}
	free(d.r);
	if (d.oom)
		return -ENOMEM;
	return d.count[D_FAIL] ? 1 : 0;
}

int doctor_run(const struct doctor_conf *conf, FILE *out, bool json)
{
	return run(conf, 0, out, json);
}

int doctor_run_backends(const struct doctor_conf *conf, size_t n, FILE *out, bool json)
{
	return run(conf, n, out, json);
}
