/* Discovery, checks, init and route commit of plugins and stacks. */
#include "loader.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "config.h"
#include "fetch.h"
#include "log.h"
#include "pkgcheck.h"
#include "req.h"
#include "res.h"
#include "router.h"
#include "sandbox.h"
#include "sbx_refused.h"
#include "semver.h"
#include "services.h"
#include "stacks.h"
#include "trust.h"
#include "worker.h"

#define MAX_STACKS 256

/* In a check's child (pkgcheck_fork): where the loader says which package
 * it opens next, so a crash or a hang is put on the right one; -1 else. */
static int g_report_fd = -1;
/* The file the loader's last refusal is about (a package.json, a
 * stack.json, the core plugin folder): what a check reports it against. */
static char g_file[PATH_MAX + 80];

void loader_set_reporter(int fd) { g_report_fd = fd; }

static void (*g_progress)(size_t idx, int on_host_ready);
void loader_set_progress(void (*fn)(size_t idx, int on_host_ready)) {
  g_progress = fn;
}

/* The table given to init: the host's, or a sandbox's proxy. */
static const nno_host_api *g_api;
void loader_set_api(const nno_host_api *api) { g_api = api; }
const char *loader_last_file(void) { return g_file; }

static int is_dir(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static const char *kind_name(int k) {
  return k == NNO_KIND_CORE ? "core" : k == NNO_KIND_FEATURE ? "feature" : "?";
}

/* dlopen the object: by its descriptor when the loader opened and judged
 * it (so what runs is what was checked), else by name. dlerror's text
 * names "/proc/self/fd/N"; it is rewritten to name `so_path`. */
static void *open_object(const char *so_path, int fd, char *err,
                         size_t errlen) {
  char fdpath[32];
  if (fd >= 0) snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
  void *dl = dlopen(fd >= 0 ? fdpath : so_path, RTLD_NOW | RTLD_LOCAL);
  if (dl) return dl;
  const char *e = dlerror();
  if (!e) e = "unknown error";
  size_t fl = fd >= 0 ? strlen(fdpath) : 0;
  if (fl && strncmp(e, fdpath, fl) == 0)
    snprintf(err, errlen, "plugin \"%s\": cannot load: %s%s", so_path, so_path,
             e + fl);
  else
    snprintf(err, errlen, "plugin \"%s\": cannot load: %s", so_path, e);
  return NULL;
}

int loader_check_object(const char *so_path, int fd, const package_manifest *m,
                        void **dl_out, const nno_plugin_desc **desc_out,
                        char *err, size_t errlen) {
  /* The manifest is read before the object is opened, so an object built
   * for another ABI is refused before its constructors run. */
  if (m->abi_major != NNO_ABI_MAJOR || m->abi_minor > NNO_ABI_MINOR) {
    snprintf(err, errlen,
             "incompatible plugin \"%s\": built for ABI %u.%u, host provides "
             "%u.%u", so_path, m->abi_major, m->abi_minor, NNO_ABI_MAJOR,
             NNO_ABI_MINOR);
    return -1;
  }
  void *dl = open_object(so_path, fd, err, errlen);
  if (!dl) return -1;
  const nno_plugin_desc *(*get)(void);
  *(void **)(&get) = dlsym(dl, NNO_PLUGIN_SYMBOL);
  const nno_plugin_desc *d = NULL;
  if (!get) {
    snprintf(err, errlen,
             "plugin \"%s\": missing symbol %s (declare the plugin with "
             "NNO_PLUGIN(...))", so_path, NNO_PLUGIN_SYMBOL);
    goto fail;
  }
  d = get();
  if (!d || d->magic != NNO_PLUGIN_MAGIC) {
    snprintf(err, errlen,
             "plugin \"%s\": %s returned no valid descriptor (bad magic)",
             so_path, NNO_PLUGIN_SYMBOL);
    goto fail;
  }
  if (d->abi_major != NNO_ABI_MAJOR || d->abi_minor > NNO_ABI_MINOR) {
    snprintf(err, errlen,
             "incompatible plugin \"%s\": built for ABI %u.%u, host provides "
             "%u.%u", so_path, d->abi_major, d->abi_minor, NNO_ABI_MAJOR,
             NNO_ABI_MINOR);
    goto fail;
  }
  if (d->size < offsetof(nno_plugin_desc, on_plugin_fini) + sizeof(void *)) {
    snprintf(err, errlen, "plugin \"%s\": descriptor of %u bytes is too small",
             so_path, d->size);
    goto fail;
  }
  if (d->abi_major != m->abi_major || d->abi_minor != m->abi_minor) {
    snprintf(err, errlen,
             "plugin \"%s\": built for ABI %u.%u but package.json says %u.%u",
             so_path, d->abi_major, d->abi_minor, m->abi_major, m->abi_minor);
    goto fail;
  }
  if (!d->name || strcmp(d->name, m->name) != 0) {
    snprintf(err, errlen,
             "plugin \"%s\": descriptor name \"%s\" differs from package.json "
             "name \"%s\"", so_path, d->name ? d->name : "", m->name);
    goto fail;
  }
  if (!d->version || strcmp(d->version, m->version) != 0) {
    snprintf(err, errlen,
             "plugin \"%s\": descriptor version \"%s\" differs from "
             "package.json version \"%s\"", so_path,
             d->version ? d->version : "", m->version);
    goto fail;
  }
  if (d->kind != m->kind) {
    snprintf(err, errlen,
             "plugin \"%s\": descriptor kind \"%s\" differs from package.json "
             "kind \"%s\"", so_path, kind_name(d->kind), kind_name(m->kind));
    goto fail;
  }
  if (!d->on_plugin_init) {
    snprintf(err, errlen, "plugin \"%s\": descriptor has no on_plugin_init",
             so_path);
    goto fail;
  }
  if (dl_out) {
    *dl_out = dl;
    *desc_out = d;
  } else {
    dlclose(dl);
  }
  return 0;
fail:
  dlclose(dl);
  return -1;
}

/* package_open and loader_check_object on a folder found under `root`;
 * the package's name is copied to `name` (CONFIG_NAME_MAX + 1 bytes) when
 * not NULL and the manifest reads. */
/* With `cfg`, a core plugin's "config" is also made as a worker makes it
 * (plugin_config: config_plugin_config). */
static int check_package_in(const nno_config *cfg, const char *root,
                            const char *dir, char *name, char *err,
                            size_t errlen) {
  package_manifest m;
  char so[PATH_MAX];
  int fd;
  if (pkgcheck_package_open(root, dir, &m, so, sizeof so, &fd, err, errlen))
    return -1;
  if (name) snprintf(name, CONFIG_NAME_MAX + 1, "%s", m.name);
  int rc = loader_check_object(so, fd, &m, NULL, NULL, err, errlen);
  if (rc == 0 && cfg && m.kind == NNO_KIND_CORE) {
    char *merged, cerr[CONFIG_ERR_MAX];
    rc = config_plugin_config(cfg, m.name, m.config_json, &merged, cerr);
    if (rc) snprintf(err, errlen, "%s", cerr);
    json_malloc_t a;
    json_free_t f;
    json_get_alloc_funcs(&a, &f);
    if (merged) f(merged);
  }
  close(fd);
  package_manifest_free(&m);
  return rc;
}

int loader_check_package(const char *dir, char *err, size_t errlen) {
  return check_package_in(NULL, dir, dir, NULL, err, errlen);
}

/* ---- loading ----------------------------------------------------------- */

static void plugin_free(plugin *p) {
  for (size_t i = 0; i < p->nroutes; i++) {
    free(p->routes[i].method);
    free(p->routes[i].pattern);
  }
  free(p->routes);
  package_manifest_free(&p->man);
  /* After dlclose: while it is loaded, its name is /proc/self/fd/N, and
   * dlopen matches names first -- N must not be reused meanwhile. */
  if (p->so_fd >= 0) close(p->so_fd);
  free(p);
}

/* Stop what the plugin started, call fini, close the object. */
static void plugin_unload(worker *w, plugin *p) {
  api_stop_timers(p);
  if (w->fetcher) fetch_cancel_owner(w->fetcher, p);
  /* Queued thread-pool work must not call back into unloaded code. */
  while (p->pending > 0) uv_run(&w->loop, UV_RUN_ONCE);
  if (p->inited && p->desc->on_plugin_fini) p->desc->on_plugin_fini((nno_plugin *)p);
  services_remove_owner(w->services, p);
  if (p->dl) dlclose(p->dl);
  plugin_free(p);
}

static int requires_met(worker *w, plugin *p, char *err, size_t errlen) {
  for (size_t i = 0; i < p->man.nrequires; i++) {
    const manifest_require *r = &p->man.requires[i];
    uint32_t v = services_version(w->services, r->service);
    if (v == 0 && g_api) {
      /* A vtable of pointers cannot cross into a sandbox's process. */
      snprintf(err, errlen, "package \"%s\" requires service \"%s\", which "
               "a sandboxed stack cannot reach; run stack %s inprocess "
               "(sandbox.inprocess)", p->man.name, r->service,
               p->stack_id[0] ? p->stack_id : p->stack);
      return -1;
    }
    if (v == 0) {
      snprintf(err, errlen, "package \"%s\" requires service \"%s\" %s, which "
               "no loaded plugin provides", p->man.name, r->service, r->range);
      return -1;
    }
    semver sv = {v, 0, 0, ""};
    if (semver_satisfies(&sv, r->range) != 1) {
      snprintf(err, errlen, "package \"%s\" requires service \"%s\" %s, but "
               "version %u is loaded", p->man.name, r->service, r->range, v);
      return -1;
    }
  }
  return 0;
}

/* Open, check and init one package folder found under `root`; as the
 * i-th package of stack `sm` (manifest `sjson`) when not NULL. NULL with err set on failure
 * (and g_file naming the file it is about). */
/* Give core plugin p the "config" plugin_config makes of its manifest's
 * (config_plugin_config): 0, or -1 with err set. */
static int apply_plugin_config(const nno_config *cfg, plugin *p, char *err,
                               size_t errlen) {
  char *merged, cerr[CONFIG_ERR_MAX];
  if (config_plugin_config(cfg, p->man.name, p->man.config_json, &merged,
                           cerr) != 0) {
    snprintf(err, errlen, "%s", cerr);
    return -1;
  }
  if (merged) {
    json_malloc_t a;
    json_free_t f;
    json_get_alloc_funcs(&a, &f);
    f(p->man.config_json); /* the manifest's blocks are jansson's */
    p->man.config_json = merged;
  }
  return 0;
}

static plugin *load_one(worker *w, const char *root, const char *dir,
                        const char *stack_label, int want_kind,
                        const stack_manifest *sm, const char *sjson,
                        size_t idx, char *err, size_t errlen) {
  snprintf(g_file, sizeof g_file, "%s/package.json", dir);
  if (g_report_fd >= 0) {
    const char *base = strrchr(dir, '/');
    pkgcheck_child_progress(g_report_fd, g_file, base ? base + 1 : dir);
  }
  if (g_progress) g_progress(idx, 0);
  plugin *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  p->so_fd = -1;
  snprintf(p->dir, sizeof p->dir, "%s", dir);
  snprintf(p->stack, sizeof p->stack, "%s", stack_label);
  {
    /* "id@version": the halves for plugin_stack() and resource refs. */
    const char *at = strchr(stack_label, '@');
    size_t il = at ? (size_t)(at - stack_label) : 0;
    if (il >= sizeof p->stack_id) il = 0;
    memcpy(p->stack_id, stack_label, il);
    p->stack_id[il] = '\0';
    snprintf(p->stack_version, sizeof p->stack_version, "%s",
             at && il ? at + 1 : "");
  }
  if (!realpath(dir, p->absdir)) snprintf(p->absdir, sizeof p->absdir, "%s", dir);
  if (pkgcheck_package_open(root, dir, &p->man, p->so_path, sizeof p->so_path,
                            &p->so_fd, err, errlen))
    goto fail; /* p->man is left empty */
  {
    /* Load a sealed copy of what was judged: a file overwritten on disk
     * later cannot change (or crash) the code mapped from it. */
    int sealed = stacks_sealed_copy(p->so_fd, p->so_path, err, errlen);
    if (sealed < 0) goto fail;
    close(p->so_fd);
    p->so_fd = sealed;
  }
  if (pkgcheck_manifest_fits(w->cfg, &p->man, p->so_path, want_kind, err,
                             errlen))
    goto fail;
  if (p->man.kind == NNO_KIND_CORE &&
      apply_plugin_config(w->cfg, p, err, errlen))
    goto fail;
  if (sm && pkgcheck_stack_wants(sm, idx, &p->man, err, errlen)) {
    snprintf(g_file, sizeof g_file, "%s", sjson);
    goto fail;
  }
  if (loader_check_object(p->so_path, p->so_fd, &p->man, &p->dl, &p->desc, err,
                          errlen))
    goto fail;
  if (requires_met(w, p, err, errlen)) goto fail;
  p->initing = 1;
  int rc = p->desc->on_plugin_init((nno_plugin *)p, g_api ? g_api : api_table());
  p->initing = 0;
  if (rc != 0) {
    if (p->undeclared[0] && want_kind == NNO_KIND_FEATURE)
      pkgcheck_routes(p, err, errlen);
    else
      snprintf(err, errlen, "plugin \"%s\": init failed (%s)%s%s", p->so_path,
               nno__err_name(rc), p->fail[0] ? ": " : "", p->fail);
    /* Init failed: no fini, but undo what it may have started. */
    api_stop_timers(p);
    services_remove_owner(w->services, p);
    goto fail;
  }
  p->inited = 1;
  /* In a check, a process an init started and left running is refused:
   * every worker would start its own. */
  if (g_report_fd >= 0 && pkgcheck_child_left()) {
    snprintf(err, errlen, "init of package \"%s\" left a process running",
             p->man.name);
    plugin_unload(w, p);
    return NULL;
  }
  /* A feature package serves what its manifest says, all of it: the
   * routes bound are those declared. (Core plugins may bind fewer.) */
  if (want_kind == NNO_KIND_FEATURE && pkgcheck_routes(p, err, errlen)) {
    plugin_unload(w, p);
    return NULL;
  }
  return p;
fail:
  if (p->dl) {
    if (w->fetcher) fetch_cancel_owner(w->fetcher, p);
    while (p->pending > 0) uv_run(&w->loop, UV_RUN_ONCE);
    dlclose(p->dl);
  }
  plugin_free(p);
  return NULL;
}

/* A package of a sandboxed stack, from its manifest only: the static
 * checks of load_one (manifest, object descriptor as pkgcheck reads it,
 * the stack's wants), no dlopen, no init. Its routes lead to
 * sandbox_handler; the sandbox binds them for real (sandbox_trial checks
 * they are the same). NULL with err set. */
static plugin *load_sandboxed(const nno_config *cfg, const char *root,
                              const char *dir,
                              const char *stack_label,
                              const stack_manifest *sm, const char *sjson,
                              size_t idx, char *err, size_t errlen) {
  snprintf(g_file, sizeof g_file, "%s/package.json", dir);
  plugin *p = calloc(1, sizeof *p);
  if (!p) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  p->so_fd = -1;
  snprintf(p->dir, sizeof p->dir, "%s", dir);
  snprintf(p->stack, sizeof p->stack, "%s", stack_label);
  snprintf(p->stack_id, sizeof p->stack_id, "%s", sm->id);
  snprintf(p->stack_version, sizeof p->stack_version, "%s", sm->version);
  if (!realpath(dir, p->absdir)) snprintf(p->absdir, sizeof p->absdir, "%s", dir);
  if (pkgcheck_package_open(root, dir, &p->man, p->so_path, sizeof p->so_path,
                            &p->so_fd, err, errlen))
    goto fail;
  close(p->so_fd);
  p->so_fd = -1;
  if (pkgcheck_manifest_fits(cfg, &p->man, p->so_path, NNO_KIND_FEATURE, err,
                             errlen))
    goto fail;
  if (pkgcheck_stack_wants(sm, idx, &p->man, err, errlen)) {
    snprintf(g_file, sizeof g_file, "%s", sjson);
    goto fail;
  }
  if (p->man.nrequires > 0 || p->man.nuses > 0) {
    /* A service is a table of pointers into another process. */
    int req = p->man.nrequires > 0;
    snprintf(err, errlen,
             "package %s %s service %s, which a sandboxed stack "
             "cannot reach; run stack %s inprocess (sandbox.inprocess)",
             p->man.name, req ? "requires" : "uses",
             req ? p->man.requires[0].service : p->man.uses[0].service,
             sm->id);
    goto fail;
  }
  p->routes = calloc(p->man.nroutes ? p->man.nroutes : 1, sizeof *p->routes);
  if (!p->routes) goto oom;
  for (size_t i = 0; i < p->man.nroutes; i++) {
    const manifest_route *mr = &p->man.routes[i];
    plugin_route *r = &p->routes[i];
    r->method = strdup(mr->method);
    r->pattern = strdup(mr->path);
    p->nroutes = i + 1;
    if (!r->method || !r->pattern) goto oom;
    r->scope = mr->scope ? mr->scope : "";
    r->target.plugin = p;
    r->target.fn = sandbox_handler;
    r->target.ud = r;
    r->target.scope = r->scope;
    r->target.upload_max = 0;
  }
  p->desc = sandbox_desc();
  p->sbx_index = (uint32_t)idx;
  return p;
oom:
  snprintf(err, errlen, "out of memory");
fail:
  plugin_free(p);
  return NULL;
}

/* Is method+pattern already bound by one of `ps` (the plugins committed to
 * the same router) or by an earlier plugin of the batch? */
static const plugin *route_taken(plugin *const *ps, size_t n, size_t upto,
                                 size_t upto_route, const char *method,
                                 const char *pattern) {
  for (size_t i = 0; i < n && i <= upto; i++) {
    size_t nr = i == upto ? upto_route : ps[i]->nroutes;
    for (size_t j = 0; j < nr; j++)
      if (strcmp(ps[i]->routes[j].method, method) == 0 &&
          strcmp(ps[i]->routes[j].pattern, pattern) == 0)
        return ps[i];
  }
  return NULL;
}

/* Add the routes of `ps` (one stack, or one core plugin plus those already
 * in the core router) to `rt`, all or none, then adopt the plugins. */
static int commit(worker *w, router *rt, plugin **ps, size_t n, size_t first,
                  char *err, size_t errlen) {
  for (size_t i = first; i < n; i++)
    for (size_t j = 0; j < ps[i]->nroutes; j++) {
      const plugin_route *r = &ps[i]->routes[j];
      const plugin *o = route_taken(ps, n, i, j, r->method, r->pattern);
      if (o) {
        snprintf(err, errlen, "route %s %s of package \"%s\" is already "
                 "served by package \"%s\"", r->method, r->pattern,
                 ps[i]->man.name, o->man.name);
        return -1;
      }
    }
  for (size_t i = first; i < n; i++) {
    for (size_t j = 0; j < ps[i]->nroutes; j++) {
      plugin_route *r = &ps[i]->routes[j];
      int rc = router_add(rt, r->method, r->pattern, &r->target);
      /* Upload routes are core plugins' (api.c): listed again where the
       * connection looks when a head announcing a body is complete. */
      if (rc == 0 && r->target.upload_max && rt == w->router) {
        if (!w->upload_router && !(w->upload_router = router_new()))
          rc = NNO_ENOMEM;
        else
          rc = router_add(w->upload_router, r->method, r->pattern, &r->target);
      }
      if (rc) {
        /* Only allocation failure gets here after the check above; the
         * worker cannot serve a partial table. */
        snprintf(err, errlen, "cannot add route %s %s: %s", r->method,
                 r->pattern, nno__strerror(rc));
        return -2;
      }
    }
    ps[i]->next = w->plugins->head;
    w->plugins->head = ps[i];
    w->plugins->count++;
  }
  return 0;
}

static void refuse_log(const char *what, const char *name, const char *err) {
  logline l;
  log_begin(&l, NNO_LOG_ERROR, what);
  log_str(&l, "name", name);
  log_str(&l, "error", err);
  log_end(&l);
}

typedef struct stack_choice {
  char root[PATH_MAX]; /* the stacks folder it was found in */
  char id[65];
  char dir[PATH_MAX];
  semver ver;
  char version[64];
} stack_choice;

/* Collect every {id}/{version}/ folder under `root`. A version found in an
 * earlier root wins over the same one in a later root. */
static void scan_stacks(const char *root, stack_choice *out, size_t *n) {
  DIR *d = opendir(root);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof out->id) continue;
    char sdir[PATH_MAX];
    if (snprintf(sdir, sizeof sdir, "%s/%s", root, e->d_name) >= (int)sizeof sdir ||
        !is_dir(sdir))
      continue;
    DIR *vd = opendir(sdir);
    if (!vd) continue;
    struct dirent *ve;
    while ((ve = readdir(vd)) && *n < MAX_STACKS) {
      semver v;
      if (ve->d_name[0] == '.' || strlen(ve->d_name) >= sizeof out->version ||
          semver_parse(ve->d_name, &v) != 0)
        continue;
      size_t i;
      for (i = 0; i < *n; i++)
        if (strcmp(out[i].id, e->d_name) == 0 && semver_cmp(&out[i].ver, &v) == 0)
          break;
      if (i < *n) continue;
      stack_choice *c = &out[(*n)++];
      snprintf(c->root, sizeof c->root, "%s", root);
      snprintf(c->id, sizeof c->id, "%s", e->d_name);
      snprintf(c->dir, sizeof c->dir, "%s/%s", sdir, ve->d_name);
      snprintf(c->version, sizeof c->version, "%s", ve->d_name);
      c->ver = v;
    }
    closedir(vd);
  }
  closedir(d);
}

