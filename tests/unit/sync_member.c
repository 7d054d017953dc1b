/*
 * Membership chain: the genesis makes the owner; owners and admins add,
 * remove and invite within their authority; an invite admits exactly one
 * device, only with the capability key and only before it expires; a
 * removal moves the key epoch and (REMOVE_AT) names the removed device's
 * cut-off, while a plain REMOVE of an older chain still verifies; ops that
 * do not link to the head, are mis-signed, tampered or malformed change
 * nothing.
 */
#include <sodium.h>

#include "kith/kith.h"
#include "kith/sync.h"
#include "tt.h"

struct dev {
    uint8_t pk[32], sk[64];
};

static uint8_t ws[16];

static void dev(struct dev *d)
{
    if (kith_device_keygen(d->pk, d->sk) != KITH_OK)
        abort();
}

/* Builds with @rc_build, applies; returns the apply result. */
#define APPLY(m, call)                                                                 \
    ({                                                                                 \
        uint8_t *op_ = NULL;                                                           \
        size_t len_ = 0;                                                               \
        int rc_ = (call);                                                              \
        if (rc_ == KITH_OK)                                                            \
            rc_ = kith_members_apply((m), op_, len_);                                  \
        kith_free(op_);                                                                \
        rc_;                                                                           \
    })

static kith_members *genesis(const struct dev *owner)
{
    kith_members *m = NULL;
    uint8_t *op = NULL;
    size_t len = 0;
    if (kith_members_new(ws, &m) || kith_member_op_genesis(ws, owner->sk, 1000, &op, &len) ||
        kith_members_apply(m, op, len))
        abort();
    kith_free(op);
    return m;
}

TT_TEST(test_genesis_and_roles)
{
    randombytes_buf(ws, sizeof ws);
    struct dev o, a, w, r;
    dev(&o), dev(&a), dev(&w), dev(&r);
    kith_members *m = genesis(&o);
    TT_EQ(kith_members_role(m, o.pk), KITH_ROLE_OWNER);
    TT_EQ(kith_members_length(m), 1);
    TT_ASSERT(!memcmp(kith_members_head(m), kith_members_genesis(m), 32));
    TT_OK(APPLY(m, kith_member_op_add(m, o.sk, a.pk, KITH_ROLE_ADMIN, 2000, &op_, &len_)));
    TT_OK(APPLY(m, kith_member_op_add(m, a.sk, w.pk, KITH_ROLE_WRITER, 2001, &op_, &len_)));
    TT_OK(APPLY(m, kith_member_op_add(m, a.sk, r.pk, KITH_ROLE_READER, 2002, &op_, &len_)));
    TT_EQ(kith_members_role(m, a.pk), KITH_ROLE_ADMIN);
    TT_EQ(kith_members_role(m, w.pk), KITH_ROLE_WRITER);
    TT_EQ(kith_members_role(m, r.pk), KITH_ROLE_READER);
    TT_EQ(kith_members_count(m), 4);
    /* writers cannot add; admins cannot make owners or touch owners */
    struct dev x;
    dev(&x);
    TT_EQ(APPLY(m, kith_member_op_add(m, w.sk, x.pk, KITH_ROLE_READER, 3, &op_, &len_)),
          KITH_EPERM);
    TT_EQ(APPLY(m, kith_member_op_add(m, a.sk, x.pk, KITH_ROLE_OWNER, 3, &op_, &len_)),
          KITH_EPERM);
    TT_EQ(APPLY(m, kith_member_op_remove(m, a.sk, o.pk, 0, 3, &op_, &len_)), KITH_EPERM);
    /* the last owner cannot be removed or demoted */
    TT_EQ(APPLY(m, kith_member_op_remove(m, o.sk, o.pk, 0, 3, &op_, &len_)), KITH_EINVAL);
    TT_EQ(APPLY(m, kith_member_op_add(m, o.sk, o.pk, KITH_ROLE_ADMIN, 3, &op_, &len_)),
          KITH_EINVAL);
    TT_EQ(kith_members_length(m), 4);
    /* removal: epoch moves, role gone */
    TT_EQ(kith_members_epoch(m), 0);
    TT_OK(APPLY(m, kith_member_op_remove(m, a.sk, w.pk, 0, 4000, &op_, &len_)));
    TT_EQ(kith_members_epoch(m), 1);
    TT_EQ(kith_members_role(m, w.pk), KITH_ROLE_NONE);
    /* removed devices sign nothing that counts */
    TT_EQ(APPLY(m, kith_member_op_remove(m, w.sk, r.pk, 0, 5, &op_, &len_)), KITH_EPERM);
    TT_EQ(APPLY(m, kith_member_op_remove(m, a.sk, w.pk, 0, 5, &op_, &len_)), KITH_EINVAL);
    kith_members_free(m);
}

