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
