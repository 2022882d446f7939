/* The sandbox wire codec (host/sbx_proto.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sbx_proto.h"

/* A frame of every field type. */
static void build(sbx_out *o) {
  size_t at = sbx_begin(o, SBX_MSG_CALL, 0x1122334455667788ull);
  sbx_u8(o, 0xab);
  sbx_u16(o, 0xbeef);
  sbx_u32(o, 0xdeadbeef);
  sbx_i32(o, -5);
  sbx_u64(o, UINT64_MAX - 1);
  sbx_i64(o, INT64_MIN);
  sbx_str(o, "a\0b", 3);
  sbx_cstr(o, "text");
  sbx_cstr(o, NULL);
  assert_int_equal(sbx_end(o, at), 0);
}

/* Read the frame's payload back: 0 when whole and equal, -1 when the
 * reader said bad. */
static int check(const char *p, size_t n) {
  sbx_in in = {p, n, 0};
  uint8_t a = sbx_get_u8(&in);
  uint16_t b = sbx_get_u16(&in);
  uint32_t c = sbx_get_u32(&in);
  int32_t d = sbx_get_i32(&in);
  uint64_t e = sbx_get_u64(&in);
  int64_t g = sbx_get_i64(&in);
  size_t l1, l2, l3;
  const char *s1 = sbx_get_str(&in, &l1);
  const char *s2 = sbx_get_text(&in, &l2, 64);
  const char *s3 = sbx_get_text(&in, &l3, 64);
  if (in.bad) return -1;
  assert_int_equal(a, 0xab);
  assert_int_equal(b, 0xbeef);
  assert_int_equal(c, 0xdeadbeef);
  assert_int_equal(d, -5);
  assert_true(e == UINT64_MAX - 1);
  assert_true(g == INT64_MIN);
  assert_int_equal(l1, 3);
  assert_memory_equal(s1, "a\0b", 3);
  assert_int_equal(l2, 4);
  assert_string_equal(s2, "text");
  assert_int_equal(l3, 0);
  assert_string_equal(s3, "");
  assert_int_equal(in.left, 0);
  return 0;
}

static void test_round_trip(void **state) {
  (void)state;
  sbx_out o = {0};
  build(&o);
  build(&o);
  /* Two frames in one buffer, split one after the other. */
  long n = sbx_frame_ready(o.p, o.len, SBX_FRAME_MAX);
  assert_true(n > 0 && (size_t)n * 2 == o.len);
  sbx_frame_head h;
  memcpy(&h, o.p, sizeof h);
  assert_int_equal(h.type, SBX_MSG_CALL);
  assert_true(h.id == 0x1122334455667788ull);
  assert_int_equal(h.len, (size_t)n - sizeof h);
  assert_int_equal(check(o.p + sizeof h, h.len), 0);
  sbx_out_consume(&o, (size_t)n);
  assert_int_equal(sbx_frame_ready(o.p, o.len, SBX_FRAME_MAX), n);
  assert_int_equal(check(o.p + sizeof h, h.len), 0);
  sbx_out_free(&o);
}

static void test_every_truncation_refused(void **state) {
  (void)state;
  sbx_out o = {0};
  build(&o);
  sbx_frame_head h;
  memcpy(&h, o.p, sizeof h);
  /* Every prefix of the frame is "need more", never a frame. */
  for (size_t k = 0; k < o.len; k++)
    assert_int_equal(sbx_frame_ready(o.p, k, SBX_FRAME_MAX), 0);
  /* Every prefix of the payload read as a whole one is bad. */
  for (size_t k = 0; k < h.len; k++) {
    char *cut = malloc(k ? k : 1);
    memcpy(cut, o.p + sizeof h, k);
    assert_int_equal(check(cut, k), -1);
    free(cut);
  }
  sbx_out_free(&o);
}

