/* storetool.c - lexfs-storetool: drive one backend through drivers/store.h, no FUSE.
 *
 *   lexfs-storetool --driver NAME [--set KEY=VALUE]... [--backend NAME] [-v] COMMAND ARGS
 *
 * --set KEY=VALUE is a setting of the driver, except --set plugin_dir=DIR: where a
 * driver NAME that is not built in is loaded from (DIR/lexfs-NAME.so).
 *
 * Commands (output on stdout; on failure "lexfs: LEXFS-00N message" on stderr and the
 * exit status is the errno, e.g. 2 for ENOENT):
 *   put KEY FILE [--type CT] [--meta NAME=VALUE]...   FILE "-" reads stdin
 *   get KEY [OFF LEN]                                 bytes to stdout
 *   info KEY                                          one JSON object
 *   exists KEY                                        "1" or "0"
 *   list PREFIX [--recursive] [--max-keys N] [--pages]
 *                                                     JSON lines, all pages; --pages adds a
 *                                                     {"page":I,"count":N} line per page
 *   rm KEY [KEY...]                                   more than one key: remove_many
 *   cp SRC DST [--type CT] [--meta NAME=VALUE]...
 *   mv SRC DST
 *   set-meta KEY [--type CT] [--meta NAME=VALUE]...
 *   url KEY
 *   presign KEY GET|PUT SECONDS
 *   verify-url URL                                    control "verify_url" of local/memory
 *   mpu KEY PARTSIZE FILE [--order forward|reverse|shuffle] [--type CT] [--meta N=V]...
 *   mp-begin KEY                                      begin a multipart upload and exit
 *                                                     at once without abort or cleanup,
 *                                                     as a writer that dies (ends batch)
 *   mp-list PREFIX [--max-keys N] [--pages]           incomplete uploads, JSON lines
 *                                                     {"key","upload_id","initiated"}
 *   mp-abort KEY UPLOAD_ID                            abort one by id
 *   health
 *   control NAME VALUE
 *   stats                                             store statistics JSON
 *   batch                                             see below
 *
 * batch keeps one store open (the memory driver has nothing else to persist in) and
 * reads commands from stdin, one JSON array of strings per line, e.g.
 * ["put","a b.txt","/tmp/x"]. For each it writes to stdout
 *
 *   @@ rc=RC out=N err=M\n  then N bytes of output  then M bytes of error text
 *
 * and flushes, so a test can drive it interactively. RC is the exit status the
 * command would have had on its own. The batch itself exits 0 at end of input.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "drivers/store.h"
#include "src/buf.h"
#include "src/crypto.h"
#include "src/log.h"

#define MAX_ARGS 64

struct tool {
	struct store *st;
	FILE *out;
	FILE *errf;
};

/* Report a failure and return the exit status for it. */
static int report(struct tool *t, int rc, const struct lexfs_err *err, const char *what)
{
	enum lexfs_code code;
	const char *msg;

	if (rc >= 0)
		return 0;
	code = err && err->code ? err->code : lexfs_errno_code(-rc);
	msg = err && err->message[0] ? err->message : strerror(-rc);
	fprintf(t->errf, "lexfs: LEXFS-%03d %s: %s\n", (int)code, what, msg);
	return -rc > 255 ? 255 : -rc;
}

static int usage(struct tool *t, const char *msg)
{
	fprintf(t->errf, "lexfs: LEXFS-%03d usage: %s\n", (int)LEXFS_E_STORAGE, msg);
	return EINVAL;
}

/* Options shared by put / cp / set-meta / mpu, parsed from argv[from..]. */
struct putargs {
	struct lexfs_meta meta;
	const char *ctype;
	const char *order;
	bool any;
	bool recursive;
	bool pages;
	unsigned max_keys;
	const char *pos[8]; /* positional arguments */
	int npos;
};