static size_t stack_roots(const nno_config *cfg, char roots[][PATH_MAX]) {
  size_t n = 0;
  snprintf(roots[n++], PATH_MAX, "%s/stacks", cfg->data_dir);
  if (cfg->builtin_stacks) snprintf(roots[n++], PATH_MAX, "%s", cfg->builtin_stack_dir);
  for (size_t i = 0; i < cfg->nstacks_dirs; i++)
    snprintf(roots[n++], PATH_MAX, "%s", cfg->stacks_dirs[i]);
  return n;
}

static int cmp_choice(const void *a, const void *b) {
  const stack_choice *x = a, *y = b;
  int c = strcmp(x->id, y->id);
  return c ? c : semver_cmp(&x->ver, &y->ver);
}

/* Load the stack folder `dir` found under `root` whole, or nothing of it
 * (its id and version, when given, must be its manifest's). -2 when the
 * worker cannot go on (out of memory committing routes). */
static int load_stack(worker *w, const char *root, const char *dir,
                      const char *expect_id, const char *expect_version,
                      int isolation, char *err, size_t errlen) {
  stack_manifest sm;
  char sjson[PATH_MAX + 16];
  snprintf(sjson, sizeof sjson, "%s/stack.json", dir);
  snprintf(g_file, sizeof g_file, "%s", sjson);
  /* An installed version is what its archive held, file for file. */
  if (stacks_verify_installed(dir, 0, err, errlen) ||
      stacks_verify_trusted(w->cfg, dir, err, errlen)) {
    snprintf(g_file, sizeof g_file, "%s", dir);
    return -1;
  }
  if (pkgcheck_stack_open(root, dir, expect_id, expect_version, &sm, err,
                          errlen))
    return -1;
  int rc = -1;
  plugin **ps = calloc(sm.npackages ? sm.npackages : 1, sizeof *ps);
  size_t n = 0;
  char label[128];
  snprintf(label, sizeof label, "%s@%s", sm.id, sm.version);
  if (!ps) {
    snprintf(err, errlen, "out of memory");
    goto done;
  }
  for (size_t i = 0; i < sm.npackages; i++) {
    char pdir[PATH_MAX + 64];
    snprintf(pdir, sizeof pdir, "%s/packages/%s", dir, sm.packages[i].name);
    plugin *p = isolation == NNO_ISOLATION_SANDBOX
                    ? load_sandboxed(w->cfg, root, pdir, label, &sm, sjson, i,
                                     err, errlen)
                    : load_one(w, root, pdir, label, NNO_KIND_FEATURE, &sm,
                               sjson, i, err, errlen);
    if (!p) goto done;
    ps[n++] = p;
  }
  snprintf(g_file, sizeof g_file, "%s", sjson);
  stack *st = calloc(1, sizeof *st);
  router *rt = router_new();
  if (!st || !rt) {
    free(st);
    router_free(rt);
    snprintf(err, errlen, "out of memory");
    rc = -2;
    goto done;
  }
  snprintf(st->id, sizeof st->id, "%s", sm.id);
  snprintf(st->version, sizeof st->version, "%s", sm.version);
  snprintf(st->dir, sizeof st->dir, "%s", dir);
  snprintf(st->root, sizeof st->root, "%s", root);
  st->ver = sm.ver;
  st->plugins = ps;
  st->nplugins = n;
  st->isolation = isolation;
  st->builtin = w->cfg->builtin_stacks &&
                strcmp(root, w->cfg->builtin_stack_dir) == 0;
  if (isolation == NNO_ISOLATION_SANDBOX) {
    for (size_t i = 0; i < n; i++) ps[i]->sbx_stack = st;
    /* The trial load: one real sandbox, as serving starts it -- unless
     * this very folder was refused already (sbx_refused.h): a trial that
     * hangs holds the loop up to sandbox.spawn_timeout_ms. */
    char tf[PATH_MAX + 16];
    uint64_t fp = sbx_refused_fingerprint(dir);
    int tr = 0;
    char was[LOADER_ERR_MAX];
    if (sbx_refused_find(dir, fp, tf, sizeof tf, was, sizeof was)) {
      snprintf(err, errlen,
               "%s (refused before; tried again once its folder changes)",
               was);
      tr = -1;
    } else if ((tr = sandbox_trial(w, st, tf, sizeof tf, err, errlen)) ==
               -1) {
      sbx_refused_note(dir, fp, tf, err);
    }
    if (tr != 0) {
      if (tf[0]) snprintf(g_file, sizeof g_file, "%s", tf);
      free(st);
      router_free(rt);
      goto done;
    }
  }
  rc = commit(w, rt, ps, n, 0, err, errlen);
  if (rc != 0) {
    free(st);
    router_free(rt);
    goto done;
  }
  st->router = rt;
  st->man = sm; /* owned by the stack now */
  memset(&sm, 0, sizeof sm);
  if (w->listening) /* installed while serving: ready at once */
    for (size_t i = 0; i < n; i++) {
      const nno_plugin_desc *d = ps[i]->desc;
      if (d->size >= offsetof(nno_plugin_desc, on_host_ready) + sizeof(void *) &&
          d->on_host_ready)
        d->on_host_ready((nno_plugin *)ps[i]);
    }
  ps = NULL;
  /* Keep the list sorted (id, then version): a version installed later
   * goes to its place. */
  stack **tail = &w->plugins->stacks;
  while (*tail) {
    int c = strcmp((*tail)->id, st->id);
    if (c > 0 || (c == 0 && semver_cmp(&(*tail)->ver, &st->ver) > 0)) break;
    tail = &(*tail)->next;
  }
  st->next = *tail;
  *tail = st;
  w->plugins->nstacks++;
  {
    logline l;
    log_begin(&l, NNO_LOG_INFO, "stack loaded");
    log_str(&l, "name", label);
    log_int(&l, "packages", (long long)n);
    log_str(&l, "isolation",
            isolation == NNO_ISOLATION_SANDBOX ? "sandbox" : "inprocess");
    log_end(&l);
    n = 0; /* owned by the plugin set now */
  }
done:
  while (n > 0) plugin_unload(w, ps[--n]);
  free(ps);
  stack_manifest_free(&sm);
  return rc;
}

