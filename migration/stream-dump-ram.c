/*
 * The stream inspector's reader for QEMU's RAM section (idstr "ram",
 * version 4). Every record starts with a be64 holding a guest-page-aligned
 * offset in its low bits' place and flags in the low 12 bits:
 *   0x04 MEM_SIZE  offset field = total bytes; then per block: u8 len,
 *                  idstr, be64 length (+ be64 address with x-ignore-shared)
 *   0x02 ZERO      [u8 len, idstr unless CONTINUE] u8 fill byte
 *   0x08 PAGE      [idstr unless CONTINUE] 4096 bytes
 *   0x40 XBZRLE    [idstr] u8 0x01, be16 len, len bytes
 *   0x100 COMPRESS_PAGE [idstr] be32 len, len bytes
 *   0x200 MULTIFD_FLUSH (no payload)
 *   0x10 EOS       ends the section's data
 *   0x20 CONTINUE  same block as the previous page
 * 0x01 (the old FULL flag) and 0x80 (RDMA hook) are refused.
 */
#include <string.h>

#include "stream-dump-int.h"

#define RAM_PAGE_SIZE       4096
#define RAM_FLAG_FULL       0x01
#define RAM_FLAG_ZERO       0x02
#define RAM_FLAG_MEM_SIZE   0x04
#define RAM_FLAG_PAGE       0x08
#define RAM_FLAG_EOS        0x10
#define RAM_FLAG_CONTINUE   0x20
#define RAM_FLAG_XBZRLE     0x40
#define RAM_FLAG_HOOK       0x80
#define RAM_FLAG_COMPRESS   0x100
#define RAM_FLAG_MULTIFD_FLUSH 0x200
#define RAM_FLAG_KNOWN      0x3ff

void dump_ram_free(DumpRam *ram)
{
    if (ram->blocks) {
        g_array_free(ram->blocks, TRUE);
        ram->blocks = NULL;
    }
}

static DumpRamBlock *ram_blocks(StreamDump *d, size_t *n)
{
    if (!d->ram.blocks) {
        d->ram.blocks = g_array_new(FALSE, TRUE, sizeof(DumpRamBlock));
        d->ram.last_block = -1;
    }
    *n = d->ram.blocks->len;
    return (DumpRamBlock *)d->ram.blocks->data;
}

static bool read_mem_size(StreamDump *d, QEMUFile *f, uint64_t total,
                          GError **errp)
{
    uint64_t sum = 0;
    size_t n;

    ram_blocks(d, &n);
    if (n) {
        return dump_fail(errp, f, "ram: second MEM_SIZE record");
    }
    g_string_append_printf(d->out, "  ram: MEM_SIZE total %" PRIu64 "\n",
                           total);
    while (sum < total) {
        DumpRamBlock b = { 0 };

        qemu_get_counted_string(f, b.idstr);
        b.length = qemu_get_be64(f);
        if (d->ignore_shared) {
            qemu_get_be64(f);
        }
        if (qemu_file_get_error(f)) {
            return dump_fail(errp, f, "ram: truncated block list");
        }
        if (!b.length || b.length > total - sum) {
            return dump_fail(errp, f, "ram: block '%s' length %" PRIu64
                             " does not fit the total %" PRIu64, b.idstr,
                             b.length, total);
        }
        sum += b.length;
        g_array_append_val(d->ram.blocks, b);
        g_string_append_printf(d->out, "  ram: block '%s' length %" PRIu64
                               "\n", b.idstr, b.length);
    }
    return true;
}

/* Which block a page record is in: named, or the previous one. */
static DumpRamBlock *page_block(StreamDump *d, QEMUFile *f, uint32_t flags,
                                uint64_t addr, GError **errp)
{
    size_t n;
    DumpRamBlock *blocks = ram_blocks(d, &n);
    char idstr[256];
    DumpRamBlock *b = NULL;

    if (flags & RAM_FLAG_CONTINUE) {
        if (d->ram.last_block < 0) {
            dump_fail(errp, f, "ram: CONTINUE page before any named block");
            return NULL;
        }
        b = &blocks[d->ram.last_block];
    } else {
        qemu_get_counted_string(f, idstr);
        for (size_t i = 0; i < n; i++) {
            if (!strcmp(blocks[i].idstr, idstr)) {
                b = &blocks[i];
                d->ram.last_block = i;
            }
        }
        if (!b) {
            dump_fail(errp, f, "ram: page for unknown block '%s'", idstr);
            return NULL;
        }
    }
    if (addr >= b->length) {
        dump_fail(errp, f, "ram: page offset 0x%" PRIx64 " beyond block '%s'"
                  " of %" PRIu64 " bytes", addr, b->idstr, b->length);
        return NULL;
    }
    return b;
}

