/*
 * Linux bzImage loading with the 64-bit boot protocol (see
 * Documentation/x86/boot.rst): the image is a real-mode setup part of
 * (setup_sects + 1) sectors followed by the protected-mode kernel, whose first
 * 0x200 bytes lead to startup_64. We never run the setup code: we copy its
 * header into boot_params ourselves and enter the kernel in long mode, so the
 * header checks here are all that stands between a garbage file and the guest.
 */
#include <string.h>

#include "target/i386/bzimage.h"
#include "tern/error.h"

#define BZ_SECTOR            512
#define BZ_MIN_VERSION       0x0206   /* cmdline_size exists from 2.06 */
#define BZ_PREF_ADDR_VERSION 0x020a   /* pref_address, init_size */
#define BZ_ENTRY64_OFFSET    0x200
#define BZ_INITRD_ALIGN      4096
#define BZ_E820_MAX          128

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t get32(const uint8_t *p)
{
    return get16(p) | ((uint32_t)get16(p + 2) << 16);
}

static uint64_t get64(const uint8_t *p)
{
    return get32(p) | ((uint64_t)get32(p + 4) << 32);
}

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = v & 0xff;
    p[1] = v >> 8;
}

static void put32(uint8_t *p, uint32_t v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static bool bz_error(GError **errp, const char *msg)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "kernel: %s", msg);
    return false;
}

/* Size of the setup header copied into boot_params: up to the end named by
 * the jump instruction at 0x200 (its second byte is the offset from 0x202). */
static size_t setup_header_end(const uint8_t *image)
{
    return 0x202 + image[BZ_HDR_JUMP + 1];
}

bool bzimage_probe(const uint8_t *image, size_t len, BzImageInfo *info,
                   GError **errp)
{
    memset(info, 0, sizeof(*info));
    if (len < BZ_HDR_INIT_SIZE + 4 + BZ_SECTOR ||
        get32(image + BZ_HDR_MAGIC) != 0x53726448 /* "HdrS" */ ||
        get16(image + BZ_HDR_BOOT_FLAG) != 0xaa55) {
        return bz_error(errp, "not a Linux bzImage (no \"HdrS\" setup header)");
    }
    info->version = get16(image + BZ_HDR_VERSION);
    if (info->version < BZ_MIN_VERSION) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "kernel: boot protocol %u.%02u is too old (need 2.06)",
                    info->version >> 8, info->version & 0xff);
        return false;
    }
    info->setup_sects = image[BZ_HDR_SETUP_SECTS] ? image[BZ_HDR_SETUP_SECTS] : 4;
    info->setup_size = ((uint64_t)info->setup_sects + 1) * BZ_SECTOR;
    info->loadflags = image[BZ_HDR_LOADFLAGS];
    info->xloadflags = get16(image + BZ_HDR_XLOADFLAGS);
    info->relocatable = image[BZ_HDR_RELOCATABLE] != 0;
    info->kernel_alignment = get32(image + BZ_HDR_KERNEL_ALIGNMENT);
    info->cmdline_size = get32(image + BZ_HDR_CMDLINE_SIZE);
    info->initrd_addr_max = get32(image + BZ_HDR_INITRD_ADDR_MAX);
    if (info->version >= BZ_PREF_ADDR_VERSION) {
        info->pref_address = get64(image + BZ_HDR_PREF_ADDRESS);
        info->init_size = get32(image + BZ_HDR_INIT_SIZE);
    }
    if (!(info->loadflags & BZ_LOADED_HIGH)) {
        return bz_error(errp, "zImage (not LOADED_HIGH) is not supported");
    }
    if (!(info->xloadflags & BZ_XLF_KERNEL_64)) {
        return bz_error(errp, "kernel has no 64-bit entry point (XLF_KERNEL_64)");
    }
    if (setup_header_end(image) > BZ_BP_E820_TABLE ||
        setup_header_end(image) < BZ_HDR_CMDLINE_SIZE + 4) {
        return bz_error(errp, "setup header has an impossible length");
    }
    if (info->setup_size >= len) {
        return bz_error(errp, "image is truncated (no protected-mode kernel)");
    }
    info->kernel_size = len - info->setup_size;
    if (info->kernel_size <= BZ_ENTRY64_OFFSET) {
        return bz_error(errp, "protected-mode kernel is truncated");
    }
    if (info->kernel_alignment & (info->kernel_alignment - 1)) {
        return bz_error(errp, "kernel_alignment is not a power of two");
    }
    return true;
}

