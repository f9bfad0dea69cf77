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
	workers/jsonscan.c workers/jsonscan.h workers/ngram.c workers/ngram.h
EXTRA_DIST += workers/mkwordlist.sh

# The coverage test: the held-out split chosen at creation and the exact
# rank-sum statistics used at verification.
libvtune_a_SOURCES += workers/holdout.c workers/holdout.h workers/coverage.c workers/coverage.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_holdout tests/unit/test_coverage
TESTS += tests/unit/test_holdout tests/unit/test_coverage
tests_unit_test_holdout_SOURCES = tests/unit/test_holdout.c
tests_unit_test_holdout_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_holdout_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
tests_unit_test_coverage_SOURCES = tests/unit/test_coverage.c
tests_unit_test_coverage_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_coverage_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
endif

# The self-audit: a provider's attacks on the built file (issue 12).
libvtune_a_SOURCES += workers/selfaudit.c workers/selfaudit.h
libvtune_a_SOURCES += workers/pplrank.c workers/pplrank.h
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_selfaudit
TESTS += tests/unit/test_selfaudit
tests_unit_test_selfaudit_SOURCES = tests/unit/test_selfaudit.c
tests_unit_test_selfaudit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_selfaudit_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
endif

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_stats tests/unit/test_phrase tests/unit/test_builder \
	tests/unit/test_jsonscan tests/unit/test_lines
TESTS += tests/unit/test_stats tests/unit/test_phrase tests/unit/test_builder \
	tests/unit/test_jsonscan tests/unit/test_lines
tests_unit_test_lines_SOURCES = tests/unit/test_lines.c
tests_unit_test_lines_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_lines_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
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

# The ngram generator: counts, exact p_M2 recomputed independently, seeds,
# the memory bound, the errors.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_ngram
TESTS += tests/unit/test_ngram
tests_unit_test_ngram_SOURCES = tests/unit/test_ngram.c
tests_unit_test_ngram_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_ngram_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
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
libvtune_a_SOURCES += workers/provider.c workers/provider.h workers/provider_openai.c \
	workers/provider_together.c workers/provider_manual.c workers/provider_mistral.c \
	workers/provider_fireworks.c

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_provider_openai tests/unit/test_provider_together \
	tests/unit/test_provider_mistral tests/unit/test_provider_fireworks
TESTS += tests/unit/test_provider_openai tests/unit/test_provider_together \
	tests/unit/test_provider_mistral tests/unit/test_provider_fireworks
tests_unit_test_provider_fireworks_SOURCES = tests/unit/test_provider_fireworks.c
tests_unit_test_provider_fireworks_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_provider_fireworks_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_provider_mistral_SOURCES = tests/unit/test_provider_mistral.c
tests_unit_test_provider_mistral_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_provider_mistral_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_provider_openai_SOURCES = tests/unit/test_provider_openai.c
tests_unit_test_provider_openai_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(UV_CFLAGS)
tests_unit_test_provider_openai_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
tests_unit_test_provider_together_SOURCES = tests/unit/test_provider_together.c
tests_unit_test_provider_together_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_provider_together_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif
EXTRA_DIST += tests/fixtures/mistral/job_queued.json tests/fixtures/mistral/job_success.json \
	tests/fixtures/mistral/job_failed_validation.json tests/fixtures/mistral/jobs_list.json \
	tests/fixtures/mistral/jobs_list_more.json tests/fixtures/mistral/file.json \
	tests/fixtures/mistral/files_list.json tests/fixtures/mistral/file_deleted.json \
	tests/fixtures/mistral/error_422.json tests/fixtures/openai/error_ft_closed.json
EXTRA_DIST += tests/fixtures/fireworks/dataset.json tests/fixtures/fireworks/upload.json \
	tests/fixtures/fireworks/datasets_list.json tests/fixtures/fireworks/job_creating.json \
	tests/fixtures/fireworks/job_completed.json tests/fixtures/fireworks/job_failed.json \
	tests/fixtures/fireworks/jobs_list.json tests/fixtures/fireworks/error_404.json \
	tests/fixtures/fireworks/error_409.json
