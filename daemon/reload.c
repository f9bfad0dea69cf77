/*
 * reload.c — SIGHUP: load the file again, apply what can change while the
 * daemon runs, and say exactly what did not.
 *
 * The new file is compared with the running configuration key by key
 * (conf_diff walks the parser's own schema tables, so a new key is never
 * skipped).  Each changed key falls in one class:
 *   - live: read from d->conf where it is used (log_level, limits of the
 *     control socket, verify, generator, alerts, a provider's
 *     poll_interval and score_template (read by each coverage test),
 *     allowed users and groups, a new provider); swapping
 *     the config in applies it;
 *   - applied here: socket_mode and socket_group (chown, then chmod of the
 *     socket file, as at start-up);
 *   - next start: state_dir, socket, signing_key_file, control.realtime,
 *     schedules, a removed provider, and a
 *     provider's other settings (its HTTP client was built from them).
 *     The swapped-in config keeps the running value of these, so `status`
 *     and every reader see what is in force, not what the file says.
 * The summary line says "configuration reloaded" only when every change
 * took effect; otherwise it is a warning naming each key that did not,
 * and systemd's STATUS says so too.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "daemon/ctl.h"
#include "daemon/notify.h"
#include "daemon/providers.h"
#include "lib/log.h"
#include "lib/util.h"
#include "daemon/vtuned.h"

struct reload {
    struct vtuned *d;
    struct conf *nc;
    struct buf applied; /* "a, b, c" */
    struct buf later;   /* keys that change at the next start */
    struct buf failed;  /* keys whose live change failed */
    int socket_access;  /* socket_mode or socket_group changed */
    char **keep;        /* providers whose running entry stays (after the diff) */
    size_t n_keep;
};

/* Providers are kept only after conf_diff is done: swapping an entry
 * while the diff still walks it would compare the wrong sides. */
static void keep_later(struct reload *r, const char *name)
{
    for (size_t i = 0; i < r->n_keep; i++)
        if (!strcmp(r->keep[i], name))
            return;
    r->keep = xrealloc(r->keep, (r->n_keep + 1) * sizeof *r->keep);
    r->keep[r->n_keep++] = xstrdup(name);
}

static void list_add(struct buf *b, const char *key)
{
    if (b->len)
        buf_puts(b, ", ");
    buf_puts(b, key);
}

/* Moves the running provider `name` into nc in place of (or beside) the
 * file's entry: its client was built from those settings.  A live
 * poll_interval and score_template from the file are kept. */
static void keep_running_provider(struct reload *r, const char *name)
{
    struct conf *oc = r->d->conf, *nc = r->nc;
    struct conf_provider *op = NULL, *np = NULL;
    for (size_t i = 0; i < oc->n_providers; i++)
        if (!strcmp(oc->providers[i].name, name))
            op = &oc->providers[i];
    for (size_t i = 0; i < nc->n_providers; i++)
        if (!strcmp(nc->providers[i].name, name))
            np = &nc->providers[i];
    if (!op)
        return;
    if (!np) {
        nc->providers = xrealloc(nc->providers, (nc->n_providers + 1) * sizeof *nc->providers);
        np = &nc->providers[nc->n_providers++];
        *np = *op;
    } else {
        uint64_t poll = np->poll_interval_ms;
        struct conf_provider t = *np;
        *np = *op;
        *op = t; /* the file's entry is freed with the old config */
        np->poll_interval_ms = poll;
        char *tmpl = op->score_template; /* the file's, live */
        op->score_template = np->score_template;
        np->score_template = tmpl;
        return;
    }
    memset(op, 0, sizeof *op);
}

static int provider_key_is_live(const char *key)
{
    const char *dot = strrchr(key, '.');
    return dot && (!strcmp(dot + 1, "poll_interval") || !strcmp(dot + 1, "score_template"));
}

static void on_changed(const char *key, void *ctx)
{
    struct reload *r = ctx;
    struct conf *oc = r->d->conf, *nc = r->nc;

    if (!strcmp(key, "state_dir")) {
        log_warnx("reload: state_dir changes at the next start (running: %s, file: %s)",
                  oc->state_dir, nc->state_dir);
        free(nc->state_dir);
        nc->state_dir = xstrdup(oc->state_dir);
        list_add(&r->later, key);
    } else if (!strcmp(key, "socket")) {
        log_warnx("reload: socket changes at the next start (running: %s, file: %s)", oc->socket,
                  nc->socket);
        free(nc->socket);
        nc->socket = xstrdup(oc->socket);
        list_add(&r->later, key);
    } else if (!strcmp(key, "signing_key_file")) {
        /* the key is loaded once (daemon/signing.c): what signs stays what signed */
        log_warnx("reload: signing_key_file changes at the next start");
        free(nc->signing_key_file);
        nc->signing_key_file = oc->signing_key_file ? xstrdup(oc->signing_key_file) : NULL;
        list_add(&r->later, key);
    } else if (!strcmp(key, "control.realtime")) {
        /* set by the control thread for itself as it starts (ctl.c, sched_start) */
        log_warnx("reload: control.realtime changes at the next start (running: %s)",
                  oc->control.realtime ? "true" : "false");
        nc->control.realtime = oc->control.realtime;
        list_add(&r->later, key);
    } else if (!strcmp(key, "socket_mode") || !strcmp(key, "socket_group")) {
        r->socket_access = 1; /* applied once, below, for both keys */
    } else if (!strcmp(key, "schedules")) {
        log_warnx("reload: schedules changes at the next start (the schedules of the file are "
                  "recorded at start-up; 'vtunectl schedule add|rm' changes them now)");
        struct conf_schedule *t = nc->schedules;
        size_t n = nc->n_schedules;
        nc->schedules = oc->schedules;
        nc->n_schedules = oc->n_schedules;
        oc->schedules = t;
        oc->n_schedules = n;
        list_add(&r->later, key);
    } else if (!strncmp(key, "providers.", 10) && !strchr(key + 10, '.')) {
        const char *name = key + 10;
        if (conf_provider_find(oc, name)) {
            log_warnx("reload: %s was removed from the file; it stays until the next start", key);
            keep_later(r, name);
            list_add(&r->later, key);
        } else {
            list_add(&r->applied, key); /* added by providers_reload */
        }
    } else if (!strncmp(key, "providers.", 10) && !provider_key_is_live(key)) {
        log_warnx("reload: %s changes at the next start (the provider's client was built with "
                  "the running value)",
                  key);
        char *name = xstrdup(key + 10);
        *strchr(name, '.') = '\0';
        keep_later(r, name);
        free(name);
        list_add(&r->later, key);
    } else {
        list_add(&r->applied, key);
    }
}

static void apply_socket_access(struct reload *r)
{
    struct conf *oc = r->d->conf, *nc = r->nc;
    char *err = NULL;
    char mode[8];
    snprintf(mode, sizeof mode, "%04o", (unsigned)nc->socket_mode);
    int rc = ctl_server_set_access(r->d->ctl, nc->socket_mode, nc->socket_group, &err);
    if (rc == 0) {
        log_info("reload: socket %s is now mode %s, group %s", nc->socket, mode,
                 nc->socket_group ? nc->socket_group : "(the daemon's group)");
        if (oc->socket_mode != nc->socket_mode)
            list_add(&r->applied, "socket_mode");
        if ((oc->socket_group == NULL) != (nc->socket_group == NULL) ||
            (oc->socket_group && strcmp(oc->socket_group, nc->socket_group)))
            list_add(&r->applied, "socket_group");
        return;
    }
    if (rc > 0)
        log_warnx("reload: socket_mode and socket_group change at the next start: %s", err);
    else
        log_error("reload: socket_mode and socket_group not applied: %s; the running values "
                  "are kept",
                  err);
    free(err);
    /* What the socket has is what the running config says. */
    nc->socket_mode = oc->socket_mode;
    free(nc->socket_group);
    nc->socket_group = oc->socket_group ? xstrdup(oc->socket_group) : NULL;
    list_add(rc > 0 ? &r->later : &r->failed, "socket_mode, socket_group");
}

void vtuned_reload(struct vtuned *d)
{
    struct reload r;
    char *err = NULL;

    notify_send("RELOADING=1\nSTATUS=reloading configuration");
    log_info("reloading configuration from %s", d->conf_path);
    memset(&r, 0, sizeof r);
    if (conf_load(d->conf_path, &r.nc, &err) < 0) {
        log_error("reload rejected, keeping the running configuration: %s", err);
        free(err);
        notify_send("READY=1\nSTATUS=running (reload rejected: see the log)");
        return;
    }
    r.d = d;
    buf_init(&r.applied);
    buf_init(&r.later);
    buf_init(&r.failed);
    conf_diff(d->conf, r.nc, on_changed, &r);
    for (size_t i = 0; i < r.n_keep; i++) {
        keep_running_provider(&r, r.keep[i]);
        free(r.keep[i]);
    }
    free(r.keep);
    if (r.socket_access)
        apply_socket_access(&r);

    conf_free(d->conf);
    d->conf = r.nc;
    log_set_level((enum log_level)d->conf->log_level);
    ctl_server_reload(d->ctl);
    providers_reload(d);
    ctl_server_publish(d->ctl); /* status answered by the control thread shows it now */

    if (!r.later.len && !r.failed.len) {
        log_info("configuration reloaded: %s",
                 r.applied.len ? r.applied.data : "no setting changed");
        notify_send("READY=1\nSTATUS=running");
    } else {
        log_warnx("configuration partly reloaded: applied %s%s%s%s%s",
                  r.applied.len ? r.applied.data : "nothing",
                  r.later.len ? "; at the next start: " : "", r.later.len ? r.later.data : "",
                  r.failed.len ? "; failed: " : "", r.failed.len ? r.failed.data : "");
        notify_sendf("READY=1\nSTATUS=running (reload: %s%s%s need a restart or failed; see the "
                     "log)",
                     r.later.len ? r.later.data : "", r.later.len && r.failed.len ? ", " : "",
                     r.failed.len ? r.failed.data : "");
    }
    buf_free(&r.applied);
    buf_free(&r.later);
    buf_free(&r.failed);
}
