/* nno project: dispatch, help, init, build, env. (Being written.) */
#include <stdio.h>
#include <string.h>

#include "project.h"

int cli_project_main(int argc, char **argv, const char *exe_dir) {
  if (argc >= 1 && !strcmp(argv[0], "dev"))
    return cli_project_dev(argc - 1, argv + 1, exe_dir);
  if (argc >= 1 && !strcmp(argv[0], "test"))
    return cli_project_test(argc - 1, argv + 1, exe_dir);
  if (argc >= 1 && !strcmp(argv[0], "deploy"))
    return cli_project_deploy(argc - 1, argv + 1, exe_dir);
  if (argc >= 1 && !strcmp(argv[0], "logs"))
    return cli_project_logs(argc - 1, argv + 1, exe_dir);
  fprintf(stderr, "nno: project: not built yet\n");
  return 2;
}
