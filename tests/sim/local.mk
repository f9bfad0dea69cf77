# tests/sim/: vtune-sim, the OpenAI-compatible provider simulator.
noinst_PROGRAMS += vtune-sim
# The model (lm*.c, lm*.h): also linked into its own tests below.
SIM_LM_SOURCES = tests/sim/lm.c tests/sim/lm.h tests/sim/lm_internal.h \
	tests/sim/lm_token.c tests/sim/lm_table.c tests/sim/lm_train.c tests/sim/lm_corpus.c
vtune_sim_SOURCES = tests/sim/sim_main.c $(SIM_LM_SOURCES)
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
