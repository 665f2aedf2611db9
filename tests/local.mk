# tests: files of this area (included by Makefile.am)
check_PROGRAMS += tests/unit/test_http_util
tests_unit_test_http_util_SOURCES = tests/unit/test_http_util.c
tests_unit_test_http_util_LDADD = $(LEXFS_LIBS)
TESTS += tests/unit/test_http_util
