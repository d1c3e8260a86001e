#ifndef ATP_ALLOCATION_COUNTER_H
#define ATP_ALLOCATION_COUNTER_H

/// Heap allocations (malloc, calloc, realloc, aligned allocations: every Swift object, array and
/// closure storage, and every NIO buffer goes through them) made by the calling thread since it
/// started. The test binary's malloc family is interposed to count them (test support only; atpd
/// never links this). Cost: one thread-local increment per allocation.
unsigned long long atp_thread_allocations(void);

#endif
