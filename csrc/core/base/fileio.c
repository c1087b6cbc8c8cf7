#define _POSIX_C_SOURCE 200809L
#include "fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *copy_string(const char *s) {
    size_t n = strlen(s) + 1;
    char *c = malloc(n);
    if (c) memcpy(c, s, n);
    return c;
}

/* The folder part of path ("." when there is none), in a new string. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return copy_string(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

int lt_write_all(int fd, const void *data, size_t len, const char *path, lt_error *err) {
    const char *p = data;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return lt_fail(err, "cannot write %s: %s", path, LT_STRERROR(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- temporaries of atomic writes ---- */

#define TMP_MARK ".tmp."
#define TMP_NAME_MAX 96  /* of the target's name inside the temporary's (NAME_MAX is 255) */

/* This machine's name as it appears in temporaries: at most 64 bytes, no '/'. */
static void host_token(char *buf, size_t len) {
    if (gethostname(buf, len) != 0) snprintf(buf, len, "localhost");
    buf[len - 1] = '\0';
    for (char *c = buf; *c; c++)
        if (*c == '/') *c = '_';
}

/* Whether process pid of this host still runs. A zombie (killed, not yet reaped: a container's first
 * process may never reap) has stopped writing, so it counts as gone. */
static bool process_alive(long pid) {
    if (pid <= 0 || pid > INT32_MAX) return false;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) return false;
    char path[64], stat_line[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return true;  /* no /proc: kill's answer stands */
    ssize_t n = read(fd, stat_line, sizeof stat_line - 1);
    close(fd);
    if (n <= 0) return true;
    stat_line[n] = '\0';
    const char *paren = strrchr(stat_line, ')');  /* "pid (comm) state ...": comm may hold spaces */
    return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

/* The pid in a temporary's name ".<name>.tmp.<host>.<pid>.<random>" when host is this host, else -1. */
static long temporary_owner(const char *name, const char *host) {
    size_t n = strlen(name);
    if (n < 2 || name[0] != '.') return -1;
    const char *random = strrchr(name, '.');
    if (!random || random == name || random[1] == '\0' || strspn(random + 1, "0123456789abcdef") != strlen(random + 1)) return -1;
    const char *pid = random - 1;
    while (pid > name && *pid >= '0' && *pid <= '9') pid--;
    if (*pid != '.' || pid + 1 == random) return -1;
    size_t prefix = strlen(TMP_MARK) + strlen(host);  /* ".tmp.<host>" ends right before ".<pid>" */
    if ((size_t)(pid - name) < prefix + 1) return -1;
    const char *mark = pid - prefix;
    if (strncmp(mark, TMP_MARK, strlen(TMP_MARK)) != 0 || strncmp(mark + strlen(TMP_MARK), host, strlen(host)) != 0) return -1;
    return strtol(pid + 1, NULL, 10);
}

void lt_remove_stale_temporaries(const char *dir) {
    char host[65];
    host_token(host, sizeof host);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        long pid = temporary_owner(e->d_name, host);
        if (pid < 0 || process_alive(pid)) continue;
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *path = malloc(len);
        if (!path) break;
        snprintf(path, len, "%s/%s", dir, e->d_name);
        (void)unlink(path);  /* another writer may have removed it first */
        free(path);
    }
    closedir(d);
}

/* A value that differs between attempts, calls and processes (not a secret: O_EXCL settles clashes). */
static uint32_t temporary_random(void) {
    static _Atomic uint32_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 30 ^ (uint64_t)getpid() << 40 ^ atomic_fetch_add(&counter, 1) * 0x9E3779B97F4A7C15u;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdu;
    x ^= x >> 33;
    return (uint32_t)x;
}

int lt_atomic_open(lt_atomic_file *f, const char *path, lt_error *err) {
    f->fd = -1;
    f->path = copy_string(path);
    /* a hidden name in the same folder (rename is atomic only within one file system) */
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path + 1) : 0;
    size_t cap = dir_len + TMP_NAME_MAX + 128;
    f->tmp_path = malloc(cap);
    char *dir = dir_of(path);
    if (!f->path || !f->tmp_path || !dir) {
        free(dir);
        free(f->tmp_path);
        f->tmp_path = NULL;  /* holds no name yet: nothing to remove */
        lt_atomic_abort(f);
        return lt_fail(err, "out of memory");
    }
    lt_remove_stale_temporaries(dir);
    free(dir);
    char host[65];
    host_token(host, sizeof host);
    const char *name = path + dir_len;
    int name_len = (int)(strlen(name) < TMP_NAME_MAX ? strlen(name) : TMP_NAME_MAX);
    for (int attempt = 0; attempt < 100 && f->fd < 0; attempt++) {
        snprintf(f->tmp_path, cap, "%.*s.%.*s" TMP_MARK "%s.%ld.%08x", (int)dir_len, path, name_len, name, host,
                 (long)getpid(), (unsigned)temporary_random());
        f->fd = open(f->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (f->fd < 0 && errno != EEXIST) break;
    }
    if (f->fd < 0) {
        int e = errno;
        free(f->tmp_path);
        f->tmp_path = NULL;  /* nothing to remove */
        lt_atomic_abort(f);
        return lt_fail(err, "cannot create a temporary file next to %s: %s", path, LT_STRERROR(e));
    }
    return 0;
}

int lt_atomic_write(lt_atomic_file *f, const void *data, size_t len, lt_error *err) {
    if (f->fd < 0) return lt_fail(err, "cannot write %s: the file is closed", f->path ? f->path : "?");
    if (lt_write_all(f->fd, data, len, f->path, err)) {
        lt_atomic_abort(f);
        return -1;
    }
    return 0;
}

