# cache: files of this area (included by Makefile.am)
liblexfs_a_SOURCES += cache/cache.h cache/cache_int.h cache/meta_cache.h \
	cache/cache.c cache/upload.c cache/journal.c cache/readahead.c cache/meta_cache.c
