#ifndef ATP_ALLOCATOR_H
#define ATP_ALLOCATOR_H

// The process's memory as its allocator and the kernel see it (like Redis's INFO memory). Every
// call here works in any binary of the package: jemalloc is found at run time
// (`dlsym(RTLD_DEFAULT, "mallctl")`), never linked from here, so a binary without it (the tests,
// `atp`) reports the system allocator and no jemalloc figures. The Swift side is ATPServer's
// `ProcessMemory`; nothing else calls these.

#include <stdint.h>

/// jemalloc's own statistics (`stats.*` mallctls, bytes), read after refreshing them ("epoch").
typedef struct {
    /// Bytes allocated by the application and not freed (`stats.allocated`).
    uint64_t allocated;
    /// Bytes in active pages: allocated plus the free space inside those pages (`stats.active`).
    uint64_t active;
    /// Bytes in physically resident data pages mapped by the allocator, metadata included (`stats.resident`).
    uint64_t resident;
    /// Bytes in virtual memory kept mapped but returned to the kernel, for reuse (`stats.retained`).
    uint64_t retained;
    /// Bytes in active extents mapped by the allocator (`stats.mapped`).
    uint64_t mapped;
    /// Bytes of the allocator's own metadata (`stats.metadata`).
    uint64_t metadata;
} atp_jemalloc_statistics;

/// 1 when jemalloc serves this process's `malloc`: a `mallctl` is found with
/// `dlsym(RTLD_DEFAULT, ...)` and `malloc` resolves into the same shared object (so a jemalloc
/// loaded without taking over `malloc` does not count). 0 otherwise. Resolved once; any thread.
int atp_jemalloc_is_allocator(void);

/// The jemalloc version string (e.g. "5.3.0-0-g54eaed1d8b56b1aa528be3bdd1877e59c56fa90c"), or
/// NULL when jemalloc is not the allocator. The string is jemalloc's own, valid for the process.
const char *atp_jemalloc_version(void);

/// Starts jemalloc's background threads, which give dirty pages back to the kernel on time even
/// while the process allocates nothing (without them jemalloc purges only from inside its own
/// calls, so an idle server keeps the pages of its last burst). Redis does the same
/// (`jemalloc-bg-thread yes`). Returns 0 on success; -1 when jemalloc is not the allocator;
/// otherwise mallctl's error number. Call it once, at start-up.
int atp_jemalloc_enable_background_thread(void);

/// Advances jemalloc's statistics epoch (so the figures are current, not cached) and reads them
/// into `*statistics`. Returns 0 on success; -1 when jemalloc is not the allocator; otherwise the
/// error number of the first `mallctl` that failed (ENOENT: jemalloc built without statistics).
/// Takes jemalloc's statistics locks briefly (microseconds); any thread.
int atp_jemalloc_read_statistics(atp_jemalloc_statistics *statistics);

/// glibc malloc's bytes in use (`mallinfo2`: `uordblks + hblkhd`, chunk headers included) and the
/// free bytes it holds (`fordblks`), over every arena. Returns 0, or -1 when this C library has no
/// `mallinfo2` or jemalloc is the allocator (glibc's arenas are then empty). Locks each arena in
/// turn and walks its free lists: call it at scrape time, not per request.
int atp_glibc_malloc_statistics(uint64_t *in_use_bytes, uint64_t *free_bytes);

/// The process's resident set now (`VmRSS`) and at its peak (`VmHWM`), in bytes, from
/// /proc/self/status. Returns 0, or -1 when the file cannot be read or lacks the lines.
int atp_process_resident_bytes(uint64_t *resident_bytes, uint64_t *resident_peak_bytes);

#endif
