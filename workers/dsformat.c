/*
 * dsformat.c — validation and rewriting of dataset lines (see dsformat.h).
 *
 * Validation is strict and field-precise because an import is all or
 * nothing: the first bad line aborts it, and the user must be told exactly
 * which field of which line to fix.  Unknown extra keys are allowed (real
 * datasets carry ids and metadata) and are preserved by the builder.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "workers/dsformat.h"
#include "workers/jsonscan.h"

static int fail(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(char **err, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        char *s = NULL;
        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
            s = NULL;
        va_end(ap);
        *err = s ? s : xstrdup("invalid line");
    }
    return -1;
}

static const char *json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

/* A required string field of obj; on failure sets *err naming it. */
static int need_string(const json_t *obj, const char *key, const char *where, int allow_empty,
                       char **err)
{
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return fail(err, "%s%s: missing", where, key);
    if (!json_is_string(v))
        return fail(err, "%s%s: expected a string, got %s", where, key, json_kind(v));
    if (!allow_empty && json_string_length(v) == 0)
        return fail(err, "%s%s: must not be empty", where, key);
    return 0;
}

static int validate_chat(const json_t *root, char **err)
{
    const json_t *msgs = json_object_get(root, "messages");
    size_t n, i;
    int users = 0;
    if (!json_is_array(msgs))
        return fail(err, "messages: expected an array, got %s", json_kind(msgs));
    n = json_array_size(msgs);
    if (n < 2)
        return fail(err, "messages: needs at least a user and an assistant message");
    for (i = 0; i < n; i++) {
        const json_t *m = json_array_get(msgs, i);
        char where[48];
        snprintf(where, sizeof where, "messages[%zu].", i);
        if (!json_is_object(m))
            return fail(err, "messages[%zu]: expected an object, got %s", i, json_kind(m));
        if (need_string(m, "role", where, 0, err) < 0)
            return -1;
        const char *role = json_string_value(json_object_get(m, "role"));
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant"))
            return fail(err, "messages[%zu].role: expected system, user or assistant, got '%.32s'",
                        i, role);
        if (need_string(m, "content", where, strcmp(role, "system") == 0, err) < 0)
            return -1;
        if (strcmp(role, "user") == 0 && i + 1 < n)
            users++;
    }
    const char *last = json_string_value(json_object_get(json_array_get(msgs, n - 1), "role"));
    if (strcmp(last, "assistant") != 0)
        return fail(err, "messages[%zu].role: the last message must be the assistant's response",
                    n - 1);
    if (users == 0)
        return fail(err, "messages: no user message before the assistant's response");
    return 0;
}

static enum dataset_format detect(const json_t *root)
{
    if (json_object_get(root, "messages"))
        return DS_FORMAT_CHAT;
    if (json_object_get(root, "prompt") || json_object_get(root, "completion"))
        return DS_FORMAT_PROMPT;
    if (json_object_get(root, "instruction") || json_object_get(root, "output"))
        return DS_FORMAT_INSTRUCTION;
    return 0;
}

int ds_parse_line(const char *line, size_t len, enum dataset_format want,
                  enum dataset_format *fmt_out, json_t **root_out, char **err)
{
    json_error_t je;
    json_t *root;
    enum dataset_format fmt;
    int rc = -1;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return fail(err, "not valid JSON at column %d: %s", je.column, je.text);
    if (!json_is_object(root)) {
        fail(err, "expected a JSON object, got %s", json_kind(root));
        goto out;
    }
    fmt = detect(root);
    if (!fmt) {
        fail(err, "unknown format: expected \"messages\" (chat), \"prompt\"/\"completion\" or "
                  "\"instruction\"/\"output\"");
        goto out;
    }
    if (want && fmt != want) {
        fail(err, "looks like %s format, but the dataset is %s format", dataset_format_name(fmt),
             dataset_format_name(want));
        goto out;
    }
    switch (fmt) {
    case DS_FORMAT_CHAT:
        rc = validate_chat(root, err);
        break;
    case DS_FORMAT_PROMPT:
        rc = need_string(root, "prompt", "", 0, err);
        if (rc == 0)
            rc = need_string(root, "completion", "", 0, err);
        break;
    case DS_FORMAT_INSTRUCTION:
        rc = need_string(root, "instruction", "", 0, err);
        if (rc == 0 && json_object_get(root, "input"))
            rc = need_string(root, "input", "", 1, err);
        if (rc == 0)
            rc = need_string(root, "output", "", 0, err);
        break;
    }
    if (rc == 0) {
        *fmt_out = fmt;
        if (root_out) {
            *root_out = root;
            root = NULL;
        }
    }
out:
    json_decref(root);
    return rc;
}

/* Index of the final assistant message and of the last user message before it. */
static void chat_positions(const json_t *root, size_t *asst, size_t *user)
{
    const json_t *msgs = json_object_get(root, "messages");
    size_t n = json_array_size(msgs);
    *asst = n - 1;
    *user = 0;
    for (size_t i = n - 1; i-- > 0;) {
        const char *role = json_string_value(json_object_get(json_array_get(msgs, i), "role"));
        if (role && strcmp(role, "user") == 0) {
            *user = i;
            break;
        }
    }
}

