# conf/: YAML configuration.
libvtune_a_SOURCES += conf/conf.c conf/conf.h conf/conf_parse.c conf/conf_int.h
EXTRA_DIST += conf/vtuned.yaml

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_conf
TESTS += tests/unit/test_conf
tests_unit_test_conf_SOURCES = tests/unit/test_conf.c
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_conf_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif

# The example configuration as installed: conf/vtuned.yaml with its paths
# set to the configured ones ($(sysconfdir)/vtuned for key files,
# $(localstatedir)/lib/vtuned for state_dir, $(runstatedir)/vtuned for the
# socket).  make install puts it in $(sysconfdir)/vtuned/vtuned.yaml only
# when no file is there (an edited configuration is never overwritten;
# the new example is then left as vtuned.yaml.new beside it), mode 0640;
# make uninstall removes it only while it is unchanged.
vtconfdir = $(sysconfdir)/vtuned
nodist_noinst_DATA = conf/vtuned.yaml.inst
CLEANFILES += conf/vtuned.yaml.inst
conf/vtuned.yaml.inst: $(srcdir)/conf/vtuned.yaml Makefile
	$(AM_V_GEN)$(MKDIR_P) conf && sed -e 's|/var/lib/vtuned|$(localstatedir)/lib/vtuned|g' \
	    -e 's|/run/vtuned|$(runstatedir)/vtuned|g' -e 's|/etc/vtuned|$(vtconfdir)|g' \
	    $(srcdir)/conf/vtuned.yaml > $@

install-data-local: conf/vtuned.yaml.inst
	$(MKDIR_P) '$(DESTDIR)$(vtconfdir)'
	@if test -e '$(DESTDIR)$(vtconfdir)/vtuned.yaml'; then \
	    if cmp -s conf/vtuned.yaml.inst '$(DESTDIR)$(vtconfdir)/vtuned.yaml'; then :; else \
	        echo " $(INSTALL_DATA) -m 0640 conf/vtuned.yaml.inst $(DESTDIR)$(vtconfdir)/vtuned.yaml.new"; \
	        $(INSTALL_DATA) -m 0640 conf/vtuned.yaml.inst '$(DESTDIR)$(vtconfdir)/vtuned.yaml.new'; \
	        echo "note: $(DESTDIR)$(vtconfdir)/vtuned.yaml exists and is kept; the new example is vtuned.yaml.new"; \
	    fi; \
	else \
	    echo " $(INSTALL_DATA) -m 0640 conf/vtuned.yaml.inst $(DESTDIR)$(vtconfdir)/vtuned.yaml"; \
	    $(INSTALL_DATA) -m 0640 conf/vtuned.yaml.inst '$(DESTDIR)$(vtconfdir)/vtuned.yaml'; \
	fi

uninstall-local:
	@for f in vtuned.yaml vtuned.yaml.new; do \
	    if cmp -s conf/vtuned.yaml.inst '$(DESTDIR)$(vtconfdir)/'$$f; then \
	        echo " rm -f $(DESTDIR)$(vtconfdir)/$$f"; rm -f '$(DESTDIR)$(vtconfdir)/'$$f; fi; \
	done
	@rmdir '$(DESTDIR)$(vtconfdir)' 2>/dev/null || :
