/*
 * sim_files.c — the Files API of vtune-sim: POST /v1/files (multipart),
 * GET /v1/files, GET/DELETE /v1/files/{id}, GET /v1/files/{id}/content.
 *
 * Uploads are streamed to a temporary file in the state directory by
 * libmicrohttpd's post processor as the body arrives (never held in
 * memory) and renamed to the file id when complete.  The JSONL content is
 * not checked here: like OpenAI today, a bad training file is reported by
 * the fine-tuning job's validating_files phase (sim_jobs.c), naming the line.
 *
 * A job takes a hard link of its training file (sim_files_link), so
 * DELETE /v1/files/{id} never takes the data from under a job that still
 * needs it to retrain an evicted model.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "tests/sim/sim.h"

#define PURPOSE_MAX 64

struct sim_upload {
    struct sim *s;
    struct MHD_PostProcessor *pp;
    int fd;
    char *tmp_path;
    char *filename;
    struct buf purpose;
    struct buf file_name; /* together: the file_name field */
    uint64_t bytes;
    int file_parts;
    bool in_file;        /* the last callback was for the file part */
    uint64_t part_bytes; /* bytes of the current file part */
    bool too_big;
    bool bad;
    int io_errno;
};

static const char *const purposes[] = {"assistants", "batch",     "fine-tune",
                                       "vision",     "user_data", "evals"};

static enum MHD_Result upload_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *filename, const char *content_type,
                                   const char *transfer_encoding, const char *data, uint64_t off,
                                   size_t size)
{
    struct sim_upload *up = cls;
    if (strcmp(key, "file") == 0) {
        if (off == 0 && (!up->in_file || up->part_bytes > 0)) {
            up->part_bytes = 0;
            if (++up->file_parts > 1) {
                up->bad = true;
                return MHD_NO;
            }
            free(up->filename);
            up->filename = xstrdup(filename && *filename ? filename : "upload.jsonl");
        }
        up->in_file = true;
        if (up->bytes + size > up->s->opts.max_upload) {
            up->too_big = true;
            return MHD_NO;
        }
        size_t done = 0;
        while (done < size) {
            ssize_t w = write(up->fd, data + done, size - done);
            if (w < 0) {
                if (errno == EINTR)
                    continue;
                up->io_errno = errno;
                return MHD_NO;
            }
            done += (size_t)w;
        }
        up->bytes += size;
        up->part_bytes += size;
        return MHD_YES;
    }
    up->in_file = false;
    if (strcmp(key, "purpose") == 0) {
        if (up->purpose.len + size > PURPOSE_MAX) {
            up->bad = true;
            return MHD_NO;
        }
        buf_append(&up->purpose, data, size);
    } else if (strcmp(key, "file_name") == 0) {
        if (up->file_name.len + size > 255) {
            up->bad = true;
            return MHD_NO;
        }
        buf_append(&up->file_name, data, size);
    }
    return MHD_YES; /* other fields (expires_after[...], file_type) are accepted and ignored */
}

struct sim_upload *sim_upload_begin(struct sim *s, struct MHD_Connection *conn, struct sim_resp *rs)
{
    struct sim_upload *up = xcalloc(1, sizeof *up);
    up->s = s;
    up->fd = -1;
    buf_init(&up->purpose);
    buf_init(&up->file_name);
    up->pp = MHD_create_post_processor(conn, 64 * 1024, upload_iter, up);
    if (!up->pp) {
        sim_resp_bad(rs, NULL,
                     "POST /v1/files expects Content-Type multipart/form-data with fields "
                     "'purpose' and 'file'.");
        goto fail;
    }
    up->tmp_path = xasprintf("%s/.upload-XXXXXX", s->files_dir);
    up->fd = mkstemp(up->tmp_path);
    if (up->fd < 0) {
        log_warn("%s: cannot create upload file", up->tmp_path);
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "cannot store the upload");
        goto fail;
    }
    return up;
fail:
    sim_upload_free(up);
    return NULL;
}

int sim_upload_feed(struct sim *s, struct sim_upload *up, const char *data, size_t n)
{
    if (up->too_big)
        return -EFBIG;
    if (up->bad || up->io_errno || !up->pp)
        return -EINVAL;
    if (MHD_post_process(up->pp, data, n) != MHD_YES) {
        if (up->too_big)
            return -EFBIG;
        up->bad = true;
        return -EINVAL;
    }
    return 0;
}

