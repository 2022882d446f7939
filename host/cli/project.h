/* The developer's commands: `nno project init|build|test|dev|deploy|logs`
 * and `nno login|logout`. Local commands: they need no host URL or
 * operator key (deploy and logs use the credentials `nno login` stored).
 *
 * Ownership of the files:
 *   project.c         dispatch of `nno project`, help, init, build, env
 *   project_dev.c     dev (a local host, watch, rebuild, swap, logs) and test
 *   project_deploy.c  deploy
 *   login.c           login, logout, the stored credentials
 *   project_logs.c    logs
 * Every entry point takes the arguments after its command word and the
 * folder of the nno executable, prints errors as `nno: ...` plus a `hint:`
 * line on stderr, and returns an exit code (0 ok, 1 the server refused,
 * 2 usage or local failure, 3 host unreachable). */
#ifndef NNO_CLI_PROJECT_H
#define NNO_CLI_PROJECT_H

#include <limits.h>
#include <stddef.h>

/* A project folder, as package.json and stack.json describe it. */
typedef struct project {
  char dir[PATH_MAX];   /* absolute, the folder holding package.json */
  char name[65];        /* package name = stack id */
  char version[65];     /* package.json "version" */
} project;

/* Find the project holding `start` (NULL: the current folder), looking up
 * the tree for package.json beside stack.json. 0, or -1 with `err`. */
int project_open(const char *start, project *pj, char *err, size_t cap);

/* Compile the package and stage it as a stack folder under
 * DIR/build/stack/{name}/{version}/ (or `version` when not NULL, e.g.
 * "0.1.0-dev.3"), then pack it into `archive` (cap bytes) under
 * DIR/build/ or DIR/dist/ (release). `release`: optimised, reproducible
 * flags. The compiler's output goes to `out` (the terminal) as it comes.
 * 0, or -1 with `err` ("compile failed", "pack failed: ..."). */
int project_build(const project *pj, int release, const char *version,
                  const char *exe_dir, char *archive, size_t cap, char *err,
                  size_t errcap);

/* The "hint:" line for project_build's `err`: what to do about it (the
 * compiler's, the loader's or a file's refusal). Static text. */
const char *project_build_hint(const char *err);

/* `PKG_CONFIG_PATH` made to find this nno's nno-plugin.pc first, set in
 * the environment of this process (its children inherit it). */
void project_pkgconfig_env(const char *exe_dir);

int cli_project_main(int argc, char **argv, const char *exe_dir);
int cli_project_dev(int argc, char **argv, const char *exe_dir);
int cli_project_test(int argc, char **argv, const char *exe_dir);
int cli_project_deploy(int argc, char **argv, const char *exe_dir);
int cli_project_logs(int argc, char **argv, const char *exe_dir);
int cli_login_main(int argc, char **argv, const char *exe_dir);
int cli_logout_main(int argc, char **argv, const char *exe_dir);

#endif
