/* azure_dump.c - print what lexfs's Azure code computes for fixed input, as JSON,
 * so tests/test_azure_signing.py can compare it with the Azure SDK for Python.
 *
 *   azure_dump sharedkey ACCOUNT KEY_B64 METHOD URL CONTENT_LENGTH ["Name: value"]...
 *   azure_dump sas ACCOUNT KEY_B64 CONTAINER BLOB PERMS START EXPIRY [SCOPE]
 *                                            (times in seconds since the epoch)
 *   azure_dump creds [KEY=VALUE]...          (settings; the environment is read too)
 *   azure_dump metaname NAME                 (encoded, then decoded back)
 *   azure_dump list FILE STRIP               (parse a List Blobs XML file)
 *   azure_dump error FILE                    (parse an error XML file)
 */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drivers/azure_int.h"
#include "src/azure_auth.h"
#include "src/crypto.h"

static int usage(void)
{
	fprintf(stderr, "usage: azure_dump sharedkey|sas|creds|metaname|list|error ARGS...\n");
	return 2;
}

static int print_json(json_t *o)
{
	char *s = json_dumps(o, JSON_SORT_KEYS);

	json_decref(o);
	if (!s)
		return 1;
	printf("%s\n", s);
	free(s);
	return 0;
}

static int decode_key(const char *b64, uint8_t **key, size_t *keylen)
{
	if (crypto_base64_decode(b64, key, keylen)) {
		fprintf(stderr, "azure_dump: key is not base64\n");
		return -1;
	}
	return 0;
}

static int64_t num(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 10);

	return (end != s && *end == '\0') ? (int64_t)v : -1;
}

static int cmd_sharedkey(int argc, char **argv)
{
	struct http_headers h = { 0 };
	uint8_t *key = NULL;
	size_t keylen = 0;
	char *sts = NULL;
	int rc;

	if (argc < 5)
		return usage();
	if (decode_key(argv[1], &key, &keylen))
		return 1;
	for (int i = 5; i < argc; i++) {
		char *colon = strchr(argv[i], ':');
		char name[256];
		const char *v;

		if (!colon || (size_t)(colon - argv[i]) >= sizeof(name))
			return usage();
		snprintf(name, sizeof(name), "%.*s", (int)(colon - argv[i]), argv[i]);
		v = colon + 1;
		while (*v == ' ')
			v++;
		http_headers_set(&h, name, v);
	}
	rc = azure_sharedkey_sign(argv[0], key, keylen, argv[2], argv[3], &h,
				  (uint64_t)num(argv[4]), &sts);
	free(key);
	if (rc) {
		http_headers_free(&h);
		fprintf(stderr, "azure_dump: %s\n", strerror(-rc));
		return 1;
	}
	rc = print_json(json_pack("{s:s, s:s}", "string_to_sign", sts, "authorization",
				  http_headers_get(&h, "Authorization")));
	free(sts);
	http_headers_free(&h);
	return rc;
}

static int cmd_sas(int argc, char **argv)
{
	uint8_t *key = NULL;
	size_t keylen = 0;
	char *q = NULL, *sts = NULL;
	int rc;

	if (argc < 7)
		return usage();
	if (decode_key(argv[1], &key, &keylen))
		return 1;
	rc = azure_blob_sas(argv[0], key, keylen, argv[2], argv[3], argv[4], num(argv[5]),
			    num(argv[6]), argc > 7 ? argv[7] : NULL, &q, &sts);
	free(key);
	if (rc)
		return 1;
	rc = print_json(json_pack("{s:s, s:s}", "query", q, "string_to_sign", sts));
	free(q);
	free(sts);
	return rc;
}

static const char *real_getenv(const char *n)
{
	return getenv(n);
}

