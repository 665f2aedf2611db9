/* core_test.c - unit tests of the support code and of the store's generic
 * fallbacks and retries, on a toy driver that has only the required slots. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/store.h"
#include "src/buf.h"
#include "src/crypto.h"
#include "src/errors.h"
#include "src/settings.h"
#include "tests/unit/check.h"

static void test_errors(void)
{
	struct lexfs_err e;

	CHECK_INT(lexfs_code_errno(LEXFS_E_NOTFOUND, 0), ENOENT);
	CHECK_INT(lexfs_code_errno(LEXFS_E_UNSUPPORTED, 0), ENOTSUP);
	CHECK_INT(lexfs_code_errno(LEXFS_E_QUOTA, 0), EFBIG);
	CHECK_INT(lexfs_code_errno(LEXFS_E_QUOTA, EDQUOT), EDQUOT);
	CHECK_INT(lexfs_code_errno(LEXFS_E_INVALID_PATH, 0), EINVAL);
	CHECK_INT(lexfs_code_errno(LEXFS_E_INVALID_PATH, ENAMETOOLONG), ENAMETOOLONG);
	CHECK_INT(lexfs_code_errno(LEXFS_E_UNAVAILABLE, 0), EIO);
	CHECK_INT(lexfs_code_errno(LEXFS_E_UNAVAILABLE, ETIMEDOUT), ETIMEDOUT);
	CHECK_INT(lexfs_code_errno(LEXFS_E_CHECKSUM, 0), EIO);
	CHECK_INT(lexfs_code_errno(LEXFS_E_TRANSACTION, 0), EIO);
	CHECK_INT(lexfs_code_errno(LEXFS_E_PERMISSION, 0), EACCES);
	CHECK_INT(lexfs_code_errno(LEXFS_E_STORAGE, 0), EIO);

	CHECK_INT(lexfs_http_error(200, NULL, NULL, &e), 0);
	CHECK_INT(lexfs_http_error(404, "NoSuchKey", "gone", &e), -ENOENT);
	CHECK_INT(e.code, LEXFS_E_NOTFOUND);
	CHECK_STR(e.provider_code, "NoSuchKey");
	CHECK_INT(lexfs_http_error(403, NULL, NULL, &e), -EACCES);
	CHECK_INT(e.code, LEXFS_E_PERMISSION);
	CHECK_INT(lexfs_http_error(401, NULL, NULL, &e), -EACCES);
	CHECK_INT(lexfs_http_error(503, "SlowDown", NULL, &e), -EIO);
	CHECK(e.retryable);
	CHECK_INT(lexfs_http_error(500, NULL, NULL, &e), -EIO);
	CHECK(e.retryable);
	CHECK_INT(lexfs_http_error(404, "BlobNotFound", NULL, &e), -ENOENT);
	CHECK_INT(lexfs_http_error(403, "AuthenticationFailed", NULL, &e), -EACCES);
	CHECK_INT(lexfs_http_error(412, NULL, NULL, &e), -EIO);
	CHECK(!e.retryable);
	CHECK_INT(lexfs_http_error(400, "BadDigest", NULL, &e), -EIO);
	CHECK_INT(e.code, LEXFS_E_CHECKSUM);
	CHECK_INT(lexfs_errno_code(-ENOENT), LEXFS_E_NOTFOUND);
	CHECK_INT(lexfs_errno_code(EACCES), LEXFS_E_PERMISSION);
	CHECK_STR(lexfs_code_name(LEXFS_E_CHECKSUM), "ChecksumMismatch");
}

static void test_buf(void)
{
	struct buf b = BUF_INIT(16);
	char *s;

	CHECK_INT(buf_adds(&b, "hello"), 0);
	CHECK_INT(buf_addf(&b, " %d", 42), 0);
	CHECK_STR(buf_cstr(&b), "hello 42");
	CHECK_INT(buf_adds(&b, "123456789"), -E2BIG); /* past the maximum */
	CHECK_STR(buf_cstr(&b), "hello 42");
	s = buf_steal(&b);
	CHECK_STR(s, "hello 42");
	CHECK_INT(b.len, 0);
	free(s);
	buf_free(&b);
}

