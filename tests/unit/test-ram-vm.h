/*
 * A VM's RAM for the migration job tests (test-postcopy.c, test-multifd.c):
 * a memfd mapped once and split into two regions (below and at 4 GiB, as a
 * PC's RAM around its hole), with RAM migration of block "pc.ram"
 * registered on a SaveVM; 'syncs' counts the tests' fake dirty syncs; and
 * how much of such RAM this process maps. Header-only.
 */
#ifndef TESTS_UNIT_TEST_RAM_VM_H
#define TESTS_UNIT_TEST_RAM_VM_H

#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <glib.h>

#include "migration/ram.h"
#include "migration/savevm.h"

typedef struct TestRamVm {
    GuestMemory mem;
    uint8_t *base;
    SaveVM *sv;
    RamMigration *ram;
    int syncs;
} TestRamVm;

/* 'bytes' of memfd RAM for 'mem' (the caller maps its regions onto the
 * returned address); munmap and close mem->fd when done. */
static inline uint8_t *test_memfd_ram(GuestMemory *mem, uint64_t bytes)
{
    uint8_t *base;

    mem->fd = memfd_create("ram", MFD_CLOEXEC);
    g_assert_cmpint(ftruncate(mem->fd, bytes), ==, 0);
    base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, mem->fd, 0);
    g_assert_true(base != MAP_FAILED);
    mem->ram_size = bytes;
    return base;
}

static inline void test_ram_vm_init(TestRamVm *vm, uint64_t len)
{
    memset(vm, 0, sizeof(*vm));
    vm->base = test_memfd_ram(&vm->mem, len);
    vm->mem.regions[0] = (GuestRegion){ 0, len / 2, vm->base, 0 };
    vm->mem.regions[1] = (GuestRegion){ 4 * GiB, len / 2, vm->base + len / 2,
                                        len / 2 };
    vm->mem.nr_regions = 2;
    vm->sv = savevm_new("m");
    vm->ram = ram_migration_new(&vm->mem, "pc.ram");
    ram_migration_register(vm->ram, vm->sv);
}

static inline void test_ram_vm_destroy(TestRamVm *vm)
{
    ram_migration_free(vm->ram);
    savevm_free(vm->sv);
    munmap(vm->base, vm->mem.ram_size);
    close(vm->mem.fd);
}

/* How many of the npages 4 KiB pages at 'base' this process maps now
 * (pagemap's present bit: a page written into the memfd behind the
 * mapping's back is in the memfd, not mapped). */
static inline uint64_t test_mapped_pages(const uint8_t *base, uint64_t npages)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    uint64_t n = 0;

    g_assert_cmpint(fd, >=, 0);
    for (uint64_t i = 0; i < npages; i++) {
        uint64_t entry = 0;
        off_t at = ((uintptr_t)base / 4096 + i) * sizeof(entry);

        g_assert_cmpint(pread(fd, &entry, sizeof(entry), at), ==,
                        sizeof(entry));
        n += entry >> 63;
    }
    close(fd);
    return n;
}

#endif
