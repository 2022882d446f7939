/* nno project deploy: a release build of the project, uploaded with the
 * key `nno login` stored (POST /api/v1/stacks: the host admits a
 * user_project platform's own stack ids only) and activated on that
 * platform (POST /api/v1/platforms/{p}/stacks). A version this deploy
 * installed whose activation is refused is removed again (its number is
 * not burnt); after a good one, the platform's versions beyond the newest
 * --keep (3) that no platform uses are removed (DELETE
 * /api/v1/stacks/{id}/{version}). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli.h"
#include "login.h"
#include "project.h"
#include "semver.h"

static const char DEPLOY_HELP[] =
    "usage: nno project deploy [--url URL] [--keep N]\n"
    "\n"
    "Build the project for release, upload it to the host you logged in to\n"
    "(nno login; --url when several) and activate it on your platform.\n"
    "A version whose activation is refused is removed again; after a good\n"
    "deploy, versions beyond the newest N (--keep, default 3) that no\n"
    "platform uses are removed. A platform holds a bounded number of\n"
    "versions (stacks.max_owned_versions on the host, default 10).\n"
    "The stack id must be the platform's id, and a stack of that id the\n"
    "operator installed is not yours to add versions to.\n"
    "A version installed before with other bytes is refused: bump\n"
    "\"version\" in package.json and stack.json.\n"
    "\n"
    "examples:\n"
    "  nno project deploy\n"
    "  nno project deploy --url https://nno.example.com\n"
    "  nno project deploy --keep 5\n";

/* The body of a problem's "detail", "" when none. */
static void detail_of(const cli_resp *r, char *out, size_t cap) {
  json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
  const char *d = json_string_value(json_object_get(j, "detail"));
  snprintf(out, cap, "%s", d ? d : "");
  json_decref(j);
}

/* DELETE /stacks/{id}/{version}, quietly: 0 when removed (or gone). */
static int remove_version(cli *c, const char *id, const char *version) {
  char path[CLI_PATH_MAX];
  cli_resp r = {0};
  if (cli_path(path, sizeof path, "/stacks/%s/%s", id, version) ||
      cli_request(c, "DELETE", path, NULL, NULL, &r) != CLI_OK)
    return -1;
  cli_resp_free(&r);
  return r.status == 204 || r.status == 404 ? 0 : -1;
}

/* Versions kept at most by a prune, and the bound of --keep. */
#define KEEP_DEFAULT 3
#define KEEP_MAX 1000
#define PRUNE_MAX 64

/* A version of the stack, as GET /stacks/{id} details it. */
typedef struct ver_use {
  const char *v; /* borrowed from the answer */
  semver sv;
  long in_use;
} ver_use;

/* After a good deploy: remove the versions of `id` beyond the newest
 * `keep` that no platform uses, saying which. Best effort: a failure is
 * reported, the deploy stands. */
static void prune(cli *c, const char *id, long keep) {
  char path[CLI_PATH_MAX];
  json_t *st = NULL;
  if (cli_path(path, sizeof path, "/stacks/%s", id) ||
      cli_call(c, "GET", path, NULL, NULL, &st, NULL) != CLI_OK)
    return;
  json_t *details = json_object_get(st, "details");
  ver_use vs[PRUNE_MAX];
  size_t n = 0, i;
  json_t *d;
  json_array_foreach(details, i, d) {
    const char *v = json_string_value(json_object_get(d, "version"));
    if (!v || n == PRUNE_MAX || semver_parse(v, &vs[n].sv) != 0) continue;
    vs[n].v = v;
    vs[n].in_use = (long)json_integer_value(json_object_get(d, "in_use"));
    /* Insertion in order: newest first. */
    size_t k = n++;
    while (k > 0 && semver_cmp(&vs[k - 1].sv, &vs[k].sv) < 0) {
      ver_use t = vs[k - 1];
      vs[k - 1] = vs[k];
      vs[k] = t;
      k--;
    }
  }
  char done[512] = "";
  for (size_t k = (size_t)keep; k < n; k++) {
    if (vs[k].in_use > 0) continue;
    if (remove_version(c, id, vs[k].v) != 0) {
      fprintf(stderr, "nno: could not remove %s %s (kept)\n", id, vs[k].v);
      continue;
    }
    size_t len = strlen(done);
    snprintf(done + len, sizeof done - len, "%s%s", len ? ", " : "",
             vs[k].v);
  }
  if (done[0])
    printf("removed unused versions of %s: %s (kept the newest %ld; "
           "--keep N)\n", id, done, keep);
  json_decref(st);
}

