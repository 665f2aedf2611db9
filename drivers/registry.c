/* registry.c - driver names -> driver tables.
 *
 * Built-in drivers come first. A known driver that was left out at ./configure
 * time resolves to an "unavailable" table whose open fails with a message naming
 * what is missing. Any other name is looked up as a plugin: PLUGIN_DIR/lexfs-NAME.so
 * exporting LEXFS_PLUGIN_SYMBOL (the contract is in drivers/driver.h). A plugin
 * that breaks it is refused with a message naming the rule and the fix: a name
 * the configuration cannot spell, no plugin_dir, no such file, not loadable, no
 * entry point, another ABI, another name, a required operation missing.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* The rule of conf.c for driver names: lower-case letters, digits and '_', the
 * characters a storage.NAME group and a LEX_STORAGE__NAME__KEY variable can spell
 * (a name the configuration cannot give settings to is no use as a driver). */
static bool valid_plugin_name(const char *name)
{
	if (!*name || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return false;
	return true;
}

/* The first operation driver.h marks Required that drv leaves NULL, or NULL. */
static const char *missing_required(const struct lexfs_driver *drv)
{
	if (!drv->open)
		return "open";
	if (!drv->close)
		return "close";
	if (!drv->health_check)
		return "health_check";
	if (!drv->upload)
		return "upload";
	if (!drv->download)
		return "download";
	if (!drv->info)
		return "info";
	if (!drv->list)
		return "list";
	if (!drv->remove)
		return "remove";
	if (!drv->get_url)
		return "get_url";
	return NULL;
}

#define BUILTIN_NAMES "local, memory, s3, r2, gcs, azure"

/* Does the table from path's entry point meet the contract for `name`? 0, or -EINVAL
 * with the rule it breaks in why. Only the abi is read before it is checked: a
 * table of another ABI may be shorter than ours. */
static int check_plugin(const struct lexfs_driver *drv, const char *path, const char *name,
			char *why, size_t whylen)
{
	const char *missing;

	if (!drv) {
		snprintf(why, whylen, "plugin %s: %s() returned no driver table", path,
			 LEXFS_PLUGIN_SYMBOL);
		return -EINVAL;
	}
	if (drv->abi != LEXFS_DRIVER_ABI) {
		snprintf(why, whylen,
			 "plugin %s is built for driver ABI %u; this lexfs loads ABI %d only "
			 "(rebuild it against this lexfs's drivers/driver.h)",
			 path, drv->abi, LEXFS_DRIVER_ABI);
		return -EINVAL;
	}
	if (!drv->name || strcmp(drv->name, name) != 0) {
		snprintf(why, whylen,
			 "plugin %s holds the driver \"%s\", not \"%s\" (driver NAME is loaded "
			 "from lexfs-NAME.so)",
			 path, drv->name ? drv->name : "", name);
		return -EINVAL;
	}
	missing = missing_required(drv);
	if (missing) {
		snprintf(why, whylen,
			 "plugin %s lacks the required operation %s (drivers/driver.h lists "
			 "what a driver must have)",
			 path, missing);
		return -EINVAL;
	}
	return 0;
}

const struct lexfs_driver *registry_load(const char *name, const char *plugin_dir, void **handle,
					 char *why, size_t whylen)
{
	const struct lexfs_driver *drv;
	lexfs_plugin_fn entry;
	char path[4096];
	struct stat st;
	void *h;

	*handle = NULL;
	for (size_t i = 0; i < NBUILTIN; i++)
		if (strcmp(builtin[i].drv->name, name) == 0)
			return builtin[i].drv;

	if (!valid_plugin_name(name)) {
		snprintf(why, whylen,
			 "driver name \"%s\" is refused: a driver is named with lower-case "
			 "letters, digits and '_' (at most 64); built in: " BUILTIN_NAMES,
			 name);
		return NULL;
	}
	if (!plugin_dir || !*plugin_dir) {
		snprintf(why, whylen,
			 "unknown driver \"%s\" (built in: " BUILTIN_NAMES "; a plugin driver "
			 "needs plugin_dir, the directory that holds lexfs-%s.so)",
			 name, name);
		return NULL;
	}
	errno = 0;
	if (stat(plugin_dir, &st) < 0 || !S_ISDIR(st.st_mode)) {
		int e = errno; /* 0: it exists but is no directory */

		snprintf(why, whylen,
			 "plugin_dir %s: %s (set it to the directory that holds lexfs-%s.so)",
			 plugin_dir, e ? strerror(e) : "not a directory", name);
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/lexfs-%s.so", plugin_dir, name);
	if (access(path, F_OK) < 0) {
		snprintf(why, whylen,
			 "unknown driver \"%s\": not built in (" BUILTIN_NAMES "), and plugin_dir "
			 "%s has no lexfs-%s.so",
			 name, plugin_dir, name);
		return NULL;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, whylen, "plugin %s cannot be loaded: %s", path, dlerror());
		return NULL;
	}
	(void)dlerror();
	*(void **)&entry = dlsym(h, LEXFS_PLUGIN_SYMBOL);
	if (!entry) {
		snprintf(why, whylen,
			 "plugin %s does not export %s() (a plugin defines const struct "
			 "lexfs_driver *%s(void); see drivers/driver.h)",
			 path, LEXFS_PLUGIN_SYMBOL, LEXFS_PLUGIN_SYMBOL);
		dlclose(h);
		return NULL;
	}
	drv = entry();
	if (check_plugin(drv, path, name, why, whylen) < 0) {
		dlclose(h);
		return NULL;
	}
	log_info("loaded driver plugin %s", path);
	*handle = h;
	return drv;
}