static void test_crypto(void)
{
	uint8_t d[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	uint8_t *dec;
	size_t declen;
	char *b64;

	crypto_sha256("abc", 3, d);
	crypto_hex(d, SHA256_LEN, hex);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	/* RFC 4231 test case 2 */
	crypto_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
	crypto_hex(d, SHA256_LEN, hex);
	CHECK_STR(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	b64 = crypto_base64("hello!?", 7);
	CHECK_STR(b64, "aGVsbG8hPw==");
	CHECK_INT(crypto_base64_decode(b64, &dec, &declen), 0);
	CHECK_INT(declen, 7);
	CHECK(memcmp(dec, "hello!?", 7) == 0);
	free(dec);
	free(b64);
	b64 = crypto_base64url("\xfb\xff", 2);
	CHECK_STR(b64, "-_8");
	free(b64);
	CHECK_INT(crypto_base64_decode("abc", &dec, &declen), -EINVAL);
}

static void test_settings(void)
{
	struct settings s;
	char msg[256];
	uint64_t v;
	bool b;

	settings_init(&s);
	CHECK_INT(settings_set(&s, "Root_Dir", "/a", "file.conf:3"), 0);
	CHECK_INT(settings_set(&s, "root_dir", "/b", "env LEX_STORAGE__LOCAL__ROOT_DIR"), 0);
	CHECK_STR(settings_get(&s, "root_dir"), "/b");
	CHECK_STR(settings_origin(&s, "ROOT_DIR"), "env LEX_STORAGE__LOCAL__ROOT_DIR");
	settings_set(&s, "size", "64m", "-o size");
	CHECK_INT(settings_get_size(&s, "size", 0, &v, msg, sizeof(msg)), 0);
	CHECK_INT(v, 64ull << 20);
	settings_set(&s, "size", "lots", "-o size");
	CHECK_INT(settings_get_size(&s, "size", 0, &v, msg, sizeof(msg)), -EINVAL);
	CHECK(strstr(msg, "size (from -o size)") != NULL);
	settings_set(&s, "flag", "yes", "x");
	CHECK_INT(settings_get_bool(&s, "flag", false, &b, msg, sizeof(msg)), 0);
	CHECK(b);
	settings_set(&s, "n", "-3", "x");
	CHECK_INT(settings_get_u64(&s, "n", 0, &v, msg, sizeof(msg)), -EINVAL);
	CHECK_INT(settings_get_u64(&s, "absent", 7, &v, msg, sizeof(msg)), 0);
	CHECK_INT(v, 7);
	settings_free(&s);
}

/* A toy driver: objects in a small array, only the required slots, and a switch
 * that makes the next N calls fail with a retryable error. */
struct toy_obj {
	char key[64];
	char data[4096];
	size_t len;
	struct lexfs_meta meta;
	char ctype[64];
};

struct lexfs_drv {
	pthread_mutex_t lock;
	struct toy_obj obj[16];
	int fail_next;
};

static int toy_fault(lexfs_drv *d, struct lexfs_err *err)
{
	if (d->fail_next > 0) {
		d->fail_next--;
		err->retryable = true;
		return lexfs_fail(err, LEXFS_E_UNAVAILABLE, EIO, "toy: injected");
	}
	return 0;
}

static struct toy_obj *toy_find(lexfs_drv *d, const char *key, bool create)
{
	for (int i = 0; i < 16; i++)
		if (d->obj[i].key[0] && strcmp(d->obj[i].key, key) == 0)
			return &d->obj[i];
	if (!create)
		return NULL;
	for (int i = 0; i < 16; i++)
		if (!d->obj[i].key[0]) {
			snprintf(d->obj[i].key, sizeof(d->obj[i].key), "%s", key);
			return &d->obj[i];
		}
	return NULL;
}

static int toy_open(const struct lexfs_driver_conf *conf, lexfs_drv **out, struct lexfs_err *err)
{
	*out = calloc(1, sizeof(**out));
	return *out ? 0 : -ENOMEM;
}

static void toy_close(lexfs_drv *d)
{
	if (!d)
		return;
	for (int i = 0; i < 16; i++)
		meta_free(&d->obj[i].meta);
	free(d);
}

static int toy_health(lexfs_drv *d, int timeout_ms, struct lexfs_err *err)
{
	return 0;
}

static int toy_upload(lexfs_drv *d, const char *key, const struct lexfs_src *src,
		      const struct lexfs_put_opts *opts, struct lexfs_objinfo *out,
		      struct lexfs_err *err)
{
	struct toy_obj *o;
	int ret = toy_fault(d, err);

	if (ret)
		return ret;
	if (src->len > sizeof(o->data))
		return -EFBIG;
	o = toy_find(d, key, true);
	if (!o)
		return -ENOSPC;
	ret = src_read(src, 0, o->data, src->len);
	o->len = src->len;
	meta_free(&o->meta);
	if (opts && opts->meta)
		meta_copy(&o->meta, opts->meta);
	snprintf(o->ctype, sizeof(o->ctype), "%s", opts && opts->content_type ?
		 opts->content_type : "");
	return ret;
}

static int toy_download(lexfs_drv *d, const char *key, uint64_t off, uint64_t len,
			lexfs_sink_fn sink, void *arg, struct lexfs_err *err)
{
	struct toy_obj *o = toy_find(d, key, false);
	int ret;

	if (!o)
		return -ENOENT;
	if (off >= o->len)
		return 0;
	if (len > o->len - off)
		len = o->len - off;
	/* deliver one byte, then fail once: the store must resume, not repeat */
	if (d->fail_next > 0 && len > 1) {
		ret = sink(arg, o->data + off, 1);
		if (ret)
			return ret;
		return toy_fault(d, err);
	}
	return sink(arg, o->data + off, len);
}

static int toy_info(lexfs_drv *d, const char *key, struct lexfs_objinfo *out,
		    struct lexfs_err *err)
{
	struct toy_obj *o = toy_find(d, key, false);

	if (!o)
		return -ENOENT;
	out->size = o->len;
	snprintf(out->content_type, sizeof(out->content_type), "%s", o->ctype);
	out->has_meta = true;
	return meta_copy(&out->meta, &o->meta);
}

static int toy_list(lexfs_drv *d, const char *prefix, const char *delim, const char *token,
		    unsigned max_keys, struct lexfs_list_page *out, struct lexfs_err *err)
{
	return 0;
}

static int toy_remove(lexfs_drv *d, const char *key, struct lexfs_err *err)
{
	struct toy_obj *o = toy_find(d, key, false);

	if (o) {
		meta_free(&o->meta);
		memset(o, 0, sizeof(*o));
	}
	return 0;
}

static int toy_url(lexfs_drv *d, const char *key, char **url, struct lexfs_err *err)
{
	*url = strdup(key);
	return *url ? 0 : -ENOMEM;
}

static int toy_control(lexfs_drv *d, const char *name, const char *value,
		       struct lexfs_err *err)
{
	if (strcmp(name, "fail") != 0)
		return -EINVAL;
	d->fail_next = (int)strtol(value, NULL, 10);
	return 0;
}

static const struct lexfs_driver toy_driver = {
	.name = "toy",
	.abi = LEXFS_DRIVER_ABI,
	.caps = 0,
	.open = toy_open,
	.close = toy_close,
	.health_check = toy_health,
	.upload = toy_upload,
	.download = toy_download,
	.info = toy_info,
	.list = toy_list,
	.remove = toy_remove,
	.get_url = toy_url,
	.exists = NULL,
	.copy = NULL,
	.move = NULL,
	.set_meta = NULL,
	.remove_many = NULL,
	.mp_begin = NULL,
	.mp_part = NULL,
	.mp_complete = NULL,
	.mp_abort = NULL,
	.presign = NULL,
	.control = toy_control,
	.server_time = NULL,
	.mp_list = NULL,
	.mp_abort_id = NULL,
};

static void test_store_fallbacks(void)
{
	struct store_conf conf = { .table = &toy_driver, .retry_base_ms = 1, .retry_max_ms = 2 };
	struct lexfs_put_opts opts = { 0 };
	struct lexfs_src src = { 0 };
	struct lexfs_objinfo oi;
	struct lexfs_meta meta;
	struct lexfs_err err;
	struct store *st;
	store_mpu *mpu;
	char buf[64];
	size_t got;
	char *url;

	CHECK_INT(store_create(&conf, &st, &err), 0);
	if (!st)
		return;
	meta_init(&meta);
	meta_set(&meta, "mode", "33188");
	opts.meta = &meta;
	opts.content_type = "text/plain";
	src.buf = "hello world";
	src.len = 11;
	CHECK_INT(store_upload(st, "a", &src, &opts, NULL, &err), 0);

	/* copy = download + upload, keeping metadata */
	CHECK_INT(store_copy(st, "a", "b", NULL, &err), 0);
	CHECK_INT(store_info(st, "b", &oi, &err), 0);
	CHECK_INT(oi.size, 11);
	CHECK_STR(meta_get(&oi.meta, "mode"), "33188");
	CHECK_STR(oi.content_type, "text/plain");
	objinfo_free(&oi);

	/* move = copy + remove */
	CHECK_INT(store_move(st, "b", "c", &err), 0);
	CHECK_INT(store_exists(st, "b", &err), 0);
	CHECK_INT(store_exists(st, "c", &err), 1);

	/* set_meta = copy onto itself with new metadata */
	meta_set(&meta, "mode", "33261");
	CHECK_INT(store_set_meta(st, "c", &opts, &err), 0);
	CHECK_INT(store_info(st, "c", &oi, &err), 0);
	CHECK_STR(meta_get(&oi.meta, "mode"), "33261");
	objinfo_free(&oi);
	CHECK_INT(store_read(st, "c", 6, 5, buf, &got, &err), 0);
	CHECK_INT(got, 5);
	CHECK(memcmp(buf, "world", 5) == 0);

	/* multipart fallback: parts out of order, one upload at complete */
	CHECK_INT(store_mp_begin(st, "m", &opts, &mpu, &err), 0);
	src.buf = "3333";
	src.len = 4;
	CHECK_INT(store_mp_part(st, mpu, 3, &src, &err), 0);
	src.buf = "1111";
	CHECK_INT(store_mp_part(st, mpu, 1, &src, &err), 0);
	src.buf = "22";
	src.len = 2;
	CHECK_INT(store_mp_part(st, mpu, 2, &src, &err), 0);
	CHECK_INT(store_mp_complete(st, mpu, 3, NULL, &err), 0);
	CHECK_INT(store_read(st, "m", 0, sizeof(buf), buf, &got, &err), 0);
	CHECK_INT(got, 10);
	CHECK(memcmp(buf, "1111223333", 10) == 0);
	/* a missing part fails the upload and leaves nothing behind */
	CHECK_INT(store_mp_begin(st, "n", NULL, &mpu, &err), 0);
	CHECK_INT(store_mp_part(st, mpu, 2, &src, &err), 0);
	CHECK_INT(store_mp_complete(st, mpu, 2, NULL, &err), -EIO);
	CHECK_INT(store_exists(st, "n", &err), 0);

	/* optional slots without fallback answer ENOTSUP */
	CHECK_INT(store_presign(st, "a", LEXFS_GET, 60, &url, &err), -ENOTSUP);
	CHECK_INT(err.code, LEXFS_E_UNSUPPORTED);
	CHECK_INT(store_get_url(st, "a", &url, &err), 0);
	free(url);

	meta_free(&meta);
	store_destroy(st);
}

static void test_store_retries(void)
{
	struct store_conf conf = { .table = &toy_driver, .max_retries = 3, .retry_base_ms = 1,
				   .retry_max_ms = 2 };
	struct store_opstat stats[STORE_OP_COUNT];
	struct lexfs_src src = { .buf = "abcdef", .len = 6 };
	struct lexfs_err err;
	struct store *st;
	char buf[16];
	size_t got;

	CHECK_INT(store_create(&conf, &st, &err), 0);
	if (!st)
		return;
	/* two transient failures: retried, then success */
	CHECK_INT(store_control(st, "fail", "2", &err), 0);
	CHECK_INT(store_upload(st, "k", &src, NULL, NULL, &err), 0);
	store_stats(st, stats);
	CHECK_INT(stats[STORE_OP_UPLOAD].retries, 2);
	CHECK_INT(stats[STORE_OP_UPLOAD].calls, 1);

	/* a download that fails after one byte resumes after it: no byte twice */
	CHECK_INT(store_control(st, "fail", "1", &err), 0);
	CHECK_INT(store_read(st, "k", 0, sizeof(buf), buf, &got, &err), 0);
	CHECK_INT(got, 6);
	CHECK(memcmp(buf, "abcdef", 6) == 0);

	/* more failures than retries: the error comes back, marked */
	CHECK_INT(store_control(st, "fail", "10", &err), 0);
	CHECK_INT(store_upload(st, "k2", &src, NULL, NULL, &err), -EIO);
	CHECK_INT(err.code, LEXFS_E_UNAVAILABLE);
	CHECK_INT(store_exists(st, "k2", &err), 0);
	store_stats(st, stats);
	CHECK_INT(stats[STORE_OP_UPLOAD].errors, 1);
	store_destroy(st);
}

int main(void)
{
	test_errors();
	test_buf();
	test_crypto();
	test_settings();
	test_store_fallbacks();
	test_store_retries();
	return check_done("core_test");
}
