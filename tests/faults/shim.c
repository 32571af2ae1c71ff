/* Fault injector for the end-to-end fault tests (tests/tests/faults.rs), loaded with
 * LD_PRELOAD into `aa` and everything it starts (GNU tar, compressors), as a failing disk
 * would be seen by all of them.
 *
 * libfiu's preload library fails calls by name only; the tests need a fault on one directory
 * (the destination, the snapshots, the realms, the source) while the rest of the system works,
 * so this shim decides by the path of the file a call works on (from /proc/self/fd, which also
 * covers descriptors inherited or duplicated, such as a tar writing to its standard output).
 *
 * Configuration (environment):
 *   AA_FAULT_OP      write | fsync | rename | read | eintr | pause | netreset
 *   AA_FAULT_PREFIX  the directory whose files fail (canonical, absolute); not for eintr
 *   AA_FAULT_ERRNO   the errno number to fail with (EIO 5, ENOSPC 28)
 *   AA_FAULT_AFTER   write/read: bytes that succeed first, in each process (default 0)
 *   AA_FAULT_LOG     a file each injected fault appends one line to, so a test can tell that
 *                    its fault really happened
 *   AA_FAULT_ONLY    if set, only a program of this name (its executable's) is faulted
 * Once a fault fired in a process, every later matching call of that process fails too: a
 * disk that failed or filled up stays so. eintr fails every other slow call (of each thread)
 * with EINTR without doing it, so a caller that retries always gets through. pause is read's
 * accounting without a failure: the read that would pass AA_FAULT_AFTER bytes (and every later
 * one under the prefix) blocks for good, so a test can act on a run stopped at a known point
 * of its reading (signal it, say) without racing it. netreset counts the bytes sent on any
 * socket instead (no prefix) and fails the one send that passes AA_FAULT_AFTER with the errno
 * (ECONNRESET 104), once: a connection lost in the middle of an upload, after which the
 * network works again (so what the program does next, such as aborting the upload, can be
 * seen).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdio_ext.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

/* A macro in glibc at -O; the function is what callers link against. */
#undef fwrite_unlocked

enum op { OP_NONE, OP_WRITE, OP_FSYNC, OP_RENAME, OP_READ, OP_EINTR, OP_PAUSE, OP_NETRESET };

static enum op fault_op = OP_NONE;
static const char *prefix;
static size_t prefix_len;
static int fault_errno = 5;
static unsigned long long after;
static unsigned long long done_bytes;
static int fired;
static const char *log_path;
static __thread unsigned long slow_calls;

#define REAL(name) static __typeof__(name) *real_##name
#define LOAD(name) ((__typeof__(name) *)load((void **)&real_##name, #name))

static void *load(void **slot, const char *name) {
    if (!*slot)
        *slot = dlsym(RTLD_NEXT, name);
    return *slot;
}

REAL(write);
REAL(open);

__attribute__((constructor)) static void setup(void) {
    const char *op = getenv("AA_FAULT_OP");
    if (!op)
        return;
    if (!strcmp(op, "write"))
        fault_op = OP_WRITE;
    else if (!strcmp(op, "fsync"))
        fault_op = OP_FSYNC;
    else if (!strcmp(op, "rename"))
        fault_op = OP_RENAME;
    else if (!strcmp(op, "read"))
        fault_op = OP_READ;
    else if (!strcmp(op, "eintr"))
        fault_op = OP_EINTR;
    else if (!strcmp(op, "pause"))
        fault_op = OP_PAUSE;
    else if (!strcmp(op, "netreset"))
        fault_op = OP_NETRESET;
    prefix = getenv("AA_FAULT_PREFIX");
    prefix_len = prefix ? strlen(prefix) : 0;
    const char *e = getenv("AA_FAULT_ERRNO");
    if (e)
        fault_errno = atoi(e);
    const char *a = getenv("AA_FAULT_AFTER");
    if (a)
        after = strtoull(a, NULL, 10);
    log_path = getenv("AA_FAULT_LOG");
    const char *only = getenv("AA_FAULT_ONLY");
    if (only) {
        char exe[PATH_MAX + 1];
        ssize_t n = readlink("/proc/self/exe", exe, PATH_MAX);
        exe[n > 0 ? n : 0] = 0;
        const char *base = strrchr(exe, '/');
        if (strcmp(base ? base + 1 : exe, only) != 0)
            fault_op = OP_NONE;
    }
}

