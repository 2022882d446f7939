/* TCP_INFO's received-data fields (tcp_age.h). */
#include "tcp_age.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tcp.h>
#include <netinet/in.h>

int tcp_data_age(int fd, uint32_t *age_ms, uint32_t *data_segs) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  memset(&ti, 0, sizeof ti);
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0) return -1;
  if (len < offsetof(struct tcp_info, tcpi_last_data_recv) +
                sizeof ti.tcpi_last_data_recv) {
    errno = ENOPROTOOPT;
    return -1;
  }
  *age_ms = ti.tcpi_last_data_recv;
  /* tcpi_data_segs_in: Linux 4.6 and later. */
  *data_segs = len >= offsetof(struct tcp_info, tcpi_data_segs_in) +
                          sizeof ti.tcpi_data_segs_in
                   ? ti.tcpi_data_segs_in
                   : 1;
  return 0;
}
