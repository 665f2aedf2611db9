# drivers: the contract, the store wrappers, the registry and the drivers.
liblexfs_a_SOURCES += \
	drivers/driver.h drivers/builtin.h \
	drivers/meta.c \
	drivers/store.c drivers/store.h \
	drivers/registry.c
# azure: the Azure Blob driver (libxml2 is a hard dependency, so it is always built)
liblexfs_a_SOURCES += \
	drivers/azure.c drivers/azure_parse.c drivers/azure_int.h
# gcs: Google Cloud Storage driver
liblexfs_a_SOURCES += drivers/gcs.c drivers/gcs_int.h drivers/gcs_upload.c
# s3 branch: the S3 and R2 drivers
liblexfs_a_SOURCES += drivers/s3.c drivers/s3_xml.c drivers/s3_xml.h \
	drivers/s3_creds.c drivers/s3_creds.h drivers/s3_sse.c drivers/s3_sse.h
# ops: the S3 driver's listing and aborting of incomplete multipart uploads (doctor)
liblexfs_a_SOURCES += drivers/s3_int.h drivers/s3_mpu.c
# drv branch: the memory and local drivers.
liblexfs_a_SOURCES += drivers/memory.c drivers/local.c drivers/local_int.h \
	drivers/local_list.c drivers/local_mpu.c