static int under_prefix(const char *path) {
    return prefix && !strncmp(path, prefix, prefix_len) &&
           (path[prefix_len] == '/' || path[prefix_len] == 0);
}

/* Whether fd is a regular file under the prefix. */
static int fd_under_prefix(int fd) {
    if (!prefix || fd < 0)
        return 0;
    char link[64], path[PATH_MAX + 1];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX);
    if (n <= 0)
        return 0;
    path[n] = 0;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return 0;
    return under_prefix(path);
}

/* Resolves `path` (relative to dirfd) well enough to compare it with the prefix. */
static int at_under_prefix(int dirfd, const char *path) {
    if (!prefix || !path)
        return 0;
    if (path[0] == '/')
        return under_prefix(path);
    char base[PATH_MAX + 1], full[2 * PATH_MAX + 2];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return 0;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, PATH_MAX);
        if (n <= 0)
            return 0;
        base[n] = 0;
    }
    snprintf(full, sizeof full, "%s/%s", base, path);
    return under_prefix(full);
}

static void note(const char *what, const char *detail) {
    if (!log_path)
        return;
    char line[PATH_MAX + 256];
    char exe[PATH_MAX + 1];
    ssize_t n = readlink("/proc/self/exe", exe, PATH_MAX);
    exe[n > 0 ? n : 0] = 0;
    int len = snprintf(line, sizeof line, "%d %s %s errno=%d %s\n", (int)getpid(), exe, what,
                       fault_errno, detail ? detail : "");
    int fd = LOAD(open)(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0) {
        LOAD(write)(fd, line, (size_t)len);
        close(fd);
    }
}

static void note_fd(const char *what, int fd) {
    char link[64], path[PATH_MAX + 1];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, PATH_MAX);
    path[n > 0 ? n : 0] = 0;
    note(what, path);
}

/* The calling thread waits for good; signals are still handled (pause returns after each). */
static void block_forever(void) {
    for (;;)
        pause();
}

/* How many of `count` bytes to `fd` may go through before the fault: `count` when the call
 * is not concerned, less (possibly 0) when the fault fires in it; -1 when it fails. */
static long long data_allowance(enum op op, int fd, size_t count, const char *what) {
    int pausing = fault_op == OP_PAUSE && op == OP_READ;
    if ((fault_op != op && !pausing) || !fd_under_prefix(fd))
        return (long long)count;
    if (fired && pausing)
        block_forever();
    if (fired) {
        note_fd(what, fd);
        return -1;
    }
    if (done_bytes + count <= after) {
        done_bytes += count;
        return (long long)count;
    }
    fired = 1;
    note_fd(what, fd);
    if (pausing)
        block_forever();
    /* A read fails whole (a bad block); a write takes what fits, as a filling disk does. */
    long long left = op == OP_READ ? 0 : (long long)(after - done_bytes);
    done_bytes = after;
    return left > 0 ? left : -1;
}

/* EINTR on every other slow call of this thread. */
static int interrupted(const char *what) {
    if (fault_op != OP_EINTR)
        return 0;
    if (slow_calls++ % 2 == 0) {
        if (!fired) {
            fired = 1;
            note(what, "first");
        }
        errno = EINTR;
        return 1;
    }
    return 0;
}

#define FAIL_DATA(op, fd, count, what, call_with)                                              \
    do {                                                                                       \
        if (interrupted(what))                                                                 \
            return -1;                                                                         \
        long long allowed = data_allowance(op, fd, count, what);                               \
        if (allowed < 0) {                                                                     \
            errno = fault_errno;                                                               \
            return -1;                                                                         \
        }                                                                                      \
        size_t n = (size_t)allowed;                                                            \
        return call_with;                                                                      \
    } while (0)

