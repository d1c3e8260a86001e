#ifndef ATP_SUPPORT_H
#define ATP_SUPPORT_H

#include <stddef.h>
#include <stdint.h>
// The process's memory figures (jemalloc's mallctl found at run time, glibc's mallinfo2, /proc).
// Included here so that a build that already had this module sees the new header.
#include "atp_allocator.h"

/// Hints the CPU to bring the cache line at `address` into cache for a write soon.
/// Used by the ledger to overlap the DRAM misses of a batch; never faults.
static inline void atp_prefetch_write(const void *address) {
    __builtin_prefetch(address, 1, 3);
}

/// Hints the CPU to bring the cache line at `address` into cache for a read soon.
static inline void atp_prefetch_read(const void *address) {
    __builtin_prefetch(address, 0, 3);
}

/// Names the calling thread (at most 15 bytes are kept by Linux). Returns 0 on success.
int atp_set_current_thread_name(const char *name);

/// Does nothing, out of line: a call the Swift optimizer cannot see into, so it may not move a
/// retain or release across it (it must assume the call may release anything). `TaskRing` calls it
/// between taking the ring's reference to a task and publishing the task to the consumer: without
/// it the optimizer sank `Unmanaged.passRetained`'s retain below the releasing store that publishes
/// the slot, and a fast consumer ran and freed the task before the producer's retain happened.
void atp_reference_counting_barrier(void);

/// A full compiler and CPU pause hint for spin loops.
static inline void atp_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/// Whether this CPU has the CRC-32C instruction (x86-64 SSE4.2). Checked once by the caller.
int atp_crc32c_hardware_available(void);

/// Continues a CRC-32C register (reflected polynomial 0x82F63B78, no initial or final xor applied
/// here) over `count` bytes with the CPU's crc32 instruction, 8 bytes per step. Only call it when
/// `atp_crc32c_hardware_available()` said yes.
uint32_t atp_crc32c_update_hardware(uint32_t crc, const void *bytes, size_t count);

#endif
