/* What the two files of the console package share. console.c holds the
 * routes (the page, the profile, the tenants, the assets); compose.c reads
 * the "ui" of the packages of a stack and composes them for a caller. */
#ifndef NNO_CONSOLE_H
#define NNO_CONSOLE_H

#include <stddef.h>

#include <jansson.h>

#include <nno/iam.h>
#include <nno/plugin.h>
#include <nno/registry.h>
#include <nno/sdk.h>

/* The host table and this plugin, set once in on_plugin_init. */
extern const nno_host_api *api;
extern nno_plugin *self;

/* The services, looked up on first use; NULL when absent (or too old for
 * what the caller needs: each caller tests `size` for its member). */
const nno_registry_v1 *console_registry(void);
const nno_iam_v1 *console_iam(void);

/* 1 if the caller's scopes (`granted`, len bytes) allow `scope`:
 * "authenticated" always, anything else through nno.iam scope_allows
 * (refused when IAM cannot tell). */
int console_allows(const char *granted, size_t len, const char *scope);

/*
 * The composition of the packages of `platform`'s active stacks for a
 * caller holding `scopes` (space-separated, len bytes): the object
 * CONSOLE.md describes, {"platform", "packages": [...]}. NULL when out of
 * memory. OWNERSHIP: a new reference, the caller decrefs.
 */
json_t *console_compose(const char *platform, const char *scopes, size_t len);

/* Drop every parsed manifest (the stack handles they were keyed by may be
 * gone): on_stacks_changed and fini. */
void console_compose_clear(void);

#endif