TT_TEST(test_chain_links)
{
    struct dev o, a;
    dev(&o), dev(&a);
    kith_members *m = genesis(&o), *m2 = genesis(&o);
    uint8_t *op1 = NULL, *op2 = NULL;
    size_t l1, l2;
    TT_OK(kith_member_op_add(m, o.sk, a.pk, KITH_ROLE_WRITER, 10, &op1, &l1));
    TT_OK(kith_member_op_add(m, o.sk, a.pk, KITH_ROLE_READER, 11, &op2, &l2));
    TT_OK(kith_members_apply(m, op1, l1));
    /* op2 was built against the old head: stale */
    TT_EQ(kith_members_apply(m, op2, l2), KITH_EINVAL);
    /* replaying op1 again does not link either */
    TT_EQ(kith_members_apply(m, op1, l1), KITH_EINVAL);
    /* a second genesis is refused */
    uint8_t *g = NULL;
    size_t gl;
    TT_OK(kith_member_op_genesis(ws, a.sk, 1, &g, &gl));
    TT_EQ(kith_members_apply(m, g, gl), KITH_EINVAL);
    /* a chain must start with a genesis */
    kith_members *e = NULL;
    TT_OK(kith_members_new(ws, &e));
    TT_EQ(kith_members_apply(e, op1, l1), KITH_EINVAL);
    /* same ops -> same head on another replica */
    TT_OK(kith_members_apply(m2, op1, l1));
    TT_ASSERT(!memcmp(kith_members_head(m), kith_members_head(m2), 32));
    /* another workspace's chain */
    uint8_t ws2[16];
    memcpy(ws2, ws, 16);
    ws2[0] ^= 1;
    kith_members *o2 = NULL;
    TT_OK(kith_members_new(ws2, &o2));
    TT_EQ(kith_members_apply(o2, g, gl), KITH_EINVAL);
    kith_free(g);
    kith_free(op1);
    kith_free(op2);
    kith_members_free(m);
    kith_members_free(m2);
    kith_members_free(e);
    kith_members_free(o2);
}

TT_TEST(test_tampered_ops)
{
    struct dev o, a;
    dev(&o), dev(&a);
    kith_members *m = genesis(&o);
    uint8_t *op = NULL;
    size_t len;
    TT_OK(kith_member_op_add(m, o.sk, a.pk, KITH_ROLE_WRITER, 10, &op, &len));
    for (size_t i = 0; i < len; i++) {
        op[i] ^= 0x01;
        int rc = kith_members_apply(m, op, len);
        op[i] ^= 0x01;
        if (rc == KITH_OK)
            TT_FAIL_("byte %zu flipped was accepted", i);
    }
    TT_EQ(kith_members_length(m), 1);
    TT_EQ(kith_members_apply(m, op, len - 1), KITH_ECORRUPT);
    TT_OK(kith_members_apply(m, op, len));
    kith_member_op p;
    TT_OK(kith_member_op_parse(op, len, &p));
    TT_EQ(p.type, KITH_MOP_ADD);
    TT_EQ(p.role, KITH_ROLE_WRITER);
    TT_ASSERT(!memcmp(p.subject, a.pk, 32));
    TT_ASSERT(!memcmp(p.signer, o.pk, 32));
    kith_free(op);
    kith_members_free(m);
}

