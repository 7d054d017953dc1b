/*
 * cmd_ai_tokenize.c: `kith ai tokenize --model M [--no-bos] [--special]`:
 * reads text on stdin and prints its token ids, space-separated, on one line,
 * as the model's own tokenizer gives them (useful to check prompts and to
 * compare with llama.cpp). Uses only the public API (kith/ai.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmds.h"
#include "kith/ai.h"
#include "kith/kith.h"

static const char usage[] =
    "usage: kith ai tokenize --model M [--no-bos] [--special] < text\n"
    "\n"
    "Prints the token ids of the text on stdin, space-separated.\n"
    "\n"
    "  -m, --model M   GGUF model or vocab file (default: $KITH_MODEL)\n"
    "  --no-bos        do not add BOS/EOS (they follow the model's metadata otherwise)\n"
    "  --special       turn control-token text (e.g. <|eot_id|>) into those tokens\n"
    "  -h, --help      this help\n";

/* All of stdin; NULL on a read error or out of memory. */
static char *read_stdin(size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            if (ferror(stdin)) {
                free(buf);
                return NULL;
            }
            break;
        }
        if (n == cap) {
            char *nb = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    *len = n;
    return buf;
}

int cmd_ai_tokenize(int argc, char **argv)
{
    const char *model = getenv("KITH_MODEL");
    unsigned flags = KITH_TOKENIZE_ADD_SPECIAL;
    kith_vocab *v = NULL;
    int32_t *ids = NULL;
    size_t n = 0, len = 0;
    char err[256];
    char *text = NULL;
    int rc, status = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage, stdout);
            return 0;
        } else if (!strcmp(a, "--no-bos")) {
            flags &= ~(unsigned)KITH_TOKENIZE_ADD_SPECIAL;
        } else if (!strcmp(a, "--special")) {
            flags |= KITH_TOKENIZE_PARSE_SPECIAL;
        } else if (!strcmp(a, "-m") || !strcmp(a, "--model")) {
            if (i + 1 >= argc)
                return cli_error("'%s' needs a file; see 'kith ai tokenize --help'", a);
            model = argv[++i];
        } else if (!strncmp(a, "--model=", 8)) {
            model = a + 8;
        } else {
            return cli_error("unknown option '%s'; see 'kith ai tokenize --help'", a);
        }
    }
    if (!model || !*model)
        return cli_error("no model: give --model M or set KITH_MODEL");
    rc = kith_vocab_load(model, &v, err, sizeof(err));
    if (rc)
        return cli_error("cannot load the tokenizer of '%s': %s", model, err);
    text = read_stdin(&len);
    if (!text) {
        cli_error("cannot read stdin");
        goto out;
    }
    rc = kith_tokenize_ex(v, text, len, flags, &ids, &n);
    if (rc) {
        cli_error("cannot tokenize: %s", kith_strerror(rc));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        printf(i ? " %d" : "%d", (int)ids[i]);
    putchar('\n');
    status = fflush(stdout) == 0 ? 0 : 1;
    if (status)
        cli_error("cannot write the ids");
out:
    kith_free(ids);
    free(text);
    kith_vocab_free(v);
    return status;
}
