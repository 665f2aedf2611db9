# src: files of this area (included by Makefile.am)
liblexfs_a_SOURCES += src/http.c src/http.h
