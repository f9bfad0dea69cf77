# tests/sim/: vtune-sim, the OpenAI-compatible provider simulator.
noinst_PROGRAMS += vtune-sim
# The model (lm*.c, lm*.h): also linked into its own tests below.
SIM_LM_SOURCES = tests/sim/lm.c tests/sim/lm.h tests/sim/lm_internal.h \
	tests/sim/lm_token.c tests/sim/lm_table.c tests/sim/lm_train.c tests/sim/lm_corpus.c
vtune_sim_SOURCES = tests/sim/sim_main.c tests/sim/sim.h tests/sim/sim_http.c \
	tests/sim/sim_faults.c tests/sim/sim_files.c tests/sim/sim_jobs.c tests/sim/sim_models.c \
	tests/sim/sim_infer.c tests/sim/sim_attack.c tests/sim/sim_attack.h $(SIM_LM_SOURCES)
vtune_sim_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
vtune_sim_LDADD = libvtune.a $(MHD_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm

# The model's own tests: the learning proof (plain C) and unit tests (cmocka).
check_PROGRAMS += tests/sim/test_learning
TESTS += tests/sim/test_learning
tests_sim_test_learning_SOURCES = tests/sim/test_learning.c $(SIM_LM_SOURCES)
tests_sim_test_learning_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tests_sim_test_learning_LDADD = libvtune.a $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm
if HAVE_CMOCKA
check_PROGRAMS += tests/sim/test_lm
TESTS += tests/sim/test_lm
tests_sim_test_lm_SOURCES = tests/sim/test_lm.c $(SIM_LM_SOURCES)
tests_sim_test_lm_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tests_sim_test_lm_LDADD = libvtune.a $(CMOCKA_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm
endif

# vtune-sim's HTTP side: the API test (curl), the load and fuzz checks (the
# client is tests/bench/sim_load.c), the Node conformance tests (ajv against
# the OpenAI spec, the official openai SDK; they skip without node, the
# modules of tests/node or ../shared) and the fault SPEC unit test.
check_PROGRAMS += tests/bench/sim_load
tests_bench_sim_load_SOURCES = tests/bench/sim_load.c
tests_bench_sim_load_LDADD = libvtune.a $(CRYPTO_LIBS)
TESTS += tests/sim/test_sim_api.sh tests/sim/test_sim_load.sh tests/sim/test_schema.sh \
	tests/sim/test_openai_sdk.sh
EXTRA_DIST += tests/sim/sim_lib.sh tests/sim/test_sim_api.sh tests/sim/test_sim_load.sh \
	tests/sim/test_schema.sh tests/sim/test_openai_sdk.sh tests/node/package.json \
	tests/node/package-lock.json tests/node/schema_check.mjs tests/node/sdk_check.mjs
if HAVE_CMOCKA
check_PROGRAMS += tests/sim/test_sim_faults
TESTS += tests/sim/test_sim_faults
tests_sim_test_sim_faults_SOURCES = tests/sim/test_sim_faults.c tests/sim/sim_faults.c tests/sim/sim.h
tests_sim_test_sim_faults_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
tests_sim_test_sim_faults_LDADD = libvtune.a $(CMOCKA_LIBS) $(CRYPTO_LIBS)
endif

# mark_check: a backdoor construction against the cheaters' attack, the
# self-audit and (--honest) vtune-sim's learning, without a daemon; used
# by tests/integration/test_marks.sh and by hand to choose the defaults.
check_PROGRAMS += tests/sim/mark_check
tests_sim_mark_check_SOURCES = tests/sim/mark_check.c tests/sim/sim_attack.c tests/sim/sim_attack.h \
	$(SIM_LM_SOURCES)
tests_sim_mark_check_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tests_sim_mark_check_LDADD = libvtune.a $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm
