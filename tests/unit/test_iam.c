/* Unit tests for the pure parts of the IAM core plugin, linked without the
 * host: scope matching (scope.c), token formats and the key table
 * (keys.c), the session cache (session.c), the manifest config
 * (config.c), the rate-limit helpers (limits.c) and the store (store.c,
 * on an in-memory database with the registry's tables reduced to what
 * IAM's reference). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "internal.h"

/* ---- scopes -------------------------------------------------------------- */

static int covers(const char *granted, const char *need) {
  return iam_scope_covers(granted, strlen(granted), need);
}

static int subset(const char *granted, const char *want) {
  return iam_scopes_subset(granted, strlen(granted), want);
}

static void test_scope_covers_basic(void **st) {
  (void)st;
  assert_true(covers("tenants:read", "tenants:read"));
  assert_false(covers("tenants:read", "tenants:list"));
  assert_true(covers("*", "tenants:read"));
  assert_true(covers("*", "features:hello:write"));
  assert_false(covers("", "tenants:read"));
  assert_false(covers("   ", "tenants:read"));
  /* "prefix:*" covers anything below the prefix, at any depth. */
  assert_true(covers("tenants:*", "tenants:read"));
  assert_true(covers("tenants:*", "tenants:write"));
  assert_true(covers("features:*", "features:hello:read"));
  assert_true(covers("features:hello:*", "features:hello:read"));
  assert_false(covers("features:hello:*", "features:other:read"));
  assert_false(covers("tenants:*", "tenants:")); /* nothing after the colon */
  assert_false(covers("tenants:*", "tenants"));
  assert_false(covers("tenants:*", "keys:read"));
}

static void test_scope_covers_write_read(void **st) {
  (void)st;
  assert_true(covers("tenants:write", "tenants:read"));
  assert_true(covers("features:hello:write", "features:hello:read"));
  assert_false(covers("tenants:read", "tenants:write"));
  assert_false(covers("tenants:write", "keys:read"));
  assert_false(covers("tenants:write", "tenant:read"));
  assert_false(covers("tenants:write", "xtenants:read"));
  assert_false(covers("tenants:write", "features:tenants:read"));
  assert_false(covers("features:tenants:write", "tenants:read"));
  assert_false(covers(":write", ":read"));
  assert_false(covers("write", "read"));
  assert_false(covers("tenants:write", "tenants:read:x"));
}

static void test_scope_covers_no_partial_names(void **st) {
  (void)st;
  assert_false(covers("tenants:wr", "tenants:write"));
  assert_false(covers("tenants:write", "tenants:wr"));
  assert_false(covers("tenants:readx", "tenants:read"));
  assert_false(covers("tenants:read", "tenants:readx"));
  assert_false(covers("ten:*", "tenants:read"));
  assert_false(covers("ten*", "tenants:read"));
  assert_false(covers("tenants*", "tenants:read"));
  assert_false(covers("tenants:r*", "tenants:read"));
  assert_false(covers("**", "tenants:read"));
  assert_false(covers("*:read", "tenants:read"));
  assert_false(covers("tenants", "tenants:read"));
  /* The length passed bounds the list: bytes past it are not looked at. */
  assert_false(iam_scope_covers("tenants:read", 9, "tenants:read"));
  assert_true(iam_scope_covers("tenants:read", 9, "tenants:r"));
  assert_false(iam_scope_covers("tenants:*", 8, "tenants:read"));
  assert_true(iam_scope_covers("keys:read tenants:read", 9, "keys:read"));
  assert_false(iam_scope_covers("keys:read tenants:read", 9, "tenants:read"));
}

static void test_scope_covers_lists(void **st) {
  (void)st;
  const char *g = "  keys:read    tenants:write features:*  ";
  assert_true(covers(g, "keys:read"));
  assert_true(covers(g, "tenants:write"));
  assert_true(covers(g, "tenants:read"));
  assert_true(covers(g, "features:hello:read"));
  assert_false(covers(g, "keys:write"));
  assert_false(covers(g, "*"));
  assert_false(covers(g, "platforms:read"));
  assert_true(covers("a:read b:read *", "z:write"));
}

static void test_scopes_subset(void **st) {
  (void)st;
  assert_true(subset("keys:read tenants:write", "keys:read"));
  assert_true(subset("keys:read tenants:write", "tenants:read keys:read"));
  assert_true(
      subset("keys:read tenants:write", "  tenants:write   keys:read "));
  assert_true(subset("keys:read", ""));
  assert_true(subset("keys:read", "   "));
  assert_true(subset("", ""));
  assert_false(subset("", "keys:read"));
  assert_false(subset("keys:read tenants:write", "keys:read keys:write"));
  assert_false(subset("keys:read", "keys:read tenants:read"));
  /* A wildcard is only granted by the same or a wider wildcard. */
  assert_true(subset("*", "*"));
  assert_true(subset("*", "tenants:*"));
  assert_true(subset("tenants:*", "tenants:*"));
  assert_true(subset("features:*", "features:hello:*"));
  assert_true(subset("features:* keys:read", "features:hello:* keys:read"));
  assert_false(subset("tenants:*", "*"));
  assert_false(subset("tenants:write", "tenants:*"));
  assert_false(subset("tenants:read tenants:write", "tenants:*"));
  assert_false(subset("features:hello:*", "features:*"));
  assert_false(subset("features:*", "*"));
  assert_false(subset("tenants:write keys:*", "*"));
  assert_false(subset("ten:*", "tenants:read"));
  /* A requested scope longer than any valid one is refused outright. */
  char longw[80];
  memset(longw, 'a', sizeof longw - 1);
  longw[sizeof longw - 1] = '\0';
  assert_false(subset("*", longw));
  char w64[65];
  memset(w64, 'a', 64);
  w64[64] = '\0';
  assert_true(subset("*", w64));
}

static void inter(const char *a, const char *b, const char *want) {
  char out[IAM_SCOPES_MAX];
  assert_int_equal(iam_scopes_intersect(a, b, out, sizeof out), 0);
  assert_string_equal(out, want);
}

/* A session's effective scopes: what it was given, narrowed to what the
 * platform's users hold now; never more than either side. */
static void test_scopes_intersect(void **st) {
  (void)st;
  inter("features:*", "features:*", "features:*");
  inter("features:*", "features:hello:read", "features:hello:read");
  inter("features:hello:read", "features:*", "features:hello:read");
  inter("features:*", "platform:read", "");
  inter("features:* keys:write", "keys:read features:hello:*",
        "keys:read features:hello:*");
  inter("*", "tenants:read keys:write", "tenants:read keys:write");
  inter("", "features:*", "");
  inter("features:*", "", "");
  inter("a:b a:b", "a:*", "a:b");
  char out[4];
  assert_int_equal(iam_scopes_intersect("abc:def", "abc:def", out, sizeof out),
                   -1);
}