/* Top of the RAM that starts at 1 MiB and is contiguous (below the PCI hole). */
static uint64_t low_ram_top(const GuestMemory *mem)
{
    uint64_t top = 0;

    for (unsigned i = 0; i < mem->nr_e820; i++) {
        const E820Entry *e = &mem->e820[i];

        if (e->type == E820_RAM && e->addr <= BZ_KERNEL_ADDR &&
            e->addr + e->size > BZ_KERNEL_ADDR) {
            top = e->addr + e->size;
        }
    }
    return top;
}

/* The decompressor works in [load, load + init_size) and, when it relocates
 * itself, up to pref_address + init_size: all of it must be RAM, and the
 * initrd must stay above it. */
static uint64_t kernel_footprint_end(const BzImageInfo *info, uint64_t load)
{
    uint64_t need = MAX((uint64_t)info->init_size, info->kernel_size);
    uint64_t end = load + need;

    if (info->pref_address > load) {
        end = MAX(end, info->pref_address + need);
    }
    return end;
}

/* Where the protected-mode kernel goes: pref_address when the kernel is
 * relocatable and its whole init_size fits there, else 1 MiB. */
static bool choose_kernel_addr(const BzImageInfo *info, uint64_t ram_top,
                               uint64_t *addr, GError **errp)
{
    uint64_t pref = info->pref_address;

    if (info->relocatable && pref >= BZ_KERNEL_ADDR && pref < ram_top &&
        IS_ALIGNED(pref, MAX(info->kernel_alignment, 1u)) &&
        kernel_footprint_end(info, pref) <= ram_top) {
        *addr = pref;
        return true;
    }
    if (info->pref_address > (1ULL << 40) ||
        kernel_footprint_end(info, BZ_KERNEL_ADDR) > ram_top) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "kernel: needs 0x%" PRIx64 " bytes of RAM from 1 MiB up "
                    "but RAM below the PCI hole ends at 0x%" PRIx64,
                    kernel_footprint_end(info, BZ_KERNEL_ADDR) - BZ_KERNEL_ADDR,
                    ram_top);
        return false;
    }
    *addr = BZ_KERNEL_ADDR;
    return true;
}

static bool place_initrd(const BzImageInfo *info, uint64_t ram_top,
                         uint64_t kernel_end, size_t initrd_len,
                         uint64_t *addr, GError **errp)
{
    uint64_t max = info->initrd_addr_max ? info->initrd_addr_max : 0x37ffffff;
    uint64_t limit = MIN(max + 1, ram_top);

    if (initrd_len > limit || ALIGN_DOWN(limit - initrd_len, BZ_INITRD_ALIGN) <
                              ALIGN_UP(kernel_end, BZ_INITRD_ALIGN)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "initrd: %zu bytes do not fit between the kernel (ends at "
                    "0x%" PRIx64 ") and 0x%" PRIx64, initrd_len, kernel_end, limit);
        return false;
    }
    *addr = ALIGN_DOWN(limit - initrd_len, BZ_INITRD_ALIGN);
    return true;
}

static void fill_e820(uint8_t *bp, const GuestMemory *mem)
{
    unsigned n = MIN(mem->nr_e820, BZ_E820_MAX);

    for (unsigned i = 0; i < n; i++) {
        uint8_t *e = bp + BZ_BP_E820_TABLE + i * 20;

        put64(e, mem->e820[i].addr);
        put64(e + 8, mem->e820[i].size);
        put32(e + 16, mem->e820[i].type);
    }
    bp[BZ_BP_E820_ENTRIES] = (uint8_t)n;
}

