/* azure_parse.c - what the Azure Blob service sends back (List Blobs and error
 * XML, via libxml2) and the reversible metadata-name encoding (see azure_int.h).
 *
 * Nothing here trusts the server: unknown elements are skipped, missing ones leave
 * fields empty, numbers that do not parse are 0, and a document that is not what
 * we asked for is -EIO, never a crash.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "drivers/azure_int.h"
#include "src/http.h"

/* ---- metadata names ---- */

static bool is_identifier(const char *s)
{
	if (!*s || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_'))
			return false;
	return true;
}

char *azure_meta_encode_name(const char *name)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = strlen(name), esc = strlen(AZURE_META_ESC);
	char *out;

	if (is_identifier(name) && strncmp(name, AZURE_META_ESC, esc) != 0)
		return strdup(name);
	out = malloc(esc + 2 * n + 1);
	if (!out)
		return NULL;
	memcpy(out, AZURE_META_ESC, esc);
	for (size_t i = 0; i < n; i++) {
		out[esc + 2 * i] = hex[(unsigned char)name[i] >> 4];
		out[esc + 2 * i + 1] = hex[(unsigned char)name[i] & 15];
	}
	out[esc + 2 * n] = '\0';
	return out;
}

static int hexv(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *azure_meta_decode_name(const char *name)
{
	size_t esc = strlen(AZURE_META_ESC), n;
	char *out;

	if (strncasecmp(name, AZURE_META_ESC, esc) == 0) {
		const char *h = name + esc;

		n = strlen(h);
		if (n && n % 2 == 0) {
			bool ok = true;

			for (size_t i = 0; i < n && ok; i++)
				ok = hexv(h[i]) >= 0 && !(i % 2 == 0 && hexv(h[i]) == 0 &&
							  hexv(h[i + 1]) == 0);
			if (ok) {
				out = malloc(n / 2 + 1);
				if (!out)
					return NULL;
				for (size_t i = 0; i < n / 2; i++)
					out[i] = (char)(hexv(h[2 * i]) * 16 + hexv(h[2 * i + 1]));
				out[n / 2] = '\0';
				return out;
			}
		}
	}
	out = strdup(name);
	if (!out)
		return NULL;
	for (char *c = out; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c - 'A' + 'a');
	return out;
}

/* ---- XML ---- */

static xmlDocPtr parse_doc(const char *xml, size_t len)
{
	if (!xml || len == 0 || len > (size_t)INT32_MAX)
		return NULL;
	return xmlReadMemory(xml, (int)len, "azure.xml", NULL,
			     XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
				     XML_PARSE_NOWARNING);
}

static bool named(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

/* Text of an element (caller frees with xmlFree); NULL when absent. */
static char *text(const xmlNode *n)
{
	return n ? (char *)xmlNodeGetContent(n) : NULL;
}

static void copy_text(const xmlNode *n, char *dst, size_t dstlen)
{
	char *t = text(n);

	snprintf(dst, dstlen, "%s", t ? t : "");
	xmlFree(t);
}

void azure_parse_error(const char *xml, size_t len, char *code, size_t codelen, char *msg,
		       size_t msglen)
{
	xmlDocPtr doc = parse_doc(xml, len);
	const xmlNode *root;

	if (codelen)
		code[0] = '\0';
	if (msglen)
		msg[0] = '\0';
	if (!doc)
		return;
	root = xmlDocGetRootElement(doc);
	if (root && named(root, "Error")) {
		copy_text(child(root, "Code"), code, codelen);
		copy_text(child(root, "Message"), msg, msglen);
		msg[strcspn(msg, "\r\n")] = '\0';
	}
	xmlFreeDoc(doc);
}

/* A blob or prefix name, decoded when the service percent-encoded it (names with
 * characters XML cannot carry come as <Name Encoded="true">). Caller frees. */
static char *item_name(const xmlNode *n)
{
	char *t = text(n), *out = NULL;
	xmlChar *enc;

	if (!t)
		return NULL;
	enc = xmlGetProp(n, (const xmlChar *)"Encoded");
	if (enc && strcmp((const char *)enc, "true") == 0)
		out = http_uri_decode(t, false);
	else
		out = strdup(t);
	xmlFree(enc);
	xmlFree(t);
	return out;
}

static int parse_meta(const xmlNode *m, struct lexfs_meta *meta)
{
	for (const xmlNode *c = m ? m->children : NULL; c; c = c->next) {
		char *name, *val;
		int rc;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		name = azure_meta_decode_name((const char *)c->name);
		val = text(c);
		rc = name ? meta_set(meta, name, val ? val : "") : -ENOMEM;
		free(name);
		xmlFree(val);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_blob(const xmlNode *b, const char *strip, struct lexfs_objinfo *oi,
		      bool *skip)
{
	const xmlNode *p = child(b, "Properties");
	char *name = item_name(child(b, "Name"));
	char *t;
	size_t sl = strlen(strip);

	*skip = false;
	memset(oi, 0, sizeof(*oi));
	meta_init(&oi->meta);
	if (!name) {
		*skip = true;
		return 0;
	}
	if (strncmp(name, strip, sl) != 0 || name[sl] == '\0') {
		free(name);
		*skip = true;
		return 0;
	}
	oi->key = strdup(name + sl);
	free(name);
	if (!oi->key)
		return -ENOMEM;
	if (named(b, "BlobPrefix")) {
		oi->is_prefix = true;
		return 0;
	}
	t = text(child(p, "Content-Length"));
	if (t) {
		char *end;
		unsigned long long v = strtoull(t, &end, 10);

		oi->size = (end != t && *end == '\0') ? (uint64_t)v : 0;
		xmlFree(t);
	}
	t = text(child(p, "Last-Modified"));
	if (t) {
		int64_t m = http_parse_date(t);

		oi->mtime = m > 0 ? m : 0;
		xmlFree(t);
	}
	t = text(child(p, "Etag"));
	if (t) {
		const char *e = t;
		size_t n;

		if (*e == '"')
			e++;
		n = strlen(e);
		if (n && e[n - 1] == '"')
			n--;
		snprintf(oi->etag, sizeof(oi->etag), "%.*s", (int)n, e);
		xmlFree(t);
	}
	copy_text(child(p, "Content-Type"), oi->content_type, sizeof(oi->content_type));
	oi->has_meta = true;
	return parse_meta(child(b, "Metadata"), &oi->meta);
}

static int item_cmp(const void *a, const void *b)
{
	const struct lexfs_objinfo *x = a, *y = b;

	return strcmp(x->key, y->key);
}

int azure_parse_list(const char *xml, size_t len, const char *strip,
		     struct lexfs_list_page *out)
{
	xmlDocPtr doc = parse_doc(xml, len);
	const xmlNode *root, *blobs, *c;
	size_t cap = 0;
	char *next;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!doc)
		return -EIO;
	root = xmlDocGetRootElement(doc);
	if (!root || !named(root, "EnumerationResults")) {
		xmlFreeDoc(doc);
		return -EIO;
	}
	blobs = child(root, "Blobs");
	for (c = blobs ? blobs->children : NULL; c && !rc; c = c->next) {
		bool skip;

		if (!named(c, "Blob") && !named(c, "BlobPrefix"))
			continue;
		if (out->n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct lexfs_objinfo *ni = realloc(out->items, ncap * sizeof(*ni));

			if (!ni) {
				rc = -ENOMEM;
				break;
			}
			out->items = ni;
			cap = ncap;
		}
		rc = parse_blob(c, strip, &out->items[out->n], &skip);
		if (rc || skip)
			objinfo_free(&out->items[out->n]);
		else
			out->n++;
	}
	next = rc ? NULL : text(child(root, "NextMarker"));
	if (next && *next) {
		out->next_token = strdup(next);
		if (!out->next_token)
			rc = -ENOMEM;
	}
	xmlFree(next);
	xmlFreeDoc(doc);
	if (rc) {
		list_page_free(out);
		return rc;
	}
	if (out->n > 1)
		qsort(out->items, out->n, sizeof(*out->items), item_cmp);
	return 0;
}
