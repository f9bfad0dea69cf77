# daemon/: vtuned, vtunectl and the shared log/util modules.
libvtune_a_SOURCES += daemon/log.c daemon/log.h daemon/util.c daemon/util.h

sbin_PROGRAMS += vtuned
vtuned_SOURCES = daemon/vtuned.c daemon/vtuned.h daemon/ctl.c daemon/ctl.h \
	daemon/notify.c daemon/notify.h daemon/methods_status.c daemon/methods_dataset.c
vtuned_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JANSSON_CFLAGS) $(SYSTEMD_CFLAGS)
vtuned_LDADD = $(VT_LIBS)

bin_PROGRAMS += vtunectl
vtunectl_SOURCES = daemon/vtunectl.c
vtunectl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
vtunectl_LDADD = $(VT_LIBS)
