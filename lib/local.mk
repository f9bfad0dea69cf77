# lib/: the shared base every folder may use and that uses nothing of
# theirs: logging, utilities, the domain enums, HTTP messages as plain data,
# the filesystem fault seam.
libvtune_a_SOURCES += lib/log.c lib/log.h lib/util.c lib/util.h lib/types.c lib/types.h \
	lib/http_msg.c lib/http_msg.h lib/log10json.c lib/log10json.h lib/fsio.c lib/fsio.h \
	lib/sign.c lib/sign.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_log10json
TESTS += tests/unit/test_log10json
tests_unit_test_log10json_SOURCES = tests/unit/test_log10json.c
tests_unit_test_log10json_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_log10json_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
# Ed25519, base64 and DSSE envelopes (lib/sign.h) against published vectors.
check_PROGRAMS += tests/unit/test_sign
TESTS += tests/unit/test_sign
tests_unit_test_sign_SOURCES = tests/unit/test_sign.c
tests_unit_test_sign_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_sign_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
# The fault seam alone (lib/fsio.h), and the import and the builder under
# every fault it injects.
check_PROGRAMS += tests/unit/test_fsio tests/unit/test_durability
TESTS += tests/unit/test_fsio tests/unit/test_durability
tests_unit_test_fsio_SOURCES = tests/unit/test_fsio.c
tests_unit_test_fsio_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_fsio_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_durability_SOURCES = tests/unit/test_durability.c
tests_unit_test_durability_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_durability_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm -lpthread
# The logger's sinks: stderr text, journald's native protocol and its fields.
check_PROGRAMS += tests/unit/test_log
TESTS += tests/unit/test_log
tests_unit_test_log_SOURCES = tests/unit/test_log.c
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_log_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lpthread
endif
