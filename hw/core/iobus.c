/*
 * The port-I/O and MMIO buses (hw/core/iobus.h): a sorted array of non-overlapping
 * ranges, each with its device's ops and opaque pointer, searched by bisection
 * on every KVM I/O exit. A read-write lock lets vCPU threads dispatch in
 * parallel while a PCI BAR move registers or removes a range.
 */
#include "hw/core/iobus.h"
#include "tern/error.h"

typedef struct IoRange {
    uint64_t base;
    uint64_t len;
    const IoOps *ops;
    void *opaque;
} IoRange;

struct IoBus {
    char *name;
    GRWLock lock;
    GArray *ranges;   /* of IoRange, sorted by base */
};

IoBus *iobus_new(const char *name)
{
    IoBus *bus = g_new0(IoBus, 1);

    bus->name = g_strdup(name);
    g_rw_lock_init(&bus->lock);
    bus->ranges = g_array_new(false, false, sizeof(IoRange));
    return bus;
}

void iobus_free(IoBus *bus)
{
    if (!bus) {
        return;
    }
    g_array_unref(bus->ranges);
    g_rw_lock_clear(&bus->lock);
    g_free(bus->name);
    g_free(bus);
}

/* Index of the first range whose end lies above addr (the candidate to hold it). */
static guint lower_bound(const GArray *ranges, uint64_t addr)
{
    guint lo = 0, hi = ranges->len;

    while (lo < hi) {
        guint mid = lo + (hi - lo) / 2;
        const IoRange *r = &g_array_index(ranges, IoRange, mid);

        if (r->base + r->len - 1 < addr) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo;
}

bool iobus_register(IoBus *bus, uint64_t base, uint64_t len, const IoOps *ops,
                    void *opaque, GError **errp)
{
    IoRange r = { .base = base, .len = len, .ops = ops, .opaque = opaque };
    bool ok = false;
    guint i;

    if (!len || base + len - 1 < base) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "%s: invalid range 0x%" PRIx64 "+0x%" PRIx64, bus->name, base, len);
        return false;
    }
    g_rw_lock_writer_lock(&bus->lock);
    i = lower_bound(bus->ranges, base);
    if (i < bus->ranges->len &&
        g_array_index(bus->ranges, IoRange, i).base <= base + len - 1) {
        const IoRange *o = &g_array_index(bus->ranges, IoRange, i);

        g_set_error(errp, TERN_ERROR, TERN_ERR_BUSY,
                    "%s: range 0x%" PRIx64 "+0x%" PRIx64 " overlaps 0x%" PRIx64
                    "+0x%" PRIx64, bus->name, base, len, o->base, o->len);
    } else {
        g_array_insert_val(bus->ranges, i, r);
        ok = true;
    }
    g_rw_lock_writer_unlock(&bus->lock);
    return ok;
}

bool iobus_unregister(IoBus *bus, uint64_t base)
{
    bool found = false;
    guint i;

    g_rw_lock_writer_lock(&bus->lock);
    i = lower_bound(bus->ranges, base);
    if (i < bus->ranges->len && g_array_index(bus->ranges, IoRange, i).base == base) {
        g_array_remove_index(bus->ranges, i);
        found = true;
    }
    g_rw_lock_writer_unlock(&bus->lock);
    return found;
}

/* Copies the range holding [addr, addr+size) under the lock; false if none. */
static bool lookup(IoBus *bus, uint64_t addr, unsigned size, IoRange *out)
{
    bool found = false;
    guint i;

    g_rw_lock_reader_lock(&bus->lock);
    i = lower_bound(bus->ranges, addr);
    if (i < bus->ranges->len) {
        const IoRange *r = &g_array_index(bus->ranges, IoRange, i);

        if (addr >= r->base && addr - r->base + size <= r->len) {
            *out = *r;
            found = true;
        }
    }
    g_rw_lock_reader_unlock(&bus->lock);
    return found;
}

bool iobus_read(IoBus *bus, uint64_t addr, uint64_t *val, unsigned size)
{
    IoRange r;

    if (!lookup(bus, addr, size, &r) || !r.ops->read) {
        *val = size >= 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
        return false;
    }
    *val = r.ops->read(r.opaque, addr - r.base, size);
    return true;
}

bool iobus_write(IoBus *bus, uint64_t addr, uint64_t val, unsigned size)
{
    IoRange r;

    if (!lookup(bus, addr, size, &r)) {
        return false;
    }
    if (r.ops->write) {
        r.ops->write(r.opaque, addr - r.base, val, size);
    }
    return true;
}