static void test_scope_valid(void **st) {
  (void)st;
  assert_true(iam_scope_valid("tenants:read", 12));
  assert_true(iam_scope_valid("*", 1));
  assert_true(iam_scope_valid("features:hello-world_v1.2:*", 27));
  assert_true(iam_scope_valid("a", 1));
  assert_false(iam_scope_valid("", 0));
  assert_false(iam_scope_valid("x", 0));
  char s[66];
  memset(s, 'a', sizeof s);
  assert_true(iam_scope_valid(s, 64));
  assert_false(iam_scope_valid(s, 65));
  const char *bad[] = {"Tenants:read", "tenants read",
                       "tenants/read", "tenants:read\n",
                       "tenants:réad", "tenants;read",
                       "tenants\"",    "tenants+x",
                       "tenants@x",    "A"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_false(iam_scope_valid(bad[i], strlen(bad[i])));
  /* Only `len` bytes are looked at. */
  assert_true(iam_scope_valid("keys BAD", 4));
  assert_false(iam_scope_valid("keys\0x", 6));
}

/* ---- tokens and the key table -------------------------------------------- */

static int is_lhex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int is_b64url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static void check_token(const char *prefix) {
  char tok[NNO_IAM_TOKEN_MAX], id[17];
  unsigned char hash[32], want[32];
  memset(tok, 'Z', sizeof tok);
  memset(id, 'Z', sizeof id);
  iam_token_new(prefix, tok, sizeof tok, id, hash);
  size_t pl = strlen(prefix);
  assert_int_equal(strlen(tok), pl + 16 + 1 + 43);
  assert_memory_equal(tok, prefix, pl);
  for (size_t i = 0; i < 16; i++) assert_true(is_lhex(tok[pl + i]));
  assert_int_equal(tok[pl + 16], '_');
  for (size_t i = 0; i < 43; i++) assert_true(is_b64url(tok[pl + 17 + i]));
  assert_int_equal(strlen(id), 16);
  assert_memory_equal(id, tok + pl, 16);
  crypto_hash_sha256(want, (const unsigned char *)tok, strlen(tok));
  assert_memory_equal(hash, want, 32);

  char sid[17];
  assert_int_equal(iam_token_split(tok, strlen(tok), prefix, sid), 0);
  assert_string_equal(sid, id);
}

static void test_token_new_format(void **st) {
  (void)st;
  check_token(IAM_KEY_PREFIX);
  check_token(IAM_SESSION_PREFIX);
  assert_true(strlen(IAM_KEY_PREFIX) + 16 + 1 + 43 + 1 <= NNO_IAM_TOKEN_MAX);

  char a[NNO_IAM_TOKEN_MAX], b[NNO_IAM_TOKEN_MAX], ia[17], ib[17];
  unsigned char ha[32], hb[32];
  iam_token_new(IAM_KEY_PREFIX, a, sizeof a, ia, ha);
  iam_token_new(IAM_KEY_PREFIX, b, sizeof b, ib, hb);
  assert_string_not_equal(a, b);
  assert_string_not_equal(ia, ib);
  assert_memory_not_equal(ha, hb, 32);
  assert_string_not_equal(a + 22, b + 22); /* the secrets */
}

static void test_token_split(void **st) {
  (void)st;
  char tok[NNO_IAM_TOKEN_MAX], id[17], got[17];
  unsigned char hash[32];
  iam_token_new(IAM_KEY_PREFIX, tok, sizeof tok, id, hash);
  size_t len = strlen(tok); /* 65 */
  assert_int_equal(len, 65);

  /* A fixed token, to pin the exact accepted shape. */
  const char *fixed =
      "nnok_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  assert_int_equal(strlen(fixed), 65);
  assert_int_equal(iam_token_split(fixed, 65, "nnok_", got), 0);
  assert_string_equal(got, "0123456789abcdef");

  /* Wrong length either way. */
  assert_int_equal(iam_token_split(tok, len - 1, IAM_KEY_PREFIX, got), -1);
  char longer[NNO_IAM_TOKEN_MAX + 1];
  snprintf(longer, sizeof longer, "%sA", tok);
  assert_int_equal(iam_token_split(longer, len + 1, IAM_KEY_PREFIX, got), -1);
  assert_int_equal(iam_token_split("", 0, IAM_KEY_PREFIX, got), -1);
  assert_int_equal(iam_token_split("nnok_", 5, IAM_KEY_PREFIX, got), -1);

  /* The other prefix, or a mangled one. */
  assert_int_equal(iam_token_split(tok, len, IAM_SESSION_PREFIX, got), -1);
  char bad[NNO_IAM_TOKEN_MAX];
  memcpy(bad, fixed, 66);
  bad[0] = 'N';
  assert_int_equal(iam_token_split(bad, 65, "nnok_", got), -1);
  memcpy(bad, fixed, 66);
  bad[4] = '-';
  assert_int_equal(iam_token_split(bad, 65, "nnok_", got), -1);

  /* Uppercase or non-hex in the id: first, middle and last position. */
  const size_t pos[] = {5, 12, 20};
  const char subs[] = {'A', 'F', 'g', 'z', '_', '-', ' '};
  for (size_t p = 0; p < sizeof pos / sizeof *pos; p++)
    for (size_t s = 0; s < sizeof subs; s++) {
      memcpy(bad, fixed, 66);
      bad[pos[p]] = subs[s];
      assert_int_equal(iam_token_split(bad, 65, "nnok_", got), -1);
    }

  /* No underscore after the id: replaced, or the id one longer. */
  memcpy(bad, fixed, 66);
  bad[21] = 'a';
  assert_int_equal(iam_token_split(bad, 65, "nnok_", got), -1);
  memcpy(bad, fixed, 66);
  bad[21] = '-';
  assert_int_equal(iam_token_split(bad, 65, "nnok_", got), -1);
  const char *shifted =
      "nnok_0123456789abcdef0_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  assert_int_equal(strlen(shifted), 65);
  assert_int_equal(iam_token_split(shifted, 65, "nnok_", got), -1);
  const char *noprefix_sep =
      "nnok0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  assert_int_equal(strlen(noprefix_sep), 65);
  assert_int_equal(iam_token_split(noprefix_sep, 65, "nnok_", got), -1);
}

static iam_key mk_key(unsigned n, const char *platform) {
  iam_key k;
  memset(&k, 0, sizeof k);
  snprintf(k.id, sizeof k.id, "%016x", n);
  snprintf(k.platform, sizeof k.platform, "%s", platform);
  snprintf(k.tenant, sizeof k.tenant, "t%u", n);
  snprintf(k.scopes, sizeof k.scopes, "keys:read");
  memset(k.hash, (int)(n & 0xff), sizeof k.hash);
  k.expires = n;
  return k;
}

static void test_keytab_basic(void **st) {
  (void)st;
  iam_keytab *t = iam_keytab_new();
  assert_non_null(t);
  assert_int_equal(iam_keytab_count(t), 0);
  char id[17] = "0123456789abcdef";
  assert_null(iam_keytab_get(t, id));

  iam_key k = mk_key(42, "acme");
  assert_int_equal(iam_keytab_put(t, &k), 0);
  assert_int_equal(iam_keytab_count(t), 1);
  const iam_key *g = iam_keytab_get(t, k.id);
  assert_non_null(g);
  assert_ptr_not_equal(g, &k); /* a copy */
  assert_memory_equal(g, &k, sizeof k);
  assert_null(iam_keytab_get(t, id));

  /* Replacing the same id keeps one entry, with the new content. */
  snprintf(k.scopes, sizeof k.scopes, "keys:write tenants:*");
  snprintf(k.platform, sizeof k.platform, "other");
  assert_int_equal(iam_keytab_put(t, &k), 0);
  assert_int_equal(iam_keytab_count(t), 1);
  g = iam_keytab_get(t, k.id);
  assert_non_null(g);
  assert_string_equal(g->scopes, "keys:write tenants:*");
  assert_string_equal(g->platform, "other");

  /* A short or long id is unknown, never read past its end (ASan). */
  char *shortid = strdup("abcd");
  assert_null(iam_keytab_get(t, shortid));
  free(shortid);
  char longid[18];
  snprintf(longid, sizeof longid, "%s0", k.id);
  assert_null(iam_keytab_get(t, longid));

  iam_keytab_free(t);
  iam_keytab_free(NULL);
}

static void test_keytab_many(void **st) {
  (void)st;
  enum { N = 10000 };
  iam_keytab *t = iam_keytab_new();
  assert_non_null(t);
  /* Sequential ids: the worst case for the hash, through many growths. */
  for (unsigned i = 0; i < N; i++) {
    iam_key k = mk_key(i * 7919u, "p");
    assert_int_equal(iam_keytab_put(t, &k), 0);
    assert_int_equal(iam_keytab_count(t), i + 1);
  }
  for (unsigned i = 0; i < N; i++) {
    iam_key k = mk_key(i * 7919u, "p");
    const iam_key *g = iam_keytab_get(t, k.id);
    assert_non_null(g);
    assert_memory_equal(g, &k, sizeof k);
  }
  /* Replace every tenth: the count stays. */
  for (unsigned i = 0; i < N; i += 10) {
    iam_key k = mk_key(i * 7919u, "replaced");
    assert_int_equal(iam_keytab_put(t, &k), 0);
  }
  assert_int_equal(iam_keytab_count(t), N);
  for (unsigned i = 0; i < N; i++) {
    iam_key k = mk_key(i * 7919u, "p");
    const iam_key *g = iam_keytab_get(t, k.id);
    assert_non_null(g);
    assert_string_equal(g->platform, i % 10 ? "p" : "replaced");
  }
  /* Ids never put are absent. */
  for (unsigned i = 0; i < 1000; i++) {
    iam_key k = mk_key(i * 7919u + 1, "p");
    assert_null(iam_keytab_get(t, k.id));
  }
  /* Random ids, as iam_token_new makes them. */
  static char ids[2000][17];
  for (int i = 0; i < 2000; i++) {
    char tok[NNO_IAM_TOKEN_MAX];
    iam_key k;
    memset(&k, 0, sizeof k);
    iam_token_new(IAM_KEY_PREFIX, tok, sizeof tok, k.id, k.hash);
    memcpy(ids[i], k.id, 17);
    snprintf(k.tenant, sizeof k.tenant, "r%d", i);
    assert_int_equal(iam_keytab_put(t, &k), 0);
  }
  assert_int_equal(iam_keytab_count(t), N + 2000);
  for (int i = 0; i < 2000; i++) {
    const iam_key *g = iam_keytab_get(t, ids[i]);
    assert_non_null(g);
    char want[IAM_ID_MAX];
    snprintf(want, sizeof want, "r%d", i);
    assert_string_equal(g->tenant, want);
  }
  iam_keytab_free(t);
}

/* ---- the session cache --------------------------------------------------- */

static iam_sess mk_sess(unsigned n, int64_t cached_at) {
  iam_sess s;
  memset(&s, 0, sizeof s);
  snprintf(s.id, sizeof s.id, "%016x", n);
  snprintf(s.platform, sizeof s.platform, "acme");
  snprintf(s.user, sizeof s.user, "u%u", n);
  snprintf(s.scopes, sizeof s.scopes, "features:*");
  s.cached_at = cached_at;
  s.touched_at = cached_at;
  s.expires = cached_at + 100000;
  s.idle_expires = cached_at + 10000;
  return s;
}

static const char *sid(unsigned n) {
  static char b[4][17];
  static int i;
  i = (i + 1) & 3;
  snprintf(b[i], sizeof b[i], "%016x", n);
  return b[i];
}

static void test_cache_get_put(void **st) {
  (void)st;
  iam_cache *c = iam_cache_new(8);
  assert_non_null(c);
  assert_int_equal(iam_cache_count(c), 0);
  assert_null(iam_cache_get(c, sid(1), 1000, 60));

  iam_sess s = mk_sess(1, 1000);
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_int_equal(iam_cache_count(c), 1);
  iam_sess *g = iam_cache_get(c, sid(1), 1000, 60);
  assert_non_null(g);
  assert_ptr_not_equal(g, &s);
  assert_memory_equal(g, &s, sizeof s);
  assert_null(iam_cache_get(c, sid(2), 1000, 60));
  assert_null(iam_cache_get(c, "short", 1000, 60));

  /* Re-putting the same id replaces, it does not grow. */
  for (int i = 0; i < 20; i++) {
    s.touched_at = 1000 + i;
    assert_int_equal(iam_cache_put(c, &s), 0);
    assert_int_equal(iam_cache_count(c), 1);
  }
  g = iam_cache_get(c, sid(1), 1000, 60);
  assert_non_null(g);
  assert_int_equal(g->touched_at, 1019);

  /* Drop, and dropping what is absent. */
  iam_cache_drop(c, sid(1));
  assert_int_equal(iam_cache_count(c), 0);
  assert_null(iam_cache_get(c, sid(1), 1000, 60));
  iam_cache_drop(c, sid(1));
  iam_cache_drop(c, sid(77));
  assert_int_equal(iam_cache_count(c), 0);

  /* Clear, then the cache is still usable. */
  for (unsigned i = 0; i < 5; i++) {
    iam_sess e = mk_sess(i, 1000);
    assert_int_equal(iam_cache_put(c, &e), 0);
  }
  assert_int_equal(iam_cache_count(c), 5);
  iam_cache_drop(c, sid(2));
  assert_int_equal(iam_cache_count(c), 4);
  assert_null(iam_cache_get(c, sid(2), 1000, 60));
  assert_non_null(iam_cache_get(c, sid(3), 1000, 60));
  iam_cache_clear(c);
  assert_int_equal(iam_cache_count(c), 0);
  for (unsigned i = 0; i < 5; i++)
    assert_null(iam_cache_get(c, sid(i), 1000, 60));
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_int_equal(iam_cache_count(c), 1);
  assert_non_null(iam_cache_get(c, sid(1), 1000, 60));
  iam_cache_free(c);
  iam_cache_free(NULL);
}

static void test_cache_expiry(void **st) {
  (void)st;
  iam_cache *c = iam_cache_new(8);
  assert_non_null(c);

  /* ttl_s counts from cached_at: kept below it, dropped at it. */
  iam_sess s = mk_sess(1, 1000);
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_non_null(iam_cache_get(c, sid(1), 1059, 60));
  assert_null(iam_cache_get(c, sid(1), 1060, 60));
  assert_int_equal(iam_cache_count(c), 0); /* the stale entry was dropped */
  assert_null(iam_cache_get(c, sid(1), 1000, 60));

  /* A shorter ttl applies to an entry already cached. */
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_non_null(iam_cache_get(c, sid(1), 1004, 300));
  assert_null(iam_cache_get(c, sid(1), 1005, 5));
  assert_int_equal(iam_cache_count(c), 0);

  /* Absolute expiry at `now`. */
  s = mk_sess(2, 1000);
  s.expires = 1010;
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_non_null(iam_cache_get(c, sid(2), 1009, 300));
  assert_null(iam_cache_get(c, sid(2), 1010, 300));
  assert_int_equal(iam_cache_count(c), 0);

  /* Idle expiry at `now`. */
  s = mk_sess(3, 1000);
  s.idle_expires = 1020;
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_non_null(iam_cache_get(c, sid(3), 1019, 300));
  assert_null(iam_cache_get(c, sid(3), 1020, 300));
  assert_int_equal(iam_cache_count(c), 0);

  /* Already expired when put: never returned. */
  s = mk_sess(4, 1000);
  s.expires = 900;
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_null(iam_cache_get(c, sid(4), 1000, 300));

  /* One expired entry leaves its neighbours alone. */
  iam_sess a = mk_sess(10, 1000), b = mk_sess(11, 1000);
  b.idle_expires = 1001;
  assert_int_equal(iam_cache_put(c, &a), 0);
  assert_int_equal(iam_cache_put(c, &b), 0);
  assert_null(iam_cache_get(c, sid(11), 1001, 300));
  assert_non_null(iam_cache_get(c, sid(10), 1001, 300));
  assert_int_equal(iam_cache_count(c), 1);
  iam_cache_free(c);
}

static void test_cache_eviction(void **st) {
  (void)st;
  iam_cache *c = iam_cache_new(3);
  assert_non_null(c);
  iam_sess a = mk_sess(1, 1000), b = mk_sess(2, 1000), d = mk_sess(3, 1000);
  assert_int_equal(iam_cache_put(c, &a), 0);
  assert_int_equal(iam_cache_put(c, &b), 0);
  assert_int_equal(iam_cache_put(c, &d), 0);
  assert_int_equal(iam_cache_count(c), 3);
  /* Re-putting 1 makes it the newest: 2 is now the oldest. */
  assert_int_equal(iam_cache_put(c, &a), 0);
  assert_int_equal(iam_cache_count(c), 3);
  iam_sess e = mk_sess(4, 1000);
  assert_int_equal(iam_cache_put(c, &e), 0);
  assert_int_equal(iam_cache_count(c), 3);
  assert_null(iam_cache_get(c, sid(2), 1000, 60));
  assert_non_null(iam_cache_get(c, sid(1), 1000, 60));
  assert_non_null(iam_cache_get(c, sid(3), 1000, 60));
  assert_non_null(iam_cache_get(c, sid(4), 1000, 60));
  /* Then 3, the oldest now. */
  iam_sess f = mk_sess(5, 1000);
  assert_int_equal(iam_cache_put(c, &f), 0);
  assert_null(iam_cache_get(c, sid(3), 1000, 60));
  assert_non_null(iam_cache_get(c, sid(1), 1000, 60));
  iam_cache_free(c);

  /* Many puts: the count never exceeds max, the newest max stay. */
  enum { MAX = 100, N = 5000 };
  c = iam_cache_new(MAX);
  assert_non_null(c);
  for (unsigned i = 0; i < N; i++) {
    iam_sess s = mk_sess(i, 1000);
    assert_int_equal(iam_cache_put(c, &s), 0);
    assert_true(iam_cache_count(c) <= MAX);
    assert_int_equal(iam_cache_count(c), i + 1 < MAX ? i + 1 : MAX);
  }
  for (unsigned i = 0; i < N; i++) {
    iam_sess *g = iam_cache_get(c, sid(i), 1000, 60);
    if (i < N - MAX) {
      assert_null(g);
    } else {
      assert_non_null(g);
      char u[16];
      snprintf(u, sizeof u, "u%u", i);
      assert_string_equal(g->user, u);
    }
  }
  /* Dropping from the middle, then filling again, still evicts in order. */
  iam_cache_drop(c, sid(N - 50));
  assert_int_equal(iam_cache_count(c), MAX - 1);
  iam_sess s = mk_sess(N, 1000);
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_int_equal(iam_cache_count(c), MAX);
  assert_non_null(iam_cache_get(c, sid(N - MAX), 1000, 60));
  s = mk_sess(N + 1, 1000);
  assert_int_equal(iam_cache_put(c, &s), 0);
  assert_int_equal(iam_cache_count(c), MAX);
  assert_null(iam_cache_get(c, sid(N - MAX), 1000, 60));
  assert_non_null(iam_cache_get(c, sid(N - MAX + 1), 1000, 60));
  iam_cache_free(c);

  /* max 0 is taken as 1. */
  c = iam_cache_new(0);
  assert_non_null(c);
  assert_int_equal(iam_cache_put(c, &a), 0);
  assert_int_equal(iam_cache_put(c, &b), 0);
  assert_int_equal(iam_cache_count(c), 1);
  assert_null(iam_cache_get(c, sid(1), 1000, 60));
  assert_non_null(iam_cache_get(c, sid(2), 1000, 60));
  iam_cache_free(c);
}

/* ---- config -------------------------------------------------------------- */

static int parse(const char *json, iam_config *c, char *err, size_t cap) {
  err[0] = '\0';
  return iam_config_parse(json, c, err, cap);
}

/* The device flow's knobs: defaults, values read, bounds refused. */
static void test_config_device(void **state) {
  (void)state;
  iam_config c;
  char err[256];
  assert_int_equal(parse("{}", &c, err, sizeof err), 0);
  assert_int_equal(c.device_ttl_s, 600);
  assert_int_equal(c.device_interval_s, 2);
  assert_int_equal(c.device_pending_max, 1000);
  assert_int_equal(c.device_codes_per_addr, 10);
  assert_int_equal(c.device_codes_window_s, 600);
  assert_int_equal(parse("{\"device_ttl_s\": 5, \"device_interval_s\": 1, "
                         "\"device_pending_max\": 3, "
                         "\"device_codes_per_addr\": 4, "
                         "\"device_codes_window_s\": 60}",
                         &c, err, sizeof err),
                   0);
  assert_int_equal(c.device_ttl_s, 5);
  assert_int_equal(c.device_interval_s, 1);
  assert_int_equal(c.device_pending_max, 3);
  assert_int_equal(c.device_codes_per_addr, 4);
  assert_int_equal(c.device_codes_window_s, 60);
  assert_int_equal(parse("{\"device_codes_per_addr\": 0}", &c, err,
                         sizeof err),
                   -1);
  assert_non_null(strstr(err, "config.device_codes_per_addr"));
  assert_int_equal(parse("{\"device_ttl_s\": 0}", &c, err, sizeof err), -1);
  assert_non_null(strstr(err, "config.device_ttl_s"));
  assert_int_equal(parse("{\"device_interval_s\": 61}", &c, err, sizeof err),
                   -1);
  assert_int_equal(parse("{\"device_pending_max\": \"x\"}", &c, err,
                         sizeof err),
                   -1);
}

static void assert_default_plan_values(const iam_plan *p) {
  assert_true(p->platform_rps == 200);
  assert_int_equal(p->platform_burst, 400);
  assert_true(p->key_rps == 50);
  assert_int_equal(p->key_burst, 100);
  assert_true(p->user_rps == 20);
  assert_int_equal(p->user_burst, 40);
  assert_true(p->anon_rps == 10);
  assert_int_equal(p->anon_burst, 20);
}

static void test_config_defaults(void **st) {
  (void)st;
  iam_config c;
  char err[256];
  const char *inputs[] = {NULL, "{}", " { } "};
  for (size_t i = 0; i < 3; i++) {
    assert_int_equal(parse(inputs[i], &c, err, sizeof err), 0);
    assert_int_equal(c.nplans, 1);
    assert_string_equal(c.plans[0].name, "free");
    assert_default_plan_values(&c.plans[0]);
    assert_int_equal(c.default_plan, 0);
    assert_int_equal(c.session_idle_s, 3600);
    assert_int_equal(c.session_absolute_s, 7 * 86400);
    assert_int_equal(c.session_cache_s, 300);
    assert_int_equal(c.session_cache_max, 65536);
    assert_string_equal(c.user_scopes, "features:*");
    assert_ptr_equal(iam_plan_find(&c, "free"), &c.plans[0]);
    assert_ptr_equal(iam_plan_find(&c, "pro"), &c.plans[0]);
    assert_ptr_equal(iam_plan_find(&c, ""), &c.plans[0]);
  }
  /* Not an object. */
  const char *bad[] = {"[]", "3", "\"x\"", "null", "{", "not json", ""};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(parse(bad[i], &c, err, sizeof err), -1);
    assert_string_equal(err, "config: not a JSON object");
  }
}

