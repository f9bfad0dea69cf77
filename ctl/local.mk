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
