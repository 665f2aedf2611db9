# contrib: the mount helper, the man page, the annotated example configuration and
# the demo script. `make install` puts lexfs in $(bindir), mount.lexfs in $(sbindir)
# (mount(8) finds /sbin/mount.lexfs when configured with --prefix=/usr, or link it),
# lexfs.1 in $(man1dir) and the example config in $(docdir).
sbin_SCRIPTS += contrib/mount.lexfs
dist_man_MANS += contrib/lexfs.1
dist_doc_DATA = contrib/lexfs.conf.example
EXTRA_DIST += contrib/mount.lexfs contrib/demo.sh
# ops: systemd unit template, fstab examples, logrotate snippet, bash completion.
# The unit gets the real $(bindir) at build time; the completion and logrotate files
# are installed under the names the tools look for.
systemdunitdir = $(prefix)/lib/systemd/system
nodist_systemdunit_DATA = contrib/lexfs@.service
opsdocdir = $(docdir)
dist_opsdoc_DATA = contrib/fstab.example
bashcompletiondir = $(datadir)/bash-completion/completions
logrotatedir = $(sysconfdir)/logrotate.d
EXTRA_DIST += contrib/lexfs@.service.in contrib/lexfs.bash-completion contrib/lexfs.logrotate
CLEANFILES += contrib/lexfs@.service
all-local: contrib/lexfs@.service

contrib/lexfs@.service: $(srcdir)/contrib/lexfs@.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) contrib && \
	sed -e 's|@bindir[@]|$(bindir)|g' $(srcdir)/contrib/lexfs@.service.in > $@.tmp && \
	mv $@.tmp $@

install-data-local:
	$(MKDIR_P) $(DESTDIR)$(bashcompletiondir) $(DESTDIR)$(logrotatedir)
	$(INSTALL_DATA) $(srcdir)/contrib/lexfs.bash-completion $(DESTDIR)$(bashcompletiondir)/lexfs
	$(INSTALL_DATA) $(srcdir)/contrib/lexfs.logrotate $(DESTDIR)$(logrotatedir)/lexfs

uninstall-local:
	rm -f $(DESTDIR)$(bashcompletiondir)/lexfs $(DESTDIR)$(logrotatedir)/lexfs
