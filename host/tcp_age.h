/* What the kernel says of a TCP connection's received data: when its last
 * data came and in how many segments (TCP_INFO). Its own file: the
 * kernel's struct tcp_info (linux/tcp.h) has fields glibc's lacks, and
 * the two headers cannot meet in one file (uv.h brings glibc's). */
#ifndef NNO_HOST_TCP_AGE_H
#define NNO_HOST_TCP_AGE_H

#include <stdint.h>

/* For connected socket `fd`: the age of its last received data in ms (the
 * kernel's ticks, so to within 1-10 ms) and the number of segments that
 * carried data (1 when the kernel is too old to say). 0, or -1 with errno
 * set. */
int tcp_data_age(int fd, uint32_t *age_ms, uint32_t *data_segs);

#endif