static void fill_boot_params(uint8_t *bp, const uint8_t *image,
                             const GuestMemory *mem, const BzImageLayout *l)
{
    memset(bp, 0, BZ_BP_SIZE);
    memcpy(bp + BZ_HDR_SETUP_SECTS, image + BZ_HDR_SETUP_SECTS,
           setup_header_end(image) - BZ_HDR_SETUP_SECTS);
    put16(bp + BZ_HDR_VID_MODE, 0xffff);          /* "normal" */
    bp[BZ_HDR_TYPE_OF_LOADER] = 0xff;             /* undefined boot loader */
    bp[BZ_HDR_LOADFLAGS] |= BZ_CAN_USE_HEAP;
    put16(bp + BZ_HDR_HEAP_END_PTR, 0xfe00);
    put32(bp + BZ_HDR_CODE32_START, (uint32_t)l->kernel_addr);
    put32(bp + BZ_HDR_CMD_LINE_PTR, (uint32_t)l->cmdline);
    put32(bp + BZ_BP_EXT_CMD_LINE_PTR, (uint32_t)(l->cmdline >> 32));
    put32(bp + BZ_HDR_RAMDISK_IMAGE, (uint32_t)l->initrd_addr);
    put32(bp + BZ_HDR_RAMDISK_SIZE, (uint32_t)l->initrd_size);
    put32(bp + BZ_BP_EXT_RAMDISK_IMAGE, (uint32_t)(l->initrd_addr >> 32));
    put32(bp + BZ_BP_EXT_RAMDISK_SIZE, (uint32_t)(l->initrd_size >> 32));
    fill_e820(bp, mem);
}

static bool write_cmdline(GuestMemory *mem, const BzImageInfo *info,
                          const char *cmdline, GError **errp)
{
    size_t len = cmdline ? strlen(cmdline) : 0;
    size_t max = MIN((size_t)info->cmdline_size, (size_t)BZ_CMDLINE_MAX - 1);

    if (len > max) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "kernel command line is %zu bytes, the kernel takes %zu",
                    len, max);
        return false;
    }
    return guest_mem_write(mem, BZ_CMDLINE_ADDR, cmdline ? cmdline : "", len, errp) &&
           guest_mem_write(mem, BZ_CMDLINE_ADDR + len, "", 1, errp);
}

bool bzimage_load(GuestMemory *mem, const uint8_t *image, size_t len,
                  const uint8_t *initrd, size_t initrd_len, const char *cmdline,
                  X86BootState *st, BzImageLayout *layout, GError **errp)
{
    BzImageInfo info;
    BzImageLayout l = { .boot_params = BZ_BOOT_PARAMS_ADDR,
                        .cmdline = BZ_CMDLINE_ADDR };
    uint64_t top = low_ram_top(mem);
    g_autofree uint8_t *bp = g_malloc(BZ_BP_SIZE);

    if (!bzimage_probe(image, len, &info, errp)) {
        return false;
    }
    if (top <= BZ_KERNEL_ADDR) {
        return bz_error(errp, "no RAM at 1 MiB in the e820 map");
    }
    if (!choose_kernel_addr(&info, top, &l.kernel_addr, errp)) {
        return false;
    }
    l.entry = l.kernel_addr + BZ_ENTRY64_OFFSET;
    if (initrd && initrd_len) {
        l.initrd_size = initrd_len;
        if (!place_initrd(&info, top, kernel_footprint_end(&info, l.kernel_addr),
                          initrd_len, &l.initrd_addr, errp) ||
            !guest_mem_write(mem, l.initrd_addr, initrd, initrd_len, errp)) {
            return false;
        }
    }
    fill_boot_params(bp, image, mem, &l);
    if (!guest_mem_write(mem, l.kernel_addr, image + info.setup_size,
                         info.kernel_size, errp) ||
        !write_cmdline(mem, &info, cmdline, errp) ||
        !guest_mem_write(mem, BZ_BOOT_PARAMS_ADDR, bp, BZ_BP_SIZE, errp) ||
        !x86_write_flat64_tables(mem, st, errp)) {
        return false;
    }
    st->rip = l.entry;
    st->rsi = BZ_BOOT_PARAMS_ADDR;
    if (layout) {
        *layout = l;
    }
    return true;
}
