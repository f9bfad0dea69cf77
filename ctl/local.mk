# ctl/: vtunectl, the control tool, and the control protocol's one header
# (ctl/protocol.h) that daemon/ serves.
bin_PROGRAMS += vtunectl
vtunectl_SOURCES = ctl/vtunectl.c ctl/vtunectl.h ctl/protocol.h ctl/cmdtab.c ctl/cmdtab.h ctl/cli_status.c ctl/cli_dataset.c \
	ctl/cli_backdoor.c ctl/cli_job.c ctl/cli_verify.c ctl/cli_sign.c
vtunectl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
vtunectl_LDADD = $(VT_LIBS)

# Bash completion: a script that asks vtunectl itself (vtunectl __complete),
# installed under bash-completion's directory with the command's name.
bashcompletion_DATA = ctl/bash-completion/vtunectl
EXTRA_DIST += ctl/vtunectl.bash-completion
CLEANFILES += ctl/bash-completion/vtunectl
ctl/bash-completion/vtunectl: $(srcdir)/ctl/vtunectl.bash-completion
	$(AM_V_GEN)$(MKDIR_P) ctl/bash-completion && cp $(srcdir)/ctl/vtunectl.bash-completion $@

# The JSON Schemas of vtunectl's --json output (vtunectl(1) JSON OUTPUT),
# installed for scripts to validate against; tests/integration/test_json.sh
# validates every command's output with them.  Under the package's data
# directory, not docdir: files there may be compressed (dh_compress) or
# left out of minimal installs, and scripts need these.
ctlschemadir = $(pkgdatadir)/schema
dist_ctlschema_DATA = ctl/schema/attest-verify.json ctl/schema/audit-attest.json ctl/schema/audit-export.json  \
	ctl/schema/audit-list.json ctl/schema/audit-show.json ctl/schema/audit-verify.json  \
	ctl/schema/backdoor-audit.json ctl/schema/backdoor-commit.json  \
	ctl/schema/backdoor-create.json ctl/schema/backdoor-list.json ctl/schema/backdoor-rm.json  \
	ctl/schema/backdoor-show.json ctl/schema/backup.json ctl/schema/dataset-add.json  \
	ctl/schema/dataset-export.json ctl/schema/dataset-list.json ctl/schema/dataset-rm.json  \
	ctl/schema/dataset-show.json ctl/schema/defs.json ctl/schema/error.json  \
	ctl/schema/job-cancel.json ctl/schema/job-list.json ctl/schema/job-register.json  \
	ctl/schema/job-resolve.json ctl/schema/job-show.json ctl/schema/job-submit.json  \
	ctl/schema/job-watch.json ctl/schema/key-show.json ctl/schema/schedule-add.json  \
	ctl/schema/schedule-list.json ctl/schema/schedule-rm.json ctl/schema/status.json  \
	ctl/schema/verify.json