static void test_config_plans(void **st) {
  (void)st;
  iam_config c;
  char err[256];
  assert_int_equal(
      parse("{\"plans\": {\"free\": {\"key\": [5, 10]},"
            "            \"pro\": {\"platform\": [1000.5, 2000],"
            "                      \"user\": [30, 60],"
            "                      \"anonymous\": [1, 1]}},"
            " \"default_plan\": \"pro\","
            " \"session_idle_s\": 600, \"session_absolute_s\": 86400,"
            " \"session_cache_s\": 30, \"session_cache_max\": 1000,"
            " \"user_scopes\": \"features:* tenants:read\"}",
            &c, err, sizeof err),
      0);
  assert_int_equal(c.nplans, 2);
  const iam_plan *free_ = iam_plan_find(&c, "free");
  const iam_plan *pro = iam_plan_find(&c, "pro");
  assert_string_equal(free_->name, "free");
  assert_string_equal(pro->name, "pro");
  assert_true(free_->key_rps == 5);
  assert_int_equal(free_->key_burst, 10);
  assert_true(free_->platform_rps == 200); /* unlisted pairs keep defaults */
  assert_int_equal(free_->platform_burst, 400);
  assert_true(pro->platform_rps == 1000.5);
  assert_int_equal(pro->platform_burst, 2000);
  assert_true(pro->key_rps == 50);
  assert_int_equal(pro->key_burst, 100);
  assert_true(pro->user_rps == 30);
  assert_int_equal(pro->user_burst, 60);
  assert_true(pro->anon_rps == 1);
  assert_int_equal(pro->anon_burst, 1);
  assert_ptr_equal(&c.plans[c.default_plan], pro);
  /* An unknown plan name falls back to the default plan. */
  assert_ptr_equal(iam_plan_find(&c, "enterprise"), pro);
  assert_ptr_equal(iam_plan_find(&c, "Pro"), pro);
  assert_ptr_equal(iam_plan_find(&c, ""), pro);
  assert_int_equal(c.session_idle_s, 600);
  assert_int_equal(c.session_absolute_s, 86400);
  assert_int_equal(c.session_cache_s, 30);
  assert_int_equal(c.session_cache_max, 1000);
  assert_string_equal(c.user_scopes, "features:* tenants:read");

  /* Plans replace the built-in one: without default_plan the first is. */
  assert_int_equal(
      parse("{\"plans\": {\"basic\": {}, \"gold\": {\"key\": [9, 9]}}}", &c,
            err, sizeof err),
      0);
  assert_int_equal(c.nplans, 2);
  assert_string_equal(c.plans[0].name, "basic");
  assert_default_plan_values(&c.plans[0]);
  assert_int_equal(c.default_plan, 0);
  assert_ptr_equal(iam_plan_find(&c, "free"), &c.plans[0]);
  assert_string_equal(iam_plan_find(&c, "gold")->name, "gold");

  /* Sixteen plans, names up to 32 bytes. */
  char json[2048], *w = json;
  w += sprintf(w, "{\"plans\": {");
  for (int i = 0; i < 16; i++)
    w += sprintf(w, "%s\"p%02d%s\": {}", i ? "," : "", i,
                 i == 15 ? "_name_exactly_thirty_two_byte" : "");
  sprintf(w, "}, \"default_plan\": \"p03\"}");
  assert_int_equal(parse(json, &c, err, sizeof err), 0);
  assert_int_equal(c.nplans, 16);
  assert_int_equal(strlen(c.plans[15].name), 32);
  assert_string_equal(c.plans[c.default_plan].name, "p03");
  assert_string_equal(iam_plan_find(&c, "nope")->name, "p03");
}

static void test_config_invalid_pairs(void **st) {
  (void)st;
  iam_config c;
  char err[256], json[256];
  const char *bad[] = {
      "[0, 10]",  "[-1, 10]",   "[1, 0]",     "[1, -5]",   "[1, 1.5]",
      "[1]",      "[1, 2, 3]",  "[]",         "\"1/2\"",   "5",
      "{}",       "[\"1\", 2]", "[1, \"2\"]", "[null, 2]", "[1, 100000001]",
      "[true, 1]", "[1e-300, 1]", "[0.0009, 1]"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    snprintf(json, sizeof json, "{\"plans\": {\"free\": {\"key\": %s}}}",
             bad[i]);
    assert_int_equal(parse(json, &c, err, sizeof err), -1);
    assert_string_equal(
        err,
        "config.plans.free.key: expected [rate per second >= 0.001, burst "
        ">= 1]");
  }
  /* Each pair is checked, and the message names it. */
  const char *pairs[] = {"platform", "key", "user", "anonymous"};
  for (size_t i = 0; i < 4; i++) {
    snprintf(json, sizeof json,
             "{\"plans\": {\"free\": {}, \"pro\": {\"%s\": [0, 1]}}}",
             pairs[i]);
    assert_int_equal(parse(json, &c, err, sizeof err), -1);
    char want[128];
    snprintf(want, sizeof want,
             "config.plans.pro.%s: expected [rate per second >= 0.001, "
             "burst >= 1]",
             pairs[i]);
    assert_string_equal(err, want);
  }
  /* Bounds that are fine. */
  assert_int_equal(parse("{\"plans\": {\"free\": {\"key\": [0.001, 1],"
                         " \"user\": [1e6, 100000000]}}}",
                         &c, err, sizeof err),
                   0);
  assert_true(c.plans[0].key_rps == 0.001);
  assert_int_equal(c.plans[0].key_burst, 1);
  assert_int_equal(c.plans[0].user_burst, 100000000);

  /* A plan that is not an object, too many plans, too long a name. */
  assert_int_equal(parse("{\"plans\": {\"free\": 5}}", &c, err, sizeof err),
                   -1);
  assert_string_equal(err,
                      "config.plans: at most 16 objects, names under 33 bytes");
  char big[2048], *w = big;
  w += sprintf(w, "{\"plans\": {");
  for (int i = 0; i < 17; i++)
    w += sprintf(w, "%s\"p%02d\": {}", i ? "," : "", i);
  sprintf(w, "}}");
  assert_int_equal(parse(big, &c, err, sizeof err), -1);
  assert_string_equal(err,
                      "config.plans: at most 16 objects, names under 33 bytes");
  assert_int_equal(
      parse("{\"plans\": {\"a23456789012345678901234567890123\": {}}}", &c, err,
            sizeof err),
      -1);
  assert_string_equal(err,
                      "config.plans: at most 16 objects, names under 33 bytes");
}

static void test_config_empty_plans(void **st) {
  (void)st;
  iam_config c;
  char err[256];
  /* A mistyped or empty "plans" is refused, never silently ignored. */
  const char *inputs[] = {"{\"plans\": {}}", "{\"plans\": []}",
                          "{\"plans\": 5}", "{\"plans\": null}"};
  for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
    err[0] = '\0';
    assert_int_equal(parse(inputs[i], &c, err, sizeof err), -1);
    assert_string_equal(err,
                        "config.plans: expected a non-empty object of plans");
  }
}

static void test_config_default_plan(void **st) {
  (void)st;
  iam_config c;
  char err[256];
  const char *want = "config.default_plan: not one of config.plans";
  assert_int_equal(parse("{\"default_plan\": \"free\"}", &c, err, sizeof err),
                   0);
  assert_int_equal(c.default_plan, 0);
  assert_int_equal(parse("{\"default_plan\": \"gold\"}", &c, err, sizeof err),
                   -1);
  assert_string_equal(err, want);
  assert_int_equal(parse("{\"default_plan\": \"\"}", &c, err, sizeof err), -1);
  assert_string_equal(err, want);
  assert_int_equal(parse("{\"default_plan\": 0}", &c, err, sizeof err), -1);
  assert_string_equal(err, want);
  assert_int_equal(parse("{\"default_plan\": null}", &c, err, sizeof err), -1);
  assert_string_equal(err, want);
  /* "free" is only the built-in plan's name: listed plans replace it. */
  assert_int_equal(
      parse("{\"plans\": {\"pro\": {}}, \"default_plan\": \"free\"}", &c, err,
            sizeof err),
      -1);
  assert_string_equal(err, want);
  assert_int_equal(parse("{\"plans\": {\"a\": {}, \"b\": {}},"
                         " \"default_plan\": \"b\"}",
                         &c, err, sizeof err),
                   0);
  assert_int_equal(c.default_plan, 1);
  assert_string_equal(iam_plan_find(&c, "c")->name, "b");
  assert_string_equal(iam_plan_find(&c, "a")->name, "a");
}

static void test_config_sessions(void **st) {
  (void)st;
  iam_config c;
  char err[256];
  struct {
    const char *json, *err;
  } bad[] = {
      {"{\"session_cache_s\": 301}",
       "config.session_cache_s: expected an integer in 1..300"},
      {"{\"session_cache_s\": 3600}",
       "config.session_cache_s: expected an integer in 1..300"},
      {"{\"session_cache_s\": 0}",
       "config.session_cache_s: expected an integer in 1..300"},
      {"{\"session_cache_s\": -1}",
       "config.session_cache_s: expected an integer in 1..300"},
      {"{\"session_cache_s\": \"60\"}",
       "config.session_cache_s: expected an integer in 1..300"},
      {"{\"session_cache_s\": 60.5}",
       "config.session_cache_s: expected an integer in 1..300"},
      {"{\"session_idle_s\": 59}",
       "config.session_idle_s: expected an integer in 60..31536000"},
      {"{\"session_absolute_s\": 31536001}",
       "config.session_absolute_s: expected an integer in 60..31536000"},
      {"{\"session_cache_max\": 0}",
       "config.session_cache_max: expected an integer in 1..1048576"},
      {"{\"session_cache_max\": 1048577}",
       "config.session_cache_max: expected an integer in 1..1048576"},
      {"{\"user_scopes\": 5}",
       "config.user_scopes: expected a string of scopes"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    assert_int_equal(parse(bad[i].json, &c, err, sizeof err), -1);
    assert_string_equal(err, bad[i].err);
  }
  assert_int_equal(parse("{\"session_cache_s\": 300, \"session_cache_max\": 1,"
                         " \"session_idle_s\": 60,"
                         " \"session_absolute_s\": 31536000}",
                         &c, err, sizeof err),
                   0);
  assert_int_equal(c.session_cache_s, 300);
  assert_int_equal(c.session_cache_max, 1);
  assert_int_equal(c.session_idle_s, 60);
  assert_int_equal(c.session_absolute_s, 365 * 86400);
  assert_int_equal(parse("{\"session_cache_s\": 1}", &c, err, sizeof err), 0);
  assert_int_equal(c.session_cache_s, 1);

  /* user_scopes: up to 511 bytes. */
  char json[700], s[600];
  memset(s, 'a', sizeof s);
  s[511] = '\0';
  snprintf(json, sizeof json, "{\"user_scopes\": \"%s\"}", s);
  assert_int_equal(parse(json, &c, err, sizeof err), 0);
  assert_int_equal(strlen(c.user_scopes), 511);
  s[511] = 'a';
  s[512] = '\0';
  snprintf(json, sizeof json, "{\"user_scopes\": \"%s\"}", s);
  assert_int_equal(parse(json, &c, err, sizeof err), -1);
  assert_string_equal(err, "config.user_scopes: expected a string of scopes");
  assert_int_equal(parse("{\"user_scopes\": \"\"}", &c, err, sizeof err), 0);
  assert_string_equal(c.user_scopes, "");
}

/* ---- rate-limit helpers ----------------------------------------------------
 */

static void test_limit_table_full(void **st) {
  (void)st;
  nno_limit_result r = {0};
  r.allowed = 0, r.limit = 0, r.retry_after_ms = 500;
  assert_true(iam_limit_table_full(&r)); /* no bucket: the host is full */
  r.limit = 20;
  assert_false(iam_limit_table_full(&r)); /* the bucket's own refusal */
  r.allowed = 1, r.limit = 20;
  assert_false(iam_limit_table_full(&r));
}

/* ---- the store ------------------------------------------------------------ */

static sqlite3 *store_db(void) {
  sqlite3 *db = NULL;
  char err[256];
  assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
  sqlite3_extended_result_codes(db, 1);
  assert_int_equal(
      sqlite3_exec(db,
                   "PRAGMA foreign_keys=ON;"
                   "CREATE TABLE platforms (id TEXT PRIMARY KEY);"
                   "CREATE TABLE tenants (platform_id TEXT NOT NULL"
                   " REFERENCES platforms(id) ON DELETE CASCADE,"
                   " id TEXT NOT NULL, parent_id TEXT,"
                   " PRIMARY KEY (platform_id, id));"
                   "INSERT INTO platforms VALUES ('acme'), ('other');"
                   "INSERT INTO tenants VALUES ('acme', 'eu', NULL),"
                   " ('acme', 'fr', 'eu'), ('acme', 'paris', 'fr'),"
                   " ('acme', 'us', NULL), ('other', 'eu', NULL);",
                   NULL, NULL, NULL),
      SQLITE_OK);
  assert_int_equal(iam_store_migrate(db, err, sizeof err), IAM_OK);
  return db;
}

static int count_cb(void *ud, const iam_key *k, const char *name,
                    int64_t created, int64_t revoked) {
  (void)k, (void)name, (void)created, (void)revoked;
  (*(int *)ud)++;
  return 0;
}

static int live_keys(sqlite3 *db) {
  int n = 0;
  assert_int_equal(iam_store_keys_live(db, 1000, count_cb, &n), IAM_OK);
  return n;
}

static iam_key store_key(const char *id, const char *session,
                         const char *tenant, int64_t expires) {
  iam_key k;
  memset(&k, 0, sizeof k);
  snprintf(k.id, sizeof k.id, "%s", id);
  snprintf(k.platform, sizeof k.platform, "acme");
  snprintf(k.tenant, sizeof k.tenant, "%s", tenant);
  snprintf(k.scopes, sizeof k.scopes, "keys:write");
  if (*session) {
    snprintf(k.session, sizeof k.session, "%s", session);
    snprintf(k.user, sizeof k.user, "ann");
  }
  k.expires = expires;
  return k;
}

static void add_session(sqlite3 *db, const char *id, int64_t expires) {
  iam_sess s;
  memset(&s, 0, sizeof s);
  snprintf(s.id, sizeof s.id, "%s", id);
  snprintf(s.platform, sizeof s.platform, "acme");
  snprintf(s.user, sizeof s.user, "ann");
  snprintf(s.scopes, sizeof s.scopes, "keys:write");
  s.expires = s.idle_expires = expires;
  assert_int_equal(iam_store_session_insert(db, &s, 900), IAM_OK);
}

/* A key is inserted only while the session behind it exists: one made
 * after the sign-out committed (a worker whose cache still held the
 * session) is refused, as is one made by a key made by that session. */
static void test_store_key_insert_needs_live_session(void **st) {
  (void)st;
  sqlite3 *db = store_db();
  add_session(db, "5e55000000000001", 5000);
  add_session(db, "5e55000000000002", 1000); /* ends at `now` below */
  iam_key k = store_key("00000000000000a1", "5e55000000000001", "", 5000);
  assert_int_equal(iam_store_key_insert(db, &k, "one", NULL, 1000), IAM_OK);
  assert_int_equal(live_keys(db), 1);
  assert_int_equal(iam_store_session_delete(db, "acme", "5e55000000000001"),
                   IAM_OK);
  assert_int_equal(live_keys(db), 0); /* revoked with the session */
  k = store_key("00000000000000a2", "5e55000000000001", "", 5000);
  assert_int_equal(iam_store_key_insert(db, &k, "late", NULL, 1000),
                   IAM_NOTFOUND);
  /* made by a key that the ended session made */
  k = store_key("00000000000000a3", "5e55000000000001", "", 5000);
  assert_int_equal(
      iam_store_key_insert(db, &k, "late", "00000000000000a1", 1000),
      IAM_NOTFOUND);
  /* a session past its absolute expiry, and one of another platform */
  k = store_key("00000000000000a4", "5e55000000000002", "", 1000);
  assert_int_equal(iam_store_key_insert(db, &k, "old", NULL, 1000),
                   IAM_NOTFOUND);
  k = store_key("00000000000000a5", "5e55000000000002", "", 1000);
  snprintf(k.platform, sizeof k.platform, "other");
  assert_int_equal(iam_store_key_insert(db, &k, "other", NULL, 999),
                   IAM_NOTFOUND);
  assert_int_equal(live_keys(db), 0);
  int n = 0;
  assert_int_equal(
      iam_store_keys_list(db, "acme", NULL, NULL, 100, count_cb, &n), IAM_OK);
  assert_int_equal(n, 1); /* only the revoked first one */
  sqlite3_close(db);
}

/* A key made by a key is inserted only while that key is live. */
static void test_store_key_insert_needs_live_creator(void **st) {
  (void)st;
  sqlite3 *db = store_db();
  iam_key k = store_key("00000000000000b1", "", "", 0);
  assert_int_equal(iam_store_key_insert(db, &k, "root", NULL, 1000), IAM_OK);
  k = store_key("00000000000000b2", "", "", 1500); /* expires at 1500 */
  assert_int_equal(iam_store_key_insert(db, &k, "brief", NULL, 1000), IAM_OK);
  k = store_key("00000000000000b3", "", "", 0);
  assert_int_equal(
      iam_store_key_insert(db, &k, "child", "00000000000000b1", 1000), IAM_OK);
  assert_int_equal(
      iam_store_key_revoke(db, "acme", "00000000000000b1", 1001, NULL),
      IAM_OK);
  k = store_key("00000000000000b4", "", "", 0);
  assert_int_equal(
      iam_store_key_insert(db, &k, "late", "00000000000000b1", 1002),
      IAM_NOTFOUND);
  k = store_key("00000000000000b5", "", "", 1500);
  assert_int_equal(
      iam_store_key_insert(db, &k, "late", "00000000000000b2", 1500),
      IAM_NOTFOUND); /* expired */
  assert_int_equal(
      iam_store_key_insert(db, &k, "late", "00000000000000ff", 1000),
      IAM_NOTFOUND); /* unknown */
  assert_int_equal(
      iam_store_key_insert(db, &k, "ok", "00000000000000b2", 1499), IAM_OK);
  int n = 0;
  assert_int_equal(
      iam_store_keys_list(db, "acme", NULL, NULL, 100, count_cb, &n), IAM_OK);
  assert_int_equal(n, 4); /* b1 (revoked), b2, b3, b5 */
  sqlite3_close(db);
}

/* Revoking a key revokes the keys it made and theirs, in one go, and
 * nothing else; a second revocation finds no live key. */
static void test_store_key_revoke_cascades(void **st) {
  (void)st;
  sqlite3 *db = store_db();
  static const struct {
    const char *id, *creator;
  } keys[] = {{"00000000000000d1", NULL},
              {"00000000000000d2", "00000000000000d1"},
              {"00000000000000d3", "00000000000000d2"},
              {"00000000000000d4", "00000000000000d2"},
              {"00000000000000d5", NULL},
              {"00000000000000d6", "00000000000000d5"}};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    iam_key k = store_key(keys[i].id, "", "", 0);
    assert_int_equal(iam_store_key_insert(db, &k, "k", keys[i].creator, 1000),
                     IAM_OK);
  }
  assert_int_equal(live_keys(db), 6);
  /* a middle one: its subtree only */
  size_t made = 99;
  assert_int_equal(
      iam_store_key_revoke(db, "acme", "00000000000000d2", 1001, &made),
      IAM_OK);
  assert_int_equal(made, 2);
  assert_int_equal(live_keys(db), 3); /* d1, d5, d6 */
  /* the root: what is left under it (nothing), not d5's */
  assert_int_equal(
      iam_store_key_revoke(db, "acme", "00000000000000d1", 1002, &made),
      IAM_OK);
  assert_int_equal(made, 0);
  assert_int_equal(live_keys(db), 2);
  assert_int_equal(
      iam_store_key_revoke(db, "acme", "00000000000000d1", 1003, &made),
      IAM_NOTFOUND);
  assert_int_equal(
      iam_store_key_revoke(db, "other", "00000000000000d5", 1003, &made),
      IAM_NOTFOUND);
  assert_int_equal(
      iam_store_key_revoke(db, "acme", "00000000000000d5", 1003, &made),
      IAM_OK);
  assert_int_equal(made, 1);
  assert_int_equal(live_keys(db), 0);
  sqlite3_close(db);
}

