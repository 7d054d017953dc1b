/*
 * Text diffs for the workspace: the character-level diff that turns a file's
 * old text into its new text as CRDT edits (so blame and merges are exact to
 * the character), and the line-level unified diff that `kith diff` prints.
 * Hand-written Myers O(ND) because no Debian C library diffs by code point;
 * see docs/ARCHITECTURE.md.
 */
#ifndef KITH_WS_TEXTDIFF_H
#define KITH_WS_TEXTDIFF_H

#include <stdbool.h>
#include <stddef.h>

#include "kith/crdt.h" /* kith_patch */

/*
 * Character-level diff of two valid UTF-8 texts. On success *out holds *n
 * patches (positions and lengths in code points) that turn @a into @b when
 * applied in order, each to the result of the one before; their ins pointers
 * point into @b (borrowed). Caller frees *out with kith_free. The diff is
 * minimal where that is cheap and degrades to coarser (line, then whole-hunk)
 * replacements on large, very different inputs, so its cost stays bounded:
 * roughly O((N + M) * min(D, cap)). Returns KITH_OK, KITH_ENOMEM, or KITH_EUTF8
 * when the changed part is not valid UTF-8 (then nothing is returned).
 */
int ws_text_diff(const char *a, size_t alen, const char *b, size_t blen, kith_patch **out,
                 size_t *n);

/*
 * Unified line diff of @a and @b ("diff -u" format: ---/+++ headers labelled
 * @label_a/@label_b, @@ hunks with @context lines of context; a last line
 * without newline gets the "\ No newline at end of file" marker). With
 * @color, ANSI colours as git uses them. Identical texts give an empty
 * string. Caller frees *out (NUL-terminated, *out_len bytes) with kith_free.
 */
int ws_unified_diff(const char *a, size_t alen, const char *b, size_t blen, const char *label_a,
                    const char *label_b, int context, bool color, char **out, size_t *out_len);

#endif