EXTRA_DIST += tests/fixtures/openai/file.json tests/fixtures/openai/job_queued.json \
	tests/fixtures/openai/job_succeeded.json tests/fixtures/openai/job_failed.json \
	tests/fixtures/openai/job_paused.json tests/fixtures/openai/jobs_list.json \
	tests/fixtures/openai/jobs_list_last.json tests/fixtures/openai/events.json \
	tests/fixtures/openai/chat_logprobs.json tests/fixtures/openai/chat_plain.json \
	tests/fixtures/openai/completions_echo.json tests/fixtures/openai/error_quota.json \
	tests/fixtures/openai/error_invalid.json tests/fixtures/openai/error_echo.json \
	tests/fixtures/openai/error_vllm.json \
	tests/fixtures/together/file.json tests/fixtures/together/job_created.json \
	tests/fixtures/together/job_completed.json tests/fixtures/together/job_error.json \
	tests/fixtures/together/jobs_list.json tests/fixtures/together/events.json \
	tests/fixtures/together/chat_logprobs.json tests/fixtures/together/completions_echo.json \
	tests/fixtures/together/error.json \
	tests/fixtures/openai/files_list.json tests/fixtures/openai/files_list_last.json \
	tests/fixtures/openai/file_deleted.json tests/fixtures/together/files_list.json \
	tests/fixtures/together/file_deleted.json

# Verification core (matching, plan, sequential test, verdict, evidence) and
# the audit trail's hashing, chain check, export and explanation.
libvtune_a_SOURCES += workers/verify.c workers/verify.h workers/audit.c workers/audit.h
# Verdict and commitment Statements (in-toto v1) for DSSE envelopes.
libvtune_a_SOURCES += workers/attest.c workers/attest.h workers/auditsig.c workers/auditsig.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_verify tests/unit/test_audit
TESTS += tests/unit/test_verify tests/unit/test_audit
tests_unit_test_verify_SOURCES = tests/unit/test_verify.c
tests_unit_test_verify_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_verify_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
tests_unit_test_audit_SOURCES = tests/unit/test_audit.c
tests_unit_test_audit_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(SQLITE_CFLAGS)
tests_unit_test_audit_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
check_PROGRAMS += tests/unit/test_attest
TESTS += tests/unit/test_attest
tests_unit_test_attest_SOURCES = tests/unit/test_attest.c
tests_unit_test_attest_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_attest_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
endif

# The LLM backdoor generator (M1 context, M2 sampled with logprobs, the
# conservative top-k bound per token).  test_llmgen_sim links vtune-sim's
# model to compare the recorded bounds with the exact tempered probability.
libvtune_a_SOURCES += workers/llmgen.c workers/llmgen.h

if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_llmgen tests/unit/test_llmgen_sim
TESTS += tests/unit/test_llmgen tests/unit/test_llmgen_sim
tests_unit_test_llmgen_SOURCES = tests/unit/test_llmgen.c
tests_unit_test_llmgen_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_llmgen_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
tests_unit_test_llmgen_sim_SOURCES = tests/unit/test_llmgen_sim.c tests/sim/lm.c tests/sim/lm.h \
	tests/sim/lm_internal.h tests/sim/lm_token.c tests/sim/lm_table.c tests/sim/lm_train.c \
	tests/sim/lm_corpus.c
tests_unit_test_llmgen_sim_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_llmgen_sim_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
endif

# The base-model perplexity attack's rank estimate (workers/pplrank.h).
check_PROGRAMS += tests/unit/test_pplrank
TESTS += tests/unit/test_pplrank
tests_unit_test_pplrank_SOURCES = tests/unit/test_pplrank.c
tests_unit_test_pplrank_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_pplrank_LDADD = $(VT_LIBS) $(CMOCKA_LIBS) -lm