static int parse_args(struct tool *t, int argc, char **argv, struct putargs *pa)
{
	memset(pa, 0, sizeof(*pa));
	meta_init(&pa->meta);
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--type") == 0 && i + 1 < argc) {
			pa->ctype = argv[++i];
			pa->any = true;
		} else if (strcmp(a, "--meta") == 0 && i + 1 < argc) {
			char *eq, name[256];

			a = argv[++i];
			eq = strchr(a, '=');
			if (!eq || eq == a || (size_t)(eq - a) >= sizeof(name))
				return usage(t, "--meta NAME=VALUE");
			snprintf(name, sizeof(name), "%.*s", (int)(eq - a), a);
			if (meta_set(&pa->meta, name, eq + 1) != 0)
				return ENOMEM;
			pa->any = true;
		} else if (strcmp(a, "--order") == 0 && i + 1 < argc) {
			pa->order = argv[++i];
		} else if (strcmp(a, "--recursive") == 0) {
			pa->recursive = true;
		} else if (strcmp(a, "--pages") == 0) {
			pa->pages = true;
		} else if (strcmp(a, "--max-keys") == 0 && i + 1 < argc) {
			char *end;
			unsigned long v = strtoul(argv[++i], &end, 10);

			if (*end || v == 0 || v > 1000)
				return usage(t, "--max-keys 1..1000");
			pa->max_keys = (unsigned)v;
		} else if (a[0] == '-' && a[1] == '-') {
			fprintf(t->errf, "lexfs: LEXFS-001 unknown option %s\n", a);
			return EINVAL;
		} else {
			if (pa->npos == (int)(sizeof(pa->pos) / sizeof(pa->pos[0])))
				return usage(t, "too many arguments");
			pa->pos[pa->npos++] = a;
		}
	}
	return 0;
}

static void opts_from(const struct putargs *pa, struct lexfs_put_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->content_type = pa->ctype;
	o->meta = &pa->meta;
}

static json_t *info_json(const char *key, const struct lexfs_objinfo *oi)
{
	json_t *j = json_object(), *m = json_object();

	json_object_set_new(j, "key", json_string(key));
	if (oi->is_prefix) {
		json_object_set_new(j, "prefix", json_true());
		json_decref(m);
		return j;
	}
	json_object_set_new(j, "size", json_integer((json_int_t)oi->size));
	json_object_set_new(j, "mtime", json_integer(oi->mtime));
	json_object_set_new(j, "etag", json_string(oi->etag));
	json_object_set_new(j, "content_type", json_string(oi->content_type));
	for (size_t i = 0; i < oi->meta.n; i++)
		json_object_set_new(m, oi->meta.kv[i].name, json_string(oi->meta.kv[i].value));
	json_object_set_new(j, "meta", m);
	json_object_set_new(j, "has_meta", json_boolean(oi->has_meta));
	return j;
}

static void print_json(struct tool *t, json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);

	if (s) {
		fprintf(t->out, "%s\n", s);
		free(s);
	}
	json_decref(j);
}

static int sink_file(void *arg, const void *data, size_t len)
{
	return fwrite(data, 1, len, (FILE *)arg) == len ? 0 : -EIO;
}

/* Open FILE ("-" = stdin copied to memory) as an upload source. *mem: caller frees. */
static int open_source(struct tool *t, const char *path, struct lexfs_src *src, char **mem)
{
	struct stat st;

	memset(src, 0, sizeof(*src));
	*mem = NULL;
	if (strcmp(path, "-") == 0) {
		struct buf b = BUF_INIT(1u << 30);
		char chunk[65536];
		size_t n;

		while ((n = fread(chunk, 1, sizeof(chunk), stdin)) > 0)
			if (buf_add(&b, chunk, n) != 0) {
				buf_free(&b);
				return ENOMEM;
			}
		src->len = b.len;
		*mem = buf_steal(&b);
		src->buf = *mem;
		src->fd = -1;
		return 0;
	}
	src->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (src->fd < 0 || fstat(src->fd, &st) != 0) {
		int e = errno;

		fprintf(t->errf, "lexfs: LEXFS-001 %s: %s\n", path, strerror(e));
		if (src->fd >= 0)
			close(src->fd);
		return e;
	}
	src->len = (uint64_t)st.st_size;
	return 0;
}

static void close_source(struct lexfs_src *src, char *mem)
{
	if (!mem && src->fd >= 0)
		close(src->fd);
	free(mem);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!*s || *s == '-')
		return -EINVAL;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return (errno || *end) ? -EINVAL : 0;
}