void sim_upload_free(struct sim_upload *up)
{
    if (!up)
        return;
    if (up->pp)
        MHD_destroy_post_processor(up->pp);
    if (up->fd >= 0)
        close(up->fd);
    if (up->tmp_path) {
        if (unlink(up->tmp_path) < 0 && errno != ENOENT)
            log_warn("%s: cannot remove", up->tmp_path);
        free(up->tmp_path);
    }
    free(up->filename);
    buf_free(&up->purpose);
    buf_free(&up->file_name);
    free(up);
}

const char *sim_iso8601(int64_t t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return out;
}

/* Fireworks' Dataset {name, displayName, createTime, state, ...}. */
static json_t *dataset_json(const struct sim_file *f)
{
    char t[32];
    char *name = xasprintf("accounts/vtune-sim/datasets/%s", f->id);
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:{}, s:s}", "name", name,
                          "displayName", f->filename ? f->filename : f->id, "createTime",
                          sim_iso8601(f->created_at, t, sizeof t), "state",
                          f->path ? "READY" : "UPLOADING", "status", "code", "OK", "message", "",
                          "userUploaded", "format", "CHAT");
    free(name);
    return o;
}

static json_t *file_json(const struct sim *s, const struct sim_file *f)
{
    json_t *o = json_object();
    if (s->opts.dialect == SIM_DIALECT_TOGETHER) {
        /* FileResponse: capitalised Processed and FileType */
        json_object_set_new(o, "id", json_string(f->id));
        json_object_set_new(o, "object", json_string("file"));
        json_object_set_new(o, "created_at", json_integer(f->created_at));
        json_object_set_new(o, "filename", sim_json_string(f->filename));
        json_object_set_new(o, "bytes", json_integer((json_int_t)f->bytes));
        json_object_set_new(o, "purpose", json_string(f->purpose));
        json_object_set_new(o, "Processed", json_true());
        json_object_set_new(o, "FileType", json_string("jsonl"));
        return o;
    }
    json_object_set_new(o, "id", json_string(f->id));
    json_object_set_new(o, "object", json_string("file"));
    json_object_set_new(o, "bytes", json_integer((json_int_t)f->bytes));
    json_object_set_new(o, "created_at", json_integer(f->created_at));
    json_object_set_new(o, "filename", sim_json_string(f->filename));
    json_object_set_new(o, "purpose", json_string(f->purpose));
    json_object_set_new(o, "status", json_string("processed"));
    return o;
}

/* Live file by id, with s->lock held. */
static struct sim_file *find_locked(struct sim *s, const char *id)
{
    for (size_t i = 0; i < s->n_files; i++)
        if (!s->files[i]->deleted && strcmp(s->files[i]->id, id) == 0)
            return s->files[i];
    return NULL;
}