/* The upload's refusal (403, 409) in the host's words, and what to do
 * about it: the detail names no scope to ask for, so the general hints
 * would not say. CLI_EAPI. */
static int install_refused(const cli_resp *r, const project *pj,
                           const cli_cred *cr) {
  char d[1024], hint[768];
  detail_of(r, d, sizeof d);
  if (r->status == 409 && strstr(d, "stacks.max_owned_versions")) {
    fprintf(stderr,
            "nno: %s\nhint: remove a version no platform uses (DELETE "
            "/api/v1/stacks/%s/VERSION); a good deploy keeps only the "
            "newest --keep N\n",
            d, pj->name);
    return CLI_EAPI;
  }
  if (r->status == 409 && strstr(d, "already installed")) {
    fprintf(stderr,
            "nno: %s %s is already installed on %s from other bytes\n"
            "hint: bump \"version\" in package.json and stack.json, then "
            "deploy again\n",
            pj->name, pj->version, cr->url);
    return CLI_EAPI;
  }
  if (r->status == 403 && strstr(d, "only the operator installs")) {
    /* Not a user_project platform, or a key without stacks:deploy, or
     * one bound to a tenant. */
    snprintf(hint, sizeof hint,
             "deploy takes a key of a user_project platform named %s: the "
             "operator creates it ('nno platform create %s --name NAME "
             "--class user_project'), then 'nno login %s --platform %s'",
             pj->name, pj->name, cr->url, pj->name);
  } else if (r->status == 403 && strstr(d, "installs only the stack")) {
    /* Logged in to another platform than the project's name. */
    snprintf(hint, sizeof hint,
             "project %s deploys to the user_project platform named %s: the "
             "operator creates it ('nno platform create %s --name NAME "
             "--class user_project'), then 'nno login %s --platform %s'",
             pj->name, pj->name, pj->name, cr->url, pj->name);
  } else if (r->status == 403) {
    /* The stack id is the operator's or has versions another installed. */
    snprintf(hint, sizeof hint,
             "stack id %s is not only yours on this host: a project "
             "deploys to a new user_project platform of its own name "
             "(nno project init OTHER, and that platform made for it)",
             pj->name);
  } else {
    snprintf(hint, sizeof hint, "the detail says what the host refused; "
                                "fix it, bump \"version\" and deploy again");
  }
  return cli_api_error_hint(r, hint);
}