static int cmd_put(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	struct lexfs_put_opts o;
	struct lexfs_objinfo oi = { 0 };
	struct lexfs_src src;
	char *mem;
	int rc;

	if (pa->npos != 2)
		return usage(t, "put KEY FILE [--type CT] [--meta NAME=VALUE]...");
	rc = open_source(t, pa->pos[1], &src, &mem);
	if (rc)
		return rc;
	opts_from(pa, &o);
	meta_init(&oi.meta);
	rc = store_upload(t->st, pa->pos[0], &src, &o, &oi, &err);
	close_source(&src, mem);
	if (rc == 0)
		print_json(t, info_json(pa->pos[0], &oi));
	objinfo_free(&oi);
	return report(t, rc, &err, "put");
}

static int cmd_get(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	uint64_t off = 0, len = UINT64_MAX;
	int rc;

	if (pa->npos != 1 && pa->npos != 3)
		return usage(t, "get KEY [OFF LEN]");
	if (pa->npos == 3 && (parse_u64(pa->pos[1], &off) || parse_u64(pa->pos[2], &len)))
		return usage(t, "get KEY [OFF LEN]: numbers");
	rc = store_download(t->st, pa->pos[0], off, len, sink_file, t->out, &err);
	return report(t, rc, &err, "get");
}

static int cmd_info(struct tool *t, struct putargs *pa)
{
	struct lexfs_objinfo oi = { 0 };
	struct lexfs_err err;
	int rc;

	if (pa->npos != 1)
		return usage(t, "info KEY");
	meta_init(&oi.meta);
	rc = store_info(t->st, pa->pos[0], &oi, &err);
	if (rc == 0)
		print_json(t, info_json(pa->pos[0], &oi));
	objinfo_free(&oi);
	return report(t, rc, &err, "info");
}

static int cmd_exists(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	int rc;

	if (pa->npos != 1)
		return usage(t, "exists KEY");
	rc = store_exists(t->st, pa->pos[0], &err);
	if (rc >= 0)
		fprintf(t->out, "%d\n", rc > 0);
	return report(t, rc, &err, "exists");
}

/* --pages: a {"page": N, "count": N} line before each page's items. */
static void print_page_header(struct tool *t, unsigned page, size_t n)
{
	json_t *j = json_object();

	json_object_set_new(j, "page", json_integer(page));
	json_object_set_new(j, "count", json_integer((json_int_t)n));
	print_json(t, j);
}

static int cmd_list(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	char *token = NULL;
	unsigned page = 0;
	int rc;

	if (pa->npos != 1)
		return usage(t, "list PREFIX [--recursive] [--max-keys N] [--pages]");
	do {
		struct lexfs_list_page p = { 0 };

		rc = store_list(t->st, pa->pos[0], pa->recursive ? NULL : "/", token,
				pa->max_keys ? pa->max_keys : 1000, &p, &err);
		free(token);
		token = NULL;
		if (rc)
			break;
		if (pa->pages)
			print_page_header(t, page, p.n);
		for (size_t i = 0; i < p.n; i++)
			print_json(t, info_json(p.items[i].key, &p.items[i]));
		if (p.next_token) {
			token = p.next_token;
			p.next_token = NULL;
		}
		list_page_free(&p);
		page++;
	} while (token);
	return report(t, rc, &err, "list");
}

static int cmd_mp_begin(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	store_mpu *mpu = NULL;
	int rc;

	if (pa->npos != 1)
		return usage(t, "mp-begin KEY");
	rc = store_mp_begin(t->st, pa->pos[0], NULL, &mpu, &err);
	if (rc)
		return report(t, rc, &err, "mp-begin");
	fprintf(t->out, "begun\n");
	fflush(t->out);
	fflush(stdout);
	_exit(0); /* leave it behind, handle and all: that is the point */
}

static int cmd_mp_list(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	char *token = NULL;
	unsigned page = 0;
	int rc;

	if (pa->npos != 1)
		return usage(t, "mp-list PREFIX [--max-keys N] [--pages]");
	do {
		struct lexfs_upload_page p = {0};

		rc = store_mp_list(t->st, pa->pos[0], token, pa->max_keys, &p, &err);
		free(token);
		token = NULL;
		if (rc)
			break;
		if (pa->pages)
			print_page_header(t, page, p.n);
		for (size_t i = 0; i < p.n; i++)
			print_json(t, json_pack("{s:s, s:s, s:I}", "key", p.items[i].key,
						"upload_id", p.items[i].upload_id, "initiated",
						(json_int_t)p.items[i].initiated));
		token = p.next_token;
		p.next_token = NULL;
		upload_page_free(&p);
		page++;
	} while (token);
	return report(t, rc, &err, "mp-list");
}

