/* Claims that keep two hosts from serving one port or one data folder.
 *
 * The port. Each worker position has its own listening socket bound with
 * SO_REUSEPORT (master.c), and Linux lets any socket of the same effective
 * user join a reuseport group: a second `nno serve` on a served port would
 * bind without error and silently take a share of the connections. The
 * kernel has no way to close a group to newcomers (a reuseport BPF program
 * can keep them from being chosen, not from binding), and binding the first
 * lane without SO_REUSEPORT would shut out our own lanes too. So the master
 * claims the port in a namespace where names are exclusive: it binds the
 * abstract unix socket "\0nno/port/{port}" before its lanes and keeps it
 * for its life. Abstract names belong to the network namespace, as TCP
 * ports do, need no file and vanish with their last descriptor, so neither
 * a crash nor kill -9 leaves a stale claim. The name carries the port only,
 * not the address: 0.0.0.0:8080 and 127.0.0.1:8080 overlap, and comparing
 * addresses by their spelling would miss it; the price is that two nno
 * hosts in one network namespace cannot share a port number on different
 * addresses. The socket listens so that a refused host can connect and
 * read the holder's pid (SO_PEERCRED); the master accepts and closes those
 * connections from its loop.
 *
 * Abstract names have no permissions: any local user can bind
 * "\0nno/port/80" first. The claim only needs to hold off hosts of our own
 * user, as Linux admits to a reuseport group only sockets of the user that
 * made it: one of another user binding our port fails like any foreign
 * listener. So a name held by another uid (or by a process whose
 * credentials cannot be read) is not a host of ours: it is logged, and the
 * probe below alone decides.
 *
 * The claim covers other nno hosts. Anything else already listening on the
 * address (another server, an older nno) is found by a probe: binding a
 * socket without SO_REUSEPORT fails with EADDRINUSE when any socket listens
 * there, reuseport or not. The probe is closed before the lanes bind; a
 * foreign program binding in that instant is the only gap left.
 *
 * The data folder: an exclusive flock on {data}/nno.lock, taken by the
 * master and held for its life, with its pid written in the file for the
 * message of the host refused. The file stays after exit (unlinking a lock
 * file races with the next host opening it); the lock does not. */
#include "instance.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

static int data_fd = -1; /* {data}/nno.lock, flocked */
static int port_fd = -1; /* the abstract socket naming the port */

static const char hint_data[] =
    "stop that host first, or give this one its own folder with --data DIR";
static const char hint_port[] =
    "stop that host first, or choose another port with --listen HOST:PORT";

int instance_lock_data(const char *dir, instance_refusal *why) {
  char path[PATH_MAX];
  why->hint = NULL;
  if ((size_t)snprintf(path, sizeof path, "%s/nno.lock", dir) >= sizeof path) {
    snprintf(why->msg, sizeof why->msg, "data folder path too long: %.200s",
             dir);
    return -1;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
  if (fd < 0) {
    snprintf(why->msg, sizeof why->msg, "cannot open %.400s: %s", path,
             strerror(errno));
    return -1;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) {
      /* The holder writes its pid right after locking: an empty file
       * means we looked in between. */
      char buf[32];
      ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
      long pid = 0;
      if (n > 0) {
        buf[n] = '\0';
        pid = strtol(buf, NULL, 10);
      }
      if (pid > 0)
        snprintf(why->msg, sizeof why->msg,
                 "data folder %.400s is in use by another nno host (pid %ld)",
                 dir, pid);
      else
        snprintf(why->msg, sizeof why->msg,
                 "data folder %.400s is in use by another nno host", dir);
      why->hint = hint_data;
    } else {
      snprintf(why->msg, sizeof why->msg, "cannot lock %.400s: %s", path,
               strerror(e));
    }
    close(fd);
    return -1;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
    snprintf(why->msg, sizeof why->msg, "cannot write %.400s: %s", path,
             strerror(errno));
    close(fd);
    return -1;
  }
  data_fd = fd;
  return 0;
}