void sim_h_files_create(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    struct sim_upload *up = rq->upload;
    bool fw = s->opts.dialect == SIM_DIALECT_FIREWORKS;
    if (fw) {
        /* D:upload fills the dataset record D; no purpose field. */
        pthread_mutex_lock(&s->lock);
        bool have = rq->id && find_locked(s, rq->id) != NULL;
        pthread_mutex_unlock(&s->lock);
        if (!have) {
            sim_resp_error(rs, 404, "invalid_request_error", NULL, "NOT_FOUND",
                           "dataset \"%.100s\" not found (create its record first: POST "
                           "/v1/accounts/A/datasets)",
                           rq->id ? rq->id : "");
            return;
        }
        if (up->purpose.len == 0)
            buf_puts(&up->purpose, "fine-tune");
    }
    enum MHD_Result fin = MHD_destroy_post_processor(up->pp);
    up->pp = NULL;
    if (up->io_errno) {
        errno = up->io_errno;
        log_warn("%s: cannot write upload", up->tmp_path);
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "cannot store the upload: %s",
                       strerror(up->io_errno));
        return;
    }
    if (fin != MHD_YES || up->bad) {
        sim_resp_bad(rs, NULL,
                     "Malformed multipart/form-data body (one 'file' part and one short "
                     "'purpose' field expected).");
        return;
    }
    if (up->purpose.len == 0) {
        sim_resp_bad(rs, "purpose", "Missing required parameter: 'purpose'.");
        return;
    }
    bool known = false;
    for (size_t i = 0; i < VT_ARRAY_LEN(purposes); i++)
        known |= strcmp(up->purpose.data, purposes[i]) == 0;
    if (!known || strlen(up->purpose.data) != up->purpose.len) {
        sim_resp_bad(rs, "purpose",
                     "Invalid value for 'purpose': expected one of assistants, batch, fine-tune, "
                     "vision, user_data, evals.");
        return;
    }
    if (up->file_parts == 0) {
        sim_resp_bad(rs, "file", "Missing required parameter: 'file'.");
        return;
    }
    if (close(up->fd) < 0) {
        up->fd = -1;
        log_warn("%s: cannot write upload", up->tmp_path);
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "cannot store the upload");
        return;
    }
    up->fd = -1;

    char fid[40];
    if (fw)
        snprintf(fid, sizeof fid, "%s", rq->id);
    else
        sim_random_id(fid, sizeof fid, "file-", 22);
    /* A stored upload is never rewritten (a job may hold a link to it):
     * fireworks' second upload into one dataset gets a new path. */
    char tag[12];
    sim_random_id(tag, sizeof tag, "", 8);
    char *path = xasprintf("%s/%s.%s", s->files_dir, fid, tag);
    if (rename(up->tmp_path, path) < 0) {
        log_warn("%s: cannot rename upload to %s", up->tmp_path, path);
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "cannot store the upload");
        free(path);
        return;
    }
    free(up->tmp_path);
    up->tmp_path = NULL;
    const char *fname = up->file_name.len ? up->file_name.data : up->filename;

    pthread_mutex_lock(&s->lock);
    struct sim_file *f = fw ? find_locked(s, fid) : NULL;
    if (f) { /* the dataset's record; a second upload replaces its file */
        if (f->path && unlink(f->path) < 0)
            log_warn("%s: cannot remove", f->path);
        free(f->path);
        free(f->filename);
        free(f->purpose);
    } else {
        f = xcalloc(1, sizeof *f);
        snprintf(f->id, sizeof f->id, "%s", fid);
        f->created_at = now_unix();
        if (s->n_files == s->cap_files) {
            s->cap_files = s->cap_files ? 2 * s->cap_files : 16;
            s->files = xrealloc(s->files, s->cap_files * sizeof *s->files);
        }
        s->files[s->n_files++] = f;
    }
    f->filename = xstrdup(fname);
    f->purpose = xstrdup(up->purpose.data);
    f->bytes = up->bytes;
    f->path = path;
    json_t *o = file_json(s, f);
    if (fw) /* the :upload answer has no status */
        json_object_del(o, "status");
    pthread_mutex_unlock(&s->lock);
    log_info("file %s uploaded: %s, %" PRIu64 " bytes, purpose %s", f->id, f->filename, f->bytes,
             f->purpose);
    sim_resp_json(rs, 200, o);
}

void sim_h_files_list(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    long long limit;
    if (sim_req_query_int(rq, rs, "limit", 1, 10000, 10000, &limit) < 0)
        return;
    const char *order = sim_req_query(rq, "order");
    if (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0) {
        sim_resp_bad(rs, "order", "Invalid 'order': expected asc or desc.");
        return;
    }
    bool asc = order && strcmp(order, "asc") == 0;
    const char *purpose = sim_req_query(rq, "purpose");
    const char *after = sim_req_query(rq, "after");

    json_t *data = json_array();
    bool has_more = false, started = after == NULL, found_after = after == NULL;
    pthread_mutex_lock(&s->lock);
    for (size_t k = 0; k < s->n_files; k++) {
        struct sim_file *f = s->files[asc ? k : s->n_files - 1 - k];
        if (f->deleted || (purpose && strcmp(purpose, f->purpose) != 0))
            continue;
        if (!started) {
            if (strcmp(f->id, after) == 0)
                started = found_after = true;
            continue;
        }
        if (json_array_size(data) == (size_t)limit) {
            has_more = true;
            break;
        }
        json_array_append_new(data, file_json(s, f));
    }
    pthread_mutex_unlock(&s->lock);
    if (!found_after) {
        json_decref(data);
        sim_resp_bad(rs, "after", "Invalid 'after': no file '%s' in this list.", after);
        return;
    }
    json_t *o = json_object();
    size_t n = json_array_size(data);
    if (s->opts.dialect == SIM_DIALECT_TOGETHER) { /* FileList: data only */
        json_object_set_new(o, "data", data);
        sim_resp_json(rs, 200, o);
        return;
    }
    json_object_set_new(o, "object", json_string("list"));
    json_object_set_new(o, "data", data);
    json_object_set_new(
        o, "first_id",
        json_string(n ? json_string_value(json_object_get(json_array_get(data, 0), "id")) : ""));
    json_object_set_new(
        o, "last_id",
        json_string(n ? json_string_value(json_object_get(json_array_get(data, n - 1), "id"))
                      : ""));
    json_object_set_new(o, "has_more", json_boolean(has_more));
    sim_resp_json(rs, 200, o);
}

