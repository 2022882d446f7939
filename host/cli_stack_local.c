/* `nno stack pack|keygen|sign`: stack archives made and signed on the
 * operator's machine (no host involved). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "stack_archive.h"
#include "cli_stack_local.h"

static const struct {
  const char *sub, *usage, *help;
} cmds[] = {
    {"pack", "nno stack pack DIR [-o FILE|DIR]",
     "Packs the stack folder DIR (stack.json and packages/{name}/ with each\n"
     "package's manifest, library, migrations/ and ui/) into a reproducible\n"
     "{id}-{version}.tar.gz with a CHECKSUMS file, in the current folder or\n"
     "in -o (a folder, or the file to write). Prints \"SHA256  PATH\".\n"},
    {"keygen", "nno stack keygen NAME",
     "Writes a new Ed25519 key pair: NAME.key (secret, mode 0600) and\n"
     "NAME.pub (the line to add to a host's stacks.trusted_keys file).\n"
     "Never overwrites. Prints the key id.\n"},
    {"sign", "nno stack sign FILE --key NAME.key [-o OUT]",
     "Signs the archive FILE (its CHECKSUMS) with the secret key: writes it\n"
     "again with a SIGNATURE file, in place or to OUT. Prints \"OUT "
     "KEYID\".\n"},
};
#define NCMDS (sizeof cmds / sizeof *cmds)

int cli_stack_local_claims(const char *sub) {
  for (size_t i = 0; i < NCMDS; i++)
    if (!strcmp(sub, cmds[i].sub)) return 1;
  return 0;
}

void cli_stack_local_summary(FILE *f) {
  fprintf(f,
          "  stack pack D     pack a stack folder into a .tar.gz archive\n"
          "  stack keygen N   new signing key pair N.key and N.pub\n"
          "  stack sign F     sign a stack archive with --key N.key\n");
}

void cli_stack_local_synopses(FILE *f) {
  fprintf(f, "  nno stack check DIR|FILE [--json] [--config FILE] "
             "[--set KEY=VALUE]...\n");
  for (size_t i = 0; i < NCMDS; i++) fprintf(f, "  %s\n", cmds[i].usage);
}

static int usage_error(size_t c, const char *msg) {
  fprintf(stderr, "nno: stack %s: %s\n", cmds[c].sub, msg);
  fprintf(stderr, "hint: usage: %s\n", cmds[c].usage);
  return 2;
}

static int failure(size_t c, const char *msg, const char *hint) {
  fprintf(stderr, "nno: stack %s: %s\n", cmds[c].sub, msg);
  fprintf(stderr, "hint: %s\n", hint);
  return 1;
}

int cli_stack_local_main(int argc, char **argv) {
  size_t c = 0;
  while (c < NCMDS && strcmp(argv[0], cmds[c].sub)) c++;
  if (c == NCMDS) return 2;
  const char *pos[2] = {0}, *out = NULL, *key = NULL;
  int npos = 0;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      printf("usage: %s\n\n%s", cmds[c].usage, cmds[c].help);
      return 0;
    }
    const char **slot = NULL;
    if (c != 1 && (!strcmp(a, "-o") || !strcmp(a, "--output")))
      slot = &out;
    else if (c == 2 && !strcmp(a, "--key"))
      slot = &key;
    if (slot) {
      if (i + 1 == argc) {
        char msg[64];
        snprintf(msg, sizeof msg, "%s needs a value", a);
        return usage_error(c, msg);
      }
      *slot = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      char msg[96];
      snprintf(msg, sizeof msg, "unknown option '%.48s'", a);
      return usage_error(c, msg);
    } else if (npos == 1) {
      return usage_error(c, "too many arguments");
    } else {
      pos[npos++] = a;
    }
  }
  if (npos != 1) return usage_error(c, "missing argument");
  char err[ARCHIVE_ERR_MAX + 256], id[17];

  if (c == 0) { /* pack */
    char path[PATH_MAX], hex[65];
    if (archive_pack(pos[0], out, path, sizeof path, err, sizeof err) != 0) {
      /* The hint is about what failed: the folder read, or where to write. */
      struct stat st;
      int dir_ok = stat(pos[0], &st) == 0 && S_ISDIR(st.st_mode) &&
                   strstr(err, "stack.json") == NULL &&
                   strncmp(err, pos[0], strlen(pos[0])) != 0;
      return failure(c, err,
                     dir_ok && out
                         ? "-o is a folder that exists, or a file in one"
                         : "DIR is a stack folder: stack.json and "
                           "packages/{name}/ (e.g. "
                           "build/share/nno/stacks/default/1.0.0)");
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || archive_sha256_fd(fd, hex) != 0) {
      snprintf(err, sizeof err, "%s: %s", path, strerror(errno));
      if (fd >= 0) close(fd);
      return failure(c, err, "the archive was written; read it back by hand");
    }
    close(fd);
    printf("%s  %s\n", hex, path);
    return 0;
  }
  if (c == 1) { /* keygen */
    if (archive_keygen(pos[0], id, err, sizeof err) != 0)
      return failure(c, err,
                     "choose another NAME (existing keys are never "
                     "overwritten)");
    printf("%s\n", id);
    return 0;
  }
  if (!key) return usage_error(c, "--key NAME.key is required");
  if (archive_sign(pos[0], key, out, id, err, sizeof err) != 0)
    return failure(c, err,
                   "FILE is an archive written by 'nno stack pack', the key "
                   "a NAME.key written by 'nno stack keygen NAME'");
  printf("%s %s\n", out ? out : pos[0], id);
  return 0;
}
