# store/: SQLite schema, migrations and accessors (the only SQL in the tree).
libvtune_a_SOURCES += store/store.c store/store.h store/store_internal.h \
	store/schema.c store/statements.c store/dataset.c store/backdoor.c store/job.c \
	store/verify.c store/audit.c store/schedule.c store/selfaudit.c store/backup.c \
	store/outbox.c store/auditsig.c store/durable.c

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_store tests/unit/test_store_records
TESTS += tests/unit/test_store tests/unit/test_store_records
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_store_records_SOURCES = tests/unit/test_store_records.c
tests_unit_test_store_records_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_store_records_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif
