/* s3_xml.c - S3 XML documents on libxml2 (see s3_xml.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/tree.h>

#include "drivers/s3_xml.h"
#include "src/http.h"

static xmlDocPtr parse(const char *body, size_t len)
{
	if (!body || len == 0 || len > (size_t)INT32_MAX)
		return NULL;
	return xmlReadMemory(body, (int)len, NULL, NULL,
			     XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_NOERROR |
				     XML_PARSE_NOWARNING);
}

static bool named(xmlNodePtr n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static xmlNodePtr child(xmlNodePtr n, const char *name)
{
	for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

/* Text of element (caller frees with free()); "" for an empty one. */
static char *text(xmlNodePtr n)
{
	xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
	char *s = strdup(t ? (const char *)t : "");
	xmlFree(t);
	return s;
}

static void text_into(xmlNodePtr n, char *out, size_t outlen)
{
	xmlChar *t = n ? xmlNodeGetContent(n) : NULL;
	snprintf(out, outlen, "%s", t ? (const char *)t : "");
	xmlFree(t);
}

int s3_xml_error(const char *body, size_t len, char *code, size_t codelen, char *msg,
		 size_t msglen)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root;
	int rc = -ENOENT;

	code[0] = '\0';
	msg[0] = '\0';
	if (!doc)
		return -ENOENT;
	root = xmlDocGetRootElement(doc);
	if (root && named(root, "Error")) {
		text_into(child(root, "Code"), code, codelen);
		text_into(child(root, "Message"), msg, msglen);
		rc = 0;
	}
	xmlFreeDoc(doc);
	return rc;
}

static xmlNodePtr find(xmlNodePtr n, const char *name)
{
	for (; n; n = n->next) {
		xmlNodePtr r;
		if (named(n, name))
			return n;
		r = find(n->children, name);
		if (r)
			return r;
	}
	return NULL;
}

int s3_xml_find(const char *body, size_t len, const char *name, char **out)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr n;
	int rc = -ENOENT;

	*out = NULL;
	if (!doc)
		return -EIO;
	n = find(xmlDocGetRootElement(doc), name);
	if (n) {
		*out = text(n);
		rc = *out ? 0 : -ENOMEM;
	}
	xmlFreeDoc(doc);
	return rc;
}

void s3_etag_unquote(const char *in, char *out, size_t outlen)
{
	size_t n;

	if (!in)
		in = "";
	if (in[0] == 'W' && in[1] == '/')
		in += 2;
	if (*in == '"')
		in++;
	n = strlen(in);
	if (n > 0 && in[n - 1] == '"')
		n--;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, in, n);
	out[n] = '\0';
}

static int cmp_items(const void *a, const void *b)
{
	const struct lexfs_objinfo *x = a, *y = b;
	return strcmp(x->key, y->key);
}

/* Decode a URL-encoded key; keys S3 encodes use '+' for space. */
static char *decoded(char *s, bool url)
{
	char *d;

	if (!url || !s)
		return s;
	d = http_uri_decode(s, true);
	free(s);
	return d;
}

/* A listing document (ListObjectsV2, ListMultipartUploads): parsed, its root
 * element checked, and what every page says: whether names are URL-encoded and
 * whether more pages follow. NULL when body is not such a document (free the
 * result with xmlFreeDoc). */
static xmlDocPtr listing_doc(const char *body, size_t len, const char *root_name,
			     xmlNodePtr *root, bool *url, bool *truncated)
{
	xmlDocPtr doc = parse(body, len);
	char tmp[64];

	if (!doc)
		return NULL;
	*root = xmlDocGetRootElement(doc);
	if (!*root || !named(*root, root_name)) {
		xmlFreeDoc(doc);
		return NULL;
	}
	text_into(child(*root, "EncodingType"), tmp, sizeof(tmp));
	*url = strcmp(tmp, "url") == 0;
	text_into(child(*root, "IsTruncated"), tmp, sizeof(tmp));
	*truncated = strcmp(tmp, "true") == 0;
	return doc;
}

