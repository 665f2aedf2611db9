# src: support code (no FUSE, no drivers) and the FUSE layer; main() is the daemon.
liblexfs_a_SOURCES += \
	src/log.c src/log.h \
	src/errors.c src/errors.h \
	src/buf.c src/buf.h \
	src/crypto.c src/crypto.h \
	src/settings.c src/settings.h \
	src/http.h src/fs.h
# s3 branch: the HTTP layer and SigV4
liblexfs_a_SOURCES += src/http.c src/sigv4.c src/sigv4.h
# gcs: Google Cloud Storage signing and credentials
liblexfs_a_SOURCES += src/gcs_sign.c src/gcs_sign.h
liblexfs_a_SOURCES += src/gcs_auth.c src/gcs_auth.h
# cli: configuration, mount sources, the daemon's main()
liblexfs_a_SOURCES += src/conf.c src/conf.h src/source.c src/source.h
liblexfs_a_SOURCES += src/conf_backends.c src/conf_int.h
bin_PROGRAMS += lexfs
lexfs_SOURCES = src/main.c
lexfs_LDADD = $(LEXFS_LIBS)
# drv branch: presigned URLs of the local and memory drivers.
liblexfs_a_SOURCES += src/urlsign.c src/urlsign.h
# fs branch: the FUSE layer
liblexfs_a_SOURCES += src/fs.c src/fs_int.h src/fs_dir.c src/fs_xattr.c src/pathkey.c src/pathkey.h
# backends: one mount of named backends, routed to one fs layer each
liblexfs_a_SOURCES += src/fs_route.c src/fs_route.h
# ops: events/hooks/webhook, Prometheus metrics, doctor
liblexfs_a_SOURCES += src/events.c src/events.h src/metrics.c src/metrics.h \
	src/doctor.c src/doctor.h src/sdnotify.c src/sdnotify.h src/opsrt.c src/opsrt.h
# ops: lexfs status (progress of pending uploads)
liblexfs_a_SOURCES += src/status.c src/status.h
# azure: Shared Key, SAS and credentials of Azure Storage
liblexfs_a_SOURCES += src/azure_auth.c src/azure_auth.h
