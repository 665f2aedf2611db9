/* local_mpu.c - multipart uploads of the local driver.
 *
 * An upload is the directory ROOT/.lexfs/mpu/ID; part N is the file N in it, written
 * to a temp name and renamed (a re-sent part replaces the earlier one atomically).
 * complete concatenates parts 1..n (copy_file_range) into a temp file and commits it
 * like any upload; complete and abort remove the directory and free the handle.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drivers/local_int.h"
#include "src/crypto.h"

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
