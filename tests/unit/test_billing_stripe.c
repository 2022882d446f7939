/* Unit tests for plugins/billing/stripe_wire.c: the form encoder with
 * bracket keys, Stripe-Signature verification, and the redaction of
 * secrets from error text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "driver.h"

static void form_brackets_and_escapes(void **state) {
  (void)state;
  form f;
  form_init(&f);
  form_add(&f, "customer", "cus_123");
  form_add(&f, "items[0][price]", "price_abc");
  form_add(&f, "metadata[platform]", "acme");
  assert_false(f.overflow);
  assert_string_equal(f.buf, "customer=cus_123&items%5B0%5D%5Bprice%5D="
                             "price_abc&metadata%5Bplatform%5D=acme");
  form_init(&f);
  form_add(&f, "name", "a b&c=d+e%f/é~._-");
  assert_string_equal(f.buf, "name=a%20b%26c%3Dd%2Be%25f%2F%C3%A9~._-");
  form_init(&f);
  form_add(&f, "empty", "");
  form_add(&f, "nul", NULL);
  form_add_u64(&f, "payload[value]", 18446744073709551615ull);
  assert_string_equal(
      f.buf, "empty=&nul=&payload%5Bvalue%5D=18446744073709551615");
}

static void form_overflow_is_sticky(void **state) {
  (void)state;
  form f;
  form_init(&f);
  char big[FORM_MAX];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  form_add(&f, "a", big);
  assert_true(f.overflow);
  assert_true(f.len < FORM_MAX);
  assert_int_equal(f.buf[f.len], '\0');
  form_add(&f, "b", "c");
  assert_true(f.overflow);
  /* an escaped byte takes three: the bound holds for those too */
  form_init(&f);
  memset(big, '&', sizeof big - 1);
  form_add(&f, "k", big);
  assert_true(f.overflow);
  assert_true(f.len < FORM_MAX);
}

static const char *SECRET = "whsec_test_secret";
static const char *BODY = "{\"id\":\"evt_1\",\"type\":\"invoice.paid\"}";

static int verify(const char *hdr, int64_t now) {
  return stripe_sig_verify(hdr, strlen(hdr), SECRET, BODY, strlen(BODY), now,
                           300);
}

/* The reference value computed independently (HMAC of "t.body"). */
static void reference(int64_t t, char hex[65]) {
  char msg[256];
  int n = snprintf(msg, sizeof msg, "%lld.%s", (long long)t, BODY);
  unsigned char mac[crypto_auth_hmacsha256_BYTES];
  crypto_auth_hmacsha256_state st;
  crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET,
                              strlen(SECRET));
  crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, (size_t)n);
  crypto_auth_hmacsha256_final(&st, mac);
  sodium_bin2hex(hex, 65, mac, sizeof mac);
}

static void signature_good_and_multiple(void **state) {
  (void)state;
  int64_t t = 1700000000;
  char hex[65], hdr[512];
  reference(t, hex);
  char made[256];
  assert_int_equal(stripe_sig_make(SECRET, t, BODY, strlen(BODY), made,
                                   sizeof made),
                   0);
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", (long long)t, hex);
  assert_string_equal(made, hdr);
  assert_int_equal(verify(hdr, t), SIG_OK);
  assert_int_equal(verify(hdr, t + 300), SIG_OK);
  assert_int_equal(verify(hdr, t - 300), SIG_OK);
  /* one good among several, other schemes ignored, spaces after commas */
  snprintf(hdr, sizeof hdr, "t=%lld, v1=%064d, v0=abc,v1=%s", (long long)t, 0,
           hex);
  assert_int_equal(verify(hdr, t), SIG_OK);
  /* upper-case hex is the same bytes */
  char up[65];
  for (int i = 0; i < 65; i++)
    up[i] = (char)((hex[i] >= 'a' && hex[i] <= 'f') ? hex[i] - 32 : hex[i]);
  snprintf(hdr, sizeof hdr, "v1=%s,t=%lld", up, (long long)t);
  assert_int_equal(verify(hdr, t), SIG_OK);
}

