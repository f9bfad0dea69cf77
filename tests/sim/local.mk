# tests/sim/: vtune-sim, the OpenAI-compatible provider simulator.
noinst_PROGRAMS += vtune-sim
vtune_sim_SOURCES = tests/sim/sim_main.c tests/sim/lm.c tests/sim/lm.h
vtune_sim_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
vtune_sim_LDADD = libvtune.a $(MHD_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm
