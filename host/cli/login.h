/* The credentials `nno login` stores, for the commands that use them
 * (project deploy, project logs): $XDG_CONFIG_HOME/nno/credentials.json
 * (default ~/.config/nno/), one entry per host URL:
 *   {"URL": {"platform", "key", "key_id", "expires_at"}}
 * The folder is 0700 and the file 0600, written whole (temp + rename); a
 * file that others can read or write is refused, not used. */
#ifndef NNO_CLI_LOGIN_H
#define NNO_CLI_LOGIN_H

#include <stddef.h>

/* One stored login. */
typedef struct cli_cred {
  char url[1024];
  char platform[33];
  char key[512];
  char key_id[17];
  char expires_at[32];
} cli_cred;

/* The login stored for `url` (no trailing slash; NULL: the only one
 * stored) into *out. 0, or -1 with the reason and a hint in err/hint
 * (cap bytes each): none stored, several and no URL given, or a file that
 * cannot be trusted. */
int cli_cred_get(const char *url, cli_cred *out, char *err, char *hint,
                 size_t cap);

/* `nno device approve|deny CODE`: the arguments after "device". */
int cli_device_main(int argc, char **argv, const char *exe_dir);

#endif
