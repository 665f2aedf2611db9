/* settings.c - flat string settings with their origin (see settings.h). */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "src/settings.h"

void settings_init(struct settings *s)
{
	s->v = NULL;
	s->n = 0;
}

void settings_free(struct settings *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].key);
		free(s->v[i].value);
		free(s->v[i].origin);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

static struct setting *find(const struct settings *s, const char *key)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcasecmp(s->v[i].key, key) == 0)
			return &s->v[i];
	return NULL;
}

int settings_set(struct settings *s, const char *key, const char *value, const char *origin)
{
	struct setting *e = find(s, key);
	char *v = strdup(value ? value : "");
	char *o = strdup(origin ? origin : "");

	if (!v || !o)
		goto nomem;
	if (e) {
		free(e->value);
		free(e->origin);
		e->value = v;
		e->origin = o;
		return 0;
	}
	e = realloc(s->v, (s->n + 1) * sizeof(*s->v));
	if (!e)
		goto nomem;
	s->v = e;
	e = &s->v[s->n];
	e->key = strdup(key);
	if (!e->key)
		goto nomem;
	for (char *p = e->key; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	e->value = v;
	e->origin = o;
	e->used = false;
	e->secret = settings_key_is_secret(e->key);
	s->n++;
	return 0;
nomem:
	free(v);
	free(o);
	return -ENOMEM;
}

static bool ends_with(const char *s, const char *tail)
{
	size_t ls = strlen(s), lt = strlen(tail);

	return ls >= lt && strcmp(s + ls - lt, tail) == 0;
}

bool settings_key_is_secret(const char *key)
{
	static const char *const holds[] = { "secret", "password", "passwd", "passphrase", "token",
					     "credential", "connection_string", NULL };
	static const char *const names[] = { "_id", "_name", "_file", "_path", "_dir", "_url",
					     "_env", NULL };
	char low[128];
	size_t i;

	for (i = 0; key[i] != '\0' && i + 1 < sizeof(low); i++)
		low[i] = (char)tolower((unsigned char)key[i]);
	low[i] = '\0';
	for (i = 0; names[i] != NULL; i++) {
		if (ends_with(low, names[i]))
			return false;
	}
	for (i = 0; holds[i] != NULL; i++) {
		if (strstr(low, holds[i]) != NULL)
			return true;
	}
	return strcmp(low, "key") == 0 || ends_with(low, "_key");
}

const char *settings_display(const struct settings *s, const char *key)
{
	struct setting *e = s ? find(s, key) : NULL;

	if (!e)
		return NULL;
	return e->secret ? "(hidden)" : e->value;
}

bool settings_has(const struct settings *s, const char *key)
{
	return s && find(s, key) != NULL;
}

const char *settings_get(const struct settings *s, const char *key)
{
	struct setting *e;

	if (!s)
		return NULL;
	e = find(s, key);
	if (!e)
		return NULL;
	e->used = true; /* a bookkeeping bit, not part of the value */
	return e->value;
}

const char *settings_origin(const struct settings *s, const char *key)
{
	struct setting *e = s ? find(s, key) : NULL;

	return e ? e->origin : "default";
}

static int bad(const struct settings *s, const char *key, const char *what, char *errbuf,
	       size_t errlen)
{
	if (errbuf && errlen)
		snprintf(errbuf, errlen, "%s (from %s): %s", key, settings_origin(s, key), what);
	return -EINVAL;
}

int settings_get_bool(const struct settings *s, const char *key, bool dflt, bool *out,
		      char *errbuf, size_t errlen)
{
	const char *v = settings_get(s, key);

	*out = dflt;
	if (!v)
		return 0;
	if (!*v || !strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
	    !strcasecmp(v, "on")) {
		*out = true;
		return 0;
	}
	if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
	    !strcasecmp(v, "off")) {
		*out = false;
		return 0;
	}
	return bad(s, key, "expected true or false", errbuf, errlen);
}

static int parse_u64(const char *v, bool sizes, uint64_t *out)
{
	char *end;
	unsigned long long n;
	unsigned shift = 0;

	if (!*v || *v == '-')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno)
		return -EINVAL;
	if (sizes && *end) {
		switch (tolower((unsigned char)*end)) {
		case 'k':
			shift = 10;
			break;
		case 'm':
			shift = 20;
			break;
		case 'g':
			shift = 30;
			break;
		case 't':
			shift = 40;
			break;
		default:
			return -EINVAL;
		}
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
	}
	if (*end)
		return -EINVAL;
	if (shift && n > (UINT64_MAX >> shift))
		return -EINVAL;
	*out = (uint64_t)n << shift;
	return 0;
}

int settings_get_u64(const struct settings *s, const char *key, uint64_t dflt, uint64_t *out,
		     char *errbuf, size_t errlen)
{
	const char *v = settings_get(s, key);

	*out = dflt;
	if (!v)
		return 0;
	if (parse_u64(v, false, out))
		return bad(s, key, "expected a non-negative integer", errbuf, errlen);
	return 0;
}

int settings_get_size(const struct settings *s, const char *key, uint64_t dflt, uint64_t *out,
		      char *errbuf, size_t errlen)
{
	const char *v = settings_get(s, key);

	*out = dflt;
	if (!v)
		return 0;
	if (parse_u64(v, true, out))
		return bad(s, key, "expected a size such as 512k, 64m or 2g", errbuf, errlen);
	return 0;
}

int settings_copy(struct settings *dst, const struct settings *src)
{
	for (size_t i = 0; i < src->n; i++) {
		int ret = settings_set(dst, src->v[i].key, src->v[i].value, src->v[i].origin);

		if (ret)
			return ret;
	}
	return 0;
}