/* The first name of cfg->core_plugins that is not among `have` (the
 * names of the core plugins found, n of them): 0 when none is missing,
 * else -1 with err naming it. Loading and every check decide with this. */
static int core_missing(const nno_config *cfg, const char *const *have,
                        size_t n, char *err, size_t errlen) {
  /* plugin_config for a plugin that is not there: a typo that would
   * leave the real one with its manifest's values. */
  char cerr[CONFIG_ERR_MAX];
  if (config_plugin_names(cfg, have, n, cerr) != 0) {
    snprintf(err, errlen, "%s", cerr);
    return -1;
  }
  for (size_t i = 0; i < cfg->ncore_plugins; i++) {
    size_t j = 0;
    while (j < n && strcmp(have[j], cfg->core_plugins[i]) != 0) j++;
    if (j == n) {
      snprintf(err, errlen,
               "required core plugin \"%s\" is missing from "
               "\"%s\" (core_plugins)",
               cfg->core_plugins[i], cfg->plugin_dir);
      return -1;
    }
  }
  return 0;
}

static void host_ready(plugin *p);
static void host_ready_one(plugin *p);

int loader_load_core(worker *w, const char *skip, char *err, size_t errlen) {
  const nno_config *cfg = w->cfg;
  snprintf(g_file, sizeof g_file, "%s", cfg->plugin_dir);
  /* Core plugins first: they publish the services packages require. */
  DIR *d = opendir(cfg->plugin_dir);
  if (d) {
    struct dirent *e;
    char names[64][256];
    size_t nn = 0;
    while ((e = readdir(d)) && nn < 64)
      if (e->d_name[0] != '.' && strlen(e->d_name) < 256 &&
          !(skip && strcmp(e->d_name, skip) == 0))
        snprintf(names[nn++], 256, "%s", e->d_name);
    closedir(d);
    qsort(names, nn, 256, (int (*)(const void *, const void *))strcmp);
    for (size_t i = 0; i < nn; i++) {
      char dir[PATH_MAX + 256];
      snprintf(dir, sizeof dir, "%s/%s", cfg->plugin_dir, names[i]);
      if (!is_dir(dir)) continue;
      plugin *p = load_one(w, cfg->plugin_dir, dir, "", NNO_KIND_CORE, NULL,
                           NULL, 0, err, errlen);
      if (!p) {
        /* Core plugins enforce policy (authentication, platform routing):
         * serving without one would open what it guards. */
        refuse_log("core plugin refused", names[i], err);
        return -1;
      }
      /* Check against the core plugins committed before it. */
      plugin *batch[65];
      size_t nb = 0;
      for (plugin *q = w->plugins->head; q && nb < 64; q = q->next) batch[nb++] = q;
      batch[nb++] = p;
      int rc = commit(w, w->router, batch, nb, nb - 1, err, errlen);
      if (rc == -2) return -1;
      if (rc != 0) {
        refuse_log("core plugin refused", names[i], err);
        plugin_unload(w, p);
        return -1;
      }
    }
  }
  snprintf(g_file, sizeof g_file, "%s", cfg->plugin_dir);
  {
    /* Every required core plugin loaded (a failing one stopped us above);
     * `skip` is the one a check loads itself. */
    const char *have[65];
    size_t nh = 0;
    for (plugin *q = w->plugins->head; q && nh < 64; q = q->next)
      have[nh++] = q->man.name;
    if (skip) have[nh++] = skip;
    if (core_missing(cfg, have, nh, err, errlen)) {
      refuse_log("core plugin missing", cfg->plugin_dir, err);
      return -1;
    }
  }
  /* Resource calls of the packages go to the provider a core plugin
   * published, if any. */
  res_bind_provider(w);
  return 0;
}

