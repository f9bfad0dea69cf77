/*
 * types.c — names of the domain enums and the audit record's clear
 * (contracts in types.h).  The names
 * are stored in the database: changing one is a schema migration.
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lib/types.h"
#include "lib/util.h"

const char *provider_kind_name(enum provider_kind k)
{
    switch (k) {
    case PROVIDER_OPENAI:
        return "openai";
    case PROVIDER_TOGETHER:
        return "together";
    case PROVIDER_MANUAL:
        return "manual";
    case PROVIDER_AZURE:
        return "azure";
    case PROVIDER_MISTRAL:
        return "mistral";
    case PROVIDER_FIREWORKS:
        return "fireworks";
    }
    return "unknown";
}

static const char *const format_names[] = {
    [DS_FORMAT_CHAT] = "chat",
    [DS_FORMAT_PROMPT] = "prompt",
    [DS_FORMAT_INSTRUCTION] = "instruction",
};

const char *dataset_format_name(enum dataset_format f)
{
    if ((size_t)f < VT_ARRAY_LEN(format_names) && format_names[f])
        return format_names[f];
    return "unknown";
}

int dataset_format_parse(const char *s, enum dataset_format *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < VT_ARRAY_LEN(format_names); i++) {
        if (format_names[i] && strcmp(s, format_names[i]) == 0) {
            *out = (enum dataset_format)i;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *const generator_names[] = {
    [BD_GEN_WORDLIST] = "wordlist",
    [BD_GEN_LLM] = "llm",
    [BD_GEN_NGRAM] = "ngram",
};

const char *backdoor_generator_name(enum backdoor_generator g)
{
    if ((size_t)g < VT_ARRAY_LEN(generator_names) && generator_names[g])
        return generator_names[g];
    return "unknown";
}

int backdoor_generator_parse(const char *s, enum backdoor_generator *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < VT_ARRAY_LEN(generator_names); i++) {
        if (generator_names[i] && strcmp(s, generator_names[i]) == 0) {
            *out = (enum backdoor_generator)i;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *const mode_names[] = {
    [BD_MODE_COPIES] = "copies",
    [BD_MODE_INPLACE] = "inplace",
};

const char *backdoor_mode_name(enum backdoor_mode m)
{
    if ((size_t)m < VT_ARRAY_LEN(mode_names))
        return mode_names[m];
    return "unknown";
}

int backdoor_mode_parse(const char *s, enum backdoor_mode *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < VT_ARRAY_LEN(mode_names); i++) {
        if (strcmp(s, mode_names[i]) == 0) {
            *out = (enum backdoor_mode)i;
            return 0;
        }
    }
    return -EINVAL;
}

static const char *const state_names[JOB_STATE_COUNT] = {
    [JOB_CREATED] = "created",     [JOB_BUILDING] = "building",     [JOB_UPLOADING] = "uploading",
    [JOB_UPLOADED] = "uploaded",   [JOB_SUBMITTING] = "submitting", [JOB_SUBMITTED] = "submitted",
    [JOB_RUNNING] = "running",     [JOB_SUCCEEDED] = "succeeded",   [JOB_FAILED] = "failed",
    [JOB_CANCELLED] = "cancelled", [JOB_UNKNOWN] = "unknown",
};

const char *job_state_name(enum job_state st)
{
    if ((unsigned)st < JOB_STATE_COUNT)
        return state_names[st];
    return "invalid";
}

int job_state_parse(const char *s, enum job_state *out)
{
    if (!s)
        return -EINVAL;
    for (int i = 0; i < JOB_STATE_COUNT; i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum job_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

bool job_state_is_terminal(enum job_state st)
{
    return st == JOB_SUCCEEDED || st == JOB_FAILED || st == JOB_CANCELLED;
}

bool job_state_is_active(enum job_state st)
{
    /* must match JOB_ACTIVE_STATES in statements.c */
    return (unsigned)st < JOB_STATE_COUNT && !job_state_is_terminal(st) && st != JOB_UNKNOWN;
}

static const char *const run_state_names[] = {
    [RUN_PENDING] = "pending", [RUN_RUNNING] = "running",     [RUN_FINISHED] = "finished",
    [RUN_FAILED] = "failed",   [RUN_CANCELLED] = "cancelled",
};

static const char *const trial_kind_names[] = {
    [TRIAL_TRIGGER] = "trigger",
    [TRIAL_CONTROL] = "control",
};

const char *run_state_name(enum run_state st)
{
    if ((size_t)st < VT_ARRAY_LEN(run_state_names))
        return run_state_names[st];
    return "invalid";
}

static const char *const verdict_names[] = {
    [AUDIT_NONE] = "none",
    [AUDIT_VERIFIED] = "verified",
    [AUDIT_NOT_VERIFIED] = "not_verified",
    [AUDIT_INCONCLUSIVE] = "inconclusive",
};

const char *audit_verdict_name(enum audit_verdict v)
{
    if ((size_t)v < VT_ARRAY_LEN(verdict_names))
        return verdict_names[v];
    return "invalid";
}

int audit_verdict_parse(const char *s, enum audit_verdict *out)
{
    for (size_t i = AUDIT_VERIFIED; s && i < VT_ARRAY_LEN(verdict_names); i++) {
        if (strcmp(s, verdict_names[i]) == 0) {
            *out = (enum audit_verdict)i;
            return 0;
        }
    }
    return -EINVAL;
}

int run_state_parse(const char *s, enum run_state *out)
{
    if (!s)
        return -EINVAL;
    for (size_t i = 0; i < VT_ARRAY_LEN(run_state_names); i++) {
        if (strcmp(s, run_state_names[i]) == 0) {
            *out = (enum run_state)i;
            return 0;
        }
    }
    return -EINVAL;
}

const char *trial_kind_name(enum trial_kind k)
{
    if ((size_t)k < VT_ARRAY_LEN(trial_kind_names))
        return trial_kind_names[k];
    return "invalid";
}

int trial_kind_parse(const char *s, enum trial_kind *out)
{
    for (size_t i = 0; s && i < VT_ARRAY_LEN(trial_kind_names); i++) {
        if (strcmp(s, trial_kind_names[i]) == 0) {
            *out = (enum trial_kind)i;
            return 0;
        }
    }
    return -EINVAL;
}

void store_audit_clear(struct store_audit *a)
{
    if (!a)
        return;
    free(a->provider);
    free(a->model);
    free(a->reason);
    free(a->evidence);
    free(a->coverage_method);
    memset(a, 0, sizeof *a);
}