TT_TEST(test_invite_join)
{
    struct dev o, j, j2;
    dev(&o), dev(&j), dev(&j2);
    kith_members *m = genesis(&o);
    kith_invite inv;
    memset(&inv, 0, sizeof inv);
    kith_invite_random(&inv);
    uint8_t cap_pk[32];
    kith_invite_cap_pk(inv.cap_seed, cap_pk);
    TT_OK(APPLY(m, kith_member_op_invite(m, o.sk, cap_pk, KITH_ROLE_WRITER, 100000, 50, &op_,
                                         &len_)));
    int role;
    uint64_t exp;
    TT_OK(kith_members_invite(m, cap_pk, &role, &exp));
    TT_EQ(role, KITH_ROLE_WRITER);
    TT_EQ(exp, 100000);
    /* the same capability cannot be invited twice */
    TT_EQ(APPLY(m, kith_member_op_invite(m, o.sk, cap_pk, KITH_ROLE_READER, 1, 50, &op_, &len_)),
          KITH_EINVAL);
    /* a join without the right capability seed */
    uint8_t wrong[32];
    randombytes_buf(wrong, 32);
    TT_EQ(APPLY(m, kith_member_op_join(m, j.sk, wrong, 60, &op_, &len_)), KITH_EINVAL);
    /* after expiry */
    TT_EQ(APPLY(m, kith_member_op_join(m, j.sk, inv.cap_seed, 100001, &op_, &len_)),
          KITH_EINVAL);
    /* a forged capability signature (device signs, capability part swapped) */
    uint8_t *op = NULL;
    size_t len;
    TT_OK(kith_member_op_join(m, j.sk, inv.cap_seed, 60, &op, &len));
    uint8_t *forged = NULL;
    size_t fl;
    TT_OK(kith_member_op_join(m, j2.sk, inv.cap_seed, 60, &forged, &fl));
    memcpy(forged + 90 + 32, op + 90 + 32, 64); /* j's cap signature on j2's op */
    /* re-sign as j2 so only the capability signature is wrong */
    unsigned char msg[400];
    memcpy(msg, "kith-member-v1", 14);
    memcpy(msg + 14, forged, fl - 64);
    crypto_sign_detached(forged + fl - 64, NULL, msg, 14 + fl - 64, j2.sk);
    TT_EQ(kith_members_apply(m, forged, fl), KITH_EAUTH);
    kith_free(forged);
    /* the real join */
    TT_OK(kith_members_apply(m, op, len));
    kith_free(op);
    TT_EQ(kith_members_role(m, j.pk), KITH_ROLE_WRITER);
    TT_EQ(kith_members_invite(m, cap_pk, &role, &exp), KITH_ENOTFOUND);
    /* works once */
    TT_EQ(APPLY(m, kith_member_op_join(m, j2.sk, inv.cap_seed, 61, &op_, &len_)), KITH_EINVAL);
    TT_EQ(kith_members_role(m, j2.pk), KITH_ROLE_NONE);
    /* writers cannot invite */
    uint8_t cap2[32];
    kith_invite_random(&inv);
    kith_invite_cap_pk(inv.cap_seed, cap2);
    TT_EQ(APPLY(m, kith_member_op_invite(m, j.sk, cap2, KITH_ROLE_READER, 1, 1, &op_, &len_)),
          KITH_EPERM);
    kith_members_free(m);
}

TT_TEST(test_parse_malformed)
{
    kith_member_op p;
    uint8_t junk[300] = {1, 1};
    TT_EQ(kith_member_op_parse(junk, 10, &p), KITH_ECORRUPT);
    TT_EQ(kith_member_op_parse(junk, 154, &p), KITH_OK); /* genesis-sized */
    TT_EQ(kith_member_op_parse(junk, 155, &p), KITH_ECORRUPT);
    junk[1] = 9;
    TT_EQ(kith_member_op_parse(junk, 154, &p), KITH_ECORRUPT);
    junk[0] = 2;
    TT_EQ(kith_member_op_parse(junk, 154, &p), KITH_EVERSION);
    junk[0] = 1;
    junk[1] = KITH_MOP_ADD;
    junk[90 + 32] = 9; /* role out of range */
    TT_EQ(kith_member_op_parse(junk, 90 + 33 + 64, &p), KITH_ECORRUPT);
}

/* A plain REMOVE (type 3), as chains written before REMOVE_AT hold it. */
static uint8_t *legacy_remove(const kith_members *m, const struct dev *signer, const uint8_t *pk,
                              size_t *len)
{
    uint8_t *op = NULL;
    size_t l = 0;
    if (kith_member_op_remove(m, signer->sk, pk, 0, 77, &op, &l) != KITH_OK || l != 194)
        abort();
    op[1] = KITH_MOP_REMOVE;
    unsigned char msg[14 + 122];
    memcpy(msg, "kith-member-v1", 14);
    memcpy(msg + 14, op, 122);
    crypto_sign_detached(op + 122, NULL, msg, sizeof msg, signer->sk);
    *len = 186;
    return op;
}

