# tests: C unit tests (run by `make check` and by tests/test_unit.py) and helpers.
UNIT_TESTS = tests/unit/core_test
check_PROGRAMS += $(UNIT_TESTS)
TESTS += $(UNIT_TESTS)
tests_unit_core_test_SOURCES = tests/unit/core_test.c tests/unit/check.h
tests_unit_core_test_LDADD = $(LEXFS_LIBS)
# ops unit tests
UNIT_TESTS += tests/unit/events_test
tests_unit_events_test_SOURCES = tests/unit/events_test.c tests/unit/check.h
tests_unit_events_test_LDADD = $(LEXFS_LIBS)
