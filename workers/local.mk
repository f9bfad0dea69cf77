# workers/: dataset formats, backdoor generation, the D ∪ D' builder,
# provider adapters, verification and statistics.
libvtune_a_SOURCES += workers/dsformat.c workers/dsformat.h workers/import.c workers/import.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_dsformat
TESTS += tests/unit/test_dsformat
tests_unit_test_dsformat_SOURCES = tests/unit/test_dsformat.c
tests_unit_test_dsformat_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_dsformat_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif
