/* Confinement of a sandbox process: rlimits, no root, Landlock read-only
 * beneath its stack and the system libraries, and two seccomp filters
 * (libseccomp): phase 1 before the stack loads (what ld.so, libc, libuv
 * and the proxy need; process creation, networking and writes to files
 * refused with an errno), phase 2 after (no file may be opened at all).
 * A call neither filter knows traps: the SIGSYS handler records it on the
 * status page and the process exits SBX_EXIT_SYSCALL. */

#include "sbx_child.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/landlock.h>
#include <malloc.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

sbx_shared *g_sbx_shared;

#if defined(__SANITIZE_ADDRESS__)
#define SBX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SBX_ASAN 1
#endif
#endif

/* ---- signals: a deliberate end leaves its reason on the status page ---- */

static void on_sigsys(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  if (g_sbx_shared) {
    atomic_store_explicit(&g_sbx_shared->syscall_nr,
                          (uint64_t)(uint32_t)si->si_syscall,
                          memory_order_relaxed);
    atomic_store_explicit(&g_sbx_shared->exit_reason, SBX_EXIT_SYSCALL,
                          memory_order_relaxed);
  }
  _exit(SBX_EXIT_SYSCALL);
}

static void on_sigxcpu(int sig, siginfo_t *si, void *uc) {
  (void)sig;
  (void)uc;
  /* The CPU clock's tick, standing for 1 + si_overrun periods: charged to
   * the callback running, which may still be within its budget. */
  if (si && si->si_code == SI_TIMER &&
      sbx_cpu_charge(sbx_cpu_tick_ns() *
                     (1 + (uint64_t)(si->si_overrun > 0 ? si->si_overrun : 0))))
    return;
  if (g_sbx_shared)
    atomic_store_explicit(&g_sbx_shared->exit_reason, SBX_EXIT_CPU,
                          memory_order_relaxed);
  _exit(SBX_EXIT_CPU);
}

/* ---- steps 1 and 2 ------------------------------------------------------ */

int sbx_confine_early(uint64_t memory_mb, char *err, size_t errlen) {
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent ||
      parent == 1) {
    snprintf(err, errlen, "the worker is gone");
    return -1;
  }
  /* Only 0-4 cross into the sandbox. */
  if (syscall(SYS_close_range, 5u, ~0u, 0u) != 0)
    for (int fd = 5; fd < 1024; fd++) close(fd);
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    snprintf(err, errlen, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    return -1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSYS, &sa, NULL);
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigxcpu;
  /* A tick interrupting a system call restarts it. */
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGXCPU, &sa, NULL);
  /* A write over RLIMIT_FSIZE fails with EFBIG rather than killing. */
  signal(SIGXFSZ, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);

  struct rlimit nofile = {64, 64}, core = {0, 0};
  /* The process's CPU total: a backstop far past any request's budget
   * (each request has its own timer). */
  struct rlimit cpu = {3600, 3660};
  if (setrlimit(RLIMIT_NOFILE, &nofile) || setrlimit(RLIMIT_CORE, &core) ||
      setrlimit(RLIMIT_CPU, &cpu)) {
    snprintf(err, errlen, "setrlimit: %s", strerror(errno));
    return -1;
  }
#ifndef SBX_ASAN
  /* The address-space cap is a backstop: the budget is RSS, checked after
   * each request. (Under AddressSanitizer, whose shadow maps terabytes of
   * address space, there is no cap.) */
  if (memory_mb) {
    /* One malloc arena: each thread's own would reserve 64 MiB of address
     * space, and the pool's threads would eat the cap without using it. */
    mallopt(M_ARENA_MAX, 1);
    rlim_t as = (rlim_t)(memory_mb + 256) << 20;
    struct rlimit lim = {as, as};
    if (setrlimit(RLIMIT_AS, &lim)) {
      snprintf(err, errlen, "RLIMIT_AS: %s", strerror(errno));
      return -1;
    }
  }
#else
  (void)memory_mb;
#endif
  return 0;
}

/* ---- CPU timer ----------------------------------------------------------- */

static timer_t g_cpu_timer;
static uint64_t g_cpu_tick;

