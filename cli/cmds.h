/*
 * The kith command's verbs. Each lives in cli/cmd_<verb>.c and gets argv
 * from the verb on (argv[0] is the verb). Returns the process exit status.
 */
#ifndef KITH_CLI_CMDS_H
#define KITH_CLI_CMDS_H

int cmd_bench(int argc, char **argv);
int cmd_ai(int argc, char **argv);
/* `kith ai tokenize`, called by cmd_ai (argv[0] is "tokenize"). */
int cmd_ai_tokenize(int argc, char **argv);

/* Prints "kith: error: <msg>" on stderr; returns 1 for `return die(...)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
