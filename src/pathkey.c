/* pathkey.c - FUSE paths <-> store keys (see pathkey.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "src/pathkey.h"

char *pathkey_prefix(const char *prefix)
{
	const char *p = prefix ? prefix : "";
	size_t len;
	char *out;
	size_t o = 0;

	while (*p == '/')
		p++;
	len = strlen(p);
	out = malloc(len + 2);
	if (!out)
		return NULL;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == 0) { /* "a//b" or a trailing '/' */
			p++;
			continue;
		}
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
			free(out);
			return NULL;
		}
		memcpy(out + o, p, n);
		o += n;
		out[o++] = '/';
		p += n;
	}
	out[o] = '\0';
	return out;
}

char *pathkey_key(const char *prefix, const char *path, bool dir)
{
	size_t plen = strlen(prefix);
	size_t len;
	char *out;

	while (*path == '/')
		path++;
	len = strlen(path);
	while (len > 0 && path[len - 1] == '/')
		len--;
	out = malloc(plen + len + 2);
	if (!out)
		return NULL;
	memcpy(out, prefix, plen);
	memcpy(out + plen, path, len);
	if (dir && len > 0)
		out[plen + len++] = '/';
	out[plen + len] = '\0';
	return out;
}

const char *pathkey_name_bad(const char *name, size_t len)
{
	if (len == 0)
		return "empty path component";
	if (len > PATHKEY_NAME_MAX)
		return "name longer than 255 bytes";
	if (len == 1 && name[0] == '.')
		return "name is \".\"";
	if (len == 2 && name[0] == '.' && name[1] == '.')
		return "name is \"..\"";
	if (memchr(name, '/', len))
		return "empty path component";
	if (memchr(name, '\0', len))
		return "NUL byte in name";
	return NULL;
}

bool pathkey_under(const char *dirkey, const char *key)
{
	size_t n = strlen(dirkey);

	return strncmp(dirkey, key, n) == 0 && key[n] != '\0';
}