int sbx_cpu_timer_init(void) {
  /* The kernel looks at CPU timers once a tick: a shorter period would
   * only come as overruns. The tick is the coarse clock's resolution. */
  struct timespec res;
  uint64_t tick = 4000000u;
  if (clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0) {
    uint64_t r = (uint64_t)res.tv_sec * 1000000000u + (uint64_t)res.tv_nsec;
    if (r >= 1000000u && r <= 10000000u) tick = r;
  }
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_SIGNAL;
  sev.sigev_signo = SIGXCPU;
  if (timer_create(CLOCK_PROCESS_CPUTIME_ID, &sev, &g_cpu_timer) != 0)
    return -1;
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_nsec = its.it_interval.tv_nsec = (long)tick;
  g_cpu_tick = tick;
  if (timer_settime(g_cpu_timer, 0, &its, NULL) != 0) {
    timer_delete(g_cpu_timer);
    g_cpu_tick = 0;
    return -1;
  }
  return 0;
}

uint64_t sbx_cpu_tick_ns(void) {
  return g_cpu_tick;
}

/* ---- steps 3 and 4: no root, Landlock ----------------------------------- */

#define NOBODY 65534

/* Set the capability sets to `caps` alone (effective and permitted). */
static int caps_only(uint32_t caps) {
  struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct d[2];
  memset(d, 0, sizeof d);
  d[0].effective = d[0].permitted = caps;
  return (int)syscall(SYS_capset, &h, d);
}

/* As root, the stack's folder is often readable by root only (the data
 * folder is 0750): the sandbox becomes nobody keeping the one right to
 * read and search whatever the file modes say, CAP_DAC_READ_SEARCH, which
 * Landlock then bounds to the stack's folder and the libraries
 * (sbx_confine_fs drops it when Landlock is not there). */
static int g_kept_dac;

static int drop_root(char *err, size_t errlen) {
  if (geteuid() != 0) return 0;
  if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || setgroups(0, NULL) ||
      setresgid(NOBODY, NOBODY, NOBODY) ||
      setresuid(NOBODY, NOBODY, NOBODY) ||
      prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) ||
      caps_only(1u << CAP_DAC_READ_SEARCH)) {
    snprintf(err, errlen, "cannot drop root: %s", strerror(errno));
    return -1;
  }
  g_kept_dac = 1;
  if (setuid(0) == 0) {
    snprintf(err, errlen, "cannot drop root: still able to regain it");
    return -1;
  }
  /* A change of credentials clears the parent-death signal: set it again,
   * or a sandbox whose worker (or check) dies lives on as an orphan. */
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent ||
      parent == 1) {
    snprintf(err, errlen, "the worker is gone");
    return -1;
  }
  return 0;
}

/* Rights of the ABI versions (the header may be older than the kernel). */
#define LL_EXECUTE (1ull << 0)
#define LL_READ_FILE (1ull << 2)
#define LL_READ_DIR (1ull << 3)

static uint64_t ll_handled(int abi) {
  uint64_t all = (1ull << 13) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
  if (abi >= 2) all |= 1ull << 13; /* REFER */
  if (abi >= 3) all |= 1ull << 14; /* TRUNCATE */
  if (abi >= 5) all |= 1ull << 15; /* IOCTL_DEV */
  return all;
}

static int ll_allow(int ruleset, const char *path, uint64_t rights) {
  int fd = open(path, O_PATH | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? 0 : -1;
  struct stat st;
  if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
    rights &= LL_EXECUTE | LL_READ_FILE;
  struct landlock_path_beneath_attr pb = {.allowed_access = rights,
                                          .parent_fd = fd};
  long rc = syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH,
                    &pb, 0);
  close(fd);
  return rc == 0 ? 0 : -1;
}

int sbx_confine_fs(const char *stack_dir, int *landlocked, char *err,
                   size_t errlen) {
  *landlocked = 0;
  int was_root = geteuid() == 0;
  if (drop_root(err, errlen)) return -1;
  int abi = (int)syscall(SYS_landlock_create_ruleset, NULL, 0,
                         LANDLOCK_CREATE_RULESET_VERSION);
  struct landlock_ruleset_attr ra = {.handled_access_fs = ll_handled(abi)};
  int rs = abi < 1 ? -1
                   : (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof ra,
                                  0);
  if (rs < 0) {
    /* Unavailable (said once by the caller): nothing bounds the kept
     * right to read, so it goes. */
    if (g_kept_dac && caps_only(0)) {
      snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
      return -1;
    }
    g_kept_dac = 0;
    if (was_root && access(stack_dir, R_OK | X_OK) != 0 && errno == EACCES) {
      /* Say so plainly rather than fail on the first file of the load. */
      snprintf(err, errlen,
               "stack folder \"%s\" cannot be read by the "
               "sandbox's user nobody (%d): %s; make it and the folders "
               "above it searchable by others (o+rx, o+x)",
               stack_dir, NOBODY, strerror(errno));
      return -1;
    }
    return 0;
  }
  static const char *const sys[] = {"/lib", "/lib64", "/usr/lib",
                                    "/usr/lib64", "/etc/ld.so.cache"};
  const uint64_t ro = LL_EXECUTE | LL_READ_FILE | LL_READ_DIR;
  int rc = ll_allow(rs, stack_dir, ro);
  for (size_t i = 0; rc == 0 && i < sizeof sys / sizeof *sys; i++)
    rc = ll_allow(rs, sys[i], ro);
  if (rc != 0 || syscall(SYS_landlock_restrict_self, rs, 0) != 0) {
    snprintf(err, errlen, "Landlock: %s", strerror(errno));
    close(rs);
    return -1;
  }
  close(rs);
  *landlocked = 1;
  return 0;
}

/* ---- step 5: seccomp phase 1 ----------------------------------------------
 */

/* What ld.so, glibc, libuv, the proxy (and AddressSanitizer) need. */
static const int k_allow[] = {
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(pread64),
    SCMP_SYS(pwrite64),
    SCMP_SYS(preadv),
    SCMP_SYS(pwritev),
    SCMP_SYS(close),
    SCMP_SYS(close_range),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(stat),
    SCMP_SYS(lstat),
    SCMP_SYS(statx),
    SCMP_SYS(lseek),
    SCMP_SYS(mmap),
    SCMP_SYS(munmap),
    SCMP_SYS(mprotect),
    SCMP_SYS(mremap),
    SCMP_SYS(madvise),
    SCMP_SYS(mincore),
    SCMP_SYS(brk),
    SCMP_SYS(rt_sigaction),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(rt_sigtimedwait),
    SCMP_SYS(ioctl),
    SCMP_SYS(fcntl),
    SCMP_SYS(dup),
    SCMP_SYS(dup2),
    SCMP_SYS(dup3),
    SCMP_SYS(pipe),
    SCMP_SYS(pipe2),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(select),
    SCMP_SYS(pselect6),
    SCMP_SYS(epoll_create),
    SCMP_SYS(epoll_create1),
    SCMP_SYS(epoll_ctl),
    SCMP_SYS(epoll_wait),
    SCMP_SYS(epoll_pwait),
    SCMP_SYS(epoll_pwait2),
    SCMP_SYS(eventfd),
    SCMP_SYS(eventfd2),
    SCMP_SYS(timerfd_create),
    SCMP_SYS(timerfd_settime),
    SCMP_SYS(timerfd_gettime),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(getppid),
    SCMP_SYS(getuid),
    SCMP_SYS(geteuid),
    SCMP_SYS(getgid),
    SCMP_SYS(getegid),
    SCMP_SYS(getresuid),
    SCMP_SYS(getresgid),
    SCMP_SYS(getgroups),
    SCMP_SYS(getpgrp),
    SCMP_SYS(getpgid),
    SCMP_SYS(getsid),
    SCMP_SYS(getrandom),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_getres),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(futex),
    SCMP_SYS(futex_waitv),
    SCMP_SYS(set_robust_list),
    SCMP_SYS(get_robust_list),
    SCMP_SYS(rseq),
    SCMP_SYS(set_tid_address),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity),
    SCMP_SYS(sched_getparam),
    SCMP_SYS(sched_getscheduler),
    SCMP_SYS(getrlimit),
    SCMP_SYS(getrusage),
    SCMP_SYS(uname),
    SCMP_SYS(sysinfo),
    SCMP_SYS(timer_create),
    SCMP_SYS(timer_settime),
    SCMP_SYS(timer_gettime),
    SCMP_SYS(timer_delete),
    SCMP_SYS(timer_getoverrun),
    SCMP_SYS(getitimer),
    SCMP_SYS(setitimer),
    SCMP_SYS(alarm),
    SCMP_SYS(getcwd),
    SCMP_SYS(readlink),
    SCMP_SYS(readlinkat),
    SCMP_SYS(access),
    SCMP_SYS(faccessat),
    SCMP_SYS(faccessat2),
    SCMP_SYS(getdents64),
    SCMP_SYS(membarrier),
    SCMP_SYS(memfd_create),
    SCMP_SYS(ftruncate),
    SCMP_SYS(fsync),
    SCMP_SYS(fdatasync),
    SCMP_SYS(flock),
    SCMP_SYS(recvmsg),
    SCMP_SYS(sendmsg),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendto),
    SCMP_SYS(shutdown),
    SCMP_SYS(getsockopt),
    SCMP_SYS(getsockname),
    SCMP_SYS(getpeername),
    SCMP_SYS(pause),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(sched_setaffinity),
    SCMP_SYS(fstatfs),
    SCMP_SYS(statfs),
    SCMP_SYS(fadvise64),
    SCMP_SYS(sync_file_range),
    SCMP_SYS(copy_file_range),
    SCMP_SYS(sendfile),
    SCMP_SYS(splice),
    SCMP_SYS(tee),
    SCMP_SYS(mlock),
    SCMP_SYS(munlock),
    SCMP_SYS(msync),
    SCMP_SYS(wait4),
    SCMP_SYS(waitid),
    /* more filters can only narrow what is allowed (phase 2), and
     * capabilities can only be lowered (the kept read right, after load) */
    SCMP_SYS(seccomp),
    SCMP_SYS(capget),
    SCMP_SYS(capset),
};

/* Refused with EPERM: a package calling them sees an error, not a kill. */
static const int k_eperm[] = {
    SCMP_SYS(fork),
    SCMP_SYS(vfork),
    SCMP_SYS(execve),
    SCMP_SYS(execveat),
    SCMP_SYS(socket),
    SCMP_SYS(socketpair),
    SCMP_SYS(connect),
    SCMP_SYS(bind),
    SCMP_SYS(listen),
    SCMP_SYS(accept),
    SCMP_SYS(accept4),
    SCMP_SYS(setsockopt),
    SCMP_SYS(ptrace),
    SCMP_SYS(mount),
    SCMP_SYS(umount2),
    SCMP_SYS(pivot_root),
    SCMP_SYS(chroot),
    SCMP_SYS(unshare),
    SCMP_SYS(setns),
    SCMP_SYS(process_vm_readv),
    SCMP_SYS(process_vm_writev),
    SCMP_SYS(setuid),
    SCMP_SYS(setgid),
    SCMP_SYS(setreuid),
    SCMP_SYS(setregid),
    SCMP_SYS(setresuid),
    SCMP_SYS(setresgid),
    SCMP_SYS(setgroups),
    SCMP_SYS(setsid),
    SCMP_SYS(setpgid),
    SCMP_SYS(chdir),
    SCMP_SYS(fchdir),
    SCMP_SYS(mkdir),
    SCMP_SYS(mkdirat),
    SCMP_SYS(rmdir),
    SCMP_SYS(unlink),
    SCMP_SYS(unlinkat),
    SCMP_SYS(rename),
    SCMP_SYS(renameat),
    SCMP_SYS(renameat2),
    SCMP_SYS(link),
    SCMP_SYS(linkat),
    SCMP_SYS(symlink),
    SCMP_SYS(symlinkat),
    SCMP_SYS(chmod),
    SCMP_SYS(fchmod),
    SCMP_SYS(fchmodat),
    SCMP_SYS(chown),
    SCMP_SYS(fchown),
    SCMP_SYS(lchown),
    SCMP_SYS(fchownat),
    SCMP_SYS(truncate),
    SCMP_SYS(mknod),
    SCMP_SYS(mknodat),
    SCMP_SYS(utimensat),
    SCMP_SYS(kexec_load),
    SCMP_SYS(init_module),
    SCMP_SYS(finit_module),
    SCMP_SYS(delete_module),
    SCMP_SYS(reboot),
    SCMP_SYS(swapon),
    SCMP_SYS(swapoff),
    SCMP_SYS(bpf),
    SCMP_SYS(perf_event_open),
    SCMP_SYS(userfaultfd),
    SCMP_SYS(keyctl),
    SCMP_SYS(add_key),
    SCMP_SYS(request_key),
    SCMP_SYS(pidfd_open),
    SCMP_SYS(pidfd_getfd),
    SCMP_SYS(pidfd_send_signal),
    SCMP_SYS(kcmp),
    SCMP_SYS(landlock_create_ruleset),
    SCMP_SYS(landlock_add_rule),
    SCMP_SYS(landlock_restrict_self),
    SCMP_SYS(io_uring_enter),
    SCMP_SYS(io_uring_register),
    SCMP_SYS(name_to_handle_at),
    SCMP_SYS(open_by_handle_at),
    SCMP_SYS(fanotify_init),
    SCMP_SYS(inotify_init),
    SCMP_SYS(inotify_init1),
    SCMP_SYS(quotactl),
    SCMP_SYS(acct),
    SCMP_SYS(settimeofday),
    SCMP_SYS(clock_settime),
    SCMP_SYS(adjtimex),
    SCMP_SYS(sethostname),
    SCMP_SYS(setdomainname),
    SCMP_SYS(iopl),
    SCMP_SYS(ioperm),
    SCMP_SYS(syslog),
    SCMP_SYS(vhangup),
    SCMP_SYS(personality),
    SCMP_SYS(mbind),
    SCMP_SYS(set_mempolicy),
    SCMP_SYS(migrate_pages),
    SCMP_SYS(move_pages),
};

static int add(scmp_filter_ctx f, uint32_t act, int sys, unsigned n,
               const struct scmp_arg_cmp *cmp) {
  int rc = seccomp_rule_add_array(f, act, sys, n, cmp);
  /* A call this architecture lacks (libseccomp says so): nothing to do. */
  return rc == -EDOM || rc == -EFAULT ? 0 : rc;
}

int sbx_confine_phase1(char *err, size_t errlen) {
  scmp_filter_ctx f = seccomp_init(SCMP_ACT_TRAP);
  int rc = f ? 0 : -ENOMEM;
  for (size_t i = 0; rc == 0 && i < sizeof k_allow / sizeof *k_allow; i++)
    rc = add(f, SCMP_ACT_ALLOW, k_allow[i], 0, NULL);
  for (size_t i = 0; rc == 0 && i < sizeof k_eperm / sizeof *k_eperm; i++)
    rc = add(f, SCMP_ACT_ERRNO(EPERM), k_eperm[i], 0, NULL);
  /* Threads only: a clone without CLONE_THREAD would be a new process.
   * clone3 hides its flags in memory: ENOSYS, and glibc falls back to
   * clone. */
  if (rc == 0) {
    struct scmp_arg_cmp th =
        SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
    struct scmp_arg_cmp no = SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
    rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1, &th);
    if (rc == 0) rc = add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1, &no);
  }
  if (rc == 0) rc = add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0, NULL);
  /* prctl, but the parent-death signal stays (a sandbox outliving its
   * worker would serve nobody). */
  if (rc == 0) {
    struct scmp_arg_cmp pd = SCMP_A0(SCMP_CMP_EQ, PR_SET_PDEATHSIG);
    struct scmp_arg_cmp ok = SCMP_A0(SCMP_CMP_NE, PR_SET_PDEATHSIG);
    rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1, &ok);
    if (rc == 0) rc = add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prctl), 1, &pd);
  }
  /* Its own limits only (hard limits cannot be raised without root). */
  if (rc == 0) rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(setrlimit), 0, NULL);
  if (rc == 0) {
    struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, 0);
    struct scmp_arg_cmp other = SCMP_A0(SCMP_CMP_NE, 0);
    rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(prlimit64), 1, &self);
    if (rc == 0)
      rc = add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(prlimit64), 1, &other);
  }
  if (rc == 0)
    rc = add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(io_uring_setup), 0, NULL);
  /* Signals to itself only (raise, abort); to others EPERM. */
  if (rc == 0) {
    pid_t me = getpid();
    struct scmp_arg_cmp self = SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)me);
    struct scmp_arg_cmp other = SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)me);
    rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(kill), 1, &self);
    if (rc == 0) rc = add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(kill), 1, &other);
    if (rc == 0) rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1, &self);
    struct scmp_arg_cmp tother = SCMP_A0(SCMP_CMP_NE, (scmp_datum_t)me);
    if (rc == 0)
      rc = add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(tgkill), 1, &tother);
    if (rc == 0) rc = add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(tkill), 0, NULL);
  }
  /* Files: read-only opens (Landlock says where); a write, a create or a
   * truncation is EACCES. */
  if (rc == 0) {
    const scmp_datum_t wr = O_ACCMODE | O_CREAT | O_TRUNC;
    struct scmp_arg_cmp ro2 = SCMP_A2(SCMP_CMP_MASKED_EQ, wr, 0);
    struct scmp_arg_cmp ro1 = SCMP_A1(SCMP_CMP_MASKED_EQ, wr, O_RDONLY);
    struct scmp_arg_cmp w2[] = {
        SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY),
        SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR),
        SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, 3),
        SCMP_A2(SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT),
        SCMP_A2(SCMP_CMP_MASKED_EQ, O_TRUNC, O_TRUNC)};
    struct scmp_arg_cmp w1[] = {
        SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY),
        SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR),
        SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, 3),
        SCMP_A1(SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT),
        SCMP_A1(SCMP_CMP_MASKED_EQ, O_TRUNC, O_TRUNC)};
    rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1, &ro2);
    if (rc == 0) rc = add(f, SCMP_ACT_ALLOW, SCMP_SYS(open), 1, &ro1);
    for (size_t i = 0; rc == 0 && i < 5; i++) {
      rc = add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 1, &w2[i]);
      if (rc == 0)
        rc = add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 1, &w1[i]);
    }
    if (rc == 0) rc = add(f, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(creat), 0, NULL);
    if (rc == 0)
      rc = add(f, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(openat2), 0, NULL);
  }
  if (rc == 0) rc = seccomp_load(f);
  if (f) seccomp_release(f);
  if (rc != 0) {
    snprintf(err, errlen, "seccomp (phase 1): %s", strerror(-rc));
    return -1;
  }
  return 0;
}

/* ---- step 7: seccomp phase 2 ----------------------------------------------
 */

int sbx_confine_phase2(char *err, size_t errlen) {
  /* The stack is loaded: the right to read past file modes goes. */
  if (g_kept_dac) {
    if (caps_only(0)) {
      snprintf(err, errlen, "cannot drop capabilities: %s", strerror(errno));
      return -1;
    }
    g_kept_dac = 0;
  }
  /* Nothing is written to a file from here on (the sealed copies are
   * made): any size is too big. */
  struct rlimit fsize = {0, 0};
  if (setrlimit(RLIMIT_FSIZE, &fsize)) {
    snprintf(err, errlen, "RLIMIT_FSIZE: %s", strerror(errno));
    return -1;
  }
  scmp_filter_ctx f = seccomp_init(SCMP_ACT_ALLOW);
  int rc = f ? 0 : -ENOMEM;
  static const int no_files[] = {SCMP_SYS(open), SCMP_SYS(openat),
                                 SCMP_SYS(openat2), SCMP_SYS(creat),
                                 SCMP_SYS(memfd_create)};
  for (size_t i = 0; rc == 0 && i < sizeof no_files / sizeof *no_files; i++)
    rc = add(f, SCMP_ACT_ERRNO(EACCES), no_files[i], 0, NULL);
  /* No new thread either: the pool is running (sbx_child started it), and
   * a package's own thread would burn CPU no request's budget sees.
   * clone3 stays ENOSYS (phase 1): glibc falls back to clone, refused. */
  if (rc == 0) rc = add(f, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 0, NULL);
  /* The CPU clock is armed (sbx_cpu_timer_init) and runs for the life of
   * the process: a package may neither disarm it, which would take its
   * requests' CPU budgets off, nor arm timers of its own. */
  static const int no_timers[] = {
      SCMP_SYS(timer_settime), SCMP_SYS(timer_create), SCMP_SYS(timer_delete)};
  for (size_t i = 0; rc == 0 && i < sizeof no_timers / sizeof *no_timers; i++)
    rc = add(f, SCMP_ACT_ERRNO(EPERM), no_timers[i], 0, NULL);
  if (rc == 0) rc = seccomp_load(f);
  if (f) seccomp_release(f);
  if (rc != 0) {
    snprintf(err, errlen, "seccomp (phase 2): %s", strerror(-rc));
    return -1;
  }
  return 0;
}
