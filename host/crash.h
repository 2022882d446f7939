/* In-process crash reports: what a worker says when a fatal signal
 * (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT) stops it in plugin code.
 *
 * The handler runs on an alternate stack and does only async-signal-safe
 * work: it copies the call running now (callctx.h: platform, package,
 * version, stack, request id, method, path, signal) into the worker's
 * crash record in shared memory (quarantine.h), answers the crashing
 * request 502 problem+json with its request id on its own socket (when
 * nothing of an earlier answer is being written on that connection),
 * writes the buffered access lines, an error line `worker crashed` and
 * the request's access line, then lets the signal kill the process (the
 * default action). The master reads the record when it reaps the worker,
 * logs `worker exited` and counts the crash against the package
 * (quarantine_note_crash). Other requests in flight in that worker are
 * lost with it: their clients see the connection close. */
#ifndef NNO_HOST_CRASH_H
#define NNO_HOST_CRASH_H

/* Install the handlers in a worker whose crash record is `slot` (its
 * metrics slot). 0, or -1 (logged) when the alternate stack or a handler
 * cannot be set up: the worker serves on, without reports. */
int crash_install(int slot);

/* "SIGSEGV" for SIGSEGV...; "SIG" followed by the number for others.
 * Async-signal-safe; writes at most 16 bytes into buf and returns it. */
const char *crash_signal_name(int sig, char out[16]);

#endif