REAL(read);
REAL(pread);
REAL(pread64);
REAL(pwrite);
REAL(pwrite64);
REAL(readv);
REAL(writev);
REAL(pwritev);
REAL(fsync);
REAL(fdatasync);
REAL(rename);
REAL(renameat);
REAL(renameat2);
REAL(openat);
REAL(open64);
REAL(openat64);
REAL(copy_file_range);
REAL(sendfile);
REAL(sendfile64);
REAL(fwrite);
REAL(fwrite_unlocked);
REAL(waitpid);
REAL(wait4);
REAL(poll);
REAL(send);
REAL(sendto);
REAL(sendmsg);

static size_t iov_total(const struct iovec *iov, int iovcnt);

/* netreset: whether this send of `count` bytes on `fd` is the one that fails (errno set).
 * Sockets are sent on from several threads: the count and the mark are atomic. */
static int net_reset(int fd, size_t count, const char *what) {
    static unsigned long long sent;
    static int reset;
    if (fault_op != OP_NETRESET || __atomic_load_n(&reset, __ATOMIC_SEQ_CST))
        return 0;
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode))
        return 0;
    if (__atomic_add_fetch(&sent, count, __ATOMIC_SEQ_CST) <= after)
        return 0;
    if (__atomic_exchange_n(&reset, 1, __ATOMIC_SEQ_CST))
        return 0;
    note(what, "socket");
    errno = fault_errno;
    return 1;
}

