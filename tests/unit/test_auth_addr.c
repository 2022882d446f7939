/* Unit tests for the auth package's per-address bucket keys (addr.c):
 * IPv6 clients are counted by their /64. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth.h"

static void addr_is(const char *addr, const char *want) {
  char out[64];
  size_t n = auth_addr_key(addr, strlen(addr), out, sizeof out);
  assert_string_equal(out, want);
  assert_int_equal(n, strlen(want));
}

static void test_addr_key(void **st) {
  (void)st;
  addr_is("127.0.0.1", "127.0.0.1");
  addr_is("::ffff:203.0.113.7", "::ffff:203.0.113.7");
  addr_is("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64");
  addr_is("2001:db8:1:2::ffff", "2001:db8:1:2::/64");
  addr_is("2001:DB8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64");
  addr_is("fd00::2", "fd00:0:0:0::/64");
  addr_is("unknown", "unknown");
  addr_is("", "");
  char small[8];
  assert_int_equal(auth_addr_key("203.0.113.7", 11, small, sizeof small), 7);
  assert_string_equal(small, "203.0.1");
  assert_int_equal(auth_addr_key("2001:db8:1:2::1", 15, small, sizeof small),
                   0);
  assert_string_equal(small, "");
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_addr_key),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