typedef struct ids_st {
  char ids[8][17];
  int n;
} ids_st;

static int ids_cb(void *ud, const iam_key *k, const char *name,
                  int64_t created, int64_t revoked) {
  (void)name, (void)created, (void)revoked;
  ids_st *s = ud;
  if (s->n < 8) snprintf(s->ids[s->n++], 17, "%s", k->id);
  return 0;
}

/* A tenant's listing holds only keys bound within its subtree, filtered
 * before the limit: the first page is full and ends on one of them. */
static void test_store_keys_list_within(void **st) {
  (void)st;
  sqlite3 *db = store_db();
  static const struct {
    const char *id, *tenant;
  } keys[] = {{"00000000000000c1", ""},     {"00000000000000c2", "us"},
              {"00000000000000c3", "paris"}, {"00000000000000c4", "us"},
              {"00000000000000c5", "eu"},    {"00000000000000c6", ""},
              {"00000000000000c7", "fr"}};
  for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
    iam_key k = store_key(keys[i].id, "", keys[i].tenant, 0);
    assert_int_equal(iam_store_key_insert(db, &k, "k", NULL, 1000), IAM_OK);
  }
  ids_st s = {.n = 0};
  assert_int_equal(iam_store_keys_list(db, "acme", "eu", NULL, 2, ids_cb, &s),
                   IAM_OK);
  assert_int_equal(s.n, 2);
  assert_string_equal(s.ids[0], "00000000000000c3");
  assert_string_equal(s.ids[1], "00000000000000c5");
  s.n = 0;
  assert_int_equal(iam_store_keys_list(db, "acme", "eu", "00000000000000c5",
                                       2, ids_cb, &s),
                   IAM_OK);
  assert_int_equal(s.n, 1);
  assert_string_equal(s.ids[0], "00000000000000c7");
  s.n = 0;
  assert_int_equal(iam_store_keys_list(db, "acme", "fr", "", 8, ids_cb, &s),
                   IAM_OK);
  assert_int_equal(s.n, 2); /* paris, fr */
  s.n = 0;
  assert_int_equal(iam_store_keys_list(db, "acme", "", "", 8, ids_cb, &s),
                   IAM_OK);
  assert_int_equal(s.n, 7);
  s.n = 0;
  assert_int_equal(
      iam_store_keys_list(db, "acme", "nowhere", "", 8, ids_cb, &s), IAM_OK);
  assert_int_equal(s.n, 0);
  sqlite3_close(db);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_scope_covers_basic),
      cmocka_unit_test(test_scope_covers_write_read),
      cmocka_unit_test(test_scope_covers_no_partial_names),
      cmocka_unit_test(test_scope_covers_lists),
      cmocka_unit_test(test_scopes_subset),
      cmocka_unit_test(test_scopes_intersect),
      cmocka_unit_test(test_scope_valid),
      cmocka_unit_test(test_token_new_format),
      cmocka_unit_test(test_token_split),
      cmocka_unit_test(test_keytab_basic),
      cmocka_unit_test(test_keytab_many),
      cmocka_unit_test(test_cache_get_put),
      cmocka_unit_test(test_cache_expiry),
      cmocka_unit_test(test_cache_eviction),
      cmocka_unit_test(test_config_defaults),
      cmocka_unit_test(test_config_plans),
      cmocka_unit_test(test_config_invalid_pairs),
      cmocka_unit_test(test_config_empty_plans),
      cmocka_unit_test(test_config_default_plan),
      cmocka_unit_test(test_config_sessions),
      cmocka_unit_test(test_config_device),
      cmocka_unit_test(test_limit_table_full),
      cmocka_unit_test(test_store_key_insert_needs_live_session),
      cmocka_unit_test(test_store_key_insert_needs_live_creator),
      cmocka_unit_test(test_store_key_revoke_cascades),
      cmocka_unit_test(test_store_keys_list_within),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
