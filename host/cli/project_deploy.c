/* nno project deploy: a release build of the project, uploaded with the
 * key `nno login` stored (POST /api/v1/stacks: the host admits a
 * user_project platform's own stack ids only) and activated on that
 * platform (POST /api/v1/platforms/{p}/stacks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "cli.h"
#include "login.h"
#include "project.h"

static const char DEPLOY_HELP[] =
    "usage: nno project deploy [--url URL]\n"
    "\n"
    "Build the project for release, upload it to the host you logged in to\n"
    "(nno login; --url when several) and activate it on your platform.\n"
    "The stack id must be the platform's id, and a stack of that id the\n"
    "operator installed is not yours to add versions to.\n"
    "A version installed before with other bytes is refused: bump\n"
    "\"version\" in package.json and stack.json.\n"
    "\n"
    "examples:\n"
    "  nno project deploy\n"
    "  nno project deploy --url https://nno.example.com\n";

/* The body of a problem's "detail", "" when none. */
static void detail_of(const cli_resp *r, char *out, size_t cap) {
  json_t *j = r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
  const char *d = json_string_value(json_object_get(j, "detail"));
  snprintf(out, cap, "%s", d ? d : "");
  json_decref(j);
}

/* The upload's refusal (403, 409) in the host's words, and what to do
 * about it: the detail names no scope to ask for, so the general hints
 * would not say. CLI_EAPI. */
static int install_refused(const cli_resp *r, const project *pj,
                           const cli_cred *cr) {
  char d[1024], hint[768];
  detail_of(r, d, sizeof d);
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
  for (int i = 0; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      fputs(DEPLOY_HELP, stdout);
      return CLI_OK;
    }
    if (!strcmp(argv[i], "--url") && i + 1 < argc)
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
  if (rc) goto out;
  if (r.status < 200 || r.status > 299) {
    /* Installed, not activated: the platform refused this version (its
     * migrations, its requirements) or is busy. */
    snprintf(hint, sizeof hint,
             r.status == 409
                 ? "%s %s is installed but not active: fix what the detail "
                   "names, bump \"version\" and deploy again (or retry when "
                   "the platform is busy)"
                 : "%s %s is installed but not active: the detail says why",
             id, version);
    rc = cli_api_error_hint(&r, hint);
    cli_resp_free(&r);
    goto out;
  }
  cli_resp_free(&r);
  printf("deployed %s %s \xe2\x86\x92 %s/p/%s/\n", id, version, cr.url,
         cr.platform);
out:
  if (c.curl) curl_easy_cleanup(c.curl);
  return rc;
}
