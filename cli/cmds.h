/*
 * The kith command's verbs. Each lives in cli/cmd_<verb>.c and gets argv
 * from the verb on (argv[0] is the verb). Returns the process exit status.
 */
#ifndef KITH_CLI_CMDS_H
#define KITH_CLI_CMDS_H

#include <stddef.h>

int cmd_bench(int argc, char **argv);
int cmd_ai(int argc, char **argv);
/* `kith ai tokenize`, called by cmd_ai (argv[0] is "tokenize"). */
int cmd_ai_tokenize(int argc, char **argv);
/* `kith ai pull` (cmd_ai_pull.c), called by cmd_ai. */
int cmd_ai_pull(int argc, char **argv);
/* `kith ai draft|summarize|catchup|ask|review` (cmd_ai_ws.c), called by cmd_ai. */
int cmd_ai_draft(int argc, char **argv);
int cmd_ai_review(int argc, char **argv);
int cmd_ai_summarize(int argc, char **argv);
int cmd_ai_catchup(int argc, char **argv);
int cmd_ai_ask(int argc, char **argv);
/* Finds the model as `kith ai run` does (--model @opt, $KITH_MODEL, models
 * folder, bundled) and loads it: 0, its path in @path; or prints an error
 * and returns 1. The caller frees *m with kith_model_free. */
struct kith_model;
int cli_ai_load_model(const char *opt, struct kith_model **m, char *path, size_t cap);
/* The model `kith ai run` uses for @opt (a path or a name in the models
 * folder; NULL: KITH_MODEL, the models folder, then the bundled one) into
 * @out: 0, or 1 after printing why there is none. */
int cli_find_model(const char *opt, char *out, size_t cap);
/* The user's models folder ($XDG_DATA_HOME/kith/models or
 * ~/.local/share/kith/models) into @buf; 0 if there is no HOME or it is too long. */
int cli_ai_models_dir(char *buf, size_t cap);

/* Workspace verbs (cmd_ws.c, cmd_history.c). */
int cmd_init(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_blame(int argc, char **argv);
int cmd_cat(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_check(int argc, char **argv);
/* Suggestions and comments (cmd_notes.c). */
int cmd_suggest(int argc, char **argv);
int cmd_suggestions(int argc, char **argv);
int cmd_comments(int argc, char **argv);
int cmd_accept(int argc, char **argv);
int cmd_reject(int argc, char **argv);

/* True when stdout is a terminal that takes colour (and NO_COLOR is unset). */
int cli_color(void);
/* "2026-11-27 16:40" in local time, or ISO 8601 UTC with @iso. */
void cli_time(char *buf, size_t cap, long long ms, int iso);

/* Prints "kith: error: <msg>" on stderr; returns 1 for `return die(...)`. */
int cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
