/* buf.h - growable byte buffer with a hard maximum (never grows past it). */
#ifndef LEXFS_BUF_H
#define LEXFS_BUF_H

#include <stddef.h>
#include <stdarg.h>

struct buf {
	char *data; /* always NUL-terminated when len > 0 or after buf_cstr() */
	size_t len;
	size_t cap;
	size_t max; /* 0 means the default, 64 MiB */
};

#define BUF_INIT(maxlen) { NULL, 0, 0, (maxlen) }

void buf_init(struct buf *b, size_t max);
/* Append; returns 0, -ENOMEM or -E2BIG (past max). */
int buf_add(struct buf *b, const void *data, size_t len);
int buf_adds(struct buf *b, const char *s);
int buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vaddf(struct buf *b, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* The content as a C string ("" when empty). Valid until the next change. */
const char *buf_cstr(struct buf *b);
/* Hand the data to the caller (caller frees); the buffer is left empty. */
char *buf_steal(struct buf *b);
void buf_reset(struct buf *b);
void buf_free(struct buf *b);

#endif