int loader_load_stack_dir(worker *w, const char *root, const char *dir,
                          const char *id, const char *version, char *err,
                          size_t errlen) {
  /* The check's child and the sandbox itself load in-process. */
  return load_stack(w, root, dir, id, version, NNO_ISOLATION_INPROCESS, err,
                    errlen)
             ? -1
             : 0;
}

int loader_load_stack_as(worker *w, const char *root, const char *dir,
                         const char *id, const char *version, int isolation,
                         char *err, size_t errlen) {
  return load_stack(w, root, dir, id, version, isolation, err, errlen) ? -1
                                                                       : 0;
}

int loader_load_package_dir(worker *w, const char *root, const char *dir,
                            int kind, char *err, size_t errlen) {
  plugin *p = load_one(w, root, dir, kind == NNO_KIND_CORE ? "" : "check@0.0.0",
                       kind, NULL, NULL, 0, err, errlen);
  if (!p) return -1;
  if (kind != NNO_KIND_CORE) {
    /* Alone in its stack's router, in no list: its on_host_ready after
     * the core plugins', as a worker runs them. */
    host_ready(w->plugins->head);
    host_ready_one(p);
    return 0;
  }
  /* A core plugin's routes against those of the others. */
  plugin *batch[65];
  size_t nb = 0;
  for (plugin *q = w->plugins->head; q && nb < 64; q = q->next) batch[nb++] = q;
  batch[nb++] = p;
  int rc = commit(w, w->router, batch, nb, nb - 1, err, errlen);
  if (rc == -1) plugin_unload(w, p);
  return rc ? -1 : 0;
}

