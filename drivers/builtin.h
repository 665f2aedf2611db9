/* builtin.h - the driver tables compiled into lexfs (see registry.c). */
#ifndef LEXFS_BUILTIN_H
#define LEXFS_BUILTIN_H

#include "drivers/driver.h"

extern const struct lexfs_driver lexfs_driver_memory;
extern const struct lexfs_driver lexfs_driver_local;
#ifdef HAVE_DRIVER_S3
extern const struct lexfs_driver lexfs_driver_s3;
extern const struct lexfs_driver lexfs_driver_r2;
#endif
#ifdef HAVE_DRIVER_GCS
extern const struct lexfs_driver lexfs_driver_gcs;
#endif
#ifdef HAVE_DRIVER_AZURE
extern const struct lexfs_driver lexfs_driver_azure;
#endif

#endif
