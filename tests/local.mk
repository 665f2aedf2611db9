# tests: C unit tests (run by `make check` and by tests/test_unit.py) and helpers.
UNIT_TESTS = tests/unit/core_test
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
tests_unit_core_test_SOURCES = tests/unit/core_test.c tests/unit/check.h
tests_unit_core_test_LDADD = $(LEXFS_LIBS)
# s3 branch: HTTP helpers unit test and the SigV4 dump helper used by test_s3_sigv4.py
UNIT_TESTS += tests/unit/test_http_util
tests_unit_test_http_util_SOURCES = tests/unit/test_http_util.c
tests_unit_test_http_util_LDADD = $(LEXFS_LIBS)
noinst_PROGRAMS += tests/unit/sigv4_dump
tests_unit_sigv4_dump_SOURCES = tests/unit/sigv4_dump.c
tests_unit_sigv4_dump_LDADD = $(LEXFS_LIBS)
# gcs: V4 signing vector helper (tests/test_gcs_vectors.py)
noinst_PROGRAMS += tests/unit/gcs_sign_dump
tests_unit_gcs_sign_dump_SOURCES = tests/unit/gcs_sign_dump.c
tests_unit_gcs_sign_dump_LDADD = $(LEXFS_LIBS)
# cli: configuration and mount-source unit tests
UNIT_TESTS += tests/unit/config_test tests/unit/source_test
tests_unit_config_test_SOURCES = tests/unit/config_test.c tests/unit/check.h
tests_unit_config_test_LDADD = $(LEXFS_LIBS)
tests_unit_source_test_SOURCES = tests/unit/source_test.c tests/unit/check.h
tests_unit_source_test_LDADD = $(LEXFS_LIBS)
# cache: the cache on the memory driver (tests/unit/cache_test.c)
check_PROGRAMS += tests/unit/cache_test
TESTS += tests/unit/cache_test
tests_unit_cache_test_SOURCES = tests/unit/cache_test.c tests/unit/check.h
tests_unit_cache_test_LDADD = $(LEXFS_LIBS)
# drv branch: the conformance CLI and the C unit tests of urlsign and the local driver.
noinst_PROGRAMS += lexfs-storetool
lexfs_storetool_SOURCES = tests/storetool.c
lexfs_storetool_LDADD = $(LEXFS_LIBS)

