/* One host per port, one host per data folder: the claims the master takes
 * before it binds its listening sockets, and holds for its life.
 *
 * THREAD: master only (workers drop the claims right after fork). */
#ifndef NNO_HOST_INSTANCE_H
#define NNO_HOST_INSTANCE_H

#include <sys/socket.h>

/* Why a claim was refused: a one-line message naming what is taken and by
 * whom, and a hint saying what to do. */
typedef struct instance_refusal {
  char msg[512];
  const char *hint;
} instance_refusal;

/* Take an exclusive flock on {dir}/nno.lock and write our pid in it. Fails
 * (-1, `why` filled) when another host holds it; the message names that
 * host's pid. The kernel drops the lock when the master exits, however it
 * exits, so no stale lock survives a crash. */
int instance_lock_data(const char *dir, instance_refusal *why);

/* Claim TCP port `port` for this host in its network namespace: bind and
 * listen on the abstract unix socket "\0nno/port/{port}". Fails when a
 * process of our effective uid holds it (another nno host; the message
 * names its pid, from SO_PEERCRED). Held by another uid, or by a process
 * whose credentials cannot be read, the name is no host of ours: a warning
 * is logged and 0 returned without a claim (the address probe decides). */
int instance_claim_port(int port, instance_refusal *why);

/* Before binding the SO_REUSEPORT lanes: bind a throw-away socket to `sa`
 * WITHOUT SO_REUSEPORT, which fails with EADDRINUSE when anything already
 * listens there, even a socket of ours that a reuseport bind would join. */
int instance_probe_address(const struct sockaddr *sa, socklen_t len,
                           const char *shown, int port, instance_refusal *why);

/* Accept and close the connections other hosts made to learn our pid. Call
 * from the master's loop; never blocks. */
void instance_answer_probes(void);

/* In a freshly forked worker: close the descriptors that hold the claims,
 * so that they mean "this master lives". */
void instance_close_in_child(void);

#endif