ssize_t send(int fd, const void *buf, size_t len, int flags) {
    if (net_reset(fd, len, "send"))
        return -1;
    return LOAD(send)(fd, buf, len, flags);
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to,
               socklen_t tolen) {
    if (net_reset(fd, len, "sendto"))
        return -1;
    return LOAD(sendto)(fd, buf, len, flags, to, tolen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    if (net_reset(fd, iov_total(msg->msg_iov, (int)msg->msg_iovlen), "sendmsg"))
        return -1;
    return LOAD(sendmsg)(fd, msg, flags);
}

ssize_t write(int fd, const void *buf, size_t count) {
    if (net_reset(fd, count, "write"))
        return -1;
    FAIL_DATA(OP_WRITE, fd, count, "write", LOAD(write)(fd, buf, n));
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    FAIL_DATA(OP_WRITE, fd, count, "pwrite", LOAD(pwrite)(fd, buf, n, offset));
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    FAIL_DATA(OP_WRITE, fd, count, "pwrite64", LOAD(pwrite64)(fd, buf, n, offset));
}

ssize_t read(int fd, void *buf, size_t count) {
    FAIL_DATA(OP_READ, fd, count, "read", LOAD(read)(fd, buf, n));
}

ssize_t pread(int fd, void *buf, size_t count, off_t offset) {
    FAIL_DATA(OP_READ, fd, count, "pread", LOAD(pread)(fd, buf, n, offset));
}

ssize_t pread64(int fd, void *buf, size_t count, off64_t offset) {
    FAIL_DATA(OP_READ, fd, count, "pread64", LOAD(pread64)(fd, buf, n, offset));
}

static size_t iov_total(const struct iovec *iov, int iovcnt) {
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    return total;
}

/* The vector calls: a fault inside the vector writes what is allowed as a plain write. */
ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    if (interrupted("writev"))
        return -1;
    if (net_reset(fd, iov_total(iov, iovcnt), "writev"))
        return -1;
    size_t total = iov_total(iov, iovcnt);
    long long allowed = data_allowance(OP_WRITE, fd, total, "writev");
    if (allowed < 0) {
        errno = fault_errno;
        return -1;
    }
    if ((size_t)allowed == total)
        return LOAD(writev)(fd, iov, iovcnt);
    /* Short: the first `allowed` bytes, as a disk filling up would take them. */
    int i = 0;
    while (i < iovcnt && iov[i].iov_len == 0)
        i++;
    size_t first = i < iovcnt ? iov[i].iov_len : 0;
    return LOAD(write)(fd, i < iovcnt ? iov[i].iov_base : NULL,
                       (size_t)allowed < first ? (size_t)allowed : first);
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
    if (interrupted("readv"))
        return -1;
    if ((fault_op == OP_READ || fault_op == OP_PAUSE) && fd_under_prefix(fd)) {
        size_t total = iov_total(iov, iovcnt);
        long long allowed = data_allowance(OP_READ, fd, total, "readv");
        if (allowed < 0 || (size_t)allowed < total) {
            errno = fault_errno;
            return -1;
        }
    }
    return LOAD(readv)(fd, iov, iovcnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t offset) {
    size_t total = iov_total(iov, iovcnt);
    long long allowed = data_allowance(OP_WRITE, fd, total, "pwritev");
    if (allowed < 0 || (size_t)allowed < total) {
        errno = fault_errno;
        return -1;
    }
    return LOAD(pwritev)(fd, iov, iovcnt, offset);
}

ssize_t copy_file_range(int fd_in, off64_t *off_in, int fd_out, off64_t *off_out, size_t len,
                        unsigned int flags) {
    long long allowed = data_allowance(OP_READ, fd_in, len, "copy_file_range(in)");
    if (allowed >= 0)
        allowed = data_allowance(OP_WRITE, fd_out, (size_t)allowed, "copy_file_range(out)");
    if (allowed <= 0) {
        errno = fault_errno;
        return -1;
    }
    return LOAD(copy_file_range)(fd_in, off_in, fd_out, off_out, (size_t)allowed, flags);
}

ssize_t sendfile(int out_fd, int in_fd, off_t *offset, size_t count) {
    long long allowed = data_allowance(OP_READ, in_fd, count, "sendfile(in)");
    if (allowed >= 0)
        allowed = data_allowance(OP_WRITE, out_fd, (size_t)allowed, "sendfile(out)");
    if (allowed <= 0) {
        errno = fault_errno;
        return -1;
    }
    return LOAD(sendfile)(out_fd, in_fd, offset, (size_t)allowed);
}

ssize_t sendfile64(int out_fd, int in_fd, off64_t *offset, size_t count) {
    long long allowed = data_allowance(OP_READ, in_fd, count, "sendfile64(in)");
    if (allowed >= 0)
        allowed = data_allowance(OP_WRITE, out_fd, (size_t)allowed, "sendfile64(out)");
    if (allowed <= 0) {
        errno = fault_errno;
        return -1;
    }
    return LOAD(sendfile64)(out_fd, in_fd, offset, (size_t)allowed);
}

/* Some compressors (zstd, bzip2) write through stdio, whose internal writes bypass write(). */
static size_t stdio_write(const void *ptr, size_t size, size_t nmemb, FILE *stream,
                          size_t (*real)(const void *, size_t, size_t, FILE *)) {
    if (size == 0 || nmemb == 0)
        return real(ptr, size, nmemb, stream);
    long long allowed = data_allowance(OP_WRITE, fileno(stream), size * nmemb, "fwrite");
    if (allowed < 0 || (size_t)allowed < size * nmemb) {
        errno = fault_errno;
        return 0;
    }
    return real(ptr, size, nmemb, stream);
}

size_t fwrite(const void *ptr, size_t size, size_t nmemb, FILE *stream) {
    return stdio_write(ptr, size, nmemb, stream, LOAD(fwrite));
}

size_t fwrite_unlocked(const void *ptr, size_t size, size_t nmemb, FILE *stream) {
    return stdio_write(ptr, size, nmemb, stream, LOAD(fwrite_unlocked));
}

/* What stdio flushes at fflush or fclose goes through internal writes: a write fault fails
 * the flush of a stream with data under the prefix (the data may be written; the caller is
 * told it was not, as with a delayed write error). */
static int flush_fails(FILE *stream, const char *what) {
    if (fault_op != OP_WRITE || !stream || (!__fwriting(stream) && __fpending(stream) == 0))
        return 0;
    int fd = fileno(stream);
    if (!fd_under_prefix(fd) || !(fired || after == 0 || done_bytes >= after))
        return 0;
    fired = 1;
    note_fd(what, fd);
    return 1;
}

REAL(fclose);
REAL(fflush);

int fclose(FILE *stream) {
    int fails = flush_fails(stream, "fclose");
    int r = LOAD(fclose)(stream);
    if (fails) {
        errno = fault_errno;
        return EOF;
    }
    return r;
}

int fflush(FILE *stream) {
    int fails = flush_fails(stream, "fflush");
    int r = LOAD(fflush)(stream);
    if (fails) {
        errno = fault_errno;
        return EOF;
    }
    return r;
}

static int sync_fails(int fd, const char *what) {
    if (fault_op != OP_FSYNC || !fd_under_prefix(fd))
        return 0;
    fired = 1;
    note_fd(what, fd);
    errno = fault_errno;
    return 1;
}

int fsync(int fd) {
    if (sync_fails(fd, "fsync"))
        return -1;
    return LOAD(fsync)(fd);
}

int fdatasync(int fd) {
    if (sync_fails(fd, "fdatasync"))
        return -1;
    return LOAD(fdatasync)(fd);
}

static int rename_fails(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
                        const char *what) {
    if (fault_op != OP_RENAME)
        return 0;
    if (!at_under_prefix(olddirfd, oldpath) && !at_under_prefix(newdirfd, newpath))
        return 0;
    fired = 1;
    note(what, newpath);
    errno = fault_errno;
    return 1;
}

int rename(const char *oldpath, const char *newpath) {
    if (rename_fails(AT_FDCWD, oldpath, AT_FDCWD, newpath, "rename"))
        return -1;
    return LOAD(rename)(oldpath, newpath);
}

int renameat(int olddirfd, const char *oldpath, int newdirfd, const char *newpath) {
    if (rename_fails(olddirfd, oldpath, newdirfd, newpath, "renameat"))
        return -1;
    return LOAD(renameat)(olddirfd, oldpath, newdirfd, newpath);
}

int renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath,
              unsigned int flags) {
    if (rename_fails(olddirfd, oldpath, newdirfd, newpath, "renameat2"))
        return -1;
    return LOAD(renameat2)(olddirfd, oldpath, newdirfd, newpath, flags);
}

