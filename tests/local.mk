# tests/: integration tests (real binaries on loopback, see tests/integration/lib.sh)
# and benchmarks (tests/bench/: run by hand, see each script's header; never in TESTS).
EXTRA_DIST += tests/unit/provider_fixture.h tests/unit/tmpdir_fixture.h
EXTRA_DIST += tests/bench/bench_jobs.sh tests/bench/ctl_load.py tests/bench/calibrate.sh
TESTS += tests/integration/test_daemon.sh tests/integration/test_protocol.sh \
	tests/integration/test_dataset.sh tests/integration/test_crash_import.sh
EXTRA_DIST += tests/integration/lib.sh tests/integration/rpc.py tests/integration/commitment.py \
	tests/integration/notify_listener.py tests/integration/test_daemon.sh \
	tests/integration/test_protocol.sh tests/integration/test_dataset.sh \
	tests/integration/test_crash_import.sh tests/integration/test_systemd_unit.sh \
	tests/integration/test_backdoor.sh tests/integration/test_jobs.sh tests/integration/test_dialects.sh \
	tests/integration/test_job_crash.sh tests/integration/test_job_faults.sh \
	tests/integration/test_verify.sh tests/integration/webhook_listener.py \
	tests/integration/test_demo.sh tests/integration/test_fastpaths.sh \
	tests/bootstrap.sh tests/demo.sh tests/data/sample-chat.jsonl
TESTS += tests/integration/test_systemd_unit.sh tests/integration/test_backdoor.sh \
	tests/integration/test_jobs.sh tests/integration/test_dialects.sh tests/integration/test_job_crash.sh tests/integration/test_job_faults.sh \
	tests/integration/test_verify.sh tests/integration/test_demo.sh tests/integration/test_fastpaths.sh
# The LLM backdoor generator against vtune-sim (template, M1, -9999, faults, shutdown).
TESTS += tests/integration/test_backdoor_llm.sh
EXTRA_DIST += tests/integration/test_backdoor_llm.sh
# The ngram generator (the default): phrases in D's words, exact p_M2, seeds, errors.
TESTS += tests/integration/test_backdoor_ngram.sh
EXTRA_DIST += tests/integration/test_backdoor_ngram.sh
# Redone uploads delete their orphaned earlier copies (crash, failed attempt, resend).
TESTS += tests/integration/test_job_orphans.sh
EXTRA_DIST += tests/integration/test_job_orphans.sh
TESTS += tests/integration/test_job_cleanup.sh
EXTRA_DIST += tests/integration/test_job_cleanup.sh
# A verification cut by SIGKILL resumes from its recorded trials (issue 13).
TESTS += tests/integration/test_verify_resume.sh
EXTRA_DIST += tests/integration/test_verify_resume.sh
# vtunectl's command line (help, usage errors, completion) from its command table.
TESTS += tests/integration/test_cli.sh
EXTRA_DIST += tests/integration/test_cli.sh
# The man pages and README against vtunectl's command table and ctl/protocol.h.
TESTS += tests/integration/test_docs.sh
EXTRA_DIST += tests/integration/test_docs.sh tests/integration/check_docs.py
# The cheating providers' blind attack on a D u D' built by today's daemon,
# and the wrapper / always-s / --min-repeats behaviours over the API.
TESTS += tests/integration/test_attack.sh
EXTRA_DIST += tests/integration/test_attack.sh
# Cheaters (wrapper, marked-only, always-s) must not be verified, the honest
# provider must: the coverage test on the held-out split and the required
# controls (issue 11) make the difference.
TESTS += tests/integration/test_cheaters.sh
# The coverage test: honest verified with p_cov < alpha_cov, lazy p_cov ~ 1,
# --holdout 0 / --coverage 0 inconclusive unless require_coverage is false,
# the audit record's coverage fields, audit show, a scheduled run.
TESTS += tests/integration/test_coverage.sh
EXTRA_DIST += tests/integration/test_coverage.sh
# The p_luck screen of job submit (issue 11).
TESTS += tests/integration/test_luck.sh
EXTRA_DIST += tests/integration/test_luck.sh
# The calibration, small and seeded: tests/bench/calibrate.sh with 3 runs
# per behaviour; honest always verified, the null and cheating providers
# never, no significant p over null runs.
TESTS += tests/integration/test_calibration.sh
EXTRA_DIST += tests/integration/test_calibration.sh
EXTRA_DIST += tests/integration/test_cheaters.sh
# ENOSPC and EIO through the fault seam (VTUNE_FAULT) at import, build,
# export and commit: one error line, no row, no half file, still serving.
TESTS += tests/integration/test_fs_faults.sh
EXTRA_DIST += tests/integration/test_fs_faults.sh
# The self-audit: backdoor create's verdict, backdoor audit, show, and job submit's refusal.
TESTS += tests/integration/test_selfaudit.sh
EXTRA_DIST += tests/integration/test_selfaudit.sh
TESTS += tests/integration/test_ppl_attack.sh
EXTRA_DIST += tests/integration/test_ppl_attack.sh
# Marked rows that do not stand out (issue 12 item 6): the attack, the
# self-audit and honest learning on 20 seeded builds (tests/sim/mark_check).
TESTS += tests/integration/test_marks.sh
EXTRA_DIST += tests/integration/test_marks.sh
TESTS += tests/integration/test_coverage_valid.sh
EXTRA_DIST += tests/integration/test_coverage_valid.sh

