/* Sandboxed stack versions whose trial load failed, remembered by all the
 * workers of a host.
 *
 * A trial load (sandbox_trial) waits without the loop, up to
 * sandbox.spawn_timeout_ms for a stack whose init hangs. Each worker start
 * and stacks sync would run it again, and the connections waiting on that
 * worker's listener with it. So a version refused once is not tried again
 * until its folder changes: it is keyed by its folder and identified by a
 * fingerprint of the folder, its stack.json, CHECKSUMS and .install.json
 * (device, inode, size, mtime, ctime). The table is one MAP_SHARED segment
 * the master maps before the first worker; a reload (SIGHUP) empties it,
 * so that the operator's reload tries every stack again. */
#ifndef NNO_HOST_SBX_REFUSED_H
#define NNO_HOST_SBX_REFUSED_H

#include <stddef.h>
#include <stdint.h>

/* Map the table (the master, once). 0, or -1 with errno. */
int sbx_refused_init(void);

/* Forget every refusal (the master, on reload). */
void sbx_refused_clear(void);

/* The fingerprint of stack folder `dir`; 0 when it cannot be taken (its
 * stack.json cannot be looked at): such a folder is not remembered. */
uint64_t sbx_refused_fingerprint(const char *dir);

/* 1 when `dir` with fingerprint `fp` was refused: its error and file (""
 * for none) copied out; else 0. */
int sbx_refused_find(const char *dir, uint64_t fp, char *file, size_t filecap,
                     char *err, size_t errlen);

/* Remember that `dir` with fingerprint `fp` was refused with `err` about
 * `file`. A folder path too long for the table is not remembered. */
void sbx_refused_note(const char *dir, uint64_t fp, const char *file,
                      const char *err);

#endif
