// The process's memory figures (atp_allocator.h). The one place that calls jemalloc's mallctl, and
// only through a pointer found at run time: this file never links jemalloc itself.
#define _GNU_SOURCE
#include "atp_allocator.h"
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int (*atp_mallctl_function)(const char *name, void *old_value, size_t *old_length, void *new_value,
                                    size_t new_length);

/// jemalloc's `mallctl`, when jemalloc is the process's malloc; NULL otherwise. Written once under
/// `resolve_once`, read-only after.
static atp_mallctl_function resolved_mallctl = NULL;
static pthread_once_t resolve_once = PTHREAD_ONCE_INIT;

static void resolve_mallctl(void) {
    void *mallctl_symbol = dlsym(RTLD_DEFAULT, "mallctl");
    void *malloc_symbol = dlsym(RTLD_DEFAULT, "malloc");
    if (mallctl_symbol == NULL || malloc_symbol == NULL) return;
    // The object that defines mallctl must be the one every malloc call binds to.
    Dl_info mallctl_object, malloc_object;
    if (dladdr(mallctl_symbol, &mallctl_object) == 0 || dladdr(malloc_symbol, &malloc_object) == 0) return;
    if (mallctl_object.dli_fbase != malloc_object.dli_fbase) return;
    resolved_mallctl = (atp_mallctl_function)mallctl_symbol;
}

static atp_mallctl_function mallctl_function(void) {
    pthread_once(&resolve_once, resolve_mallctl);
    return resolved_mallctl;
}

int atp_jemalloc_is_allocator(void) { return mallctl_function() != NULL; }

const char *atp_jemalloc_version(void) {
    atp_mallctl_function mallctl = mallctl_function();
    if (mallctl == NULL) return NULL;
    const char *version = NULL;
    size_t length = sizeof(version);
    if (mallctl("version", &version, &length, NULL, 0) != 0) return NULL;
    return version;
}

int atp_jemalloc_enable_background_thread(void) {
    atp_mallctl_function mallctl = mallctl_function();
    if (mallctl == NULL) return -1;
    _Bool enable = 1;
    return mallctl("background_thread", NULL, NULL, &enable, sizeof(enable));
}

/// Reads one `size_t` statistic into `*value`; returns mallctl's result.
static int read_size(atp_mallctl_function mallctl, const char *name, uint64_t *value) {
    size_t size_value = 0;
    size_t length = sizeof(size_value);
    int result = mallctl(name, &size_value, &length, NULL, 0);
    if (result == 0) *value = (uint64_t)size_value;
    return result;
}

int atp_jemalloc_read_statistics(atp_jemalloc_statistics *statistics) {
    atp_mallctl_function mallctl = mallctl_function();
    if (mallctl == NULL) return -1;
    memset(statistics, 0, sizeof(*statistics));
    // jemalloc caches its statistics; writing "epoch" refreshes them.
    uint64_t epoch = 1;
    size_t epoch_length = sizeof(epoch);
    int result = mallctl("epoch", &epoch, &epoch_length, &epoch, epoch_length);
    if (result != 0) return result;
    if ((result = read_size(mallctl, "stats.allocated", &statistics->allocated)) != 0) return result;
    if ((result = read_size(mallctl, "stats.active", &statistics->active)) != 0) return result;
    if ((result = read_size(mallctl, "stats.resident", &statistics->resident)) != 0) return result;
    if ((result = read_size(mallctl, "stats.retained", &statistics->retained)) != 0) return result;
    if ((result = read_size(mallctl, "stats.mapped", &statistics->mapped)) != 0) return result;
    if ((result = read_size(mallctl, "stats.metadata", &statistics->metadata)) != 0) return result;
    return 0;
}

int atp_glibc_malloc_statistics(uint64_t *in_use_bytes, uint64_t *free_bytes) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    if (atp_jemalloc_is_allocator()) return -1;
    struct mallinfo2 info = mallinfo2();
    *in_use_bytes = (uint64_t)info.uordblks + (uint64_t)info.hblkhd;
    *free_bytes = (uint64_t)info.fordblks;
    return 0;
#else
    (void)in_use_bytes;
    (void)free_bytes;
    return -1;
#endif
}

/// The value of a "Name:   123 kB" line of /proc/self/status, in bytes, or -1.
static int parse_kilobytes_line(const char *line, const char *name, uint64_t *bytes) {
    size_t name_length = strlen(name);
    if (strncmp(line, name, name_length) != 0) return -1;
    unsigned long long kilobytes = 0;
    if (sscanf(line + name_length, " %llu kB", &kilobytes) != 1) return -1;
    *bytes = (uint64_t)kilobytes * 1024u;
    return 0;
}

int atp_process_resident_bytes(uint64_t *resident_bytes, uint64_t *resident_peak_bytes) {
    FILE *status = fopen("/proc/self/status", "re");
    if (status == NULL) return -1;
    char line[256];
    int found = 0;
    while (found != 3 && fgets(line, sizeof(line), status) != NULL) {
        if (parse_kilobytes_line(line, "VmRSS:", resident_bytes) == 0) found |= 1;
        else if (parse_kilobytes_line(line, "VmHWM:", resident_peak_bytes) == 0) found |= 2;
    }
    fclose(status);
    return found == 3 ? 0 : -1;
}
