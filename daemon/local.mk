# daemon/: vtuned (event loop, control server, scheduler, provider client).
# libcurl multi ⇄ libuv glue and the per-provider request pool.
libvtune_a_SOURCES += daemon/http.c daemon/http.h
# Cross-thread wake-ups of a loop that never spin (uv_async_t's replacement).
libvtune_a_SOURCES += daemon/wakeup.c daemon/wakeup.h
# The provider client (retries, budget, breaker) on the loop.
libvtune_a_SOURCES += daemon/provider_client.c daemon/provider_client.h
# Its integration test: a C driver on a real loop against a loopback server.
check_PROGRAMS += tests/integration/test_http_glue
tests_integration_test_http_glue_SOURCES = tests/integration/test_http_glue.c
tests_integration_test_http_glue_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JANSSON_CFLAGS)
tests_integration_test_http_glue_LDADD = $(VT_LIBS)
TESTS += tests/integration/test_http.sh
EXTRA_DIST += tests/integration/test_http.sh
# The provider client over the glue, against vtune-sim.
check_PROGRAMS += tests/integration/test_http_provider
tests_integration_test_http_provider_SOURCES = tests/integration/test_http_provider.c
tests_integration_test_http_provider_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JANSSON_CFLAGS)
tests_integration_test_http_provider_LDADD = $(VT_LIBS)
TESTS += tests/integration/test_http_sim.sh
EXTRA_DIST += tests/integration/test_http_sim.sh
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test_http
TESTS += tests/unit/test_http
tests_unit_test_http_SOURCES = tests/unit/test_http.c
tests_unit_test_http_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_http_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
check_PROGRAMS += tests/unit/test_wakeup
TESTS += tests/unit/test_wakeup
tests_unit_test_wakeup_SOURCES = tests/unit/test_wakeup.c
tests_unit_test_wakeup_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_wakeup_LDADD = $(VT_LIBS) $(CMOCKA_LIBS)
endif

sbin_PROGRAMS += vtuned
vtuned_SOURCES = daemon/vtuned.c daemon/vtuned.h daemon/ctl.c daemon/ctl.h \
	daemon/notify.c daemon/notify.h daemon/methods_status.c daemon/methods_dataset.c \
	daemon/task.c daemon/task.h daemon/lookup.c daemon/lookup.h daemon/methods_backdoor.c daemon/providers.c \
	daemon/providers.h daemon/jobs.c daemon/jobs.h daemon/verifier.c daemon/verifier.h \
	daemon/methods_audit.c daemon/reload.c daemon/outbox.c daemon/outbox.h daemon/signing.c \
	daemon/signing.h
# The coverage test's calls (its own line, so merges leave the list above alone).
vtuned_SOURCES += daemon/covrun.c daemon/covrun.h
# p_luck and the screen of job submit (its own line, likewise).
vtuned_SOURCES += daemon/luck.c daemon/luck.h
# The base-model perplexity attack of job submit (issue 12 item 3).
vtuned_SOURCES += daemon/ppl.c daemon/ppl.h
vtuned_CFLAGS = $(AM_CFLAGS) $(UV_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(SYSTEMD_CFLAGS)
vtuned_LDADD = $(VT_LIBS)