int lt_atomic_commit(lt_atomic_file *f, lt_error *err) {
    if (f->fd < 0) return lt_fail(err, "cannot write %s: the file is closed", f->path ? f->path : "?");
    const char *what = NULL;
    if (fsync(f->fd) != 0) what = "flush";
    int fd = f->fd;
    f->fd = -1;
    if (close(fd) != 0 && !what) what = "close";
    if (!what && rename(f->tmp_path, f->path) != 0) what = "rename the temporary file over";
    if (what) {
        int e = errno;
        lt_atomic_abort(f);
        return lt_fail(err, "cannot %s %s: %s", what, f->path ? f->path : "the file", LT_STRERROR(e));
    }
    /* make the rename itself durable; some file systems refuse fsync on folders, which is harmless */
    char *dir = dir_of(f->path);
    int dfd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = f->path = NULL;
    return 0;
}

void lt_atomic_abort(lt_atomic_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = f->path = NULL;
}

int lt_write_file_atomic(const char *path, const void *data, size_t len, lt_error *err) {
    lt_atomic_file f;
    if (lt_atomic_open(&f, path, err)) return -1;
    if (lt_atomic_write(&f, data, len, err)) return -1;
    return lt_atomic_commit(&f, err);
}

int lt_append_file(const char *path, const void *data, size_t len, lt_error *err) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return lt_fail(err, "cannot open %s: %s", path, LT_STRERROR(errno));
    int rc = lt_write_all(fd, data, len, path, err);
    if (!rc && fsync(fd) != 0 && errno != EINVAL) rc = lt_fail(err, "cannot flush %s: %s", path, LT_STRERROR(errno));
    if (close(fd) != 0 && !rc) rc = lt_fail(err, "cannot close %s: %s", path, LT_STRERROR(errno));
    return rc;
}

const char *lt_file_kind(unsigned mode) {
    if (S_ISREG(mode)) return "a regular file";
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
    if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
    if (S_ISSOCK(mode)) return "a socket";
    return "a special file";
}

int lt_open_regular(const char *path, uint64_t *size, lt_error *err) {
    /* O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) return lt_fail(err, "cannot open %s: %s", path, LT_STRERROR(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return lt_fail(err, "cannot read %s: %s", path, LT_STRERROR(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return lt_fail(err, "cannot read %s: it is %s, not a regular file", path, lt_file_kind(st.st_mode));
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) != 0) {
        int e = errno;
        close(fd);
        return lt_fail(err, "cannot read %s: %s", path, LT_STRERROR(e));
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

FILE *lt_fopen_regular(const char *path, lt_error *err) {
    uint64_t size;
    int fd = lt_open_regular(path, &size, err);
    if (fd < 0) return NULL;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        lt_fail(err, "cannot read %s: %s", path, LT_STRERROR(e));
    }
    return f;
}

int lt_read_file(const char *path, size_t max_size, uint8_t **data, size_t *len, lt_error *err) {
    *data = NULL;
    *len = 0;
    uint64_t file_size;
    int fd = lt_open_regular(path, &file_size, err);
    if (fd < 0) return -1;
    if (file_size > max_size) {
        close(fd);
        return lt_fail(err, "cannot read %s: it holds %llu bytes, more than the limit of %zu", path, (unsigned long long)file_size, max_size);
    }
    size_t size = (size_t)file_size;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return lt_fail(err, "out of memory reading %s (%zu bytes)", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int e = n < 0 ? errno : 0;
            free(buf);
            close(fd);
            if (e) return lt_fail(err, "cannot read %s: %s", path, LT_STRERROR(e));
            return lt_fail(err, "cannot read %s: it shrank while being read", path);
        }
        got += (size_t)n;
    }
    close(fd);
    *data = buf;
    *len = size;
    return 0;
}

int lt_mkdirs(const char *path, lt_error *err) {
    if (!*path) return lt_fail(err, "cannot create a folder with an empty name");
    char *p = copy_string(path);
    if (!p) return lt_fail(err, "out of memory");
    int rc = 0;
    /* each prefix ending before a '/', then the whole path */
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char saved = *s;
        *s = '\0';
        struct stat st;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = lt_fail(err, "cannot create folder %s: %s", p, LT_STRERROR(errno));
        } else if (stat(p, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = lt_fail(err, "cannot create folder %s: a file of that name is in the way", p);
        }
        *s = saved;
        if (rc || saved == '\0') break;
    }
    free(p);
    return rc;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void lt_free_names(char **names, size_t count) {
    if (!names) return;
    for (size_t i = 0; i < count; i++) free(names[i]);
    free(names);
}

int lt_list_dir(const char *path, char ***names, size_t *count, lt_error *err) {
    *names = NULL;
    *count = 0;
    DIR *d = opendir(path);
    if (!d) return lt_fail(err, "cannot list folder %s: %s", path, LT_STRERROR(errno));
    size_t n = 0, cap = 0;
    char **list = NULL;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **grown = realloc(list, cap * sizeof *grown);
            if (!grown) { rc = lt_fail(err, "out of memory listing %s", path); break; }
            list = grown;
        }
        if (!(list[n] = copy_string(e->d_name))) { rc = lt_fail(err, "out of memory listing %s", path); break; }
        n++;
    }
    closedir(d);
    if (rc) {
        lt_free_names(list, n);
        return -1;
    }
    if (n) qsort(list, n, sizeof *list, compare_names);
    *names = list;
    *count = n;
    return 0;
}
