/* What the Stripe driver and the webhook endpoint put on and read from the
 * wire, without the host: form bodies with bracket nesting, the webhook
 * signature, and the redaction of secrets from error text. Pure functions
 * (libsodium only), unit-tested in tests/unit/test_billing_stripe.c. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "driver.h"

void form_init(form *f) {
  f->len = 0;
  f->overflow = 0;
  f->buf[0] = '\0';
}

static int unreserved(unsigned char c) {
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

static void put(form *f, char c) {
  if (f->len + 1 >= sizeof f->buf) {
    f->overflow = 1;
    return;
  }
  f->buf[f->len++] = c;
  f->buf[f->len] = '\0';
}

static void put_escaped(form *f, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (unreserved(*p)) {
      put(f, (char)*p);
    } else {
      put(f, '%');
      put(f, hex[*p >> 4]);
      put(f, hex[*p & 15]);
    }
  }
}

void form_add(form *f, const char *key, const char *value) {
  if (f->len) put(f, '&');
  put_escaped(f, key);
  put(f, '=');
  put_escaped(f, value ? value : "");
}

void form_add_u64(form *f, const char *key, uint64_t value) {
  char v[24];
  snprintf(v, sizeof v, "%" PRIu64, value);
  form_add(f, key, v);
}

/* ---- signatures ----------------------------------------------------------- */


static int hex_nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void mac(const char *secret, const char *t, size_t tlen,
                const void *body, size_t body_len,
                unsigned char out[crypto_auth_hmacsha256_BYTES]) {
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, (const unsigned char *)secret,
                              strlen(secret));
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)t, tlen);
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
  crypto_auth_hmacsha256_update(&st, body, body_len);
  crypto_auth_hmacsha256_final(&st, out);
  sodium_memzero(&st, sizeof st);
}

int stripe_sig_verify(const char *header, size_t header_len,
                      const char *secret, const void *body, size_t body_len,
                      int64_t now_s, int64_t tolerance_s) {
  if (!header || !secret || !secret[0] || header_len > SIG_HEADER_MAX)
    return SIG_MALFORMED;
  const char *t = NULL;
  size_t tlen = 0;
  unsigned char v1[SIG_V1_MAX][crypto_auth_hmacsha256_BYTES];
  size_t nv1 = 0;
  const char *p = header, *end = header + header_len;
  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *stop = comma ? comma : end;
    while (p < stop && *p == ' ') p++;
    const char *eq = memchr(p, '=', (size_t)(stop - p));
    size_t klen = eq ? (size_t)(eq - p) : 0;
    const char *v = eq ? eq + 1 : stop;
    size_t vlen = (size_t)(stop - v);
    if (!eq) {
      /* not key=value: ignored like an unknown scheme */
    } else if (klen == 1 && p[0] == 't') {
      if (!t) { /* the first t is the one signed; later ones are ignored */
        if (vlen == 0 || vlen > 12) return SIG_MALFORMED;
        for (size_t i = 0; i < vlen; i++)
          if (v[i] < '0' || v[i] > '9') return SIG_MALFORMED;
        t = v;
        tlen = vlen;
      }
    } else if (klen == 2 && p[0] == 'v' && p[1] == '1' &&
               vlen == 2 * crypto_auth_hmacsha256_BYTES && nv1 < SIG_V1_MAX) {
      int bad = 0;
      for (size_t i = 0; i < crypto_auth_hmacsha256_BYTES; i++) {
        int hi = hex_nibble(v[2 * i]), lo = hex_nibble(v[2 * i + 1]);
        bad |= hi < 0 || lo < 0;
        v1[nv1][i] = (unsigned char)((hi & 15) << 4 | (lo & 15));
      }
      if (!bad) nv1++; /* a v1 that is not 64 hex digits is skipped */
    } /* other schemes (v0, ...) are ignored, as Stripe's libraries do */
    p = comma ? comma + 1 : end;
  }
  if (!t || nv1 == 0) return SIG_MALFORMED;
  unsigned char want[crypto_auth_hmacsha256_BYTES];
  mac(secret, t, tlen, body, body_len, want);
  int ok = 0;
  for (size_t i = 0; i < nv1; i++) /* every one, whatever matched */
    ok |= sodium_memcmp(want, v1[i], sizeof want) == 0;
  sodium_memzero(want, sizeof want);
  if (!ok) return SIG_MISMATCH;
  char tz[16];
  memcpy(tz, t, tlen);
  tz[tlen] = '\0';
  int64_t ts = (int64_t)strtoll(tz, NULL, 10);
  int64_t d = now_s - ts;
  if (d > tolerance_s || -d > tolerance_s) return SIG_EXPIRED;
  return SIG_OK;
}

int stripe_sig_make(const char *secret, int64_t t, const void *body,
                    size_t body_len, char *out, size_t cap) {
  char ts[24];
  int n = snprintf(ts, sizeof ts, "%" PRId64, t);
  unsigned char m[crypto_auth_hmacsha256_BYTES];
  mac(secret, ts, (size_t)n, body, body_len, m);
  char hex[2 * sizeof m + 1];
  sodium_bin2hex(hex, sizeof hex, m, sizeof m);
  int w = snprintf(out, cap, "t=%s,v1=%s", ts, hex);
  return w > 0 && (size_t)w < cap ? 0 : -1;
}

/* ---- redaction ------------------------------------------------------------ */

void secret_redact(const char *in, char *out, size_t cap) {
  static const char *const prefixes[] = {"sk_", "rk_", "whsec_", "Bearer "};
  size_t o = 0;
  if (!cap) return;
  for (const char *p = in ? in : ""; *p && o + 1 < cap;) {
    int hit = 0;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
      size_t n = strlen(prefixes[i]);
      int boundary = p == in || !isalnum((unsigned char)p[-1]);
      if (boundary && strncmp(p, prefixes[i], n) == 0) {
        const char *q = p + n;
        while (*q && (isalnum((unsigned char)*q) || *q == '_' || *q == '*'))
          q++;
        const char *r = "[redacted]";
        size_t rl = strlen(r);
        if (o + rl >= cap) rl = cap - 1 - o;
        memcpy(out + o, r, rl);
        o += rl;
        p = q;
        hit = 1;
        break;
      }
    }
    if (!hit) {
      unsigned char c = (unsigned char)*p++;
      out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
  }
  out[o] = '\0';
}
