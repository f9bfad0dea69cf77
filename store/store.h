/*
 * store.h — vtuned's SQLite state: the only module that contains SQL.
 *
 * One connection, used from the loop thread only (the "one writer lane"):
 * every call here is a short statement or transaction; heavy work (reading,
 * hashing and copying dataset bytes) happens in the thread pool before the
 * row is written.  Opened with WAL, busy_timeout, foreign_keys=ON and
 * synchronous=FULL; write transactions are BEGIN IMMEDIATE.  Statements are
 * prepared once at open and reused.  Schema versions live in
 * PRAGMA user_version and are migrated in one transaction at open; a
 * database written by a newer vtuned is refused.
 *
 * The database file is created 0600 inside a 0700 state directory: it holds
 * the backdoor secrets.
 *
 * Errors: functions return 0 (or a positive count/id) on success and a
 * negative errno-style code on failure (-ENOENT not found, -EEXIST name
 * taken, -EIO SQLite error); store_errmsg() gives the last SQLite message.
 */
#ifndef VT_STORE_H
#define VT_STORE_H

#include <stdint.h>
#include <stddef.h>

#define STORE_SCHEMA_VERSION_CURRENT store_schema_version()

struct store;

/* Opens (creating if needed) path.  Returns 0 and *out, or -1 with *err an
 * owned one-line message (e.g. "database /x/vtuned.db is schema version 7,
 * newer than this vtuned understands (3): upgrade vtuned").  Caller frees. */
int store_open(const char *path, struct store **out, char **err);
void store_close(struct store *s);
/* Schema version this build writes. */
int store_schema_version(void);
/* Last SQLite error text; borrowed, valid until the next call. */
const char *store_errmsg(struct store *s);

/* Dataset formats (DESIGN §5). */
enum dataset_format { DS_FORMAT_CHAT = 1, DS_FORMAT_PROMPT = 2, DS_FORMAT_INSTRUCTION = 3 };
const char *dataset_format_name(enum dataset_format f);
/* "chat" | "prompt" | "instruction" -> format; returns 0 or -EINVAL. */
int dataset_format_parse(const char *s, enum dataset_format *out);

struct store_dataset {
    int64_t id;
    char *name;
    enum dataset_format format;
    int64_t n_examples;
    int64_t n_bytes;
    char sha256[65];
    char *path;          /* content-addressed file under state_dir */
    char *source;        /* original path given by the user (informational) */
    int64_t created_at;  /* unix seconds */
};
void store_dataset_clear(struct store_dataset *d); /* frees owned members */

/* Inserts a dataset row (one transaction).  d->id and d->created_at are
 * set on success.  -EEXIST when the name is taken. */
int store_dataset_insert(struct store *s, struct store_dataset *d);
/* Looks up by numeric id (decimal string) or by name.  Fills *out (owned
 * members; clear with store_dataset_clear).  -ENOENT when absent. */
int store_dataset_get(struct store *s, const char *id_or_name, struct store_dataset *out);
/* All datasets, ordered by id.  *out is an owned array of *n entries; free
 * with store_dataset_list_free. */
int store_dataset_list(struct store *s, struct store_dataset **out, size_t *n);
void store_dataset_list_free(struct store_dataset *v, size_t n);
/* Deletes a dataset row.  -ENOENT absent; -EBUSY when backdoors or jobs
 * refer to it.  *path_out (owned, may be NULL) receives the file path when
 * no other row still refers to the same content, so the caller can unlink. */
int store_dataset_delete(struct store *s, int64_t id, char **path_out);
/* Whether any row refers to this path: a dataset's content file or a
 * backdoor's built D u D' file (for orphan cleanup).  Returns 1 (in use),
 * 0 (not referenced) or a negative errno. */
int store_dataset_path_in_use(struct store *s, const char *path);

/* Counts for `status`. */
struct store_counts {
    int64_t datasets, backdoors, jobs, jobs_active, verifications, audits, schedules;
};
int store_counts(struct store *s, struct store_counts *out);

#endif