/* open can be interrupted too (a FIFO, a slow file system); the mode is only there with
 * O_CREAT or O_TMPFILE. */
#define OPEN_MODE(flags, mode)                                                                 \
    do {                                                                                       \
        if ((flags) & (O_CREAT | __O_TMPFILE)) {                                               \
            va_list ap;                                                                        \
            va_start(ap, flags);                                                               \
            mode = va_arg(ap, mode_t);                                                         \
            va_end(ap);                                                                        \
        }                                                                                      \
    } while (0)

int open(const char *path, int flags, ...) {
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (interrupted("open"))
        return -1;
    return LOAD(open)(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (interrupted("open64"))
        return -1;
    return LOAD(open64)(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (interrupted("openat"))
        return -1;
    return LOAD(openat)(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    mode_t mode = 0;
    OPEN_MODE(flags, mode);
    if (interrupted("openat64"))
        return -1;
    return LOAD(openat64)(dirfd, path, flags, mode);
}

pid_t waitpid(pid_t pid, int *status, int options) {
    if (!(options & WNOHANG) && interrupted("waitpid"))
        return -1;
    return LOAD(waitpid)(pid, status, options);
}

pid_t wait4(pid_t pid, int *status, int options, struct rusage *rusage) {
    if (!(options & WNOHANG) && interrupted("wait4"))
        return -1;
    return LOAD(wait4)(pid, status, options, rusage);
}

int poll(struct pollfd *fds, nfds_t nfds, int timeout) {
    if (timeout != 0 && interrupted("poll"))
        return -1;
    return LOAD(poll)(fds, nfds, timeout);
}