static int cmd_creds(int argc, char **argv)
{
	struct settings s;
	struct azure_creds c;
	char msg[256];
	static const char *const modes[] = { "sharedkey", "sas", "anonymous" };
	char *keyb64 = NULL;
	int rc;

	settings_init(&s);
	for (int i = 0; i < argc; i++) {
		char *eq = strchr(argv[i], '=');

		if (!eq)
			return usage();
		*eq = '\0';
		settings_set(&s, argv[i], eq + 1, "argv");
	}
	rc = azure_creds_resolve(&s, real_getenv, &c, msg, sizeof(msg));
	settings_free(&s);
	if (rc) {
		print_json(json_pack("{s:s}", "error", msg));
		return 1;
	}
	if (c.key)
		keyb64 = crypto_base64(c.key, c.keylen);
	rc = print_json(json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "mode",
				  modes[c.mode], "account", c.account, "endpoint", c.endpoint,
				  "container", c.container, "sas_token", c.sas_token, "key",
				  keyb64, "origin", c.origin));
	free(keyb64);
	azure_creds_free(&c);
	return rc;
}

static int cmd_metaname(int argc, char **argv)
{
	char *enc, *dec;
	int rc;

	if (argc < 1)
		return usage();
	enc = azure_meta_encode_name(argv[0]);
	dec = enc ? azure_meta_decode_name(enc) : NULL;
	if (!dec) {
		free(enc);
		return 1;
	}
	rc = print_json(json_pack("{s:s, s:s}", "encoded", enc, "decoded", dec));
	free(enc);
	free(dec);
	return rc;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *data = NULL;
	long n;

	if (!f)
		return NULL;
	n = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
	if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		data = malloc((size_t)n + 1);
		if (data && fread(data, 1, (size_t)n, f) != (size_t)n) {
			free(data);
			data = NULL;
		}
		if (data) {
			data[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return data;
}

static int cmd_list(int argc, char **argv)
{
	struct lexfs_list_page p;
	json_t *items, *o;
	size_t len = 0;
	char *xml;
	int rc;

	if (argc < 2)
		return usage();
	xml = slurp(argv[0], &len);
	if (!xml)
		return 1;
	rc = azure_parse_list(xml, len, argv[1], &p);
	free(xml);
	if (rc) {
		print_json(json_pack("{s:i}", "error", rc));
		return 1;
	}
	items = json_array();
	for (size_t i = 0; i < p.n; i++) {
		const struct lexfs_objinfo *oi = &p.items[i];
		json_t *meta = json_object();

		for (size_t j = 0; j < oi->meta.n; j++)
			json_object_set_new(meta, oi->meta.kv[j].name,
					    json_string(oi->meta.kv[j].value));
		json_array_append_new(items,
				      json_pack("{s:s, s:b, s:I, s:I, s:s, s:s, s:o}", "key",
						oi->key, "is_prefix", oi->is_prefix, "size",
						(json_int_t)oi->size, "mtime",
						(json_int_t)oi->mtime, "etag", oi->etag,
						"content_type", oi->content_type, "meta", meta));
	}
	o = json_pack("{s:o, s:s?}", "items", items, "next", p.next_token);
	list_page_free(&p);
	return print_json(o);
}

static int cmd_error(int argc, char **argv)
{
	char code[64], msg[256];
	size_t len = 0;
	char *xml;

	if (argc < 1)
		return usage();
	xml = slurp(argv[0], &len);
	if (!xml)
		return 1;
	azure_parse_error(xml, len, code, sizeof(code), msg, sizeof(msg));
	free(xml);
	return print_json(json_pack("{s:s, s:s}", "code", code, "message", msg));
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "sharedkey") == 0)
		return cmd_sharedkey(argc - 2, argv + 2);
	if (strcmp(argv[1], "sas") == 0)
		return cmd_sas(argc - 2, argv + 2);
	if (strcmp(argv[1], "creds") == 0)
		return cmd_creds(argc - 2, argv + 2);
	if (strcmp(argv[1], "metaname") == 0)
		return cmd_metaname(argc - 2, argv + 2);
	if (strcmp(argv[1], "list") == 0)
		return cmd_list(argc - 2, argv + 2);
	if (strcmp(argv[1], "error") == 0)
		return cmd_error(argc - 2, argv + 2);
	return usage();
}
