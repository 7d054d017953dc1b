/*
 * Which paths of a workspace folder are not documents: .kithignore files
 * (gitignore syntax, one per folder, deeper ones taking precedence) on top of
 * built-in defaults (.git/, .kith/, editor swap, lock and backup files, kith's
 * own temporary files).
 */
#ifndef KITH_WS_IGNORE_H
#define KITH_WS_IGNORE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ws_ignore ws_ignore;

/* A rule set holding the defaults only. Caller frees with ws_ignore_free. */
int ws_ignore_new(ws_ignore **out);
void ws_ignore_free(ws_ignore *ig);

/*
 * Adds the rules of a .kithignore found in folder @base (relative to the
 * workspace root, "" for the root itself, no leading or trailing '/') whose
 * bytes are @text/@len. Rules apply to paths under @base only; later files
 * (deeper folders, added while walking down) win over earlier ones, and in a
 * file later lines win. Malformed lines are skipped, as git does.
 */
int ws_ignore_add(ws_ignore *ig, const char *base, const char *text, size_t len);

/* True when @path (relative to the root, '/'-separated) is ignored; @is_dir
 * says whether it is a folder (for rules ending in '/'). Callers do not ask
 * about paths below an ignored folder: like git, a file in an ignored folder
 * cannot be re-included. */
bool ws_ignore_match(const ws_ignore *ig, const char *path, bool is_dir);

#endif