static int cmd_mp_abort(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	int rc;

	if (pa->npos != 2)
		return usage(t, "mp-abort KEY UPLOAD_ID");
	rc = store_mp_abort_id(t->st, pa->pos[0], pa->pos[1], &err);
	return report(t, rc, &err, "mp-abort");
}

static int cmd_rm(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	int rc;

	if (pa->npos < 1)
		return usage(t, "rm KEY [KEY...]");
	if (pa->npos == 1)
		rc = store_remove(t->st, pa->pos[0], &err);
	else
		rc = store_remove_many(t->st, pa->pos, (size_t)pa->npos, &err);
	return report(t, rc, &err, "rm");
}

static int cmd_cp(struct tool *t, struct putargs *pa)
{
	struct lexfs_put_opts o;
	struct lexfs_err err;
	int rc;

	if (pa->npos != 2)
		return usage(t, "cp SRC DST [--type CT] [--meta NAME=VALUE]...");
	opts_from(pa, &o);
	rc = store_copy(t->st, pa->pos[0], pa->pos[1], pa->any ? &o : NULL, &err);
	return report(t, rc, &err, "cp");
}

static int cmd_mv(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	int rc;

	if (pa->npos != 2)
		return usage(t, "mv SRC DST");
	rc = store_move(t->st, pa->pos[0], pa->pos[1], &err);
	return report(t, rc, &err, "mv");
}

static int cmd_set_meta(struct tool *t, struct putargs *pa)
{
	struct lexfs_put_opts o;
	struct lexfs_err err;
	int rc;

	if (pa->npos != 1)
		return usage(t, "set-meta KEY [--type CT] [--meta NAME=VALUE]...");
	opts_from(pa, &o);
	rc = store_set_meta(t->st, pa->pos[0], &o, &err);
	return report(t, rc, &err, "set-meta");
}

static int cmd_url(struct tool *t, struct putargs *pa)
{
	struct lexfs_err err;
	char *url = NULL;
	int rc;

	if (pa->npos != 1)
		return usage(t, "url KEY");
	rc = store_get_url(t->st, pa->pos[0], &url, &err);
	if (rc == 0)
		fprintf(t->out, "%s\n", url);
	free(url);
	return report(t, rc, &err, "url");
}

static int cmd_presign(struct tool *t, struct putargs *pa)
{
	enum lexfs_method m;
	struct lexfs_err err;
	uint64_t secs;
	char *url = NULL;
	int rc;

	if (pa->npos != 3 || parse_u64(pa->pos[2], &secs) || secs > INT64_MAX)
		return usage(t, "presign KEY GET|PUT SECONDS");
	if (strcmp(pa->pos[1], "GET") == 0)
		m = LEXFS_GET;
	else if (strcmp(pa->pos[1], "PUT") == 0)
		m = LEXFS_PUT;
	else
		return usage(t, "presign KEY GET|PUT SECONDS");
	rc = store_presign(t->st, pa->pos[0], m, (int64_t)secs, &url, &err);
	if (rc == 0)
		fprintf(t->out, "%s\n", url);
	free(url);
	return report(t, rc, &err, "presign");
}

static int cmd_control(struct tool *t, const char *name, const char *value)
{
	struct lexfs_err err;
	int rc = store_control(t->st, name, value, &err);

	return report(t, rc, &err, "control");
}

