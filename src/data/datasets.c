/* datasets.c: kc_mnist_load (a given dir, $KERAC_DATA, the user cache, or a download) and the
 * downloader that only ever moves a file into place after its SHA-256 matched. */
#include "../internal.h"
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MNIST_DEFAULT_URL "https://storage.googleapis.com/cvdf-datasets/mnist/"
#define MNIST_SIDE 28
#define MNIST_CLASSES 10
#define IDX1_HEADER_BYTES 8 /* magic + one dim: where label i lies, at 8 + i */

enum { TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS, MNIST_FILES };

/* SHA-256 of the canonical .gz files, as in tensorflow_datasets/url_checksums/mnist.txt. */
static const struct {
    const char *name;
    const char *sha256;
} mnist_files[MNIST_FILES] = {
    [TRAIN_IMAGES] = {"train-images-idx3-ubyte",
                      "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"},
    [TRAIN_LABELS] = {"train-labels-idx1-ubyte",
                      "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"},
    [TEST_IMAGES] = {"t10k-images-idx3-ubyte",
                     "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"},
    [TEST_LABELS] = {"t10k-labels-idx1-ubyte",
                     "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"},
};

typedef char path_buf[PATH_MAX];

/* ---- SHA-256 ---------------------------------------------------------------------------- */

static void digest_hex(EVP_MD_CTX *md, char hex_out[65]) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    EVP_DigestFinal_ex(md, digest, &len);
    for (unsigned i = 0; i < len && i < 32; i++) snprintf(hex_out + 2 * i, 3, "%02x", digest[i]);
    hex_out[2 * (len < 32 ? len : 32)] = '\0';
}

static EVP_MD_CTX *digest_begin(const EVP_MD *type) {
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (md && EVP_DigestInit_ex(md, type, NULL) != 1) {
        EVP_MD_CTX_free(md);
        md = NULL;
    }
    if (!md) kc_err(KC_ENOMEM, "cannot start a digest (OpenSSL)");
    return md;
}

static EVP_MD_CTX *sha256_begin(void) { return digest_begin(EVP_sha256()); }

