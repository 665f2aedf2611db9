# contrib: the mount helper, the man page, the annotated example configuration and
# the demo script. `make install` puts lexfs in $(bindir), mount.lexfs in $(sbindir)
# (mount(8) finds /sbin/mount.lexfs when configured with --prefix=/usr, or link it),
# lexfs.1 in $(man1dir) and the example config in $(docdir).
sbin_SCRIPTS += contrib/mount.lexfs
dist_man_MANS += contrib/lexfs.1
dist_doc_DATA = contrib/lexfs.conf.example
EXTRA_DIST += contrib/mount.lexfs contrib/demo.sh
