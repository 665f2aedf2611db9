/* registry.c - driver names -> driver tables.
 *
 * Built-in drivers come first. A known driver that was left out at ./configure
 * time resolves to an "unavailable" table whose open fails with a message naming
 * what is missing. Any other name is looked up as a plugin: PLUGIN_DIR/lexfs-NAME.so
 * exporting LEXFS_PLUGIN_SYMBOL.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "drivers/builtin.h"
#include "drivers/store.h"
#include "src/log.h"

#define UNAVAILABLE_DRIVER(id, nm, why)                                                            \
	static int unavailable_open_##id(const struct lexfs_driver_conf *conf, lexfs_drv **drv,    \
					 struct lexfs_err *err)                                    \
	{                                                                                          \
		*drv = NULL;                                                                       \
		return lexfs_fail(err, LEXFS_E_UNSUPPORTED, ENOTSUP,                               \
				  "the %s driver is not built into this lexfs: %s", nm, why);      \
	}                                                                                          \
	static const struct lexfs_driver unavailable_##id = {                                      \
		.name = nm,                                                                        \
		.abi = LEXFS_DRIVER_ABI,                                                           \
		.caps = 0,                                                                         \
		.open = unavailable_open_##id,                                                     \
	}

#ifndef HAVE_DRIVER_S3
UNAVAILABLE_DRIVER(s3, "s3", "it was configured with --disable-s3 (rebuild without it)");
UNAVAILABLE_DRIVER(r2, "r2", "it was configured with --disable-s3 (rebuild without it)");
#endif
#ifndef HAVE_DRIVER_GCS
UNAVAILABLE_DRIVER(gcs, "gcs", "it was configured with --disable-gcs (rebuild without it)");
#endif
#ifndef HAVE_DRIVER_AZURE
UNAVAILABLE_DRIVER(azure, "azure",
		   "it was configured with --disable-azure (rebuild without it)");
#endif

static const struct {
	const struct lexfs_driver *drv;
	bool available;
} builtin[] = {
	{ &lexfs_driver_local, true },
	{ &lexfs_driver_memory, true },
#ifdef HAVE_DRIVER_S3
	{ &lexfs_driver_s3, true },
	{ &lexfs_driver_r2, true },
#else
	{ &unavailable_s3, false },
	{ &unavailable_r2, false },
#endif
#ifdef HAVE_DRIVER_GCS
	{ &lexfs_driver_gcs, true },
#else
	{ &unavailable_gcs, false },
#endif
#ifdef HAVE_DRIVER_AZURE
	{ &lexfs_driver_azure, true },
#else
	{ &unavailable_azure, false },
#endif
};

#define NBUILTIN (sizeof(builtin) / sizeof(builtin[0]))

const char *const *registry_names(void)
{
	static const char *const names[] = { "local", "memory", "s3", "r2", "gcs", "azure", NULL };

	return names;
}

bool registry_available(const char *name)
{
	for (size_t i = 0; i < NBUILTIN; i++)
		if (strcmp(builtin[i].drv->name, name) == 0)
			return builtin[i].available;
	return false;
}

static bool valid_plugin_name(const char *name)
{
	if (!*name || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-'))
			return false;
	return true;
}

const struct lexfs_driver *registry_load(const char *name, const char *plugin_dir, void **handle,
					 char *why, size_t whylen)
{
	const struct lexfs_driver *drv;
	lexfs_plugin_fn entry;
	char path[4096];
	void *h;

	*handle = NULL;
	for (size_t i = 0; i < NBUILTIN; i++)
		if (strcmp(builtin[i].drv->name, name) == 0)
			return builtin[i].drv;

	if (!valid_plugin_name(name)) {
		snprintf(why, whylen, "unknown driver \"%s\" (known: local, memory, s3, r2, gcs, "
			 "azure)", name);
		return NULL;
	}
	if (!plugin_dir || !*plugin_dir) {
		snprintf(why, whylen, "unknown driver \"%s\" (known: local, memory, s3, r2, gcs, "
			 "azure; no plugin_dir set)", name);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/lexfs-%s.so", plugin_dir, name);
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, whylen, "unknown driver \"%s\": no built-in driver and %s", name,
			 dlerror());
		return NULL;
	}
	*(void **)&entry = dlsym(h, LEXFS_PLUGIN_SYMBOL);
	drv = entry ? entry() : NULL;
	if (!drv || drv->abi != LEXFS_DRIVER_ABI || !drv->open || !drv->name ||
	    strcmp(drv->name, name) != 0) {
		snprintf(why, whylen, "plugin %s is not a lexfs driver of ABI %d named \"%s\"",
			 path, LEXFS_DRIVER_ABI, name);
		dlclose(h);
		return NULL;
	}
	log_info("loaded driver plugin %s", path);
	*handle = h;
	return drv;
}
