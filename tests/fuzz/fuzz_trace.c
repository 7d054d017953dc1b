/*
 * fuzz_trace: the editing-trace loader of `kith bench trace` (cli/trace.c)
 * on arbitrary bytes, plain or gzip. It must load or fail with a message,
 * never crash; what it loads must hold together (patches inside their txns,
 * parents earlier than their txn, inserted text inside the text buffer).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/trace.h"

#define MUST(c)                                                                    \
    do {                                                                           \
        if (!(c)) {                                                                \
            fprintf(stderr, "fuzz_trace: %s:%d: %s\n", __FILE__, __LINE__, #c);    \
            abort();                                                               \
        }                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("trace", 0);
    if (fd < 0)
        return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    char path[64], err[512];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct trace t;
    err[0] = 0;
    int rc = trace_load(path, &t, err, sizeof err);
    close(fd);
    if (rc) {
        MUST(err[0] != 0); /* a failure always says why */
        return 0;
    }
    for (size_t i = 0; i < t.ntxns; i++) {
        const struct trace_txn *x = &t.txns[i];
        MUST((size_t)x->first + x->npatches <= t.npatches);
        MUST((size_t)x->first_parent + x->nparents <= t.nparents);
        for (uint32_t k = 0; k < x->nparents; k++)
            MUST(t.parents[x->first_parent + k] < i);
    }
    for (size_t i = 0; i < t.npatches; i++)
        MUST(t.patches[i].ins_off + t.patches[i].ins_len <= t.text_len);
    trace_release(&t);
    return 0;
}
