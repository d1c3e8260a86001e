// Interposes the malloc family in the test executable: the dynamic linker binds every library's
// calls to malloc (libswiftCore's swift_slowAlloc, NIO's buffers) to these, which count per thread
// and forward to glibc's own implementation. (The runtime's `_swift_allocObject` hook is not usable
// on Linux: setting it switches retain/release to an adapter path that crashes.)
#define _GNU_SOURCE
#include "atp_allocation_counter.h"
#include <errno.h>
#include <stddef.h>

#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define ATP_UNDER_SANITIZER 1
#endif
#endif
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define ATP_UNDER_SANITIZER 1
#endif

#ifdef ATP_UNDER_SANITIZER
// A sanitizer's runtime owns malloc (tools/tsan.sh): interposing it here crashed the test binary
// while ThreadSanitizer initialised. Nothing is counted; AllocationTests are not run there.
unsigned long long atp_thread_allocations(void) { return 0; }
#else
extern void *__libc_malloc(size_t size);
extern void __libc_free(void *pointer);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

// Initial-exec: no allocation on first access (which would recurse into malloc).
static __thread unsigned long long thread_allocations __attribute__((tls_model("initial-exec")));

unsigned long long atp_thread_allocations(void) { return thread_allocations; }

void *malloc(size_t size) {
    thread_allocations += 1;
    return __libc_malloc(size);
}

void free(void *pointer) { __libc_free(pointer); }

void *calloc(size_t count, size_t size) {
    thread_allocations += 1;
    return __libc_calloc(count, size);
}

void *realloc(void *pointer, size_t size) {
    thread_allocations += 1;
    return __libc_realloc(pointer, size);
}

void *memalign(size_t alignment, size_t size) {
    thread_allocations += 1;
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    thread_allocations += 1;
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    thread_allocations += 1;
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *out = pointer;
    return 0;
}
#endif