typedef struct trial {
  worker *w;
  const stack_choice *sc;
} trial;

/* The trial's child: the stack loaded as the worker would, then gone. */
static void trial_child(void *arg, int fd) {
  trial *t = arg;
  char err[LOADER_ERR_MAX];
  g_report_fd = fd;
  /* The loop's kernel state (epoll, signal pipe) is the worker's: the
   * child gets its own before anything can touch it. */
  if (uv_loop_fork(&t->w->loop) != 0) {
    pkgcheck_child_problem(fd, t->sc->dir, "cannot set up the trial load");
    return;
  }
  if (load_stack(t->w, t->sc->root, t->sc->dir, t->sc->id, t->sc->version,
                 NNO_ISOLATION_INPROCESS, err, sizeof err) != 0) {
    pkgcheck_child_problem(fd, g_file, err);
    return;
  }
  /* What the worker runs after loading, the stack's part of it. */
  loader_host_ready(t->w, t->sc->id, t->sc->version);
}

/* Load the stack `sc` after loading it once in a throw-away child of this
 * worker (pkgcheck_fork): a package whose constructor or init crashes or
 * hangs is refused like one whose init fails, and this worker lives. */
static int try_stack(worker *w, const stack_choice *sc, char *err,
                     size_t errlen) {
  const nno_config *cfg = w->cfg;
  int builtin = cfg->builtin_stacks &&
                strcmp(sc->root, cfg->builtin_stack_dir) == 0;
  if (config_isolation(cfg, sc->id, builtin) == NNO_ISOLATION_SANDBOX)
    /* Its code never runs here: its trial is a sandbox's start. */
    return load_stack(w, sc->root, sc->dir, sc->id, sc->version,
                      NNO_ISOLATION_SANDBOX, err, errlen);
  pkgcheck_report rep;
  memset(&rep, 0, sizeof rep);
  trial t = {w, sc};
  int n = pkgcheck_fork(w->cfg, trial_child, &t, &rep);
  if (n > 0) {
    pkgcheck_problem_text(&rep.v[0], err, errlen);
    pkgcheck_report_free(&rep);
    return -1;
  }
  pkgcheck_report_free(&rep);
  if (n < 0)
    log_warn("stack %s@%s: no trial load (cannot fork: %s); loading it "
             "directly", sc->id, sc->version, strerror(errno));
  return load_stack(w, sc->root, sc->dir, sc->id, sc->version,
                    NNO_ISOLATION_INPROCESS, err, errlen);
}

