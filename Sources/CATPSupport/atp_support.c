#define _GNU_SOURCE
#include "atp_support.h"
#include <pthread.h>
#include <string.h>

int atp_set_current_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof(truncated) - 1);
    truncated[sizeof(truncated) - 1] = 0;
    return pthread_setname_np(pthread_self(), truncated);
}

__attribute__((noinline)) void atp_reference_counting_barrier(void) {
    __asm__ __volatile__("" ::: "memory");
}

#if defined(__x86_64__)
#include <nmmintrin.h>

int atp_crc32c_hardware_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2")))
uint32_t atp_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count) {
    const uint8_t *p = (const uint8_t *)bytes;
    uint64_t wide = crc;
    while (count >= 8) {
        uint64_t word;
        memcpy(&word, p, sizeof word);
        wide = _mm_crc32_u64(wide, word);
        p += 8;
        count -= 8;
    }
    uint32_t narrow = (uint32_t)wide;
    while (count > 0) {
        narrow = _mm_crc32_u8(narrow, *p);
        p += 1;
        count -= 1;
    }
    return narrow;
}
#else
int atp_crc32c_hardware_available(void) { return 0; }

uint32_t atp_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count) {
    (void)bytes;
    (void)count;
    return crc;
}
#endif
