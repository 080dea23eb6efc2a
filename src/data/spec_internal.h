/* spec_internal.h: the loaders kc_data_load (spec.c) dispatches to, shared with the tests. */
#ifndef KERAC_SPEC_INTERNAL_H
#define KERAC_SPEC_INTERNAL_H
#include "../internal.h"

/* csv.c: FILE.csv with a header line; label_column as kc_data_opts's */
kc_status kc_csv_load(const char *path, const char *label_column, kc_dataset *out);

/* cifar.c: CIFAR-10's binary version, test 0: data_batch_1..5, 1: test_batch. The archive
 * cifar-10-binary.tar.gz is looked for in cache_dir (when not NULL; downloaded there when
 * missing), else $KERAC_DATA/cifar10, else the user cache (downloaded there when missing).
 * url, hash: where from and its MD5 (32 hex digits) or SHA-256 (64); NULL: the defaults
 * ($KERAC_CIFAR10_URL, else the dataset authors' URL, and their published MD5). */
#define KC_CIFAR10_URL "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
#define KC_CIFAR10_MD5 "c32a1d4ab5d03f1284b67883e8d87530"
kc_status kc_cifar10_load_from(const char *cache_dir, const char *url, const char *hash, int test,
                               kc_dataset *out);
/* the batches of an archive already on disk (.tar.gz or .tar) */
kc_status kc_cifar10_read_archive(const char *path, int test, kc_dataset *out);
extern const char *const kc_cifar10_class_names[10];

/* image.c / spec.c: an image folder as image_dataset_from_directory */
kc_status kc_image_folder_load(const char *dir, const kc_data_opts *opts, kc_dataset *out,
                               kc_data_info *info);
#endif