int loader_load_all(worker *w) {
  char err[LOADER_ERR_MAX];
  if (loader_load_core(w, NULL, err, sizeof err) != 0) return -1;
  if (loader_sync_stacks(w) < 0) return -1;
  host_ready(w->plugins->head);
  return (int)w->plugins->count;
}

/* on_host_ready, in load order (the list is newest first: recurse). */
static void host_ready_one(plugin *p) {
  const nno_plugin_desc *d = p->desc;
  if (d->size >= offsetof(nno_plugin_desc, on_host_ready) + sizeof(void *) &&
      d->on_host_ready) {
    if (g_report_fd >= 0) {
      snprintf(g_file, sizeof g_file, "%s/package.json", p->dir);
      pkgcheck_child_host_ready(g_report_fd, g_file, p->man.name);
    }
    d->on_host_ready((nno_plugin *)p);
  }
}

static void host_ready(plugin *p) {
  if (!p) return;
  host_ready(p->next);
  host_ready_one(p);
}

void loader_host_ready(worker *w, const char *id, const char *version) {
  if (!id) {
    host_ready(w->plugins->head);
    return;
  }
  stack *st = loader_stack_find(w->plugins, id, version);
  for (size_t i = 0; st && i < st->nplugins; i++) {
    if (g_progress) g_progress(i, 1);
    host_ready_one(st->plugins[i]);
  }
}

