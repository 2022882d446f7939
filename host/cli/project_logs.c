/* nno project logs. (Not built yet.) */
#include <stdio.h>

#include "project.h"

int cli_project_logs(int argc, char **argv, const char *exe_dir) {
  (void)argc, (void)argv, (void)exe_dir;
  fprintf(stderr, "nno: not built yet\n");
  return 2;
}
