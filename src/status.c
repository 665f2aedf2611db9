/* status.c - `lexfs status MOUNTPOINT` (see status.h).
 *
 * Pending uploads come from the "files" arrays of user.lexfs.stats (cache_stats_json:
 * key, size, uploaded, total, uploading, error), wherever they sit in the document,
 * so a mount of named backends, whose root holds one section per backend, shows a
 * bar per file of each. A file whose upload has not started yet (write-back delay,
 * or waiting for a slot) has total 0 and is measured against its size.
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>

#include "src/status.h"

#define XATTR_VALUE_MAX 65536 /* the kernel's XATTR_SIZE_MAX */
#define STATS_XATTR "user.lexfs.stats"

int status_read_xattr(const char *path, const char *name, char **text)
{
	ssize_t n = getxattr(path, name, NULL, 0), got;
	size_t cap;
	char *buf;

	*text = NULL;
	if (n < 0)
		return -errno;
	/* Room for the value to grow a little before the second call; when it grew
	 * more than that (ERANGE), once more with room for the largest value the
	 * kernel passes (XATTR_SIZE_MAX), which cannot be too small. */
	cap = (size_t)n + (size_t)n / 4 + 1024;
	for (int i = 0; i < 2; i++, cap = XATTR_VALUE_MAX) {
		buf = malloc(cap + 1);
		if (!buf)
			return -ENOMEM;
		got = getxattr(path, name, buf, cap);
		if (got >= 0) {
			buf[got] = '\0';
			*text = buf;
			return 0;
		}
		n = -errno;
		free(buf);
		if (n != -ERANGE)
			return (int)n;
	}
	return -ERANGE;
}

void status_bar(uint64_t done, uint64_t total, unsigned width, char *out, size_t outlen)
{
	unsigned fill = 0, i;

	if (outlen < (size_t)width + 3) {
		if (outlen)
			out[0] = '\0';
		return;
	}
	if (total > 0) {
		if (done > total)
			done = total;
		/* In 128 bits: done * width overflows near 2^59 bytes otherwise. */
		fill = (unsigned)((unsigned __int128)done * width / total);
	}
	out[0] = '[';
	for (i = 0; i < width; i++)
		out[1 + i] = i < fill ? '#' : '.';
	out[1 + width] = ']';
	out[2 + width] = '\0';
}

/* "512 B", "4.7 MiB" */
static void human(uint64_t v, char *out, size_t len)
{
	static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
	double d = (double)v;
	int u = 0;

	if (v < 1024) {
		snprintf(out, len, "%" PRIu64 " B", v);
		return;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	snprintf(out, len, "%.1f %s", d, unit[u]);
}

static uint64_t num(const json_t *o, const char *k)
{
	json_int_t v = json_integer_value(json_object_get(o, k));

	return v > 0 ? (uint64_t)v : 0;
}

static int by_key(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "key"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "key"));

	return strcmp(x ? x : "", y ? y : "");
}

static void print_bars(FILE *out, const char *section, json_t *files)
{
	size_t n = json_array_size(files), i;
	json_t **v;

	if (n == 0)
		return;
	v = calloc(n, sizeof(*v));
	if (!v)
		return;
	for (i = 0; i < n; i++)
		v[i] = json_array_get(files, i);
	qsort(v, n, sizeof(*v), by_key);
	fprintf(out, "pending uploads%s%s: %zu\n", section[0] ? " of " : "", section, n);
	for (i = 0; i < n; i++) {
		const char *key = json_string_value(json_object_get(v[i], "key"));
		uint64_t total = num(v[i], "total"), done = num(v[i], "uploaded");
		bool up = json_is_true(json_object_get(v[i], "uploading"));
		json_int_t e = json_integer_value(json_object_get(v[i], "error"));
		char bar[STATUS_BAR_WIDTH + 3], a[32], b[32], why[160] = "";
		unsigned pct;

		if (total == 0)
			total = num(v[i], "size");
		if (done > total)
			done = total;
		pct = total ? (unsigned)((unsigned __int128)done * 100 / total) : 0;
		status_bar(done, total, STATUS_BAR_WIDTH, bar, sizeof(bar));
		human(done, a, sizeof(a));
		human(total, b, sizeof(b));
		if (e < 0)
			snprintf(why, sizeof(why), " (last attempt failed: %s)", strerror((int)-e));
		fprintf(out, "  %s %3u%%  %s / %s  %s (%s)%s\n", bar, pct, a, b, key ? key : "?",
			up ? "uploading" : "waiting", why);
	}
	free(v);
}

/* Bars for every "files" array of upload entries in the document. */
static void find_uploads(FILE *out, const char *path, json_t *v)
{
	const char *k;
	json_t *child;

	if (!json_is_object(v))
		return;
	child = json_object_get(v, "files");
	if (json_is_array(child))
		print_bars(out, path, child);
	json_object_foreach(v, k, child)
	{
		char sub[512];

		if (!json_is_object(child))
			continue;
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", k);
		find_uploads(out, sub, child);
	}
}

/* Every value as "dotted.name value"; the files arrays are the bars above. */
static void print_values(FILE *out, const char *path, json_t *v)
{
	const char *k;
	json_t *child;
	char sub[512];

	if (json_is_object(v)) {
		json_object_foreach(v, k, child)
		{
			if (strcmp(k, "files") == 0 && json_is_array(child))
				continue;
			snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", k);
			print_values(out, sub, child);
		}
		return;
	}
	if (json_is_integer(v))
		fprintf(out, "%-40s %" JSON_INTEGER_FORMAT "\n", path, json_integer_value(v));
	else if (json_is_real(v))
		fprintf(out, "%-40s %g\n", path, json_real_value(v));
	else if (json_is_string(v))
		fprintf(out, "%-40s %s\n", path, json_string_value(v));
	else if (json_is_true(v) || json_is_false(v))
		fprintf(out, "%-40s %s\n", path, json_is_true(v) ? "yes" : "no");
	else if (json_is_null(v))
		fprintf(out, "%-40s -\n", path);
	else {
		char *s = json_dumps(v, JSON_COMPACT);

		fprintf(out, "%-40s %s\n", path, s ? s : "?");
		free(s);
	}
}

int status_run(const char *mnt, bool json, FILE *out, char *why, size_t whylen)
{
	json_error_t jerr;
	json_t *root;
	char *text;
	int rc;

	rc = status_read_xattr(mnt, STATS_XATTR, &text);
	if (rc == -ENODATA || rc == -ENOTSUP) {
		snprintf(why, whylen, "%s is not a lexfs mount", mnt);
		return rc;
	}
	if (rc) {
		snprintf(why, whylen, "%s: %s", mnt, strerror(-rc));
		return rc;
	}
	if (json) {
		fprintf(out, "%s\n", text);
		free(text);
		return 0;
	}
	root = json_loads(text, 0, &jerr);
	free(text);
	if (!root) {
		snprintf(why, whylen, "%s answered something that is not JSON: %s", mnt, jerr.text);
		return -EPROTO;
	}
	fprintf(out, "lexfs mount %s\n", mnt);
	find_uploads(out, "", root);
	print_values(out, "", root);
	json_decref(root);
	return 0;
}
