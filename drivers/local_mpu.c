/* local_mpu.c - multipart uploads of the local driver.
 *
 * An upload is the directory ROOT/.lexfs/mpu/ID; part N is the file N in it, written
 * to a temp name and renamed (a re-sent part replaces the earlier one atomically).
 * complete concatenates parts 1..n (copy_file_range) into a temp file and commits it
 * like any upload; complete and abort remove the directory and free the handle.
 *
 * ID/upload.json records what the upload is for, so incomplete uploads can be
 * listed (mp_list) and aborted by id (mp_abort_id) by another process than the one
 * that began them: {"v":1,"key":"...","initiated":SECONDS}. An upload directory
 * without it (made by an older lexfs) lists with key "" and its directory's
 * change time.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "drivers/local_int.h"
#include "src/crypto.h"

#define UPLOAD_RECORD "upload.json"

static void mpu_free(lexfs_mpu *m)
{
	if (!m)
		return;
	free(m->key);
	meta_free(&m->meta);
	free(m);
}

void local_mpu_rmdir(lexfs_drv *d, const lexfs_mpu *m)
{
	struct ent *v;
	size_t n;
	int fd;

	fd = openat(d->mpu_fd, m->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (local_read_dir(d, fd, false, "", &v, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			unlinkat(fd, v[i].name, 0);
		local_ents_free(v, n);
	}
	close(fd);
	unlinkat(d->mpu_fd, m->id, AT_REMOVEDIR);
}

/* ID/upload.json of a new upload (see the top of this file). 0 or -errno. */
static int write_record(lexfs_drv *d, const lexfs_mpu *m)
{
	json_t *o = json_pack("{s:i, s:s, s:I}", "v", 1, "key", m->key, "initiated",
			      (json_int_t)time(NULL));
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	int dfd = -1, fd = -1, rc = -ENOMEM;

	json_decref(o);
	if (!text)
		goto out;
	dfd = openat(d->mpu_fd, m->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd >= 0)
		fd = openat(dfd, UPLOAD_RECORD,
			    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	rc = local_write_src(fd, &(struct lexfs_src){.buf = text, .len = strlen(text)});
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	free(text);
	return rc;
}

int local_mp_begin(lexfs_drv *d, const char *key, const struct lexfs_put_opts *opts,
			  lexfs_mpu **out, struct lexfs_err *err)
{
	uint8_t raw[16];
	lexfs_mpu *m;
	int rc;

	*out = NULL;
	rc = local_check_key(key, false, err);
	if (rc)
		return rc;
	if (local_is_marker(key))
		return lexfs_fail(err, LEXFS_E_INVALID_PATH, EINVAL,
				  "local: multipart upload of a directory marker");
	m = calloc(1, sizeof(*m));
	if (!m)
		return local_oom(err);
	meta_init(&m->meta);
	m->key = strdup(key);
	snprintf(m->content_type, sizeof(m->content_type), "%s",
		 opts && opts->content_type ? opts->content_type : "");
	if (!m->key || (opts && opts->meta && meta_copy(&m->meta, opts->meta) != 0)) {
		mpu_free(m);
		return local_oom(err);
	}
	if (crypto_random(raw, sizeof(raw)) != 0) {
		mpu_free(m);
		return lexfs_fail(err, LEXFS_E_STORAGE, EIO, "local: no random bytes");
	}
	crypto_hex(raw, sizeof(raw), m->id);
	if (mkdirat(d->mpu_fd, m->id, 0700) != 0) {
		rc = local_fail_errno(err, errno, "begin multipart upload of", key);
		mpu_free(m);
		return rc;
	}
	rc = write_record(d, m);
	if (rc) {
		rc = local_fail_errno(err, -rc, "begin multipart upload of", key);
		local_mpu_rmdir(d, m);
		mpu_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

int local_mp_part(lexfs_drv *d, lexfs_mpu *m, unsigned partno,
			 const struct lexfs_src *src, struct lexfs_err *err)
{
	char name[32], tmp[64];
	int dfd, fd, rc;

	if (partno < 1 || partno > 10000)
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL, "local: bad part number %u", partno);
	dfd = openat(d->mpu_fd, m->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return local_fail_errno(err, errno, "multipart upload of", m->key);
	local_temp_name(d, tmp, sizeof(tmp));
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		rc = local_fail_errno(err, errno, "write part of", m->key);
		close(dfd);
		return rc;
	}
	rc = local_write_src(fd, src);
	if (rc == 0 && d->do_fsync && fsync(fd) != 0)
		rc = -errno;
	close(fd);
	snprintf(name, sizeof(name), "%u", partno);
	/* rename replaces an earlier copy of the same part (a retry) atomically */
	if (rc == 0 && renameat(dfd, tmp, dfd, name) != 0)
		rc = -errno;
	if (rc) {
		unlinkat(dfd, tmp, 0);
		rc = local_fail_errno(err, -rc, "write part of", m->key);
	}
	close(dfd);
	return rc;
}

int local_mp_complete(lexfs_drv *d, lexfs_mpu *m, unsigned nparts,
			     struct lexfs_objinfo *out, struct lexfs_err *err)
{
	char name[32], tmp[64];
	int dfd = -1, fd = -1, rc = 0;
	unsigned i;

	if (nparts == 0) {
		rc = lexfs_fail(err, LEXFS_E_TRANSACTION, EINVAL, "local: complete with no parts");
		goto out;
	}
	dfd = openat(d->mpu_fd, m->id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0) {
		rc = local_fail_errno(err, errno, "multipart upload of", m->key);
		goto out;
	}
	fd = local_new_temp(d, tmp, sizeof(tmp), m->key, err);
	if (fd < 0) {
		rc = fd;
		fd = -1;
		goto out;
	}
	for (i = 1; i <= nparts && rc == 0; i++) {
		struct stat st;
		int pfd;

		snprintf(name, sizeof(name), "%u", i);
		pfd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0) {
			rc = lexfs_fail(err, LEXFS_E_TRANSACTION, EINVAL,
					"local: part %u of \"%.200s\" was never sent", i, m->key);
			break;
		}
		if (fstat(pfd, &st) != 0)
			rc = -errno;
		else
			rc = local_copy_range(pfd, 0, fd, (uint64_t)st.st_size);
		close(pfd);
		if (rc)
			rc = local_fail_errno(err, -rc, "assemble", m->key);
	}
	if (rc) {
		unlinkat(d->tmp_fd, tmp, 0);
		goto out;
	}
	rc = local_commit_temp(d, m->key, fd, tmp, NULL, m->content_type, &m->meta, out, err);
out:
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	local_mpu_rmdir(d, m);
	mpu_free(m);
	return rc;
}

int local_mp_abort(lexfs_drv *d, lexfs_mpu *m, struct lexfs_err *err)
{
	local_mpu_rmdir(d, m);
	mpu_free(m);
	return 0;
}

/* An upload id as local_mp_begin makes them: 32 lower-case hex digits. */
static bool valid_id(const char *id)
{
	size_t n = 0;

	for (; id[n]; n++)
		if (!((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
			return false;
	return n == 32;
}

/* The key and initiation time of upload id: 0, -ENOENT when the upload is gone.
 * *key is the caller's ("" without a record). */
static int read_record(lexfs_drv *d, const char *id, char **key, int64_t *initiated)
{
	struct stat st;
	json_t *o = NULL;
	int dfd, fd;

	*key = NULL;
	*initiated = 0;
	dfd = openat(d->mpu_fd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	if (fstat(dfd, &st) == 0)
		*initiated = (int64_t)st.st_ctime;
	fd = openat(dfd, UPLOAD_RECORD, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd >= 0) {
		o = json_loadfd(fd, 0, NULL);
		close(fd);
	}
	close(dfd);
	if (json_is_string(json_object_get(o, "key")))
		*key = strdup(json_string_value(json_object_get(o, "key")));
	else
		*key = strdup("");
	if (json_is_integer(json_object_get(o, "initiated")))
		*initiated = (int64_t)json_integer_value(json_object_get(o, "initiated"));
	json_decref(o);
	return *key ? 0 : -ENOMEM;
}

int local_mp_list(lexfs_drv *d, const char *prefix, const char *token, unsigned max,
		  struct lexfs_upload_page *out, struct lexfs_err *err)
{
	size_t plen = strlen(prefix), n = 0, i;
	struct ent *v = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	rc = local_read_dir(d, d->mpu_fd, false, "", &v, &n);
	if (rc)
		return local_fail_errno(err, -rc, "list multipart uploads under", prefix);
	out->items = n ? calloc(n < max ? n : max, sizeof(*out->items)) : NULL;
	if (n && !out->items) {
		rc = local_oom(err);
		goto out;
	}
	/* In id order (local_read_dir sorts), after the token's id. */
	for (i = 0; i < n && !rc; i++) {
		struct lexfs_upload *u = &out->items[out->n];
		char *key;
		int64_t when;

		if (!v[i].dir || !valid_id(v[i].name) || (token && strcmp(v[i].name, token) <= 0))
			continue;
		if (out->n == max) {
			out->next_token = strdup(out->items[out->n - 1].upload_id);
			if (!out->next_token)
				rc = local_oom(err);
			break;
		}
		rc = read_record(d, v[i].name, &key, &when);
		if (rc == -ENOENT) { /* completed or aborted meanwhile */
			rc = 0;
			continue;
		}
		if (rc) {
			rc = local_fail_errno(err, -rc, "read multipart upload", v[i].name);
			break;
		}
		if (strncmp(key, prefix, plen) != 0) {
			free(key);
			continue;
		}
		u->key = key;
		u->upload_id = strdup(v[i].name);
		u->initiated = when;
		out->n++;
		if (!u->upload_id)
			rc = local_oom(err);
	}
out:
	local_ents_free(v, n);
	if (rc)
		upload_page_free(out);
	return rc;
}

int local_mp_abort_id(lexfs_drv *d, const char *key, const char *upload_id, struct lexfs_err *err)
{
	lexfs_mpu m = {0};
	int64_t when;
	char *rec;
	int rc;

	if (!valid_id(upload_id))
		return lexfs_fail(err, LEXFS_E_STORAGE, EINVAL,
				  "local: \"%.60s\" is not a multipart upload id", upload_id);
	rc = read_record(d, upload_id, &rec, &when);
	if (rc == -ENOENT)
		return 0; /* already gone */
	if (rc)
		return local_fail_errno(err, -rc, "abort multipart upload of", key);
	/* An id of another key names no upload of this one (as S3's NoSuchUpload). */
	if (rec[0] && strcmp(rec, key) != 0) {
		free(rec);
		return 0;
	}
	free(rec);
	memcpy(m.id, upload_id, sizeof(m.id));
	local_mpu_rmdir(d, &m);
	return 0;
}