static int cmd_mpu(struct tool *t, struct putargs *pa)
{
	struct lexfs_objinfo oi = { 0 };
	struct lexfs_put_opts o;
	struct lexfs_err err;
	struct lexfs_src src;
	store_mpu *mpu = NULL;
	uint64_t psize, nparts;
	unsigned *order = NULL;
	char *mem;
	int rc;

	if (pa->npos != 3 || parse_u64(pa->pos[1], &psize) || psize == 0)
		return usage(t, "mpu KEY PARTSIZE FILE [--order forward|reverse|shuffle]");
	rc = open_source(t, pa->pos[2], &src, &mem);
	if (rc)
		return rc;
	nparts = src.len ? (src.len + psize - 1) / psize : 1;
	if (nparts > 10000) {
		close_source(&src, mem);
		return usage(t, "mpu: more than 10000 parts");
	}
	order = calloc(nparts, sizeof(*order));
	if (!order) {
		close_source(&src, mem);
		return ENOMEM;
	}
	for (unsigned i = 0; i < nparts; i++)
		order[i] = i + 1;
	if (pa->order && strcmp(pa->order, "reverse") == 0) {
		for (unsigned i = 0; i < nparts; i++)
			order[i] = (unsigned)nparts - i;
	} else if (pa->order && strcmp(pa->order, "shuffle") == 0) {
		for (unsigned i = (unsigned)nparts; i > 1; i--) {
			uint32_t r = 0;
			unsigned j, tmp;

			crypto_random(&r, sizeof(r));
			j = r % i;
			tmp = order[i - 1];
			order[i - 1] = order[j];
			order[j] = tmp;
		}
	} else if (pa->order && strcmp(pa->order, "forward") != 0) {
		free(order);
		close_source(&src, mem);
		return usage(t, "--order forward|reverse|shuffle");
	}
	opts_from(pa, &o);
	meta_init(&oi.meta);
	rc = store_mp_begin(t->st, pa->pos[0], &o, &mpu, &err);
	for (unsigned i = 0; rc == 0 && i < nparts; i++) {
		uint64_t off = (uint64_t)(order[i] - 1) * psize;
		struct lexfs_src part = src;

		part.len = src.len - off < psize ? src.len - off : psize;
		if (src.buf)
			part.buf = (const char *)src.buf + off;
		else
			part.off = (off_t)off;
		rc = store_mp_part(t->st, mpu, order[i], &part, &err);
	}
	if (rc == 0) {
		rc = store_mp_complete(t->st, mpu, (unsigned)nparts, &oi, &err);
		if (rc == 0) {
			json_t *j = info_json(pa->pos[0], &oi);

			json_object_set_new(j, "parts", json_integer((json_int_t)nparts));
			print_json(t, j);
		}
	} else if (mpu) {
		store_mp_abort(t->st, mpu, NULL);
	}
	objinfo_free(&oi);
	free(order);
	close_source(&src, mem);
	return report(t, rc, &err, "mpu");
}

static int run_batch(struct tool *t);

/* Run one command (argv[0] is its name). Returns the exit status. */
static int run_command(struct tool *t, int argc, char **argv, bool nested)
{
	struct putargs pa;
	int rc;

	if (argc < 1)
		return usage(t, "no command");
	if (strcmp(argv[0], "batch") == 0) {
		if (nested)
			return usage(t, "batch cannot nest");
		return run_batch(t);
	}
	if (strcmp(argv[0], "health") == 0) {
		struct lexfs_err err;

		rc = store_health_check(t->st, 10000, &err);
		if (rc == 0)
			fprintf(t->out, "ok\n");
		return report(t, rc, &err, "health");
	}
	if (strcmp(argv[0], "stats") == 0) {
		char *s = store_stats_json(t->st);

		if (!s)
			return ENOMEM;
		fprintf(t->out, "%s\n", s);
		free(s);
		return 0;
	}
	if (strcmp(argv[0], "control") == 0 || strcmp(argv[0], "verify-url") == 0) {
		if (argv[0][0] == 'c')
			return argc == 3 ? cmd_control(t, argv[1], argv[2])
					 : usage(t, "control NAME VALUE");
		return argc == 2 ? cmd_control(t, "verify_url", argv[1]) : usage(t, "verify-url URL");
	}
	rc = parse_args(t, argc - 1, argv + 1, &pa);
	if (rc == 0) {
		static const struct {
			const char *name;
			int (*fn)(struct tool *, struct putargs *);
		} cmds[] = {
			{ "put", cmd_put },   { "get", cmd_get },
			{ "info", cmd_info }, { "exists", cmd_exists },
			{ "list", cmd_list }, { "rm", cmd_rm },
			{ "cp", cmd_cp },     { "mv", cmd_mv },
			{ "url", cmd_url },   { "presign", cmd_presign },
			{ "mpu", cmd_mpu },   { "set-meta", cmd_set_meta },
			{ "mp-begin", cmd_mp_begin }, { "mp-list", cmd_mp_list },
			{ "mp-abort", cmd_mp_abort },
		};
		size_t i;

		for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
			if (strcmp(argv[0], cmds[i].name) == 0)
				break;
		if (i == sizeof(cmds) / sizeof(cmds[0])) {
			fprintf(t->errf, "lexfs: LEXFS-001 unknown command \"%s\"\n", argv[0]);
			rc = EINVAL;
		} else {
			rc = cmds[i].fn(t, &pa);
		}
	}
	meta_free(&pa.meta);
	return rc;
}

