/* nno login and nno logout: the device-code flow and the stored credentials. (Not built yet.) */
#include <stdio.h>

#include "project.h"

int cli_login_main(int argc, char **argv, const char *exe_dir) {
  (void)argc, (void)argv, (void)exe_dir;
  fprintf(stderr, "nno: not built yet\n");
  return 2;
}
int cli_logout_main(int argc, char **argv, const char *exe_dir) {
  (void)argc, (void)argv, (void)exe_dir;
  fprintf(stderr, "nno: not built yet\n");
  return 2;
}