int cli_project_deploy(int argc, char **argv, const char *exe_dir) {
  const char *url = NULL;
  long keep = KEEP_DEFAULT;
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(DEPLOY_HELP, stdout);
      return CLI_OK;
    }
    const char *kv = !strcmp(argv[i], "--keep") && i + 1 < argc ? argv[++i]
                     : !strncmp(argv[i], "--keep=", 7)          ? argv[i] + 7
                                                                : NULL;
    if (kv) {
      char *end;
      keep = strtol(kv, &end, 10);
      if (end == kv || *end || keep < 1 || keep > KEEP_MAX)
        return cli_usage_error("project deploy: --keep takes a number of "
                               "versions from 1 to 1000",
                               "nno project deploy --keep 3");
    } else if (!strcmp(argv[i], "--url") && i + 1 < argc)
      url = argv[++i];
    else if (!strncmp(argv[i], "--url=", 6))
      url = argv[i] + 6;
    else
      return cli_usage_error("project deploy: unexpected argument",
                             "nno project deploy --help");
  }
  cli_cred cr;
  char err[PATH_MAX + 256], hint[PATH_MAX + 256];
  if (cli_cred_get(url, &cr, err, hint, sizeof err))
    return cli_usage_error(err, hint);
  project pj;
  if (project_open(NULL, &pj, err, sizeof err))
    return cli_usage_error(err,
                           "run it in a project folder (nno project "
                           "init NAME)");
  char archive[PATH_MAX];
  if (project_build(&pj, 1, NULL, exe_dir, archive, sizeof archive, err,
                    sizeof err)) {
    fprintf(stderr, "nno: %s\nhint: %s\n", err, project_build_hint(err));
    return CLI_EUSAGE;
  }
  FILE *f = fopen(archive, "rb");
  struct stat st;
  if (!f || fstat(fileno(f), &st) != 0) {
    if (f) fclose(f);
    fprintf(stderr, "nno: cannot read %s\n", archive);
    return CLI_EUSAGE;
  }
  cli c;
  memset(&c, 0, sizeof c);
  snprintf(c.url, sizeof c.url, "%s", cr.url);
  c.key_arg = cr.key;
  c.upload = f;
  c.upload_size = (long long)st.st_size;
  cli_resp r;
  int rc = cli_request(&c, "POST", "/stacks", NULL, NULL, &r);
  c.upload = NULL;
  fclose(f);
  if (rc) goto out;
  if (r.status == 403 || r.status == 409) {
    rc = install_refused(&r, &pj, &cr);
    cli_resp_free(&r);
    goto out;
  }
  if (r.status != 200 && r.status != 201) {
    rc = cli_api_error(&r, NULL);
    cli_resp_free(&r);
    goto out;
  }
  int fresh = r.status == 201; /* installed by this deploy */
  json_t *inst = json_loads(r.body, 0, NULL);
  cli_resp_free(&r);
  char id[65], version[65];
  snprintf(id, sizeof id, "%s",
           json_string_value(json_object_get(inst, "id"))
               ? json_string_value(json_object_get(inst, "id"))
               : pj.name);
  snprintf(version, sizeof version, "%s",
           json_string_value(json_object_get(inst, "version"))
               ? json_string_value(json_object_get(inst, "version"))
               : pj.version);
  json_decref(inst);
  char path[CLI_PATH_MAX];
  if (cli_path(path, sizeof path, "/platforms/%s/stacks", cr.platform)) {
    rc = cli_usage_error("the platform id is too long", NULL);
    goto out;
  }
  json_t *body = json_pack("{s:s, s:s}", "stack", id, "version", version);
  rc = cli_request(&c, "POST", path, body, NULL, &r);
  json_decref(body);
  if (rc) goto out; /* no answer: whether it is active is unknown */
  if (r.status < 200 || r.status > 299) {
    /* Installed, not activated: the platform refused this version (its
     * migrations, its requirements) or is busy. The version this deploy
     * installed goes again, so that the fixed project can be deployed
     * under the same version. */
    int removed = fresh && remove_version(&c, id, version) == 0;
    if (removed)
      snprintf(hint, sizeof hint,
               "%s %s was not activated and is removed again: fix what the "
               "detail names and deploy the same version",
               id, version);
    else
      snprintf(hint, sizeof hint,
               r.status == 409
                   ? "%s %s is installed but not active: fix what the "
                     "detail names, bump \"version\" and deploy again (or "
                     "retry when the platform is busy)"
                   : "%s %s is installed but not active: the detail says "
                     "why",
               id, version);
    rc = cli_api_error_hint(&r, hint);
    cli_resp_free(&r);
    goto out;
  }
  cli_resp_free(&r);
  printf("deployed %s %s \xe2\x86\x92 %s/p/%s/\n", id, version, cr.url,
         cr.platform);
  prune(&c, id, keep);
out:
  if (c.curl) curl_easy_cleanup(c.curl);
  return rc;
}
