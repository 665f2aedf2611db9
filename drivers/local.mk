# drivers: the contract, the store wrappers, the registry and the drivers.
liblexfs_a_SOURCES += \
	drivers/driver.h drivers/builtin.h \
	drivers/meta.c \
	drivers/store.c drivers/store.h \
	drivers/registry.c
# azure: the Azure Blob driver (libxml2 is a hard dependency, so it is always built)
AM_CPPFLAGS += -DHAVE_DRIVER_AZURE=1
liblexfs_a_SOURCES += \
	drivers/azure.c drivers/azure_parse.c drivers/azure_int.h
# gcs: Google Cloud Storage driver
liblexfs_a_SOURCES += drivers/gcs.c drivers/gcs_int.h drivers/gcs_upload.c
AM_CPPFLAGS += -DHAVE_DRIVER_GCS
# drv branch: the memory and local drivers.
liblexfs_a_SOURCES += drivers/memory.c drivers/local.c drivers/local_int.h \
	drivers/local_list.c drivers/local_mpu.c
