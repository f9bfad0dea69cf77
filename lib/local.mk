# lib/: the shared base every folder may use and that uses nothing of
# theirs: logging, utilities, the domain enums, HTTP messages as plain data.
libvtune_a_SOURCES += lib/log.c lib/log.h lib/util.c lib/util.h lib/types.c lib/types.h \
	lib/http_msg.c lib/http_msg.h lib/fsio.c lib/fsio.h
