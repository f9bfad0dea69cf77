# systemd/: the service unit (generated with the configured sbindir and sysconfdir) and the
# sysusers.d entry for the vtuned user.
systemdsystemunit_DATA = systemd/vtuned.service
sysusersdir = $(prefix)/lib/sysusers.d
sysusers_DATA = systemd/vtuned.conf
EXTRA_DIST += systemd/vtuned.service.in systemd/vtuned.sysusers
CLEANFILES += systemd/vtuned.service systemd/vtuned.conf

systemd/vtuned.service: $(srcdir)/systemd/vtuned.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) systemd && sed -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' $(srcdir)/systemd/vtuned.service.in > $@

systemd/vtuned.conf: $(srcdir)/systemd/vtuned.sysusers
	$(AM_V_GEN)$(MKDIR_P) systemd && cp $(srcdir)/systemd/vtuned.sysusers $@
