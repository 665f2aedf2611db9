# drivers: the contract, the store wrappers, the registry and the drivers.
liblexfs_a_SOURCES += \
	drivers/driver.h drivers/builtin.h \
	drivers/meta.c \
	drivers/store.c drivers/store.h \
	drivers/registry.c
# s3 branch: the S3 and R2 drivers
liblexfs_a_SOURCES += drivers/s3.c drivers/s3_xml.c drivers/s3_xml.h \
	drivers/s3_creds.c drivers/s3_creds.h
# drv branch: the memory and local drivers.
liblexfs_a_SOURCES += drivers/memory.c drivers/local.c