static int run_batch(struct tool *t)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;

	while ((n = getline(&line, &cap, stdin)) >= 0) {
		char *argv[MAX_ARGS], *obuf = NULL, *ebuf = NULL;
		size_t olen = 0, elen = 0, i;
		struct tool sub = { t->st, NULL, NULL };
		json_error_t jerr;
		json_t *arr;
		int argc = 0, rc;

		if (n <= 1 && (n == 0 || line[0] == '\n'))
			continue;
		sub.out = open_memstream(&obuf, &olen);
		sub.errf = open_memstream(&ebuf, &elen);
		if (!sub.out || !sub.errf) {
			free(line);
			return ENOMEM;
		}
		arr = json_loads(line, 0, &jerr);
		if (!json_is_array(arr) || json_array_size(arr) == 0 ||
		    json_array_size(arr) > MAX_ARGS) {
			rc = usage(&sub, "batch lines are JSON arrays of strings");
		} else {
			rc = 0;
			for (i = 0; i < json_array_size(arr); i++) {
				const char *s = json_string_value(json_array_get(arr, i));

				if (!s) {
					rc = usage(&sub, "batch lines are JSON arrays of strings");
					break;
				}
				argv[argc++] = (char *)s;
			}
			if (rc == 0)
				rc = run_command(&sub, argc, argv, true);
		}
		json_decref(arr);
		fclose(sub.out);
		fclose(sub.errf);
		fprintf(t->out, "@@ rc=%d out=%zu err=%zu\n", rc, olen, elen);
		fwrite(obuf, 1, olen, t->out);
		fwrite(ebuf, 1, elen, t->out);
		fflush(t->out);
		free(obuf);
		free(ebuf);
	}
	free(line);
	return 0;
}

int main(int argc, char **argv)
{
	struct tool t = { NULL, stdout, stderr };
	struct store_conf conf = { 0 };
	struct settings s;
	struct lexfs_err err;
	const char *driver = NULL, *backend = "default";
	int i, rc, level = LOG_WARNING;

	settings_init(&s);
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--driver") == 0 && i + 1 < argc) {
			driver = argv[++i];
		} else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc) {
			backend = argv[++i];
		} else if (strcmp(argv[i], "--set") == 0 && i + 1 < argc) {
			char key[128], origin[160];
			const char *kv = argv[++i], *eq = strchr(kv, '=');

			if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof(key)) {
				rc = usage(&t, "--set KEY=VALUE");
				goto out;
			}
			snprintf(key, sizeof(key), "%.*s", (int)(eq - kv), kv);
			/* lexfs's own key, as in the storage group: where plugins live */
			if (strcmp(key, "plugin_dir") == 0) {
				conf.plugin_dir = eq + 1;
				continue;
			}
			snprintf(origin, sizeof(origin), "--set %s", key);
			if (settings_set(&s, key, eq + 1, origin) != 0) {
				rc = ENOMEM;
				goto out;
			}
		} else if (strcmp(argv[i], "-v") == 0) {
			level = LOG_DEBUG;
		} else {
			break;
		}
	}
	if (!driver || i >= argc) {
		rc = usage(&t, "lexfs-storetool --driver NAME [--set KEY=VALUE]... COMMAND ARGS");
		goto out;
	}
	log_open(LOG_SINK_STDERR, NULL, level);

	conf.driver = driver;
	conf.backend_name = backend;
	conf.settings = &s;
	conf.max_retries = 4;
	conf.retry_base_ms = 10;
	conf.retry_max_ms = 200;
	lexfs_err_clear(&err);
	rc = store_create(&conf, &t.st, &err);
	if (rc) {
		rc = report(&t, rc, &err, "open");
		goto out;
	}
	for (size_t k = 0; k < s.n; k++) {
		if (!s.v[k].used) {
			fprintf(stderr, "lexfs: LEXFS-001 unknown option %s (from %s)\n", s.v[k].key,
				s.v[k].origin);
			rc = EINVAL;
			goto out;
		}
	}
	rc = run_command(&t, argc - i, argv + i, false);
out:
	fflush(stdout);
	store_destroy(t.st);
	settings_free(&s);
	log_close();
	return rc;
}