TT_TEST(test_remove_cutoff)
{
    struct dev o, w, w2, r;
    dev(&o), dev(&w), dev(&w2), dev(&r);
    kith_members *m = genesis(&o);
    TT_OK(APPLY(m, kith_member_op_add(m, o.sk, w.pk, KITH_ROLE_WRITER, 2, &op_, &len_)));
    TT_OK(APPLY(m, kith_member_op_add(m, o.sk, w2.pk, KITH_ROLE_WRITER, 3, &op_, &len_)));
    TT_OK(APPLY(m, kith_member_op_add(m, o.sk, r.pk, KITH_ROLE_READER, 4, &op_, &len_)));
    uint64_t last = 0;
    int was = 0;
    TT_EQ(kith_members_cutoff(m, w.pk, &last, &was), KITH_ENOTFOUND); /* a member */
    /* encoding: type 6, 194 bytes, the seq big-endian after the device id */
    uint8_t *op = NULL;
    size_t len = 0;
    TT_OK(kith_member_op_remove(m, o.sk, w.pk, 0x0102030405060708ull, 5, &op, &len));
    TT_EQ(len, 194);
    TT_EQ(op[0], 1);
    TT_EQ(op[1], KITH_MOP_REMOVE_AT);
    TT_EQ(op[90 + 32], 0x01);
    TT_EQ(op[90 + 39], 0x08);
    kith_member_op p;
    TT_OK(kith_member_op_parse(op, len, &p));
    TT_EQ(p.type, KITH_MOP_REMOVE_AT);
    TT_EQ(p.last_seq, 0x0102030405060708ull);
    TT_ASSERT(!memcmp(p.subject, w.pk, 32));
    TT_EQ(kith_member_op_parse(op, len - 1, &p), KITH_ECORRUPT);
    /* the seq is signed: changing it breaks the signature */
    op[90 + 39] ^= 1;
    TT_EQ(kith_members_apply(m, op, len), KITH_EAUTH);
    op[90 + 39] ^= 1;
    TT_OK(kith_members_apply(m, op, len));
    kith_free(op);
    TT_EQ(kith_members_role(m, w.pk), KITH_ROLE_NONE);
    TT_EQ(kith_members_epoch(m), 1);
    TT_OK(kith_members_cutoff(m, w.pk, &last, &was));
    TT_EQ(last, 0x0102030405060708ull);
    TT_EQ(was, KITH_ROLE_WRITER);
    /* same authority rules as REMOVE: a writer may not remove */
    TT_EQ(APPLY(m, kith_member_op_remove(m, w2.sk, r.pk, 1, 6, &op_, &len_)), KITH_EPERM);
    /* a plain REMOVE (older chains) still verifies and names no cut-off */
    op = legacy_remove(m, &o, w2.pk, &len);
    TT_OK(kith_member_op_parse(op, len, &p));
    TT_EQ(p.type, KITH_MOP_REMOVE);
    TT_EQ(p.last_seq, 0);
    TT_OK(kith_members_apply(m, op, len));
    kith_free(op);
    TT_EQ(kith_members_epoch(m), 2);
    TT_EQ(kith_members_cutoff(m, w2.pk, &last, &was), KITH_ENOTFOUND);
    /* re-added: a member again, no cut-off; removed again: the new one */
    TT_OK(APPLY(m, kith_member_op_add(m, o.sk, w.pk, KITH_ROLE_WRITER, 7, &op_, &len_)));
    TT_EQ(kith_members_cutoff(m, w.pk, &last, &was), KITH_ENOTFOUND);
    TT_OK(APPLY(m, kith_member_op_remove(m, o.sk, w.pk, 42, 8, &op_, &len_)));
    TT_OK(kith_members_cutoff(m, w.pk, &last, &was));
    TT_EQ(last, 42);
    kith_members_free(m);
}

TT_MAIN(TT_CASE(test_genesis_and_roles), TT_CASE(test_chain_links), TT_CASE(test_tampered_ops),
        TT_CASE(test_invite_join), TT_CASE(test_parse_malformed), TT_CASE(test_remove_cutoff))
