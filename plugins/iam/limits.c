/* Pure helpers of IAM's rate limiting: the address part of an anonymous
 * client's bucket key, and what a refusal of the host's limiter means.
 * Linked into the unit tests without the host. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

size_t iam_addr_key(const char *addr, size_t len, char *out, size_t cap) {
  char text[INET6_ADDRSTRLEN];
  struct in6_addr a6;
  if (cap == 0) return 0;
  if (!addr) len = 0;
  size_t n = len < sizeof text ? len : sizeof text - 1;
  memcpy(text, addr ? addr : "", n);
  text[n] = '\0';
  /* An IPv6 client holds (at least) a /64: every address in it is the same
   * client. IPv4 and IPv4-mapped addresses stay whole. */
  if (len < sizeof text && memchr(text, ':', n) &&
      inet_pton(AF_INET6, text, &a6) == 1 && !IN6_IS_ADDR_V4MAPPED(&a6)) {
    const unsigned char *b = a6.s6_addr;
    int w = snprintf(out, cap, "%x:%x:%x:%x::/64", b[0] << 8 | b[1],
                     b[2] << 8 | b[3], b[4] << 8 | b[5], b[6] << 8 | b[7]);
    if (w > 0 && (size_t)w < cap) return (size_t)w;
    out[0] = '\0';
    return 0;
  }
  if (n >= cap) n = cap - 1;
  memcpy(out, text, n);
  out[n] = '\0';
  return n;
}

int iam_limit_table_full(const nno_limit_result *r) {
  /* A bucket that exists always reports limit == burst >= 1; the host
   * answers limit 0 when its table had no room to create one. */
  return !r->allowed && r->limit == 0;
}
