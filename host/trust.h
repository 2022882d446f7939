/* Which files and folders the host trusts: those only its own user (or
 * root, who installs packages under /usr) can change, inside the folder
 * they were found in. The loader checks every stack and plugin path with
 * these before reading a manifest or opening an object; the master
 * checks the data folder at start. */
#ifndef NNO_HOST_TRUST_H
#define NNO_HOST_TRUST_H

#include <stddef.h>
#include <sys/stat.h>

/* 0 if `st` (of `path`) belongs to this process's user or to root and is
 * not writable by group or others; else -1 with the reason in err, naming
 * the path, e.g.
 *   "/srv/stacks/x/1.0.0/packages/x/libx.so" is writable by group or
 *   others (mode 0777); run chmod go-w on it */
int trust_stat(const char *path, const struct stat *st, char *err,
               size_t errlen);

/* 0 if `path` resolves (realpath) to `root` or to a name inside it, and
 * every folder above the resolved root (up to "/"), `root`, every folder
 * down to the resolved path and the path itself are trusted: those at and
 * below the root pass trust_stat; one above it either passes trust_stat
 * or is sticky and writable by others (/tmp) with the entry below it
 * belonging to this user or root (as OpenSSH's safe_path reasons: who may
 * write a folder may swap what is under it). Else -1 with the reason in
 * err: the path leaves its folder (a symbolic link elsewhere), cannot be
 * resolved, or is not trusted. A path that does not exist passes (nothing
 * is read from it): the caller's own open then reports it. `resolved`
 * (PATH_MAX bytes, or NULL) receives the resolved path, or `path` itself
 * when it does not exist. */
int trust_path(const char *root, const char *path, char *resolved, char *err,
               size_t errlen);

/* Open the resolved path `rpath` (from trust_path) to read what the host
 * loads, and judge what was opened rather than the name: O_RDONLY |
 * O_NOFOLLOW | O_CLOEXEC, then fstat of the descriptor must show a
 * regular file passing trust_stat. So a file swapped after trust_path
 * is refused, never read. Returns the descriptor (the caller closes it),
 * or -1 with err naming `shown` (the path as the caller found it). */
int trust_open(const char *rpath, const char *shown, char *err, size_t errlen);

/* The data folder at start: 0 if it does not exist yet (the master
 * creates it) or passes trust_stat as a folder; else -1 with err. */
int trust_data_dir(const char *dir, char *err, size_t errlen);

#endif