int s3_xml_list(const char *body, size_t len, struct lexfs_list_page *page)
{
	xmlDocPtr doc;
	xmlNodePtr root, n;
	size_t count = 0, cap = 0;
	bool url = false, truncated = false;
	char tmp[64];
	int rc = 0;

	memset(page, 0, sizeof(*page));
	doc = listing_doc(body, len, "ListBucketResult", &root, &url, &truncated);
	if (!doc)
		return -EIO;
	for (n = root->children; n; n = n->next)
		if (named(n, "Contents") || named(n, "CommonPrefixes"))
			cap++;
	if (cap) {
		page->items = calloc(cap, sizeof(*page->items));
		if (!page->items) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (n = root->children; n && count < cap; n = n->next) {
		struct lexfs_objinfo *oi = &page->items[count];
		if (named(n, "CommonPrefixes")) {
			xmlNodePtr p = child(n, "Prefix");
			if (!p)
				continue;
			oi->key = decoded(text(p), url);
			oi->is_prefix = true;
		} else if (named(n, "Contents")) {
			xmlNodePtr k = child(n, "Key");
			char sz[32], lm[64];
			char *end;
			if (!k)
				continue;
			oi->key = decoded(text(k), url);
			text_into(child(n, "Size"), sz, sizeof(sz));
			errno = 0;
			oi->size = strtoull(sz, &end, 10);
			if (errno || end == sz)
				oi->size = 0;
			text_into(child(n, "LastModified"), lm, sizeof(lm));
			oi->mtime = http_parse_iso8601(lm);
			if (oi->mtime < 0)
				oi->mtime = 0;
			text_into(child(n, "ETag"), tmp, sizeof(tmp));
			s3_etag_unquote(tmp, oi->etag, sizeof(oi->etag));
		} else {
			continue;
		}
		if (!oi->key) {
			/* A key that does not decode: skip it rather than show garbage. */
			continue;
		}
		count++;
	}
	page->n = count;
	if (count > 1)
		qsort(page->items, count, sizeof(*page->items), cmp_items);
	if (truncated) {
		xmlNodePtr t = child(root, "NextContinuationToken");
		if (t) {
			page->next_token = text(t);
			if (!page->next_token)
				rc = -ENOMEM;
		}
		if (page->next_token && !*page->next_token) {
			free(page->next_token);
			page->next_token = NULL;
		}
		if (!page->next_token && !rc)
			rc = -EIO; /* truncated without a token: we could never go on */
	}
out:
	if (rc)
		list_page_free(page);
	xmlFreeDoc(doc);
	return rc;
}

int s3_xml_delete_errors(const char *body, size_t len, char *key, size_t keylen, char *code,
			 size_t codelen)
{
	xmlDocPtr doc = parse(body, len);
	xmlNodePtr root;
	int rc = 0;

	key[0] = code[0] = '\0';
	if (!doc)
		return len ? -EIO : 0;
	root = xmlDocGetRootElement(doc);
	if (root && named(root, "Error")) {
		text_into(child(root, "Code"), code, codelen);
		rc = -EIO;
		goto out;
	}
	for (xmlNodePtr n = root ? root->children : NULL; n; n = n->next) {
		if (!named(n, "Error"))
			continue;
		text_into(child(n, "Code"), code, codelen);
		if (strcmp(code, "NoSuchKey") == 0)
			continue;
		text_into(child(n, "Key"), key, keylen);
		rc = -EIO;
		break;
	}
	if (!rc)
		code[0] = '\0';
out:
	xmlFreeDoc(doc);
	return rc;
}

int s3_xml_escape(struct buf *b, const char *s)
{
	int rc = 0;

	for (const char *p = s; *p && !rc; p++) {
		switch (*p) {
		case '&':
			rc = buf_adds(b, "&amp;");
			break;
		case '<':
			rc = buf_adds(b, "&lt;");
			break;
		case '>':
			rc = buf_adds(b, "&gt;");
			break;
		case '"':
			rc = buf_adds(b, "&quot;");
			break;
		case '\'':
			rc = buf_adds(b, "&apos;");
			break;
		default:
			/* \r and \n as references, or the parser would normalise them. */
			if ((unsigned char)*p < 0x20 && *p != '\t')
				rc = buf_addf(b, "&#x%X;", (unsigned)(unsigned char)*p);
			else
				rc = buf_add(b, p, 1);
		}
	}
	return rc;
}

/* One <Upload> into u: 0, or 1 to skip an entry that cannot be named (no key or
 * id, a key that does not decode), as s3_xml_list skips such keys. */
static int upload_of(xmlNodePtr n, bool url, struct lexfs_upload *u)
{
	xmlNodePtr k = child(n, "Key"), id = child(n, "UploadId");
	char when[64];

	if (!k || !id)
		return 1;
	u->key = decoded(text(k), url);
	u->upload_id = text(id);
	if (!u->key || !u->upload_id || !*u->upload_id) {
		free(u->key);
		free(u->upload_id);
		u->key = u->upload_id = NULL;
		return 1;
	}
	text_into(child(n, "Initiated"), when, sizeof(when));
	u->initiated = http_parse_iso8601(when);
	if (u->initiated < 0)
		u->initiated = 0;
	return 0;
}

int s3_xml_uploads(const char *body, size_t len, struct lexfs_upload_page *page)
{
	xmlDocPtr doc;
	xmlNodePtr root, n;
	size_t cap = 0;
	bool url, truncated;
	int rc = 0;

	memset(page, 0, sizeof(*page));
	doc = listing_doc(body, len, "ListMultipartUploadsResult", &root, &url, &truncated);
	if (!doc)
		return -EIO;
	for (n = root->children; n; n = n->next)
		if (named(n, "Upload"))
			cap++;
	if (cap) {
		page->items = calloc(cap, sizeof(*page->items));
		if (!page->items) {
			rc = -ENOMEM;
			goto out;
		}
	}
	for (n = root->children; n; n = n->next)
		if (named(n, "Upload") && upload_of(n, url, &page->items[page->n]) == 0)
			page->n++;
	if (!truncated)
		goto out;
	{
		/* Go on after the markers the server names, else after the last entry. */
		xmlNodePtr nk = child(root, "NextKeyMarker"),
			   nu = child(root, "NextUploadIdMarker");
		char *k = nk ? decoded(text(nk), url) : NULL, *u = nu ? text(nu) : NULL;
		struct buf t = BUF_INIT(0);

		if ((!k || !*k) && page->n) {
			free(k);
			k = strdup(page->items[page->n - 1].key);
		}
		if ((!u || !*u) && page->n) {
			free(u);
			u = strdup(page->items[page->n - 1].upload_id);
		}
		if (!k || !*k || !u || strchr(u, '\n'))
			rc = -EIO; /* truncated without a way on: we could never finish */
		else if (buf_addf(&t, "%s\n%s", u, k))
			rc = -ENOMEM;
		else
			page->next_token = buf_steal(&t);
		free(k);
		free(u);
	}
out:
	if (rc)
		upload_page_free(page);
	xmlFreeDoc(doc);
	return rc;
}
