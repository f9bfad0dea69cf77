# ctl/: vtunectl, the control tool, and the control protocol's one header
# (ctl/protocol.h) that daemon/ serves.
bin_PROGRAMS += vtunectl
vtunectl_SOURCES = ctl/vtunectl.c ctl/vtunectl.h ctl/protocol.h ctl/cmdtab.c ctl/cmdtab.h ctl/cli_status.c ctl/cli_dataset.c \
	ctl/cli_backdoor.c ctl/cli_job.c ctl/cli_verify.c
vtunectl_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)
vtunectl_LDADD = $(VT_LIBS)
