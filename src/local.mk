# src: files of this area (included by Makefile.am)
# fs branch: the FUSE layer
liblexfs_a_SOURCES += src/fs.c src/fs.h src/fs_int.h src/fs_xattr.c src/pathkey.c src/pathkey.h
