/* builtin.h - the driver tables compiled into lexfs (referenced by registry.c).
 *
 * memory and local are always built. A cloud driver's table exists only when
 * ./configure built it (HAVE_DRIVER_S3 etc. in config.h); otherwise the registry
 * resolves its name to the unavailable driver.
 */
#ifndef LEXFS_BUILTIN_H
#define LEXFS_BUILTIN_H

#include "drivers/driver.h"

extern const struct lexfs_driver lexfs_driver_memory;
extern const struct lexfs_driver lexfs_driver_local;
#ifdef HAVE_DRIVER_S3
extern const struct lexfs_driver lexfs_driver_s3;
#endif
#ifdef HAVE_DRIVER_R2
extern const struct lexfs_driver lexfs_driver_r2;
#endif
#ifdef HAVE_DRIVER_GCS
extern const struct lexfs_driver lexfs_driver_gcs;
#endif
#ifdef HAVE_DRIVER_AZURE
extern const struct lexfs_driver lexfs_driver_azure;
#endif

#endif
