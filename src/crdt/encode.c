/* Encoding: placeholder until the format lands. */
#include "crdt/crdt_int.h"

int kith_doc_encode(kith_doc *doc, uint8_t **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    return KITH_EUNSUPPORTED;
}

int kith_doc_decode(const uint8_t *buf, size_t len, kith_doc **out)
{
    *out = NULL;
    return KITH_EUNSUPPORTED;
}

int kith_doc_summary(const kith_doc *doc, uint8_t **out, size_t *len)
{
    *out = NULL;
    return KITH_EUNSUPPORTED;
}

int kith_doc_encode_since(kith_doc *doc, const uint8_t *summary, size_t summary_len,
                          uint8_t **out, size_t *len)
{
    *out = NULL;
    return KITH_EUNSUPPORTED;
}

int kith_doc_apply(kith_doc *doc, const uint8_t *buf, size_t len)
{
    return KITH_EUNSUPPORTED;
}
