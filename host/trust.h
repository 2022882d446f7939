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
 * `root` and every folder down to the resolved path, and the path itself,
 * pass trust_stat. Else -1 with the reason in err: the path leaves its
 * folder (a symbolic link elsewhere), cannot be resolved, or fails
 * trust_stat. A path that does not exist passes (nothing is read from
 * it): the caller's own open then reports it. */
int trust_path(const char *root, const char *path, char *err, size_t errlen);

/* The data folder at start: 0 if it does not exist yet (the master
 * creates it) or passes trust_stat as a folder; else -1 with err. */
int trust_data_dir(const char *dir, char *err, size_t errlen);

#endif
