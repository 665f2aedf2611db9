# src: files of this area (included by Makefile.am)
# gcs: Google Cloud Storage signing and credentials
liblexfs_a_SOURCES += src/gcs_sign.c src/gcs_sign.h