static bool read_page(StreamDump *d, QEMUFile *f, uint32_t flags,
                      uint64_t addr, GError **errp)
{
    uint32_t len;

    if (!page_block(d, f, flags, addr, errp)) {
        return false;
    }
    if (flags & RAM_FLAG_ZERO) {
        uint8_t fill = qemu_get_byte(f);

        if (fill != 0 && !qemu_file_get_error(f)) {
            return dump_fail(errp, f, "ram: zero page with fill byte 0x%02x",
                             fill);
        }
        d->ram.zero++;
    } else if (flags & RAM_FLAG_PAGE) {
        qemu_file_skip(f, RAM_PAGE_SIZE);
        d->ram.normal++;
    } else if (flags & RAM_FLAG_XBZRLE) {
        if (qemu_get_byte(f) != 0x01 && !qemu_file_get_error(f)) {
            return dump_fail(errp, f, "ram: unknown XBZRLE encoding");
        }
        len = qemu_get_be16(f);
        if (len > RAM_PAGE_SIZE) {
            return dump_fail(errp, f, "ram: XBZRLE data of %u bytes", len);
        }
        qemu_file_skip(f, len);
        d->ram.xbzrle++;
    } else {
        len = qemu_get_be32(f);
        if (len > 2 * RAM_PAGE_SIZE) {
            return dump_fail(errp, f, "ram: compressed page of %u bytes", len);
        }
        qemu_file_skip(f, len);
        d->ram.compressed++;
    }
    return true;
}

/* Exactly one page kind per record (plus CONTINUE). */
static bool page_kind_ok(uint32_t flags)
{
    uint32_t kinds = flags & (RAM_FLAG_ZERO | RAM_FLAG_PAGE | RAM_FLAG_XBZRLE |
                              RAM_FLAG_COMPRESS);

    return kinds && !(kinds & (kinds - 1)) &&
           !(flags & (RAM_FLAG_MEM_SIZE | RAM_FLAG_EOS | RAM_FLAG_MULTIFD_FLUSH));
}

static bool read_record(StreamDump *d, QEMUFile *f, bool *eos, GError **errp)
{
    uint64_t v = qemu_get_be64(f);
    uint32_t flags = v & (RAM_PAGE_SIZE - 1);
    uint64_t addr = v & ~(uint64_t)(RAM_PAGE_SIZE - 1);

    if (qemu_file_get_error(f)) {
        return dump_fail(errp, f, "ram: truncated record");
    }
    if (flags & (RAM_FLAG_FULL | RAM_FLAG_HOOK | ~RAM_FLAG_KNOWN)) {
        return dump_fail(errp, f, "ram: unsupported record flags 0x%x", flags);
    }
    if (flags == RAM_FLAG_EOS) {
        *eos = true;
        return true;
    }
    if (flags == RAM_FLAG_MULTIFD_FLUSH) {
        return true;
    }
    if (flags == RAM_FLAG_MEM_SIZE) {
        return read_mem_size(d, f, addr, errp);
    }
    if (!page_kind_ok(flags)) {
        return dump_fail(errp, f, "ram: inconsistent record flags 0x%x", flags);
    }
    return read_page(d, f, flags, addr, errp);
}

bool dump_ram_section(StreamDump *d, QEMUFile *f, bool start, GError **errp)
{
    bool eos = false;
    size_t n;

    ram_blocks(d, &n);
    if (!start && !n) {
        return dump_fail(errp, f, "ram: pages before the MEM_SIZE record");
    }
    while (!eos) {
        if (!read_record(d, f, &eos, errp)) {
            return false;
        }
        if (qemu_file_get_error(f)) {
            return dump_fail(errp, f, "ram: truncated page data");
        }
    }
    return true;
}

void dump_ram_summary(StreamDump *d)
{
    size_t n;

    ram_blocks(d, &n);
    if (!n) {
        return;
    }
    g_string_append_printf(d->out, "ram: %zu block(s), pages: zero %" PRIu64
                           ", normal %" PRIu64 ", xbzrle %" PRIu64
                           ", compressed %" PRIu64 "\n", n, d->ram.zero,
                           d->ram.normal, d->ram.xbzrle, d->ram.compressed);
}