static void signature_refusals(void **state) {
  (void)state;
  int64_t t = 1700000000;
  char hex[65], hdr[512];
  reference(t, hex);
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", (long long)t, hex);
  assert_int_equal(verify(hdr, t + 301), SIG_EXPIRED);
  assert_int_equal(verify(hdr, t - 301), SIG_EXPIRED);
  /* the body, the time or the secret changed */
  assert_int_equal(stripe_sig_verify(hdr, strlen(hdr), SECRET, "{}", 2, t, 300),
                   SIG_MISMATCH);
  assert_int_equal(stripe_sig_verify(hdr, strlen(hdr), "whsec_other", BODY,
                                     strlen(BODY), t, 300),
                   SIG_MISMATCH);
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", (long long)t + 1, hex);
  assert_int_equal(verify(hdr, t), SIG_MISMATCH);
  /* an expired signature that does not verify is a mismatch first */
  assert_int_equal(verify(hdr, t + 10000), SIG_MISMATCH);
  const char *bad[] = {"", "t=1700000000", "v1=00", "t=,v1=00",
                       "t=abc,v1=" /* no value */, "garbage",
                       "t=1700000000,v1=zz", "t=1700000000,t=1700000000",
                       "t=1700000000,v1=0123"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_int_equal(verify(bad[i], t), SIG_MALFORMED);
  /* a good v1 with a wrong twin of the right length */
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s,v1=%064d", (long long)t, hex, 0);
  assert_int_equal(verify(hdr, t), SIG_OK);
  /* no secret configured: nothing verifies */
  assert_int_equal(stripe_sig_verify(hdr, strlen(hdr), "", BODY, strlen(BODY),
                                     t, 300),
                   SIG_MALFORMED);
}

/* Parsed as documented: a v1 that is not 64 hex digits is skipped, not
 * fatal; every v1 compared up to SIG_V1_MAX; the first t is the one. */
static void signature_lenient_parts(void **state) {
  (void)state;
  int64_t t = 1700000000;
  char hex[65], hdr[SIG_HEADER_MAX + 128];
  reference(t, hex);
  snprintf(hdr, sizeof hdr, "t=%lld,v1=00,v1=%s", (long long)t, hex);
  assert_int_equal(verify(hdr, t), SIG_OK);
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s,v1=", (long long)t, hex);
  for (int i = 0; i < 64; i++) strcat(hdr, "g");
  assert_int_equal(verify(hdr, t), SIG_OK);
  snprintf(hdr, sizeof hdr, "t=%lld,v1=,junk,v2=x,v1=%s", (long long)t, hex);
  assert_int_equal(verify(hdr, t), SIG_OK);
  /* a good v1 followed by 100 more */
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s", (long long)t, hex);
  for (int i = 0; i < 100; i++) {
    char part[80];
    snprintf(part, sizeof part, ",v1=%064d", i);
    strcat(hdr, part);
  }
  assert_true(strlen(hdr) < SIG_HEADER_MAX);
  assert_int_equal(verify(hdr, t), SIG_OK);
  /* only the first SIG_V1_MAX well-formed v1 are compared */
  snprintf(hdr, sizeof hdr, "t=%lld", (long long)t);
  for (int i = 0; i < SIG_V1_MAX; i++) {
    char part[80];
    snprintf(part, sizeof part, ",v1=%064d", i);
    strcat(hdr, part);
  }
  strcat(hdr, ",v1=");
  strcat(hdr, hex);
  assert_int_equal(verify(hdr, t), SIG_MISMATCH);
  /* the first t is the one signed */
  snprintf(hdr, sizeof hdr, "t=%lld,t=1,v1=%s", (long long)t, hex);
  assert_int_equal(verify(hdr, t), SIG_OK);
  snprintf(hdr, sizeof hdr, "t=1,t=%lld,v1=%s", (long long)t, hex);
  assert_int_equal(verify(hdr, t), SIG_MISMATCH);
  /* the header's bound */
  snprintf(hdr, sizeof hdr, "t=%lld,v1=%s,", (long long)t, hex);
  size_t n = strlen(hdr);
  memset(hdr + n, 'x', SIG_HEADER_MAX + 1 - n);
  hdr[SIG_HEADER_MAX + 1] = '\0';
  assert_int_equal(verify(hdr, t), SIG_MALFORMED);
}

static void redaction(void **state) {
  (void)state;
  char out[128];
  secret_redact("Invalid API Key provided: sk_test_abc123XYZ", out,
                sizeof out);
  assert_string_equal(out, "Invalid API Key provided: [redacted]");
  secret_redact("key rk_live_**********wxyz, whsec_q9 and Bearer tok.en", out,
                sizeof out);
  assert_string_equal(out, "key [redacted], [redacted] and [redacted].en");
  secret_redact("task_x ask_me: not secrets\nnext", out, sizeof out);
  assert_string_equal(out, "task_x ask_me: not secrets next");
  secret_redact("sk_test_abcdef", out, 6);
  assert_string_equal(out, "[reda");
}

int main(void) {
  if (sodium_init() < 0) return 1;
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(form_brackets_and_escapes),
      cmocka_unit_test(form_overflow_is_sticky),
      cmocka_unit_test(signature_good_and_multiple),
      cmocka_unit_test(signature_refusals),
      cmocka_unit_test(signature_lenient_parts),
      cmocka_unit_test(redaction),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