static void test_strings_refused(void **state) {
  (void)state;
  /* A string whose terminating NUL is missing. */
  sbx_out o = {0};
  sbx_str(&o, "abc", 3);
  o.p[o.len - 1] = 'x';
  sbx_in in = {o.p, o.len, 0};
  assert_string_equal(sbx_get_str(&in, NULL), "");
  assert_true(in.bad);
  /* A length past the end. */
  o.len = 0;
  sbx_u32(&o, 100);
  sbx_u8(&o, 0);
  in = (sbx_in){o.p, o.len, 0};
  sbx_get_str(&in, NULL);
  assert_true(in.bad);
  /* Text: an inner NUL, or longer than its bound. */
  o.len = 0;
  sbx_str(&o, "a\0b", 3);
  in = (sbx_in){o.p, o.len, 0};
  sbx_get_text(&in, NULL, 64);
  assert_true(in.bad);
  o.len = 0;
  sbx_cstr(&o, "0123456789");
  in = (sbx_in){o.p, o.len, 0};
  sbx_get_text(&in, NULL, 9);
  assert_true(in.bad);
  in = (sbx_in){o.p, o.len, 0};
  assert_string_equal(sbx_get_text(&in, NULL, 10), "0123456789");
  assert_false(in.bad);
  /* Once bad, every read yields zero. */
  in.bad = 1;
  assert_int_equal(sbx_get_u64(&in), 0);
  sbx_out_free(&o);
}

static void test_oversize_refused(void **state) {
  (void)state;
  sbx_frame_head h = {SBX_FRAME_MAX + 1, SBX_MSG_REQ, 0, 1};
  assert_int_equal(sbx_frame_ready((const char *)&h, sizeof h, SBX_FRAME_MAX),
                   -1);
  h.len = 1000;
  assert_int_equal(sbx_frame_ready((const char *)&h, sizeof h, 999), -1);
  /* A writer never makes one: the frame is dropped, those before stay. */
  sbx_out o = {0};
  size_t at = sbx_begin(&o, SBX_MSG_LOG, 0);
  sbx_u8(&o, 1);
  assert_int_equal(sbx_end(&o, at), 0);
  size_t keep = o.len;
  at = sbx_begin(&o, SBX_MSG_RES, 2);
  sbx_str(&o, "x", (size_t)SBX_FRAME_MAX + 1);
  assert_int_equal(sbx_end(&o, at), -1);
  assert_int_equal(o.len, keep);
  assert_int_equal(sbx_frame_ready(o.p, o.len, SBX_FRAME_MAX), (long)keep);
  sbx_out_free(&o);
}

/* The poll window adapts as documented: caught inputs keep it, inputs a
 * longer poll would have caught grow it up to the grant, later ones shrink
 * it to 0, and no grant means no poll. */
static void test_poll_window(void **state) {
  (void)state;
  const uint64_t max = 200000;
  /* no grant: never polls, whatever came */
  assert_int_equal(sbx_poll_window(0, 0, 10), 0);
  assert_int_equal(sbx_poll_window(150000, 0, 10), 0);
  /* from nothing, an input within the grant starts it at max/8 */
  assert_int_equal(sbx_poll_window(0, max, 60000), 25000);
  /* and it doubles while inputs come later than it but within max */
  assert_int_equal(sbx_poll_window(25000, max, 60000), 50000);
  assert_int_equal(sbx_poll_window(50000, max, 60000), 100000);
  /* a caught input keeps it */
  assert_int_equal(sbx_poll_window(100000, max, 60000), 100000);
  /* never past the grant, a smaller grant cuts it */
  assert_int_equal(sbx_poll_window(150000, max, 190000), max);
  assert_int_equal(sbx_poll_window(max, 50000, 40000), 50000);
  /* inputs later than max halve it, and it ends at 0 */
  uint64_t w = max;
  int n = 0;
  while (w && n < 64) {
    uint64_t next = sbx_poll_window(w, max, 5000000);
    assert_true(next < w);
    w = next;
    n++;
  }
  assert_int_equal(w, 0);
  assert_true(n <= 7);
  /* the walk from nothing to max under steady inputs just past it */
  w = 0;
  for (int i = 0; i < 5; i++) w = sbx_poll_window(w, max, max);
  assert_int_equal(w, max);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_every_truncation_refused),
      cmocka_unit_test(test_strings_refused),
      cmocka_unit_test(test_oversize_refused),
      cmocka_unit_test(test_poll_window),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