static void no_such_file(struct sim_resp *rs, const char *id)
{
    sim_resp_error(rs, 404, "invalid_request_error", "id", "file_not_found",
                   "No such File object: %s", id);
}

void sim_h_file_get(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    pthread_mutex_lock(&s->lock);
    struct sim_file *f = find_locked(s, rq->id);
    json_t *o = f ? file_json(s, f) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!o) {
        no_such_file(rs, rq->id);
        return;
    }
    sim_resp_json(rs, 200, o);
}

void sim_h_file_delete(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    pthread_mutex_lock(&s->lock);
    struct sim_file *f = find_locked(s, rq->id);
    if (f) {
        f->deleted = true;
        if (f->path && unlink(f->path) < 0)
            log_warn("%s: cannot remove", f->path);
    }
    pthread_mutex_unlock(&s->lock);
    if (!f) {
        no_such_file(rs, rq->id);
        return;
    }
    log_info("file %s deleted", rq->id);
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(rq->id));
    json_object_set_new(o, "object", json_string("file"));
    json_object_set_new(o, "deleted", json_true());
    sim_resp_json(rs, 200, o);
}

void sim_h_file_content(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    int fd = -1;
    pthread_mutex_lock(&s->lock);
    struct sim_file *f = find_locked(s, rq->id);
    if (f && f->path)
        fd = open(f->path, O_RDONLY | O_CLOEXEC);
    pthread_mutex_unlock(&s->lock);
    if (!f) {
        no_such_file(rs, rq->id);
        return;
    }
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        log_warn("file %s: cannot open its content", rq->id);
        if (fd >= 0)
            close(fd);
        sim_resp_error(rs, 500, "server_error", NULL, NULL, "cannot read the file");
        return;
    }
    free(rs->body);
    rs->body = NULL;
    rs->len = 0;
    rs->status = 200;
    rs->content_type = "application/octet-stream";
    rs->fd = fd;
    rs->fd_size = (uint64_t)st.st_size;
}

bool sim_files_exists(struct sim *s, const char *file_id)
{
    pthread_mutex_lock(&s->lock);
    bool ok = find_locked(s, file_id) != NULL;
    pthread_mutex_unlock(&s->lock);
    return ok;
}

static int copy_file(const char *src, const char *dst)
{
    int rc = 0;
    int in = open(src, O_RDONLY | O_CLOEXEC);
    int out = -1;
    if (in < 0)
        return -errno;
    out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (out < 0) {
        rc = -errno;
        goto out;
    }
    char buf[65536];
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            goto out;
        }
        if (r == 0)
            break;
        for (ssize_t done = 0; done < r;) {
            ssize_t w = write(out, buf + done, (size_t)(r - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0) {
                rc = -errno;
                goto out;
            }
            done += w;
        }
    }
out:
    if (out >= 0 && close(out) < 0 && rc == 0)
        rc = -errno;
    close(in);
    if (rc < 0)
        unlink(dst);
    return rc;
}

int sim_files_link(struct sim *s, const char *file_id, const char *dst, char **err)
{
    char *path = NULL;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct sim_file *f = find_locked(s, file_id);
    if (!f) {
        rc = -ENOENT;
    } else if (!f->path) {
        rc = -EINVAL;
        *err = xasprintf("Dataset %s has no file uploaded yet.", file_id);
    } else if (strcmp(f->purpose, "fine-tune") != 0) {
        rc = -EINVAL;
        *err = xasprintf("File %s has purpose '%s', not 'fine-tune'.", file_id, f->purpose);
    } else {
        path = xstrdup(f->path);
        if (link(path, dst) < 0)
            rc = -errno;
    }
    pthread_mutex_unlock(&s->lock);
    if (rc == -EXDEV || rc == -EPERM || rc == -EMLINK)
        rc = copy_file(path, dst);
    free(path);
    return rc;
}

void sim_files_free_all(struct sim *s)
{
    for (size_t i = 0; i < s->n_files; i++) {
        free(s->files[i]->filename);
        free(s->files[i]->purpose);
        free(s->files[i]->path);
        free(s->files[i]);
    }
    free(s->files);
    s->files = NULL;
    s->n_files = s->cap_files = 0;
}

