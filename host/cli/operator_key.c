/* nno operator-key rotate: a new operator key, written where the CLI
 * read the old one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli.h"

/* -- operator-key ---------------------------------------------------------- */

/* Replaces `path` with `key` and a newline, mode 0600, atomically. */
static int write_key(const char *path, const char *key) {
  char tmp[PATH_MAX];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >=
      (int)sizeof tmp) {
    errno = ENAMETOOLONG;
    return -1;
  }
  int fd =
      open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return -1;
  size_t n = strlen(key);
  int ok = write(fd, key, n) == (ssize_t)n && write(fd, "\n", 1) == 1 &&
           fsync(fd) == 0;
  int saved = errno;
  if (close(fd) != 0 && ok) ok = 0, saved = errno;
  if (ok && rename(tmp, path) == 0) return 0;
  if (ok) saved = errno;
  unlink(tmp);
  errno = saved;
  return -1;
}

static int operator_key_rotate(cli *c, const cli_args *a) {
  /* Save where the key was read from, or into --data/NNO_DATA; never into
   * ./var when the key came from --key or NNO_KEY (another host's file). */
  const char *save = !c->key_arg || c->data_given ? c->key_path : NULL;
  int show = cli_opt(a, "show") != NULL;
  if (!save && !show && !c->json)
    return cli_usage_error("operator-key rotate: nowhere to save the new key",
                           "pass --data DIR to write DIR/operator.key, or "
                           "--show to print it");
  json_t *j = NULL;
  cli_resp r;
  int rc = cli_call(c, "POST", "/operator-key/rotate", NULL, NULL, &j, &r);
  if (rc) return rc;
  const char *key = json_string_value(json_object_get(j, "key"));
  const char *server_path = json_string_value(json_object_get(j, "path"));
  if (!server_path) server_path = json_string_value(json_object_get(j, "file"));
  if (key && !cli_key_ok(key)) key = NULL;
  int saved = 0;
  if (key && save) {
    if (write_key(save, key) == 0) {
      saved = 1;
    } else {
      fprintf(stderr,
              "nno: the key was rotated but cannot be written to "
              "%s: %s\n",
              save, strerror(errno));
      /* The old key is dead now: showing the new one beats losing it. */
      if (!server_path) show = 1;
      rc = CLI_EAPI;
    }
  }
  char where[PATH_MAX + 64] = "";
  if (saved) {
    char abs[PATH_MAX];
    snprintf(where, sizeof where, "%s", realpath(save, abs) ? abs : save);
  } else if (server_path) {
    snprintf(where, sizeof where, "%s (on the host)", server_path);
  }
  if (c->json) {
    fwrite(r.body, 1, r.len, stdout);
    if (r.len && r.body[r.len - 1] != '\n') fputc('\n', stdout);
  } else if (show && key) {
    printf("%s\n", key);
  }
  FILE *msg = c->json || show ? stderr : stdout;
  if (where[0])
    fprintf(msg, "new operator key written to %s\n", where);
  else if (!key)
    fprintf(msg,
            "operator key rotated; the answer named neither the key nor "
            "where it was written\n");
  else if (!show && !c->json)
    fprintf(stderr, "nno: the new key was not saved\n");
  cli_resp_free(&r);
  json_decref(j);
  return rc;
}

/* -- the command table ----------------------------------------------------- */

/* clang-format off */
static const cli_command commands[] = {
    {"operator-key", "rotate", 0, 0, {"show"}, "operator-key rotate [--show]",
     "Replaces the operator key: the old one stops working at once. The new\n"
     "key is written to the key file the CLI read (or DATA/operator.key with\n"
     "--data/NNO_DATA) with mode 0600; only its path is printed.\n\n"
     "  --show   print the new key on stdout (so does --json, in the JSON)\n",
     operator_key_rotate,
     "  nno operator-key rotate --data /var/lib/nno\n", NULL, NULL},
};
/* clang-format on */

const cli_group cli_group_operator_key = {
    "operator-key", "rotate: replace the operator key", commands,
    sizeof commands / sizeof commands[0]};