stack *loader_stack_find(const plugin_set *ps, const char *id,
                         const char *version) {
  for (stack *st = ps->stacks; st; st = st->next) {
    if (st->removed || strcmp(st->id, id) != 0) continue;
    if (version ? strcmp(st->version, version) == 0 : st->newest) return st;
  }
  return NULL;
}

/* Mark the newest loaded (not removed) version of each id. */
static void mark_newest(plugin_set *set) {
  for (stack *st = set->stacks; st; st = st->next) {
    st->newest = 0;
    if (st->removed) continue;
    stack *n = st->next;
    while (n && n->removed) n = n->next;
    st->newest = !n || strcmp(n->id, st->id) != 0;
  }
}

int loader_sync_stacks(worker *w) {
  const nno_config *cfg = w->cfg;
  char err[LOADER_ERR_MAX];
  char roots[CONFIG_MAX_STACK_DIRS + 2][PATH_MAX];
  size_t nroots = stack_roots(cfg, roots);
  stack_choice *sc = calloc(MAX_STACKS, sizeof *sc);
  if (!sc) return -1;
  size_t ns = 0;
  int changed = 0;
  for (size_t i = 0; i < nroots; i++) scan_stacks(roots[i], sc, &ns);
  qsort(sc, ns, sizeof *sc, cmp_choice);
  /* Versions loaded and no longer found (or found elsewhere) go. */
  for (stack *st = w->plugins->stacks; st; st = st->next) {
    if (st->removed) continue;
    size_t i = 0;
    while (i < ns && !(strcmp(sc[i].id, st->id) == 0 &&
                       strcmp(sc[i].version, st->version) == 0 &&
                       strcmp(sc[i].dir, st->dir) == 0))
      i++;
    if (i == ns) {
      st->removed = 1;
      changed = 1;
      logline l;
      log_begin(&l, NNO_LOG_INFO, "stack removed");
      log_str(&l, "name", st->id);
      log_str(&l, "version", st->version);
      log_end(&l);
    }
  }
  stacks_catalogue_reset();
  for (size_t i = 0; i < ns; i++) {
    stack *st = loader_stack_find(w->plugins, sc[i].id, sc[i].version);
    if (st) {
      stacks_catalogue_note(cfg, sc[i].root, sc[i].dir, sc[i].id,
                            sc[i].version, NULL);
      continue;
    }
    int rc = try_stack(w, &sc[i], err, sizeof err);
    if (rc == -2) {
      free(sc);
      return -1;
    }
    if (rc != 0) {
      char label[160];
      snprintf(label, sizeof label, "%s@%s", sc[i].id, sc[i].version);
      refuse_log("stack refused", label, err);
    } else {
      changed = 1;
    }
    stacks_catalogue_note(cfg, sc[i].root, sc[i].dir, sc[i].id, sc[i].version,
                          rc ? err : NULL);
  }
  free(sc);
  mark_newest(w->plugins);
  return changed;
}

void loader_stack_unload(worker *w, stack *st) {
  stack **pp = &w->plugins->stacks;
  while (*pp && *pp != st) pp = &(*pp)->next;
  if (!*pp) return;
  *pp = st->next;
  w->plugins->nstacks--;
  sandbox_stack_gone(st);
  /* Its plugins leave the plugin list, then are finalised, last first. */
  for (size_t i = st->nplugins; i-- > 0;) {
    plugin **q = &w->plugins->head;
    while (*q && *q != st->plugins[i]) q = &(*q)->next;
    if (*q) {
      *q = st->plugins[i]->next;
      w->plugins->count--;
    }
    plugin_unload(w, st->plugins[i]);
  }
  router_free(st->router);
  free(st->plugins);
  stack_manifest_free(&st->man);
  logline l;
  log_begin(&l, NNO_LOG_INFO, "stack unloaded");
  log_str(&l, "name", st->id);
  log_str(&l, "version", st->version);
  log_end(&l);
  free(st);
  mark_newest(w->plugins);
}

