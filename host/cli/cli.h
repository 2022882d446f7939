/* The client: every `nno` command but serve and version, built as the
 * library nno_cli (host/cli/). The kernel (the files of host/) never
 * includes this folder: only host/main.c calls into it.
 *
 * Files: cli.c (dispatch, global options, help), http.c (the one HTTP
 * client), out.c (tables, key: value lines, JSON, CSV, and the request +
 * print helpers every command uses), complete.c (bash completion), and one
 * file per command group, each defining its commands and a cli_group:
 * platform.c, tenant.c, key.c, resource.c, stack.c, check.c, plan.c,
 * usage.c, audit.c, quarantine.c, operator_key.c; project*.c and login.c
 * (project.h) are the developer's commands. */
#ifndef NNO_CLI_CLI_H
#define NNO_CLI_CLI_H

#include <limits.h>
#include <stddef.h>
#include <stdio.h>

#include <curl/curl.h>
#include <jansson.h>

/* Exit codes. */
enum {
  CLI_OK = 0,
  CLI_EAPI = 1,   /* the server answered with an error (or nonsense) */
  CLI_EUSAGE = 2, /* bad command line, missing key, nothing sent */
  CLI_EREACH = 3  /* no answer: refused, unresolvable, timed out */
};

#define CLI_MAX_BODY (64u << 20) /* largest response body read */
#define CLI_CONNECT_TIMEOUT_MS 5000L
#define CLI_TIMEOUT_MS 60000L
#define CLI_PATH_MAX 4096 /* an API path with its query */
#define CLI_KEY_MAX 512   /* an operator key, trimmed */

/* One invocation: where the host is and how to authenticate. */
typedef struct cli {
  char url[1024]; /* base URL, no trailing slash */
  /* The key: from --key or NNO_KEY when `key_arg` is set, else read from
   * `key_path` (DATA/operator.key) before the first request. */
  const char *key_arg;
  char key_path[PATH_MAX];
  int data_given; /* --data or NNO_DATA was set */
  char key[CLI_KEY_MAX];
  int json;   /* --json: print the server's JSON */
  CURL *curl; /* created on the first request, reused */
  /* When set, the next POST sends this file (upload_size bytes) as its
   * body, as application/gzip, instead of JSON. */
  FILE *upload;
  long long upload_size;
} cli;

/* 1 if `k` can be an operator key: 1 to CLI_KEY_MAX-1 printable ASCII
 * characters without spaces. */
int cli_key_ok(const char *k);

/* One HTTP answer. `body` is NUL-terminated (owned; cli_resp_free). */
typedef struct cli_resp {
  long status;
  char *body;
  size_t len;
  char etag[128];
  char reason[96]; /* the status line's reason phrase */
} cli_resp;

/* Sends METHOD base/api/v1PATH with the operator key, `body` (may be NULL)
 * as JSON, and If-Match when `if_match` is not NULL. Returns CLI_OK when an
 * answer came back, whatever its status (then `r` holds it); otherwise
 * prints the one-line error (never the key) and returns CLI_EREACH, or
 * CLI_EAPI for an answer too large to read. */
int cli_request(cli *c, const char *method, const char *path,
                const json_t *body, const char *if_match, cli_resp *r);
void cli_resp_free(cli_resp *r);

/* cli_request, then: a non-2xx status is printed as an API error (returns
 * CLI_EAPI); a 2xx body is parsed into *out (NULL for an empty body; owned
 * by the caller) unless `out` is NULL. `r` (optional) keeps a 2xx answer
 * for its headers or raw body (free it with cli_resp_free); on any other
 * return it is left empty. */
int cli_call(cli *c, const char *method, const char *path, const json_t *body,
             const char *if_match, json_t **out, cli_resp *r);

/* Prints `nno: <status> <title>: <detail>` for an error answer (problem+json
 * or not) on one line and returns CLI_EAPI. `detail` overrides the body's. */
int cli_api_error(const cli_resp *r, const char *detail);
/* The same with the body's detail and `hint` as the "hint:" line instead
 * of the status's general one: for a command that knows the remedy. */
int cli_api_error_hint(const cli_resp *r, const char *hint);

/* Formats an API path into out[n]: each %s in `fmt` is replaced by its
 * argument percent-encoded as one path segment. Returns 0, or -1 when it
 * does not fit. */
int cli_path(char *out, size_t n, const char *fmt, ...);
/* Appends `key=value` (value percent-encoded) as a query parameter; skips a
 * NULL value. Returns 0, or -1 when it does not fit. */
int cli_query(char *out, size_t n, const char *key, const char *value);

