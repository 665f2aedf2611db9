# tests: files of this area (included by Makefile.am)
# gcs: V4 signing vector helper (tests/test_gcs_vectors.py)
noinst_PROGRAMS += tests/unit/gcs_sign_dump
tests_unit_gcs_sign_dump_SOURCES = tests/unit/gcs_sign_dump.c
tests_unit_gcs_sign_dump_LDADD = $(LEXFS_LIBS)