static socklen_t port_name(int port, struct sockaddr_un *a) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  /* sun_path[0] stays '\0': an abstract name, not a file. */
  int n =
      snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "nno/port/%d", port);
  return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* The credentials of the process listening on the name, read through a
 * connection to it (SO_PEERCRED: as of its listen()). -1 when they cannot
 * be read: it does not listen, or its backlog is full. */
static int holder_cred(const struct sockaddr_un *a, socklen_t len,
                       struct ucred *uc) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  socklen_t ul = sizeof *uc;
  int rc = connect(fd, (const struct sockaddr *)a, len) == 0 &&
                   getsockopt(fd, SOL_SOCKET, SO_PEERCRED, uc, &ul) == 0
               ? 0
               : -1;
  close(fd);
  return rc;
}

int instance_claim_port(int port, instance_refusal *why) {
  struct sockaddr_un a;
  socklen_t len = port_name(port, &a);
  why->hint = NULL;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    snprintf(why->msg, sizeof why->msg, "cannot claim port %d: %s", port,
             strerror(errno));
    return -1;
  }
  if (bind(fd, (struct sockaddr *)&a, len) != 0) {
    int e = errno;
    close(fd);
    if (e != EADDRINUSE) {
      snprintf(why->msg, sizeof why->msg, "cannot claim port %d: %s", port,
               strerror(e));
      return -1;
    }
    struct ucred uc;
    if (holder_cred(&a, len, &uc) != 0) {
      log_warn("port %d: the claim nno/port/%d is held by a process whose "
               "credentials cannot be read (it accepts no connection); "
               "going on with the address check alone",
               port, port);
      return 0;
    }
    if (uc.uid != geteuid()) {
      log_warn("port %d: the claim nno/port/%d is held by uid %lu (pid %ld), "
               "not this host's user; going on with the address check alone",
               port, port, (unsigned long)uc.uid, (long)uc.pid);
      return 0;
    }
    if (uc.pid > 0)
      snprintf(why->msg, sizeof why->msg,
               "port %d is already served by another nno host (pid %ld)", port,
               (long)uc.pid);
    else
      snprintf(why->msg, sizeof why->msg,
               "port %d is already served by another nno host", port);
    why->hint = hint_port;
    return -1;
  }
  if (listen(fd, 16) != 0) {
    snprintf(why->msg, sizeof why->msg, "cannot claim port %d: %s", port,
             strerror(errno));
    close(fd);
    return -1;
  }
  port_fd = fd;
  return 0;
}

int instance_probe_address(const struct sockaddr *sa, socklen_t len,
                           const char *shown, int port, instance_refusal *why) {
  why->hint = NULL;
  int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  /* SO_REUSEADDR: connections of an earlier run in TIME_WAIT are no
   * conflict; a listening socket still is. */
  if (fd < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0) {
    snprintf(why->msg, sizeof why->msg, "cannot listen on %.255s:%d: %s", shown,
             port, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  if (bind(fd, sa, len) != 0) {
    int e = errno;
    close(fd);
    snprintf(why->msg, sizeof why->msg, "cannot listen on %.255s:%d: %s", shown,
             port,
             e == EADDRINUSE ? "the address is already in use by another "
                               "process"
                             : strerror(e));
    if (e == EADDRINUSE)
      why->hint =
          "stop that process, or choose another port with --listen "
          "HOST:PORT ('ss -ltnp' names the process)";
    return -1;
  }
  close(fd);
  return 0;
}

void instance_answer_probes(void) {
  if (port_fd < 0) return;
  int fd;
  while ((fd = accept4(port_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0) close(fd);
}

void instance_close_in_child(void) {
  if (data_fd >= 0) close(data_fd);
  if (port_fd >= 0) close(port_fd);
  data_fd = port_fd = -1;
}
