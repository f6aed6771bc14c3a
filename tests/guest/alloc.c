/*
 * A bump allocator over the 2-4 MiB range (between the kit's image and the
 * `dirty` generation array) for drivers' DMA memory: virtqueues, request
 * headers, data buffers. Identity-mapped, so a pointer is its guest
 * physical address. Nothing is ever freed; running out is a TG FAIL.
 */
#include "tg.h"

static uint64_t heap_next = TG_HEAP_BASE;

void *tg_alloc(size_t size, size_t align)
{
    uint64_t old, start, end;

    if (!align || (align & (align - 1))) {
        tg_fail("tg_alloc: alignment %lu is not a power of two", (uint64_t)align);
    }
    do {
        old = __atomic_load_n(&heap_next, __ATOMIC_RELAXED);
        start = (old + align - 1) & ~(uint64_t)(align - 1);
        end = start + size;
        if (end > TG_HEAP_END || end < start) {
            tg_fail("tg_alloc: out of memory (%lu bytes wanted, %lu left)",
                    (uint64_t)size, TG_HEAP_END - old);
        }
    } while (!__atomic_compare_exchange_n(&heap_next, &old, end, false,
                                          __ATOMIC_ACQ_REL, __ATOMIC_RELAXED));
    return memset((void *)start, 0, size);
}
