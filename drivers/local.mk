# drivers: the contract, the store wrappers, the registry and the drivers.
liblexfs_a_SOURCES += \
	drivers/driver.h drivers/builtin.h \
	drivers/meta.c \
	drivers/store.c drivers/store.h \
	drivers/registry.c
