/*
 * conf_int.h — what conf.c and conf_parse.c share and nobody else needs.
 *
 * conf.c owns the life cycle (defaults, reading the file, freeing, key
 * files); conf_parse.c turns YAML text into a struct conf and validates it.
 * The split keeps the schema — the part that changes — in one file of its
 * own, with no I/O beyond the readability checks of named files.
 */
#ifndef VT_CONF_INT_H
#define VT_CONF_INT_H

#include <stddef.h>

#include "conf/conf.h"

/* Largest config file conf_load() reads. */
#define CONF_MAX_FILE_BYTES (1024 * 1024)

/* Parses len bytes of YAML into c, which conf_defaults() prepared.  Returns
 * 0, or -1 with *err one owned line "NAME:LINE:COL: message".  On failure c
 * may hold part of the values: the caller frees it with conf_free(). */
int conf_parse_yaml(const char *name, const char *data, size_t len, struct conf *c, char **err);

/* The file an api_key_file setting names in practice:
 * $CREDENTIALS_DIRECTORY/<basename> when that variable is set and the file
 * exists there, else the setting itself.  Returns an owned path. */
char *conf_key_path(const char *api_key_file);

/* Fills p with the provider defaults (name, URLs and files NULL). */
void conf_provider_defaults(struct conf_provider *p);

#endif
