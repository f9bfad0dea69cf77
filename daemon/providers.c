/*
 * providers.c — the provider registry (see providers.h).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "ctl/protocol.h"
#include "lib/log.h"
#include "daemon/providers.h"
#include "lib/util.h"

/* Fills c from a provider's config entry: ops by kind, endpoint (borrows
 * cp and api_key: they must outlive the call to provider_client_new),
 * max_retries + 1 attempts, and the defaults of retry.h (budget 20% over
 * 60 s with a floor of 10, max_wait 10 min). */
static void client_conf_from(const struct conf_provider *cp, const char *api_key,
                             struct provider_client_conf *c)
{
    memset(c, 0, sizeof *c);
    c->ops = provider_ops_for(cp->kind);
    c->ep.name = cp->name;
    c->ep.base_url = cp->base_url;
    c->ep.api_key = api_key;
    c->ep.ca_file = cp->ca_file;
    c->ep.connect_timeout_ms = cp->connect_timeout_ms;
    c->ep.request_timeout_ms = cp->request_timeout_ms;
    c->ep.upload_timeout_ms = cp->upload_timeout_ms;
    if (cp->kind == PROVIDER_AZURE) {
        /* The OpenAI adapter with Azure's endpoint conventions. */
        c->ep.key_in_api_key_header = 1;
        c->ep.api_version = cp->api_version;
        c->ep.deployment_paths = 1;
        c->ep.deploy_models = (const char *const *)cp->deploy_models;
        c->ep.deploy_names = (const char *const *)cp->deploy_names;
        c->ep.n_deployments = cp->n_deployments;
    }
    c->ep.account = cp->account; /* fireworks; NULL for the other kinds */
    c->max_concurrency = cp->max_concurrency ? cp->max_concurrency : 4;
    retry_policy_default(&c->policy);
    c->policy.max_attempts = cp->max_retries + 1;
    breaker_conf_default(&c->breaker);
    c->budget_window_ms = 60000;
    c->budget_ratio = 0.2;
    c->budget_min = 10;
    c->max_wait_ms = 600000;
}

struct provider_slot {
    struct provider_slot *next;
    char *name;
    char *kind;
    char *base_url;
    struct provider_client *pc; /* NULL when unusable (see error) */
    char *error;                /* why the provider cannot be used */
};

static void slot_add(struct vtuned *d, const struct conf_provider *cp)
{
    struct provider_slot *s = xcalloc(1, sizeof *s);
    char *key = NULL, *err = NULL;
    s->name = xstrdup(cp->name);
    s->kind = xstrdup(provider_kind_name(cp->kind));
    s->base_url = xstrdup(cp->base_url ? cp->base_url : "");
    if (cp->api_key_file && !(key = conf_read_api_key(cp, &err))) {
        s->error = xasprintf("provider %s: %s", cp->name, err);
        log_error("%s", s->error);
        free(err);
    } else {
        struct provider_client_conf pcc;
        client_conf_from(cp, key, &pcc);
        if (provider_client_new(d->loop, http_ctx_transport(d->http), &pcc, &s->pc) < 0) {
            s->error = xasprintf("provider %s: cannot create its client (kind %s, base_url %s)",
                                 cp->name, s->kind, s->base_url);
            log_error("%s", s->error);
            s->pc = NULL;
        }
    }
    if (key) {
        explicit_bzero(key, strlen(key));
        free(key);
    }
    s->next = d->providers;
    d->providers = s;
}

static struct provider_slot *slot_find(struct vtuned *d, const char *name)
{
    for (struct provider_slot *s = d->providers; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

int providers_start(struct vtuned *d, char **err)
{
    int r = http_ctx_new(d->loop, &d->http);
    if (r < 0) {
        *err = xasprintf("cannot initialise libcurl: %s", strerror(-r));
        return -1;
    }
    for (size_t i = 0; i < d->conf->n_providers; i++)
        slot_add(d, &d->conf->providers[i]);
    return 0;
}

void providers_reload(struct vtuned *d)
{
    for (size_t i = 0; i < d->conf->n_providers; i++) {
        const struct conf_provider *cp = &d->conf->providers[i];
        struct provider_slot *s = slot_find(d, cp->name);
        if (!s) {
            log_info("providers: adding %s (%s)", cp->name, provider_kind_name(cp->kind));
            slot_add(d, cp);
        } else if (strcmp(s->base_url, cp->base_url ? cp->base_url : "") != 0 ||
                   strcmp(s->kind, provider_kind_name(cp->kind)) != 0) {
            log_warnx("providers: %s changed; the new settings take effect after a restart",
                      cp->name);
        }
    }
}

struct provider_client *providers_client(struct vtuned *d, const char *name, const char **why)
{
    struct provider_slot *s = slot_find(d, name);
    if (!s) {
        *why = "no such provider in the configuration";
        return NULL;
    }
    if (!s->pc)
        *why = s->error;
    return s->pc;
}

const struct conf_provider *providers_conf(struct vtuned *d, const char *name)
{
    return conf_provider_find(d->conf, name);
}

json_t *providers_status_json(struct vtuned *d)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < d->conf->n_providers; i++) {
        const struct conf_provider *cp = &d->conf->providers[i];
        struct provider_slot *s = slot_find(d, cp->name);
        json_t *o = json_pack("{s:s,s:s,s:s?}", CTL_K_NAME, cp->name, CTL_K_KIND,
                              provider_kind_name(cp->kind), CTL_K_BASE_URL, cp->base_url);
        if (!s || !s->pc) {
            json_object_set_new(o, CTL_K_HEALTH, json_string("unusable"));
            json_object_set_new(o, CTL_K_ERROR, json_string(s ? s->error : "not loaded"));
        } else {
            struct provider_client_stats st;
            provider_client_stats(s->pc, &st);
            const char *health = strcmp(st.breaker, "closed") == 0      ? "ok"
                                 : strcmp(st.breaker, "half-open") == 0 ? "recovering"
                                                                        : "failing";
            json_object_set_new(o, CTL_K_HEALTH, json_string(health));
            json_object_set_new(o, "breaker", json_string(st.breaker));
            json_object_set_new(o, "breaker_opens", json_integer((json_int_t)st.breaker_opens));
            json_object_set_new(o, "calls_active", json_integer((json_int_t)st.calls_active));
            json_object_set_new(o, "requests", json_integer((json_int_t)st.requests_sent));
            json_object_set_new(o, "retries", json_integer((json_int_t)st.retries));
            json_object_set_new(o, "retries_denied", json_integer((json_int_t)st.budget_denied));
        }
        json_array_append_new(arr, o);
    }
    return arr;
}

void providers_release(struct vtuned *d)
{
    for (struct provider_slot *s = d->providers; s; s = s->next)
        provider_client_release(s->pc);
}

void providers_shutdown(struct vtuned *d)
{
    struct provider_slot *s = d->providers, *n;
    for (; s; s = n) {
        n = s->next;
        provider_client_free(s->pc);
        free(s->name);
        free(s->kind);
        free(s->base_url);
        free(s->error);
        free(s);
    }
    d->providers = NULL;
    if (d->http) {
        http_ctx_close(d->http, NULL, NULL);
        d->http = NULL;
    }
}
