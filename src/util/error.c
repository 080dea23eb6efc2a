/* error.c: the per-thread error message behind kc_last_error, and status names. */
#include "../internal.h"
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];
static _Thread_local kc_status last_status;

kc_status kc_last_status(void) { return last_status; }

const char *kc_last_error(void) { return last_message[0] ? last_message : "no error"; }

kc_status kc_err(kc_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    last_status = status;
    return status;
}

kc_status kc_err_prefix(kc_status status, const char *fmt, ...) {
    char prefix[512], old[sizeof last_message];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_message, sizeof old);
    size_t used = (size_t)snprintf(last_message, sizeof last_message, "%s: ", prefix);
    if (used < sizeof last_message)
        memcpy(last_message + used, old, strnlen(old, sizeof last_message - 1 - used) + 1),
            last_message[sizeof last_message - 1] = 0;
    last_status = status;
    return status;
}

/* ---- warnings: what kerac did that the caller should know (state skipped while loading) ---- */

static _Thread_local char last_warning[1024];
static kc_warning_fn warning_handler;
static void *warning_user;

void kc_set_warning_handler(kc_warning_fn handler, void *user) {
    warning_handler = handler;
    warning_user = user;
}

const char *kc_last_warning(void) { return last_warning; }

void kc_warn(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_warning, sizeof last_warning, fmt, ap);
    va_end(ap);
    if (warning_handler) warning_handler(last_warning, warning_user);
}

const char *kc_status_name(kc_status status) {
    switch (status) {
    case KC_OK: return "KC_OK";
    case KC_EINVAL: return "KC_EINVAL";
    case KC_EIO: return "KC_EIO";
    case KC_EFORMAT: return "KC_EFORMAT";
    case KC_ENOMEM: return "KC_ENOMEM";
    case KC_ESTATE: return "KC_ESTATE";
    case KC_ENAN: return "KC_ENAN";
    case KC_ENET: return "KC_ENET";
    }
    return "KC_UNKNOWN";
}
