# workers/: dataset formats, backdoor generation, the D ∪ D' builder,
# provider adapters, verification and statistics.
libvtune_a_SOURCES += workers/dsformat.c workers/dsformat.h workers/import.c workers/import.h \
	workers/backdoor.c workers/backdoor.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_backdoor
TESTS += tests/unit/test_backdoor
tests_unit_test_backdoor_SOURCES = tests/unit/test_backdoor.c
tests_unit_test_backdoor_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_backdoor_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/test_dsformat
TESTS += tests/unit/test_dsformat
tests_unit_test_dsformat_SOURCES = tests/unit/test_dsformat.c
tests_unit_test_dsformat_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_dsformat_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif

# Backdoor generation (word-list phrases), statistics and the D ∪ D' builder.
libvtune_a_SOURCES += workers/stats.c workers/stats.h workers/phrase.c workers/phrase.h \
	workers/wordlist.c workers/lines.c workers/lines.h workers/builder.c workers/builder.h \
	workers/jsonscan.c workers/jsonscan.h
EXTRA_DIST += workers/mkwordlist.sh

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_stats tests/unit/test_phrase tests/unit/test_builder \
	tests/unit/test_jsonscan
TESTS += tests/unit/test_stats tests/unit/test_phrase tests/unit/test_builder \
	tests/unit/test_jsonscan
tests_unit_test_stats_SOURCES = tests/unit/test_stats.c
tests_unit_test_stats_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_stats_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
tests_unit_test_phrase_SOURCES = tests/unit/test_phrase.c
tests_unit_test_phrase_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_phrase_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
tests_unit_test_builder_SOURCES = tests/unit/test_builder.c
tests_unit_test_builder_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_builder_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
tests_unit_test_jsonscan_SOURCES = tests/unit/test_jsonscan.c
tests_unit_test_jsonscan_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_jsonscan_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif

# Benchmark driver: built by make check but not one of TESTS; run
# tests/bench/bench_build.sh by hand (see its header).
check_PROGRAMS += tests/bench/bench_build
tests_bench_bench_build_SOURCES = tests/bench/bench_build.c
tests_bench_bench_build_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
tests_bench_bench_build_LDADD = $(VT_LIBS) -lm
EXTRA_DIST += tests/bench/bench_build.sh tests/bench/build_ref.py

# HTTP retry policy (pure) and the provider adapters (openai, together, manual).
libvtune_a_SOURCES += workers/retry.c workers/retry.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_retry
TESTS += tests/unit/test_retry
tests_unit_test_retry_SOURCES = tests/unit/test_retry.c
tests_unit_test_retry_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_retry_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif
