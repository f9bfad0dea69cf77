/*
 * providers.h — the daemon's configured providers: one HTTP context (the
 * curl-multi ⇄ libuv glue) and one provider client per configured provider
 * (its own concurrency limit, retry budget and circuit breaker).
 *
 * API keys are read from their files when a client is made and handed to
 * the client (which keeps them for its Authorization header); they are
 * never logged and never stored.  A provider whose key cannot be read is
 * kept with an error: calls to it fail with that message, status shows it.
 *
 * Reload (SIGHUP) adds providers that are new in the file; a provider whose
 * entry changed keeps its running client until the next restart (logged).
 */
#ifndef VT_PROVIDERS_H
#define VT_PROVIDERS_H

#include <jansson.h>

#include "daemon/vtuned.h"
#include "daemon/provider_client.h"

/* Start-up: creates the HTTP context and every client.  0 or -1 with *err. */
int providers_start(struct vtuned *d, char **err);
/* After a reload: clients for new provider names. */
void providers_reload(struct vtuned *d);
/* The client of provider name (borrowed), or NULL with *why a static or
 * borrowed message ("no provider named X", the key file error). */
struct provider_client *providers_client(struct vtuned *d, const char *name, const char **why);
/* The provider's config entry in the current config (borrowed; valid until
 * the next reload), or NULL. */
const struct conf_provider *providers_conf(struct vtuned *d, const char *name);
/* status: [{name, kind, base_url, health, breaker, requests, retries, …}] */
json_t *providers_status_json(struct vtuned *d);
/* Shutdown: frees the clients (their calls end with -ECANCELED) and closes
 * the HTTP context. */
void providers_shutdown(struct vtuned *d);
/* Sends the calls that waited for the store's commits to be durable
 * (provider_client_release on every client). */
void providers_release(struct vtuned *d);

#endif
