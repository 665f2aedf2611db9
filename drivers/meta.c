/* meta.c - user metadata lists, object info and list pages: shared helpers. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "drivers/driver.h"

void meta_init(struct lexfs_meta *m)
{
	m->kv = NULL;
	m->n = 0;
}

void meta_free(struct lexfs_meta *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->kv[i].name);
		free(m->kv[i].value);
	}
	free(m->kv);
	m->kv = NULL;
	m->n = 0;
}

const char *meta_get(const struct lexfs_meta *m, const char *name)
{
	if (!m)
		return NULL;
	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->kv[i].name, name) == 0)
			return m->kv[i].value;
	return NULL;
}

int meta_set(struct lexfs_meta *m, const char *name, const char *value)
{
	struct lexfs_meta_kv *kv;
	char *v = strdup(value ? value : "");

	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->kv[i].name, name) == 0) {
			free(m->kv[i].value);
			m->kv[i].value = v;
			return 0;
		}
	}
	kv = realloc(m->kv, (m->n + 1) * sizeof(*kv));
	if (!kv)
		goto nomem;
	m->kv = kv;
	kv[m->n].name = strdup(name);
	if (!kv[m->n].name)
		goto nomem;
	kv[m->n].value = v;
	m->n++;
	return 0;
nomem:
	free(v);
	return -ENOMEM;
}

int meta_del(struct lexfs_meta *m, const char *name)
{
	for (size_t i = 0; i < m->n; i++) {
		if (strcmp(m->kv[i].name, name) == 0) {
			free(m->kv[i].name);
			free(m->kv[i].value);
			memmove(&m->kv[i], &m->kv[i + 1], (m->n - i - 1) * sizeof(m->kv[0]));
			m->n--;
			return 0;
		}
	}
	return -ENOENT;
}

int meta_copy(struct lexfs_meta *dst, const struct lexfs_meta *src)
{
	if (!src)
		return 0;
	for (size_t i = 0; i < src->n; i++) {
		int ret = meta_set(dst, src->kv[i].name, src->kv[i].value);

		if (ret)
			return ret;
	}
	return 0;
}

void objinfo_free(struct lexfs_objinfo *oi)
{
	if (!oi)
		return;
	free(oi->key);
	oi->key = NULL;
	meta_free(&oi->meta);
}

void list_page_free(struct lexfs_list_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		objinfo_free(&p->items[i]);
	free(p->items);
	free(p->next_token);
	p->items = NULL;
	p->n = 0;
	p->next_token = NULL;
}

void upload_page_free(struct lexfs_upload_page *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		free(p->items[i].key);
		free(p->items[i].upload_id);
	}
	free(p->items);
	free(p->next_token);
	p->items = NULL;
	p->n = 0;
	p->next_token = NULL;
}

int src_read(const struct lexfs_src *src, uint64_t off, void *dst, size_t len)
{
	size_t done = 0;

	if (off > src->len || len > src->len - off)
		return -EINVAL;
	if (src->buf) {
		memcpy(dst, (const char *)src->buf + off, len);
		return 0;
	}
	while (done < len) {
		ssize_t n = pread(src->fd, (char *)dst + done, len - done,
				  src->off + (off_t)off + (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		done += (size_t)n;
	}
	return 0;
}