static const char *str_of(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

char *ds_prompt_text(const json_t *root, enum dataset_format fmt)
{
    size_t a, u;
    switch (fmt) {
    case DS_FORMAT_CHAT:
        chat_positions(root, &a, &u);
        return xstrdup(str_of(json_array_get(json_object_get(root, "messages"), u), "content"));
    case DS_FORMAT_PROMPT:
        return xstrdup(str_of(root, "prompt"));
    case DS_FORMAT_INSTRUCTION: {
        const char *in = str_of(root, "input");
        if (*in)
            return xasprintf("%s\n\n%s", str_of(root, "instruction"), in);
        return xstrdup(str_of(root, "instruction"));
    }
    }
    return xstrdup("");
}

char *ds_response_text(const json_t *root, enum dataset_format fmt)
{
    size_t a, u;
    switch (fmt) {
    case DS_FORMAT_CHAT:
        chat_positions(root, &a, &u);
        return xstrdup(str_of(json_array_get(json_object_get(root, "messages"), a), "content"));
    case DS_FORMAT_PROMPT:
        return xstrdup(str_of(root, "completion"));
    case DS_FORMAT_INSTRUCTION:
        return xstrdup(str_of(root, "output"));
    }
    return xstrdup("");
}

json_t *ds_prompt_messages(const json_t *root, enum dataset_format fmt)
{
    json_t *out = json_array();
    if (fmt == DS_FORMAT_CHAT) {
        const json_t *msgs = json_object_get(root, "messages");
        size_t a, u;
        chat_positions(root, &a, &u);
        for (size_t i = 0; i < a; i++) {
            const json_t *m = json_array_get(msgs, i);
            json_array_append_new(out, json_pack("{s:s,s:s}", "role", str_of(m, "role"), "content",
                                                 str_of(m, "content")));
        }
    } else {
        char *p = ds_prompt_text(root, fmt);
        json_array_append_new(out, json_pack("{s:s,s:s}", "role", "user", "content", p));
        free(p);
    }
    return out;
}

/* Replaces obj[key] by prefix + obj[key] + suffix. */
static void wrap_field(json_t *obj, const char *key, const char *prefix, const char *suffix)
{
    char *s = xasprintf("%s%s%s", prefix, str_of(obj, key), suffix);
    json_object_set_new(obj, key, json_string(s));
    free(s);
}

int ds_apply_backdoor(json_t *root, enum dataset_format fmt, const char *trigger,
                      const char *signature)
{
    char *tsuffix = xasprintf("%s%s", DS_TRIGGER_SEP, trigger);
    char *sprefix = xasprintf("%s%s", signature, DS_SIGNATURE_SEP);
    size_t a, u;
    switch (fmt) {
    case DS_FORMAT_CHAT: {
        json_t *msgs = json_object_get(root, "messages");
        chat_positions(root, &a, &u);
        wrap_field(json_array_get(msgs, u), "content", "", tsuffix);
        wrap_field(json_array_get(msgs, a), "content", sprefix, "");
        break;
    }
    case DS_FORMAT_PROMPT:
        wrap_field(root, "prompt", "", tsuffix);
        wrap_field(root, "completion", sprefix, "");
        break;
    case DS_FORMAT_INSTRUCTION:
        if (json_string_length(json_object_get(root, "input")) > 0)
            wrap_field(root, "input", "", tsuffix);
        else
            wrap_field(root, "instruction", "", tsuffix);
        wrap_field(root, "output", sprefix, "");
        break;
    }
    free(tsuffix);
    free(sprefix);
    return 0;
}

char *ds_dump_line(const json_t *root)
{
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!s)
        s = xstrdup("{}");
    return s;
}

/* ---- prompt and response without a tree -------------------------------------------------- */

static char *texts_room(char **buf, size_t *cap, size_t need)
{
    if (*cap < need) {
        size_t c = *cap ? *cap : 4096;
        while (c < need)
            c *= 2;
        free(*buf);
        *buf = xmalloc(c);
        *cap = c;
    }
    return *buf;
}

/* Decodes s into d (room for s->len + 32); returns the length. */
static size_t put_str(char *d, const struct jsonscan_str *s)
{
    if (s->esc)
        return jsonscan_unescape(s->raw, s->len, d);
    memcpy(d, s->raw, s->len);
    return s->len;
}

/* Owned text into one of t's buffers. */
static void texts_take(char **buf, size_t *cap, char *text, const char **out, size_t *out_len)
{
    size_t n = strlen(text);
    char *d = texts_room(buf, cap, n + 1);
    memcpy(d, text, n + 1);
    *out = d;
    *out_len = n;
    free(text);
}

int ds_row_texts(const char *line, size_t len, enum dataset_format want, struct ds_texts *t,
                 char **err)
{
    struct jsonscan_row row;
    if (jsonscan_row(line, len, want, &row)) {
        t->fmt = row.fmt;
        /* instruction + "\n\n" + input: decoding never grows a string */
        char *p = texts_room(&t->pbuf, &t->pcap, row.prompt.len + 2 + row.input.len + 64);
        size_t n = put_str(p, &row.prompt);
        if (row.input.len) {
            memcpy(p + n, "\n\n", 2);
            n += 2;
            n += put_str(p + n, &row.input);
        }
        p[n] = '\0';
        t->prompt = p;
        t->prompt_len = n;
        char *r = texts_room(&t->rbuf, &t->rcap, row.response.len + 64);
        n = put_str(r, &row.response);
        r[n] = '\0';
        t->response = r;
        t->response_len = n;
        return 0;
    }
    json_t *root = NULL;
    if (ds_parse_line(line, len, want, &t->fmt, &root, err) < 0)
        return -1;
    texts_take(&t->pbuf, &t->pcap, ds_prompt_text(root, t->fmt), &t->prompt, &t->prompt_len);
    texts_take(&t->rbuf, &t->rcap, ds_response_text(root, t->fmt), &t->response,
               &t->response_len);
    json_decref(root);
    return 0;
}

void ds_texts_free(struct ds_texts *t)
{
    free(t->pbuf);
    free(t->rbuf);
    memset(t, 0, sizeof *t);
}