check_PROGRAMS += tests/unit/urlsign_test tests/unit/local_test tests/unit/drivers_mt_test
TESTS += tests/unit/urlsign_test tests/unit/local_test tests/unit/drivers_mt_test
tests_unit_drivers_mt_test_SOURCES = tests/unit/drivers_mt_test.c
tests_unit_drivers_mt_test_LDADD = $(LEXFS_LIBS)
tests_unit_urlsign_test_SOURCES = tests/unit/urlsign_test.c
tests_unit_urlsign_test_LDADD = $(LEXFS_LIBS)
tests_unit_local_test_SOURCES = tests/unit/local_test.c
tests_unit_local_test_LDADD = $(LEXFS_LIBS)
# azure: dumps what the Azure signing and parsing code computes (tests/test_azure_*.py)
noinst_PROGRAMS += tests/unit/azure_dump
tests_unit_azure_dump_SOURCES = tests/unit/azure_dump.c
tests_unit_azure_dump_LDADD = $(LEXFS_LIBS)
# fs: path <-> key helpers
check_PROGRAMS += tests/unit/pathkey_test
TESTS += tests/unit/pathkey_test
tests_unit_pathkey_test_SOURCES = tests/unit/pathkey_test.c tests/unit/check.h
tests_unit_pathkey_test_LDADD = $(LEXFS_LIBS)
# ops unit tests
UNIT_TESTS += tests/unit/events_test
tests_unit_events_test_SOURCES = tests/unit/events_test.c tests/unit/check.h
tests_unit_events_test_LDADD = $(LEXFS_LIBS)
UNIT_TESTS += tests/unit/metrics_test
tests_unit_metrics_test_SOURCES = tests/unit/metrics_test.c tests/unit/check.h
tests_unit_metrics_test_LDADD = $(LEXFS_LIBS)
UNIT_TESTS += tests/unit/doctor_test
tests_unit_doctor_test_SOURCES = tests/unit/doctor_test.c tests/unit/check.h
tests_unit_doctor_test_LDADD = $(LEXFS_LIBS)
UNIT_TESTS += tests/unit/s3_mpu_test
tests_unit_s3_mpu_test_SOURCES = tests/unit/s3_mpu_test.c tests/unit/check.h
tests_unit_s3_mpu_test_LDADD = $(LEXFS_LIBS)
UNIT_TESTS += tests/unit/status_test
tests_unit_status_test_SOURCES = tests/unit/status_test.c tests/unit/check.h
tests_unit_status_test_LDADD = $(LEXFS_LIBS)
UNIT_TESTS += tests/unit/sdnotify_test
tests_unit_sdnotify_test_SOURCES = tests/unit/sdnotify_test.c tests/unit/check.h
tests_unit_sdnotify_test_LDADD = $(LEXFS_LIBS)
# backends: the router of named backends mirrors the fs layer's operations
UNIT_TESTS += tests/unit/route_test
tests_unit_route_test_SOURCES = tests/unit/route_test.c tests/unit/check.h
tests_unit_route_test_LDADD = $(LEXFS_LIBS)
# cloud2: sizes the cloud drivers choose before any request (Azure blocks)
UNIT_TESTS += tests/unit/cloud_test
tests_unit_cloud_test_SOURCES = tests/unit/cloud_test.c tests/unit/check.h
tests_unit_cloud_test_LDADD = $(LEXFS_LIBS)
# plugins: an example third-party driver built as a shared object, and broken
# builds of it the registry must refuse (tests/test_plugins.py). automake without
# libtool: each is a program linked with -shared, its objects compiled with -fPIC.
PLUGIN_CCFLAGS = $(AM_CFLAGS) -fPIC
PLUGIN_LINKFLAGS = $(AM_LDFLAGS) -shared -fPIC
PLUGIN_SRC = tests/plugin/lexfs-example.c
noinst_PROGRAMS += tests/plugin/lexfs-example.so tests/plugin/example-abi1.so \
	tests/plugin/example-noentry.so tests/plugin/example-nogeturl.so
tests_plugin_lexfs_example_so_SOURCES = $(PLUGIN_SRC)
tests_plugin_lexfs_example_so_CFLAGS = $(PLUGIN_CCFLAGS)
tests_plugin_lexfs_example_so_LDFLAGS = $(PLUGIN_LINKFLAGS)
tests_plugin_example_abi1_so_SOURCES = $(PLUGIN_SRC)
tests_plugin_example_abi1_so_CPPFLAGS = $(AM_CPPFLAGS) -DEXAMPLE_ABI=1
tests_plugin_example_abi1_so_CFLAGS = $(PLUGIN_CCFLAGS)
tests_plugin_example_abi1_so_LDFLAGS = $(PLUGIN_LINKFLAGS)
tests_plugin_example_noentry_so_SOURCES = $(PLUGIN_SRC)
tests_plugin_example_noentry_so_CPPFLAGS = $(AM_CPPFLAGS) -DEXAMPLE_NO_ENTRY
tests_plugin_example_noentry_so_CFLAGS = $(PLUGIN_CCFLAGS)
tests_plugin_example_noentry_so_LDFLAGS = $(PLUGIN_LINKFLAGS)
tests_plugin_example_nogeturl_so_SOURCES = $(PLUGIN_SRC)
tests_plugin_example_nogeturl_so_CPPFLAGS = $(AM_CPPFLAGS) -DEXAMPLE_NO_GET_URL
tests_plugin_example_nogeturl_so_CFLAGS = $(PLUGIN_CCFLAGS)
tests_plugin_example_nogeturl_so_LDFLAGS = $(PLUGIN_LINKFLAGS)
