# tests: files of this area (included by Makefile.am)
check_PROGRAMS += tests/unit/test_http_util
tests_unit_test_http_util_SOURCES = tests/unit/test_http_util.c
tests_unit_test_http_util_LDADD = $(LEXFS_LIBS)
TESTS += tests/unit/test_http_util
# azure: dumps what the Azure signing and parsing code computes (tests/test_azure_*.py)
noinst_PROGRAMS += tests/unit/azure_dump
tests_unit_azure_dump_SOURCES = tests/unit/azure_dump.c
tests_unit_azure_dump_LDADD = $(LEXFS_LIBS)
# tests: C unit tests (run by `make check` and by tests/test_unit.py) and helpers.
UNIT_TESTS = tests/unit/core_test
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
tests_unit_core_test_SOURCES = tests/unit/core_test.c tests/unit/check.h
tests_unit_core_test_LDADD = $(LEXFS_LIBS)