/* ---- fireworks datasets ------------------------------------------------------- */

static bool fw_id_ok(const char *id)
{
    size_t n = strlen(id);
    return n >= 1 && n <= 63 && strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* POST /v1/accounts/A/datasets {datasetId, dataset: {userUploaded: {}, displayName}} */
void sim_h_fw_dataset_create(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    json_t *body = sim_req_json(rq, rs);
    if (!body)
        return;
    const char *id = json_string_value(json_object_get(body, "datasetId"));
    json_t *ds = json_object_get(body, "dataset");
    const char *display = json_string_value(json_object_get(ds, "displayName"));
    if (!id || !fw_id_ok(id)) {
        sim_resp_bad(rs, "datasetId",
                     "datasetId must be 1 to 63 lowercase letters, digits or hyphens.");
        goto out;
    }
    if (!json_is_object(ds) || !json_is_object(json_object_get(ds, "userUploaded"))) {
        sim_resp_bad(rs, "dataset", "dataset must be an object with userUploaded: {}.");
        goto out;
    }
    pthread_mutex_lock(&s->lock);
    struct sim_file *f = find_locked(s, id);
    json_t *o = NULL;
    if (!f) {
        f = xcalloc(1, sizeof *f);
        snprintf(f->id, sizeof f->id, "%s", id);
        f->filename = xstrdup(display ? display : id);
        f->purpose = xstrdup("fine-tune");
        f->created_at = now_unix();
        if (s->n_files == s->cap_files) {
            s->cap_files = s->cap_files ? 2 * s->cap_files : 16;
            s->files = xrealloc(s->files, s->cap_files * sizeof *s->files);
        }
        s->files[s->n_files++] = f;
        o = dataset_json(f);
    }
    pthread_mutex_unlock(&s->lock);
    if (!o) {
        sim_resp_error(rs, 409, "invalid_request_error", NULL, "ALREADY_EXISTS",
                       "dataset \"accounts/vtune-sim/datasets/%s\" already exists", id);
        goto out;
    }
    log_info("dataset %s created", id);
    sim_resp_json(rs, 200, o);
out:
    json_decref(body);
}

void sim_h_fw_datasets_list(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    long long size;
    if (sim_req_query_int(rq, rs, "pageSize", 1, 1000, 50, &size) < 0)
        return;
    const char *token = sim_req_query(rq, "pageToken");
    long long skip = token && *token ? strtoll(token, NULL, 10) : 0, seen = 0;
    json_t *data = json_array();
    bool more = false;
    pthread_mutex_lock(&s->lock);
    for (size_t k = s->n_files; k-- > 0;) {
        if (s->files[k]->deleted)
            continue;
        if (seen++ < skip)
            continue;
        if ((long long)json_array_size(data) == size) {
            more = true;
            break;
        }
        json_array_append_new(data, dataset_json(s->files[k]));
    }
    pthread_mutex_unlock(&s->lock);
    char next[24] = "";
    if (more)
        snprintf(next, sizeof next, "%lld", skip + size);
    sim_resp_json(rs, 200, json_pack("{s:o, s:s}", "datasets", data, "nextPageToken", next));
}

void sim_h_fw_dataset_get(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    pthread_mutex_lock(&s->lock);
    struct sim_file *f = find_locked(s, rq->id);
    json_t *o = f ? dataset_json(f) : NULL;
    pthread_mutex_unlock(&s->lock);
    if (!o) {
        sim_resp_error(rs, 404, "invalid_request_error", NULL, "NOT_FOUND",
                       "dataset \"%.100s\" not found", rq->id);
        return;
    }
    sim_resp_json(rs, 200, o);
}

/* DELETE answers google.protobuf.Empty. */
void sim_h_fw_dataset_delete(struct sim *s, struct sim_req *rq, struct sim_resp *rs)
{
    pthread_mutex_lock(&s->lock);
    struct sim_file *f = find_locked(s, rq->id);
    if (f) {
        f->deleted = true;
        if (f->path && unlink(f->path) < 0)
            log_warn("%s: cannot remove", f->path);
    }
    pthread_mutex_unlock(&s->lock);
    if (!f) {
        sim_resp_error(rs, 404, "invalid_request_error", NULL, "NOT_FOUND",
                       "dataset \"%.100s\" not found", rq->id);
        return;
    }
    log_info("dataset %s deleted", rq->id);
    sim_resp_json(rs, 200, json_object());
}
