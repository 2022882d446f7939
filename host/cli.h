/* The operator CLI: `nno platform|tenant|stack|audit|operator-key ...`, an
 * HTTP client of a running host's /api/v1 (libcurl, blocking). It knows the
 * API only as documented JSON over HTTP, nothing of the registry inside. */
#ifndef NNO_HOST_CLI_H
#define NNO_HOST_CLI_H

#include <stdio.h>

/* 1 if argv (the arguments after `nno`) is an operator command: its first
 * word is one of the CLI's commands, possibly after global options such as
 * `--url URL` or `--json`; 0 otherwise. */
int cli_claims(int argc, char **argv);

/* Runs the operator command in argv (the arguments after `nno`) and returns
 * the process exit code: 0 success, 1 an API error (or one the server
 * answered with), 2 a usage error, 3 the host cannot be reached. Errors are
 * one line on stderr (usage errors add a `hint:` line). */
int cli_main(int argc, char **argv);

/* `nno help COMMAND [SUBCOMMAND]`: prints the help of that command. */
int cli_help(int argc, char **argv);

/* One line per operator command for the top-level usage text. */
void cli_usage_summary(FILE *f);

#endif
