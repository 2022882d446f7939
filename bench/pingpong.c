/* The floor of a sandbox's round trip on this machine: two processes
 * passing a small message back and forth over a socketpair, each waiting
 * in the kernel for the other (as the worker and its sandbox do), so each
 * round trip is two wake-ups and two context switches, and nothing else.
 * Prints the median, p90 and p99 of N round trips after a warm-up, for
 * each way of waiting:
 *
 *   read      a blocking read on the socket
 *   epoll     epoll_wait, then a non-blocking read (as a libuv loop)
 *   spin      non-blocking reads in a loop, no sleep (a busy poll: the
 *             least a round trip can cost with both processes on a CPU)
 *
 * Built by hand, never part of the build (bench/README.md):
 *   cc -O2 -o /tmp/pingpong bench/pingpong.c && /tmp/pingpong [N] [BYTES]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { WAIT_READ, WAIT_EPOLL, WAIT_SPIN };
static const char *const names[] = {"read", "epoll", "spin"};

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Receive exactly n bytes on fd, waiting the way `how` says. */
static int recv_all(int fd, int ep, int how, char *p, size_t n) {
  size_t got = 0;
  while (got < n) {
    if (how == WAIT_EPOLL) {
      struct epoll_event ev;
      if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR) return -1;
    }
    ssize_t r = recv(fd, p + got, n - got, how == WAIT_READ ? 0 : MSG_DONTWAIT);
    if (r > 0)
      got += (size_t)r;
    else if (r == 0)
      return -1;
    else if (errno != EAGAIN && errno != EINTR)
      return -1;
  }
  return 0;
}

static int epoll_on(int fd) {
  int ep = epoll_create1(EPOLL_CLOEXEC);
  struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
  if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) return -1;
  return ep;
}

static int cmp(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int run(int how, int n, size_t bytes) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return -1;
  char *buf = calloc(1, bytes);
  uint64_t *rt = calloc((size_t)n, sizeof *rt);
  if (!buf || !rt) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) { /* the echo side: the sandbox's place */
    close(sv[0]);
    int ep = how == WAIT_EPOLL ? epoll_on(sv[1]) : -1;
    for (;;) {
      if (recv_all(sv[1], ep, how, buf, bytes) != 0) _exit(0);
      if (send(sv[1], buf, bytes, 0) != (ssize_t)bytes) _exit(1);
    }
  }
  close(sv[1]);
  int ep = how == WAIT_EPOLL ? epoll_on(sv[0]) : -1;
  int warm = n / 10 + 100;
  for (int i = -warm; i < n; i++) {
    uint64_t t0 = now_ns();
    if (send(sv[0], buf, bytes, 0) != (ssize_t)bytes ||
        recv_all(sv[0], ep, how, buf, bytes) != 0)
      return -1;
    if (i >= 0) rt[i] = now_ns() - t0;
  }
  close(sv[0]);
  waitpid(pid, NULL, 0);
  qsort(rt, (size_t)n, sizeof *rt, cmp);
  printf("%-6s %8.1f %8.1f %8.1f\n", names[how], rt[n / 2] / 1000.0,
         rt[n * 9 / 10] / 1000.0, rt[n * 99 / 100] / 1000.0);
  if (ep >= 0) close(ep);
  free(buf);
  free(rt);
  return 0;
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 100000;
  size_t bytes = argc > 2 ? (size_t)atoi(argv[2]) : 256;
  if (n < 100 || bytes < 1 || bytes > 65536) {
    fprintf(stderr, "usage: pingpong [N >= 100] [BYTES 1..65536]\n");
    return 2;
  }
  printf(
      "# %d round trips of %zu bytes over a socketpair between two "
      "processes, load %s",
      n, bytes, "");
  FILE *f = fopen("/proc/loadavg", "r");
  char la[64] = "?\n";
  if (f) {
    if (!fgets(la, sizeof la, f)) strcpy(la, "?\n");
    fclose(f);
  }
  fputs(la, stdout);
  printf("%-6s %8s %8s %8s   (us per round trip)\n", "wait", "p50", "p90",
         "p99");
  for (int how = WAIT_READ; how <= WAIT_SPIN; how++)
    if (run(how, n, bytes) != 0) {
      perror("pingpong");
      return 1;
    }
  return 0;
}