# issue 13: the daemon opens no path a client names (descriptors over the socket)
TESTS += tests/integration/test_fdpass.sh
EXTRA_DIST += tests/integration/test_fdpass.sh tests/integration/fdrpc.py
# issue 13: the socket's group allowed by default, in and out of a user namespace
TESTS += tests/integration/test_access.sh
EXTRA_DIST += tests/integration/test_access.sh
# A user taken off the access list by SIGHUP loses the connections it holds.
TESTS += tests/integration/test_access_revoke.sh
EXTRA_DIST += tests/integration/test_access_revoke.sh
# A member of the socket's group is let in however many groups it is in.
TESTS += tests/integration/test_access_groups.sh
EXTRA_DIST += tests/integration/test_access_groups.sh
# Signed evidence: the key, commitments, verdict attestations (checked by openssl too).
TESTS += tests/integration/test_sign.sh
EXTRA_DIST += tests/integration/test_sign.sh
# The signed audit chain under an attacker who writes the database without the key.
TESTS += tests/integration/test_audit_sign.sh
EXTRA_DIST += tests/integration/test_audit_sign.sh
# Issue 13 (operations): audit verify with a malformed head.
TESTS += tests/integration/test_audit_head.sh
EXTRA_DIST += tests/integration/test_audit_head.sh
# Issue 13 (operations): one daemon per state directory.
TESTS += tests/integration/test_state_lock.sh
EXTRA_DIST += tests/integration/test_state_lock.sh
TESTS += tests/integration/test_ctl_thread.sh
TESTS += tests/integration/test_ctl_sched.sh
EXTRA_DIST += tests/integration/test_ctl_thread.sh
EXTRA_DIST += tests/integration/test_ctl_sched.sh
TESTS += tests/integration/test_ctl_reads.sh
EXTRA_DIST += tests/integration/test_ctl_reads.sh
TESTS += tests/integration/test_provider_text.sh
EXTRA_DIST += tests/integration/test_provider_text.sh
# Issue 13 (operations): SIGHUP applies what it can and names what needs a restart.
TESTS += tests/integration/test_reload.sh
EXTRA_DIST += tests/integration/test_reload.sh
# Issue 13 (operations): bounded control connections.
TESTS += tests/integration/test_conn_limits.sh
EXTRA_DIST += tests/integration/test_conn_limits.sh tests/integration/conn_flood.py
# Every control request is answered, also where a message cuts a client's UTF-8 text.
TESTS += tests/integration/test_ctl_utf8.sh
EXTRA_DIST += tests/integration/test_ctl_utf8.sh
# Replies a client leaves unread count against control.max_buffered.
TESTS += tests/integration/test_conn_unread.sh
EXTRA_DIST += tests/integration/test_conn_unread.sh
# Descriptors clients send cannot take the daemon's open-file limit.
TESTS += tests/integration/test_conn_fds.sh
EXTRA_DIST += tests/integration/test_conn_fds.sh
# Requests waiting for the main loop count against control.max_buffered.
TESTS += tests/integration/test_conn_inflight.sh
EXTRA_DIST += tests/integration/test_conn_inflight.sh
# Issue 13 (operations): vtunectl backup and the restore of vtuned(8).
TESTS += tests/integration/test_backup.sh
EXTRA_DIST += tests/integration/test_backup.sh
# Installation: configured directories reach the installed files; the Debian package.
TESTS += tests/integration/test_install.sh tests/integration/test_deb.sh
EXTRA_DIST += tests/integration/test_install.sh tests/integration/test_deb.sh
# Issue 16: progress every interval on every wait (upload, verification, the
# llm generator), checked by its own counters and a bound on silence.
TESTS += tests/integration/test_progress.sh
EXTRA_DIST += tests/integration/test_progress.sh tests/integration/progress_check.py
# Issue 16: structured logs in journald's native protocol (VTUNE_JOB, …).
TESTS += tests/integration/test_journal.sh
EXTRA_DIST += tests/integration/test_journal.sh tests/integration/journal_listener.py
# vtunectl --json: every command's output against its JSON Schema (ctl/schema/,
# ajv from tests/node), NDJSON --watch lines, errors as one object on stdout.
TESTS += tests/integration/test_json.sh
EXTRA_DIST += tests/integration/test_json.sh tests/node/ctl_schema_check.mjs