/* Prints `nno: <msg>` and, when `hint` is set, `hint: <hint>` on stderr;
 * returns CLI_EUSAGE. */
int cli_usage_error(const char *msg, const char *hint);

/* Output. A column shows the member `key` of each row under `header`. */
typedef struct cli_col {
  const char *header, *key;
} cli_col;

/* An aligned table: the header row, then one row per object in `rows`. */
void cli_table(FILE *f, const cli_col *cols, size_t ncols, const json_t *rows);
/* `key: value` lines, one per member of `obj`, in the server's order. */
void cli_show(FILE *f, const json_t *obj);
/* A JSON value on one line, then a newline. */
void cli_print_json(FILE *f, const json_t *v);
/* The text shown for a value: strings without control characters, "-" for
 * null, scalars in arrays joined by ", ", other arrays and objects as JSON.
 * Owned by the caller (free); NULL when out of memory. */
char *cli_text(const json_t *v);
/* The one sanitiser for strings a host sent that go to a terminal: C0
 * controls, DEL and C1 controls (U+0080..U+009F, UTF-8 0xc2 0x80..0x9f)
 * become '?', in place. A hostile host's "\x1b]0;...\x07" or U+009B
 * (CSI) retitles or clears no terminal. */
void cli_defang(char *s);
/* `s` (NULL: nothing) written to `f` as cli_defang leaves it. */
void cli_put_safe(FILE *f, const char *s);

/* -- commands and groups (one file a group; cli.c lists the groups) ----- */

#define CLI_MAX_POS 3
#define CLI_MAX_OPTS 32
#define CLI_MAX_CMD_OPTS 12 /* options one command takes */

/* A parsed command line: positionals and command options. */
typedef struct cli_args {
  const char *pos[CLI_MAX_POS];
  int npos;
  struct {
    const char *name, *value; /* the table's "name=" or "flag"; flags: "1" */
  } opt[CLI_MAX_OPTS];
  int nopt;
} cli_args;

/* One command: `nno GROUP SUB POSITIONALS... OPTIONS...`. */
typedef struct cli_command {
  const char *group, *sub; /* sub is NULL for `audit` */
  int min_pos, max_pos;
  /* "name=" takes a value, "name=+" one that may be given again, "yes" is
   * a flag. */
  const char *opts[CLI_MAX_CMD_OPTS];
  const char *synopsis, *help;
  int (*run)(cli *c, const cli_args *a);
  /* Lines of examples ("  nno ...\n"), printed under "Example:" by
   * --help; every command has at least one. */
  const char *example;
  /* A local command (no host, no operator key): run instead of `run`, with
   * the words after the group (argv[0] is SUB when the group has
   * subcommands) and the folder of the nno executable; it parses its own
   * options (`opts` only lists them for help and completion). Global
   * options do not apply. */
  int (*local)(int argc, char **argv, const char *exe_dir);
  /* When set, prints the usage and description instead of synopsis and
   * help. */
  void (*usage)(FILE *f);
} cli_command;

/* A command group: `nno NAME ...`, defined by its file. */
typedef struct cli_group {
  const char *name, *summary;
  const cli_command *commands;
  size_t ncommands;
} cli_group;

/* The groups, in the order `nno --help` lists them (cli.c). */
extern const cli_group *const cli_groups[];
extern const size_t cli_ngroups;

extern const cli_group cli_group_platform, cli_group_plan, cli_group_tenant,
    cli_group_key, cli_group_resource, cli_group_stack, cli_group_audit,
    cli_group_quarantine, cli_group_usage, cli_group_operator_key,
    cli_group_check_package, cli_group_completion;

/* -- requests printed (out.c) ---------------------------------------------- */

#define LIST_MAX_ROWS 100000L /* rows a list follows pages for by default */
#define AUDIT_ROWS 100L       /* audit: the newest entries by default */
#define LIMIT_MAX 10000000L
#define PAGE_MAX 500          /* the registry's largest page */
#define RESOURCE_PAGE_MAX 200 /* the provisioning plugin's largest page */
#define LIST_OPTS                                        \
  "  --limit N    show at most N rows (1 to 10000000)\n" \
  "  --all        follow every page, however many rows\n"

/* After a request: an error status is printed; a 2xx object is printed as
 * the server sent it (--json) or as `key: value` lines. Frees `r`. */
int cli_finish(cli *c, cli_resp *r);
/* cli_request, then cli_finish. */
int cli_single(cli *c, const char *method, const char *path,
               const json_t *body);
/* A 2xx answer without content: `done` on stdout unless --json. */
int cli_no_content(cli *c, const char *method, const char *path,
                   const char *done);