kc_status kc_sha256_file(const char *path, char hex_out[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return kc_err(KC_EIO, "%s: cannot open: %s", path, strerror(errno));
    EVP_MD_CTX *md = sha256_begin();
    kc_status st = md ? KC_OK : KC_ENOMEM;
    unsigned char buf[1 << 16];
    size_t n;
    while (st == KC_OK && (n = fread(buf, 1, sizeof buf, f)) > 0) EVP_DigestUpdate(md, buf, n);
    if (st == KC_OK && ferror(f)) st = kc_err(KC_EIO, "%s: read error: %s", path, strerror(errno));
    if (st == KC_OK) digest_hex(md, hex_out);
    EVP_MD_CTX_free(md);
    fclose(f);
    return st;
}

/* ---- verified download ------------------------------------------------------------------- */

typedef struct {
    FILE *file;
    EVP_MD_CTX *md;
    int write_errno; /* set when the local write failed */
} download_sink;

static size_t sink_write(char *data, size_t size, size_t count, void *user) {
    download_sink *sink = user;
    size_t bytes = size * count;
    if (fwrite(data, 1, bytes, sink->file) != bytes) {
        sink->write_errno = errno ? errno : EIO;
        return 0; /* makes curl stop with CURLE_WRITE_ERROR */
    }
    EVP_DigestUpdate(sink->md, data, bytes);
    return bytes;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_code = CURLE_FAILED_INIT;
static void curl_init(void) { curl_init_code = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Fetches url into sink; KC_ENET on a transfer failure or an HTTP status >= 400. */
static kc_status fetch(const char *url, download_sink *sink, const char *tmp_path) {
    pthread_once(&curl_once, curl_init);
    CURL *curl = curl_init_code == CURLE_OK ? curl_easy_init() : NULL;
    if (!curl) return kc_err(KC_ENET, "download of %s failed: cannot initialise libcurl", url);
    char curl_error[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, sink_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_error);
    curl_easy_setopt(curl, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L); /* give up after 60 s without data */
    curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
    CURLcode res = curl_easy_perform(curl);
    curl_easy_cleanup(curl);
    if (sink->write_errno)
        return kc_err(KC_EIO, "download of %s: cannot write %s: %s", url, tmp_path,
                      strerror(sink->write_errno));
    if (res != CURLE_OK)
        return kc_err(KC_ENET, "download of %s failed: %s", url,
                      curl_error[0] ? curl_error : curl_easy_strerror(res));
    return KC_OK;
}

/* Flushes and closes the temp file, sync'd to disk so the rename never exposes a partial file. */
static kc_status close_synced(download_sink *sink, const char *tmp_path) {
    int failed = fflush(sink->file) != 0 || fsync(fileno(sink->file)) != 0;
    int saved_errno = errno;
    failed |= fclose(sink->file) != 0;
    sink->file = NULL;
    if (failed)
        return kc_err(KC_EIO, "cannot write %s: %s", tmp_path, strerror(saved_errno ? saved_errno : errno));
    return KC_OK;
}

/* sha256_hex: 64 hex digits; 32 digits are an MD5, as Keras's get_file(hash_algorithm="auto")
 * reads the hashes of its older files (the word indexes) */
kc_status kc_download_verified(const char *url, const char *sha256_hex, const char *dest_path) {
    size_t hash_len = sha256_hex ? strlen(sha256_hex) : 0;
    if (!url || !dest_path || (hash_len != 64 && hash_len != 32))
        return kc_err(KC_EINVAL, "kc_download_verified: needs a URL, a destination and a "
                      "64-digit SHA-256 (or a 32-digit MD5)");
    path_buf tmp_path;
    if (snprintf(tmp_path, sizeof tmp_path, "%s.part-XXXXXX", dest_path) >= (int)sizeof tmp_path)
        return kc_err(KC_EINVAL, "kc_download_verified: path too long: %s", dest_path);
    int fd = mkstemp(tmp_path); /* beside dest, so that rename() stays within one file system */
    if (fd < 0)
        return kc_err(KC_EIO, "cannot create a temporary file beside %s: %s", dest_path,
                      strerror(errno));
    fchmod(fd, 0644); /* mkstemp makes 0600; a cache file may be shared */
    download_sink sink = {fdopen(fd, "wb"), NULL, 0};
    kc_status st = KC_OK;
    if (!sink.file) {
        st = kc_err(KC_EIO, "cannot open %s: %s", tmp_path, strerror(errno));
        close(fd);
    }
    if (st == KC_OK && !(sink.md = digest_begin(hash_len == 32 ? EVP_md5() : EVP_sha256())))
        st = KC_ENOMEM;
    if (st == KC_OK) st = fetch(url, &sink, tmp_path);
    if (sink.file) {
        kc_status closed = close_synced(&sink, tmp_path);
        if (st == KC_OK) st = closed;
    }
    if (st == KC_OK) {
        char actual[65];
        digest_hex(sink.md, actual);
        if (strcasecmp(actual, sha256_hex) != 0)
            st = kc_err(KC_ENET, "download of %s did not verify: its %s is %s, expected %s",
                        url, hash_len == 32 ? "MD5" : "SHA-256", actual, sha256_hex);
    }
    if (st == KC_OK && rename(tmp_path, dest_path) != 0)
        st = kc_err(KC_EIO, "cannot rename %s to %s: %s", tmp_path, dest_path, strerror(errno));
    if (st != KC_OK) unlink(tmp_path);
    EVP_MD_CTX_free(sink.md);
    return st;
}

/* ---- finding the files ------------------------------------------------------------------- */

static kc_status path_join(char *out, const char *dir, const char *name, const char *suffix) {
    if (snprintf(out, PATH_MAX, "%s/%s%s", dir, name, suffix) >= PATH_MAX)
        return kc_err(KC_EINVAL, "path too long: %s/%s%s", dir, name, suffix);
    return KC_OK;
}

/* NAME.gz, else NAME, in dir; *found says whether either exists (then out holds it). */
static kc_status find_file(const char *dir, const char *name, char *out, bool *found) {
    static const char *const suffixes[] = {".gz", ""};
    *found = false;
    for (int i = 0; i < 2 && !*found; i++) {
        kc_status st = path_join(out, dir, name, suffixes[i]);
        if (st != KC_OK) return st;
        *found = access(out, F_OK) == 0;
    }
    return KC_OK;
}

/* Fills paths with the four files in dir; *missing gets the first absent one (-1 if none). */
static kc_status find_all(const char *dir, path_buf paths[MNIST_FILES], int *missing) {
    *missing = -1;
    for (int i = 0; i < MNIST_FILES && *missing < 0; i++) {
        bool found;
        kc_status st = find_file(dir, mnist_files[i].name, paths[i], &found);
        if (st != KC_OK) return st;
        if (!found) *missing = i;
    }
    return KC_OK;
}

kc_status kc_make_dirs(const char *path) {
    path_buf buf;
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return kc_err(KC_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return kc_err(KC_EIO, "cannot create directory %s: %s", buf, strerror(errno));
        if (saved == '\0') break;
        *p = saved;
    }
    struct stat info;
    if (stat(path, &info) != 0 || !S_ISDIR(info.st_mode))
        return kc_err(KC_EIO, "%s is not a directory", path);
    return KC_OK;
}

kc_status kc_cache_dir(const char *sub, const char *what, char *out) {
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    int n;
    if (xdg && xdg[0] == '/') n = snprintf(out, PATH_MAX, "%s/kerac/%s", xdg, sub);
    else if (home && home[0]) n = snprintf(out, PATH_MAX, "%s/.cache/kerac/%s", home, sub);
    else return kc_err(KC_EIO, "%s: no cache directory: set KERAC_DATA, XDG_CACHE_HOME or HOME",
                       what);
    if (n >= PATH_MAX) return kc_err(KC_EINVAL, "%s: cache path too long", what);
    return KC_OK;
}

/* Downloads every file still missing from dir (the cache), each checked before it lands. */
static kc_status download_missing(const char *dir, path_buf paths[MNIST_FILES]) {
    const char *base = getenv("KERAC_MNIST_URL");
    if (!base || !base[0]) base = MNIST_DEFAULT_URL;
    const char *sep = base[strlen(base) - 1] == '/' ? "" : "/";
    kc_status st = kc_make_dirs(dir);
    for (int i = 0; i < MNIST_FILES && st == KC_OK; i++) {
        bool found;
        st = find_file(dir, mnist_files[i].name, paths[i], &found);
        if (st != KC_OK || found) continue;
        char url[PATH_MAX + 256];
        if (snprintf(url, sizeof url, "%s%s%s.gz", base, sep, mnist_files[i].name) >= (int)sizeof url)
            return kc_err(KC_EINVAL, "MNIST: download URL too long: %s", base);
        st = path_join(paths[i], dir, mnist_files[i].name, ".gz");
        if (st == KC_OK) st = kc_download_verified(url, mnist_files[i].sha256, paths[i]);
    }
    return st;
}

static kc_status locate_mnist(const char *dir, path_buf paths[MNIST_FILES]) {
    int missing;
    kc_status st;
    if (dir) {
        struct stat info;
        if (stat(dir, &info) != 0)
            return kc_err(KC_EIO, "MNIST: cannot use directory %s: %s", dir, strerror(errno));
        if (!S_ISDIR(info.st_mode)) return kc_err(KC_EIO, "MNIST: %s is not a directory", dir);
        if ((st = find_all(dir, paths, &missing)) != KC_OK) return st;
        if (missing >= 0)
            return kc_err(KC_EIO, "MNIST: %s holds neither %s.gz nor %s", dir,
                          mnist_files[missing].name, mnist_files[missing].name);
        return KC_OK;
    }
    path_buf search_dir;
    const char *data = getenv("KERAC_DATA");
    if (data && data[0]) {
        if (snprintf(search_dir, sizeof search_dir, "%s/mnist", data) >= (int)sizeof search_dir)
            return kc_err(KC_EINVAL, "MNIST: $KERAC_DATA is too long");
        if ((st = find_all(search_dir, paths, &missing)) != KC_OK) return st;
        if (missing < 0) return KC_OK;
    }
    if ((st = kc_cache_dir("mnist", "MNIST", search_dir)) != KC_OK) return st;
    if ((st = find_all(search_dir, paths, &missing)) != KC_OK) return st;
    return missing < 0 ? KC_OK : download_missing(search_dir, paths);
}

/* ---- reading and checking ---------------------------------------------------------------- */

static kc_status check_split(const char *images_path, const kc_idx *images,
                             const char *labels_path, const kc_idx *labels) {
    if (images->rank != 3)
        return kc_err(KC_EFORMAT, "%s: MNIST images must have shape (N, 28, 28), found rank %d",
                      images_path, images->rank);
    if (images->dims[1] != MNIST_SIDE || images->dims[2] != MNIST_SIDE)
        return kc_err(KC_EFORMAT, "%s: MNIST images must have shape (N, 28, 28), found (%" PRId64
                      ", %" PRId64 ", %" PRId64 ")", images_path, images->dims[0], images->dims[1],
                      images->dims[2]);
    if (labels->rank != 1)
        return kc_err(KC_EFORMAT, "%s: MNIST labels must have rank 1 (N), found rank %d",
                      labels_path, labels->rank);
    if (images->dims[0] != labels->dims[0])
        return kc_err(KC_EFORMAT, "MNIST: %s holds %" PRId64 " images but %s holds %" PRId64
                      " labels", images_path, images->dims[0], labels_path, labels->dims[0]);
    for (int64_t i = 0; i < labels->size; i++)
        if (labels->data[i] >= MNIST_CLASSES)
            return kc_err(KC_EFORMAT, "%s: label %d of sample %" PRId64 " (byte offset %" PRId64
                          ") is not a digit 0..9", labels_path, labels->data[i], i,
                          IDX1_HEADER_BYTES + i);
    return KC_OK;
}

static kc_status load_split(const char *images_path, const char *labels_path, kc_dataset *ds) {
    kc_idx images, labels = {0};
    kc_status st = kc_idx_read(images_path, &images);
    if (st == KC_OK) st = kc_idx_read(labels_path, &labels);
    if (st == KC_OK) st = check_split(images_path, &images, labels_path, &labels);
    if (st != KC_OK) {
        kc_idx_free(&images);
        kc_idx_free(&labels);
        return st;
    }
    *ds = (kc_dataset){
        .count = images.dims[0],
        .x_shape = kc_shape2(MNIST_SIDE, MNIST_SIDE),
        .x_dtype = KC_UINT8,
        .x = images.data,
        .owned_x = images.data,
        .y_dtype = KC_UINT8, /* y_shape rank 0: class indices */
        .y = labels.data,
        .owned_y = labels.data,
        .num_classes = MNIST_CLASSES,
    };
    return KC_OK;
}

kc_status kc_mnist_load(const char *dir, kc_dataset *train, kc_dataset *test) {
    if (!train || !test || train == test)
        return kc_err(KC_EINVAL, "kc_mnist_load: needs two distinct datasets to fill");
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    path_buf paths[MNIST_FILES];
    kc_status st = locate_mnist(dir, paths);
    if (st == KC_OK) st = load_split(paths[TRAIN_IMAGES], paths[TRAIN_LABELS], train);
    if (st == KC_OK) st = load_split(paths[TEST_IMAGES], paths[TEST_LABELS], test);
    if (st != KC_OK) {
        kc_dataset_free(train);
        kc_dataset_free(test);
    }
    return st;
}