void loader_unload_all(worker *w) {
  while (w->plugins->stacks) {
    stack *st = w->plugins->stacks;
    w->plugins->stacks = st->next;
    router_free(st->router);
    free(st->plugins);
    stack_manifest_free(&st->man);
    free(st);
  }
  w->plugins->nstacks = 0;
  /* The plugin list is newest first, which is reverse load order. */
  while (w->plugins->head) {
    plugin *p = w->plugins->head;
    w->plugins->head = p->next;
    w->plugins->count--;
    plugin_unload(w, p);
  }
  w->storage = NULL;
}

int loader_check_core(const nno_config *cfg, FILE *out, char *err,
                      size_t errlen) {
  int problems = 0;
  char e1[LOADER_ERR_MAX];
  /* Names of the plugins found: their manifest's when it reads, else the
   * folder's (a plugin that fails is reported as failing, not missing). */
  char names[64][CONFIG_NAME_MAX + 1];
  const char *have[64];
  size_t nh = 0;
  DIR *d = opendir(cfg->plugin_dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      char dir[PATH_MAX + 256];
      if (e->d_name[0] == '.') continue;
      snprintf(dir, sizeof dir, "%s/%s", cfg->plugin_dir, e->d_name);
      if (!is_dir(dir)) continue;
      char name[CONFIG_NAME_MAX + 1] = "";
      if (check_package_in(cfg, cfg->plugin_dir, dir, name, e1, sizeof e1) != 0) {
        if (out) fprintf(out, "error: core plugin %s: %s\n", e->d_name, e1);
        if (!problems++)
          snprintf(err, errlen, "core plugin %s: %s", e->d_name, e1);
        if (!name[0]) snprintf(name, sizeof name, "%s", e->d_name);
      }
      if (nh < 64) {
        snprintf(names[nh], sizeof names[nh], "%s", name);
        have[nh] = names[nh];
        nh++;
      }
    }
    closedir(d);
  }
  if (core_missing(cfg, have, nh, e1, sizeof e1)) {
    if (out) fprintf(out, "error: %s\n", e1);
    if (!problems++) snprintf(err, errlen, "%s", e1);
  }
  return problems;
}

/* A warning for each id of sandbox.inprocess / sandbox.sandboxed (`key`,
 * `list`) that no stack found has: a typo, or a stack not installed yet. */
static void warn_unknown_ids(const char *key, const char *list,
                             const stack_choice *sc, size_t ns) {
  while (*list) {
    size_t n = strcspn(list, ",");
    size_t i;
    for (i = 0; i < ns; i++)
      if (strlen(sc[i].id) == n && memcmp(sc[i].id, list, n) == 0) break;
    if (n && i == ns)
      fprintf(stderr,
              "warning: %s names stack \"%.*s\", which no stack folder "
              "has (it applies once that stack is installed)\n",
              key, (int)n, list);
    list += n + (list[n] == ',');
  }
}

/* 1 when problem `p` of a stack's check is about a file of a core plugin
 * (one under cfg->plugin_dir), with that plugin's folder name in `name`. */
static int core_problem(const nno_config *cfg, const pkgcheck_problem *p,
                        char *name, size_t cap) {
  size_t n = strlen(cfg->plugin_dir);
  if (!n || strncmp(p->file, cfg->plugin_dir, n) != 0 || p->file[n] != '/')
    return 0;
  const char *b = p->file + n + 1, *e = strchr(b, '/');
  if (!e || e == b || (size_t)(e - b) >= cap) return 0;
  memcpy(name, b, (size_t)(e - b));
  name[e - b] = '\0';
  return 1;
}

/* `text` past a leading `plugin "PATH": ` (the core plugin is named
 * already). */
static const char *strip_plugin_prefix(const char *text) {
  if (strncmp(text, "plugin \"", 8) != 0) return text;
  const char *q = strstr(text + 8, "\": ");
  return q ? q + 3 : text;
}

int loader_check_all(const nno_config *cfg) {
  char err[LOADER_ERR_MAX];
  int problems = loader_check_core(cfg, stderr, err, sizeof err);
  char roots[CONFIG_MAX_STACK_DIRS + 2][PATH_MAX];
  size_t nroots = stack_roots(cfg, roots);
  stack_choice *sc = calloc(MAX_STACKS, sizeof *sc);
  if (!sc) return 1;
  size_t ns = 0;
  for (size_t i = 0; i < nroots; i++) scan_stacks(roots[i], sc, &ns);
  qsort(sc, ns, sizeof *sc, cmp_choice);
  warn_unknown_ids("sandbox.inprocess", cfg->sandbox_inprocess, sc, ns);
  warn_unknown_ids("sandbox.sandboxed", cfg->sandbox_sandboxed, sc, ns);
  /* The init of each stack is run only with the core plugins sound: a
   * check's child loads them first. */
  int core_sound = problems == 0, core_said = 0;
  for (size_t i = 0; i < ns; i++) {
    pkgcheck_report rep;
    memset(&rep, 0, sizeof rep);
    /* Every stack is checked, whatever an earlier one said. */
    int n = pkgcheck_stack_in(cfg, sc[i].root, sc[i].dir, sc[i].id,
                              sc[i].version, core_sound, &rep);
    if (n < 0) {
      fprintf(stderr, "error: stack %s@%s: out of memory\n", sc[i].id,
              sc[i].version);
      problems++;
    }
    for (size_t j = 0; j < rep.n; j++) {
      pkgcheck_problem_text(&rep.v[j], err, sizeof err);
      char core[CONFIG_NAME_MAX + 1];
      if (core_problem(cfg, &rep.v[j], core, sizeof core)) {
        /* The stack's child loads the core plugins first: a core plugin
         * failing there is no fault of the stack, and every stack's
         * child would report it again. */
        if (!core_said) {
          fprintf(stderr, "error: core plugin %s: %s\n", core,
                  strip_plugin_prefix(err));
          problems++;
        }
        core_said = 1;
        continue;
      }
      fprintf(stderr, "error: stack %s@%s: %s\n", sc[i].id, sc[i].version,
              err);
      problems++;
    }
    pkgcheck_report_free(&rep);
  }
  free(sc);
  return problems;
}