/* The usage error for an argument too long for a request path. */
int cli_too_long(void);
/* GET `base` (a path, maybe with a query) page after page, following
 * next_cursor, until `want` rows: *all gets them (owned), *first the first
 * page's object (owned, NULL unless `first`), *more whether rows were
 * left. `paged`: the largest page the endpoint's limit takes, 0 when it
 * takes none. */
int cli_collect(cli *c, const char *base, long want, long paged,
                json_t **all_out, json_t **first, int *more_out);
/* On stderr, that rows were left (unless --limit was given). */
void cli_more_note(const cli_args *a, int more, long want);
/* cli_collect() every row wanted, then print them as one JSON array
 * (--json) or a table. */
int cli_list(cli *c, const cli_args *a, const char *cmd, const char *base,
             long dflt, long paged, const cli_col *cols, size_t ncols);

/* The value of option `name` (without "--"), or NULL when not given. */
const char *cli_opt(const cli_args *a, const char *name);
/* The rows a list command wants from --limit/--all, `dflt` without them;
 * -1 after printing a usage error (`cmd` names the command). */
long cli_rows_wanted(const cli_args *a, long dflt, const char *cmd);

/* -- plans (plan.c) ------------------------------------------------------- */

/* nno plan list | show NAME | create NAME ... | update NAME ... */
int cli_plan_list(cli *c, const cli_args *a);
int cli_plan_show(cli *c, const cli_args *a);
int cli_plan_create(cli *c, const cli_args *a);
int cli_plan_update(cli *c, const cli_args *a);
/* The options create and update take, and their help. */
#define CLI_PLAN_OPTS                                                         \
  {                                                                           \
    "requests-per-month=", "storage-bytes=", "users=", "api-keys=", "rate=+", \
        "soft-pct=", "grace-pct=", "grace-days=", "price="                    \
  }
#define CLI_PLAN_OPTS_HELP                                                   \
  "  --requests-per-month N   requests admitted a calendar month (0: no\n"   \
  "                           limit)\n"                                      \
  "  --storage-bytes N        bytes of all the platform's resources\n"       \
  "  --users N                user accounts of the platform\n"               \
  "  --api-keys N             live API keys of the platform\n"               \
  "  --rate C=R/B[,C=R/B]     rate limits: class C (platform, key, user,\n"  \
  "                           anonymous) gets R requests a second, bursts\n" \
  "                           of B; repeatable\n"                            \
  "  --soft-pct N             warn past N% of the monthly quota (1..100)\n"  \
  "  --grace-pct N            admit N% past the quota, warned (0..100)\n"    \
  "  --grace-days N           days a failed payment is tolerated (0..90)\n"  \
  "  --price P                the payment provider's price (price_...),\n"   \
  "                           '' for none\n"

/* -- usage (usage.c) ---------------------------------------------------- */

/* `nno usage --platform P [--from D] [--to D] [--by B] [--csv]`. */
int cli_usage_cmd(cli *c, const cli_args *a);
/* Rows as CSV (RFC 4180: CRLF, quoted where needed), the column keys as
 * the header line; null and absent values are empty fields. */
void cli_csv(FILE *f, const cli_col *cols, size_t ncols, const json_t *rows);

/* -- local commands ------------------------------------------------------- */

/* `nno check-package DIR` and `nno stack check DIR|FILE [--json]`
 * (check.c). Each returns the process's exit status: 0 loadable, 1
 * problems (on stderr, or the JSON report on stdout with --json), 2 usage.
 * `exe_dir` is the folder of the nno binary (configuration defaults). */
int cli_check_package(int argc, char **argv, const char *exe_dir);
int cli_stack_check(int argc, char **argv, const char *exe_dir);
void cli_check_usage_package(FILE *f);
void cli_check_usage_stack(FILE *f);

/* -- the entry points (cli.c), called by host/main.c ---------------------- */

/* Runs `nno ARGS...` (argv: the arguments after `nno`) for every command
 * but serve and version: the operator's commands (HTTP clients of a
 * running host), the local ones (stack pack, check-package, project,
 * login...), help and completion. Returns the process exit code: 0
 * success, 1 an API error (or one the server answered with), 2 a usage
 * error, 3 the host cannot be reached. Errors are one `nno: ...` line and
 * one `hint: ...` line on stderr. `exe_dir`: the folder of the nno
 * executable. */
int cli_main(int argc, char **argv, const char *exe_dir);

/* The top-level usage text, listing every command group. */
void cli_usage(FILE *f);

/* `nno completion bash` (complete.c): a bash completion script made from
 * the command groups. */
int cli_completion(int argc, char **argv, const char *exe_dir);

#endif
