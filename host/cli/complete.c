/* `nno completion bash`: a bash completion script written from the command
 * groups, so that it knows every group, subcommand and option the table
 * does and cannot drift from it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* The kernel's own commands (host/main.c) and their options. */
static const char *const kernel_words = "serve version help";
static const char *const serve_opts =
    "--listen --data --workers --config --set --check --help";
static const char *const global_opts = "--url --key --data --json --help";

/* "--name" for each option of `cmd`, space-separated, then its globals. */
static void print_opts(FILE *f, const cli_command *cmd) {
  for (int k = 0; k < CLI_MAX_CMD_OPTS && cmd->opts[k]; k++)
    fprintf(f, "--%.*s ", (int)strcspn(cmd->opts[k], "="), cmd->opts[k]);
  fputs(cmd->local ? "--help" : global_opts, f);
}

/* A bash case pattern of every option that takes a value ("--a|--b"), so
 * that the script skips the value when it looks for GROUP and SUB. */
static void print_value_opts(FILE *f) {
  char seen[4096] = "|--url|--key|--data|--listen|--workers|--config|--set|";
  size_t len = strlen(seen);
  for (size_t i = 0; i < cli_ngroups; i++)
    for (size_t j = 0; j < cli_groups[i]->ncommands; j++) {
      const cli_command *c = &cli_groups[i]->commands[j];
      for (int k = 0; k < CLI_MAX_CMD_OPTS && c->opts[k]; k++) {
        char one[64];
        size_t n = strcspn(c->opts[k], "=");
        if (c->opts[k][n] != '=') continue;
        int w = snprintf(one, sizeof one, "|--%.*s|", (int)n, c->opts[k]);
        if (w < 0 || (size_t)w >= sizeof one || strstr(seen, one) ||
            len + (size_t)w >= sizeof seen)
          continue;
        memcpy(seen + len, one + 1, (size_t)w); /* "--x|" and the NUL */
        len += (size_t)w - 1;
      }
    }
  /* Without the first and last '|': a case pattern. */
  fprintf(f, "%.*s", (int)(len - 2), seen + 1);
}

static void print_script(FILE *f) {
  fputs(
      "# bash completion for nno, written by 'nno completion bash'.\n"
      "# Load it with: source <(nno completion bash)\n"
      "_nno() {\n"
      "  local cur=${COMP_WORDS[COMP_CWORD]} group= sub= subs= opts= "
      "w i skip=0\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    w=${COMP_WORDS[i]}\n"
      "    if ((skip)); then skip=0; continue; fi\n"
      "    case $w in\n"
      "      --*=*) continue ;;\n"
      "      ",
      f);
  print_value_opts(f);
  fputs(
      ") skip=1; continue ;;\n"
      "      -*) continue ;;\n"
      "    esac\n"
      "    if [[ -z $group ]]; then group=$w\n"
      "    elif [[ -z $sub ]]; then sub=$w; fi\n"
      "  done\n"
      "  case $group in\n",
      f);
  fprintf(f, "    '') subs=\"%s", kernel_words);
  for (size_t i = 0; i < cli_ngroups; i++)
    fprintf(f, " %s", cli_groups[i]->name);
  fprintf(f, "\"; opts=\"%s --version\" ;;\n", global_opts);
  fprintf(f, "    serve) opts=\"%s\" ;;\n", serve_opts);
  fputs("    version) opts=\"--json --help\" ;;\n", f);
  fputs("    help) [[ -z $sub ]] && subs=\"serve version", f);
  for (size_t i = 0; i < cli_ngroups; i++)
    fprintf(f, " %s", cli_groups[i]->name);
  fputs("\" ;;\n", f);
  for (size_t i = 0; i < cli_ngroups; i++) {
    const cli_group *g = cli_groups[i];
    fprintf(f, "    %s)\n", g->name);
    if (!g->commands[0].sub) { /* no subcommands: options only */
      fputs("      opts=\"", f);
      print_opts(f, &g->commands[0]);
      fputs("\" ;;\n", f);
      continue;
    }
    fputs("      case $sub in\n        '') subs=\"", f);
    for (size_t j = 0; j < g->ncommands; j++)
      fprintf(f, "%s%s", j ? " " : "", g->commands[j].sub);
    fputs("\"; opts=\"--help\" ;;\n", f);
    for (size_t j = 0; j < g->ncommands; j++) {
      fprintf(f, "        %s) opts=\"", g->commands[j].sub);
      print_opts(f, &g->commands[j]);
      fputs("\" ;;\n", f);
    }
    fputs("      esac ;;\n", f);
  }
  fputs(
      "  esac\n"
      "  if [[ $cur == -* ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\"))\n"
      "  elif [[ -n $subs ]]; then\n"
      "    COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
      "  else\n"
      "    COMPREPLY=($(compgen -f -- \"$cur\"))\n"
      "  fi\n"
      "}\n"
      "complete -F _nno nno\n",
      f);
}

int cli_completion(int argc, char **argv, const char *exe_dir) {
  (void)exe_dir;
  /* argv[0] is "bash", the one shell written for. */
  if (argc > 1) {
    char msg[128];
    snprintf(msg, sizeof msg, "completion bash: unexpected argument '%.32s'",
             argv[1]);
    return cli_usage_error(msg, "source <(nno completion bash)");
  }
  print_script(stdout);
  return fflush(stdout) == 0 ? CLI_OK : CLI_EAPI;
}

/* clang-format off */
static const cli_command commands[] = {
    {"completion", "bash", .synopsis = "completion bash",
     .local = cli_completion,
     .help = "Prints a bash completion script for nno's commands, subcommands\n"
             "and options. Add the example's line to ~/.bashrc to load it in\n"
             "every shell.\n",
     .example = "  source <(nno completion bash)\n"},
};
/* clang-format on */

const cli_group cli_group_completion = {
    "completion", "print a shell completion script (bash)", commands,
    sizeof commands / sizeof commands[0]};
