/* The local checking commands: `nno check-package DIR` and
 * `nno stack check DIR|FILE [--json]` (see cli_check.c). Each returns the
 * process's exit status: 0 loadable, 1 problems (on stderr, or the JSON
 * report on stdout with --json), 2 usage. `exe_dir` is the folder of the
 * nno binary (configuration defaults). */
#ifndef NNO_HOST_CLI_CHECK_H
#define NNO_HOST_CLI_CHECK_H

#include <stdio.h>

int cli_check_package(int argc, char **argv, const char *exe_dir);
int cli_stack_check(int argc, char **argv, const char *exe_dir);
void cli_check_usage_package(FILE *f);
void cli_check_usage_stack(FILE *f);

#endif
