/* atomic.c: whole-file reads and crash-safe writes (temporary file, fsync, rename, fsync of
 * the directory), so a saved model is always the old one or the new one. Every failure the
 * save can see removes its temporary file; a save killed outright (SIGKILL, power cut) leaves
 * one, "TARGET.tmp-XXXXXX", which the next save of the same target removes once it is stale
 * (see remove_stale_temps). */
#include "io.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A temporary file of a save that was killed is removed by a later save of the same target once
 * its last change is this old. Why age and not the writer's pid: another process (on another
 * host over NFS, or in another pid namespace sharing the folder) may be saving the same target
 * right now, and its pid means nothing here; a live save writes its temp in one pass and renames
 * it seconds later, so a temp untouched for 10 minutes has no writer. Younger ones are left
 * alone and reported through kc_warn. */
#define STALE_TEMP_SECONDS (10 * 60)

/* mkstemp's six characters */
static int is_temp_suffix(const char *s) {
    for (int i = 0; i < 6; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return s[6] == 0;
}

/* Removes dir/BASE.tmp-XXXXXX regular files older than STALE_TEMP_SECONDS (base: the target's
 * file name). Best effort: a folder that cannot be listed is the save's own error later. */
static void remove_stale_temps(const char *path, const char *dir, const char *base) {
    DIR *d = opendir(dir);
    if (!d) return;
    size_t blen = strlen(base);
    time_t now = time(NULL);
    int young = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 || strncmp(name + blen, ".tmp-", 5) != 0 ||
            !is_temp_suffix(name + blen + 5))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode))
            continue;
        if (now - sb.st_mtime >= STALE_TEMP_SECONDS) {
            if (unlinkat(dirfd(d), name, 0) == 0)
                kc_warn("%s: removed %s, the temporary file of an earlier save that did not "
                        "finish (unchanged for %lld s)", path, name, (long long)(now - sb.st_mtime));
        } else {
            young++;
        }
    }
    closedir(d);
    if (young)
        kc_warn("%s: %d temporary file(s) %s.tmp-* younger than %d s left alone: another save "
                "of it may be running", path, young, base, STALE_TEMP_SECONDS);
}

int kc_io_ends_with(const char *path, const char *suffix) {
    size_t n = strlen(path), k = strlen(suffix);
    return n >= k && !strcasecmp(path + n - k, suffix);
}

kc_status kc_io_read_file(const char *path, void **data, size_t *size) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return kc_err(KC_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        close(fd);
        return kc_err(KC_EIO, "%s: not a regular file", path);
    }
    size_t n = (size_t)sb.st_size, done = 0;
    char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return kc_err(KC_ENOMEM, "%s: out of memory reading %zu bytes", path, n);
    }
    while (done < n) {
        ssize_t r = read(fd, buf + done, n - done);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            free(buf);
            close(fd);
            return kc_err(KC_EIO, "%s: read failed at byte %zu: %s", path, done,
                          r ? strerror(e) : "unexpected end of file");
        }
        done += (size_t)r;
    }
    close(fd);
    buf[n] = 0;
    *data = buf;
    *size = n;
    return KC_OK;
}

kc_status kc_io_write_atomic(const char *path, const void *data, size_t size) {
    if (!path || !*path) return kc_err(KC_EINVAL, "save: the path is empty");
    size_t n = strlen(path);
    char *tmp = malloc(n + 32), *dir = malloc(n + 2);
    if (!tmp || !dir) {
        free(tmp);
        free(dir);
        return kc_err(KC_ENOMEM, "save: out of memory");
    }
    /* the temporary file sits in the target's directory, so the rename stays on one disk */
    snprintf(tmp, n + 32, "%s.tmp-XXXXXX", path);
    const char *slash = strrchr(path, '/');
    if (slash) {
        memcpy(dir, path, (size_t)(slash - path) + 1);
        dir[slash - path + 1] = 0;
    } else {
        strcpy(dir, ".");
    }
    remove_stale_temps(path, dir, slash ? slash + 1 : path);
    kc_status st = KC_OK;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        st = kc_err(KC_EIO, "%s: cannot create a temporary file in %s: %s", path, dir,
                    strerror(errno));
        goto out;
    }
    fchmod(fd, 0644);
    const char *p = data;
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, p + done, size - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            st = kc_err(KC_EIO, "%s: writing the temporary file %s failed: %s", path, tmp,
                        strerror(errno));
            break;
        }
        done += (size_t)w;
    }
    if (!st && fsync(fd))
        st = kc_err(KC_EIO, "%s: fsync of %s failed: %s", path, tmp, strerror(errno));
    if (close(fd) && !st)
        st = kc_err(KC_EIO, "%s: closing %s failed: %s", path, tmp, strerror(errno));
    if (!st && rename(tmp, path))
        st = kc_err(KC_EIO, "%s: renaming %s over it failed: %s", path, tmp, strerror(errno));
    if (st) {
        unlink(tmp);
        goto out;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* the rename itself survives a power cut */
        close(dfd);
    }
out:
    free(tmp);
    free(dir);
    return st;
}

kc_status kc_write_file_atomic(const char *path, const void *data, size_t size) {
    return kc_io_write_atomic(path, data, size);
}
