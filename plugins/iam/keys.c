/* Token formats and the per-worker table of live API keys.
 *
 * A token is PREFIX + 16 hex characters (its id, not secret) + "_" + 43
 * base64url characters (256 random bits). Only its SHA-256 is stored: the
 * secret is random, so a plain fast hash cannot be searched, and a check
 * is one hash plus a constant-time compare. The id lets a check find its
 * row without comparing against every key, and lets a leaked token be
 * found and revoked by id. The fixed prefixes let secret scanners find
 * leaked tokens. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "internal.h"

static int is_lhex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

int iam_token_split(const char *tok, size_t len, const char *prefix,
                    char id[17]) {
  size_t pl = strlen(prefix);
  if (len != pl + 16 + 1 + 43 || memcmp(tok, prefix, pl) != 0 ||
      tok[pl + 16] != '_')
    return -1;
  for (size_t i = 0; i < 16; i++)
    if (!is_lhex(tok[pl + i])) return -1;
  memcpy(id, tok + pl, 16);
  id[16] = '\0';
  return 0;
}

int iam_bearer_token(const char *v, size_t len, nno_str *tok) {
  if (len < 8 || strncasecmp(v, "Bearer ", 7) != 0) return -1;
  tok->ptr = v + 7;
  tok->len = len - 7;
  while (tok->len && *tok->ptr == ' ') tok->ptr++, tok->len--;
  while (tok->len && tok->ptr[tok->len - 1] == ' ') tok->len--;
  return 0;
}

size_t iam_cookie_values(const char *v, size_t len, const char *name,
                         nno_str *out, size_t max) {
  const char *p = v, *end = v + len;
  size_t nl = strlen(name), k = 0;
  while (k < max && p < end) {
    while (p < end && (*p == ' ' || *p == ';')) p++;
    const char *eq = p;
    while (eq < end && *eq != '=' && *eq != ';') eq++;
    const char *ve = eq;
    while (ve < end && *ve != ';') ve++;
    if (eq < end && *eq == '=' && (size_t)(eq - p) == nl &&
        memcmp(p, name, nl) == 0 && ve > eq + 1)
      out[k++] = (nno_str){eq + 1, (size_t)(ve - eq - 1)};
    p = ve;
  }
  return k;
}

void iam_token_new(const char *prefix, char *tok, size_t cap, char id[17],
                   unsigned char hash[32]) {
  unsigned char raw[32], idb[8];
  randombytes_buf(idb, sizeof idb);
  sodium_bin2hex(id, 17, idb, sizeof idb);
  randombytes_buf(raw, sizeof raw);
  size_t pl = strlen(prefix);
  /* cap >= NNO_IAM_TOKEN_MAX: prefix 5 + 16 + 1 + 43 + NUL */
  memcpy(tok, prefix, pl);
  memcpy(tok + pl, id, 16);
  tok[pl + 16] = '_';
  sodium_bin2base64(tok + pl + 17, cap - pl - 17, raw, sizeof raw,
                    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  sodium_memzero(raw, sizeof raw);
  crypto_hash_sha256(hash, (const unsigned char *)tok, strlen(tok));
}

/* ---- the table: open addressing on the id's random bits ---------------- */

struct iam_keytab {
  iam_key *slots; /* id[0] == '\0' marks an empty slot */
  size_t cap, n;
};

static size_t slot_of(const char *id, size_t cap) {
  uint64_t h = 0;
  for (int i = 0; i < 16; i++) h = h * 31 + (unsigned char)id[i];
  return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

iam_keytab *iam_keytab_new(void) {
  iam_keytab *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->cap = 64;
  if (!(t->slots = calloc(t->cap, sizeof *t->slots))) {
    free(t);
    return NULL;
  }
  return t;
}

void iam_keytab_free(iam_keytab *t) {
  if (!t) return;
  sodium_memzero(t->slots, t->cap * sizeof *t->slots);
  free(t->slots);
  free(t);
}

static void place(iam_key *slots, size_t cap, const iam_key *k) {
  size_t i = slot_of(k->id, cap);
  while (slots[i].id[0] && strcmp(slots[i].id, k->id) != 0)
    i = (i + 1) & (cap - 1);
  slots[i] = *k;
}

int iam_keytab_put(iam_keytab *t, const iam_key *k) {
  if ((t->n + 1) * 2 > t->cap) {
    size_t cap = t->cap * 2;
    iam_key *s = calloc(cap, sizeof *s);
    if (!s) return NNO_ENOMEM;
    for (size_t i = 0; i < t->cap; i++)
      if (t->slots[i].id[0]) place(s, cap, &t->slots[i]);
    free(t->slots);
    t->slots = s;
    t->cap = cap;
  }
  if (!iam_keytab_get(t, k->id)) t->n++;
  place(t->slots, t->cap, k);
  return 0;
}

const iam_key *iam_keytab_get(const iam_keytab *t, const char *id) {
  if (strnlen(id, 17) != 16) return NULL; /* never read past a short id */
  size_t i = slot_of(id, t->cap);
  while (t->slots[i].id[0]) {
    if (memcmp(t->slots[i].id, id, 17) == 0) return &t->slots[i];
    i = (i + 1) & (t->cap - 1);
  }
  return NULL;
}

size_t iam_keytab_count(const iam_keytab *t) { return t->n; }
