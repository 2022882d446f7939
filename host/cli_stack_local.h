/* The stack commands that run locally, without a host: `nno stack pack`,
 * `nno stack keygen` and `nno stack sign` (host/stack_archive.h). */
#ifndef NNO_HOST_CLI_STACK_LOCAL_H
#define NNO_HOST_CLI_STACK_LOCAL_H

#include <stdio.h>

/* 1 if `nno stack SUB` is one of them. */
int cli_stack_local_claims(const char *sub);

/* Runs `nno stack SUB ARGS...`: argv[0] is SUB. Exit code: 0, 1 on
 * failure (one `nno:` line and a `hint:` line on stderr), 2 for usage. */
int cli_stack_local_main(int argc, char **argv);

/* One line per command, for `nno --help`. */
void cli_stack_local_summary(FILE *f);

/* "  nno SYNOPSIS" per local stack command (`stack check` included), for
 * `nno stack --help` beside the operator's stack commands. */
void cli_stack_local_synopses(FILE *f);

#endif
