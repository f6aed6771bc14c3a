/*
 * The PVH ELF loader (target/i386/pvh.h). Reads ELF32 and ELF64 little-endian
 * x86 images; every header field is checked against the file size before it is
 * used, since the image is user input.
 */
#include <elf.h>
#include <string.h>

#include "target/i386/pvh.h"
#include "tern/error.h"

/* The two ELF classes reduced to what the loader needs. */
typedef struct ElfSeg {
    uint32_t type;
    uint64_t offset, paddr, filesz, memsz;
} ElfSeg;

typedef struct ElfImage {
    const uint8_t *data;
    size_t len;
    bool is64;
    uint64_t phoff;
    unsigned phnum, phentsize;
} ElfImage;

bool pvh_is_elf(const uint8_t *image, size_t len)
{
    return len >= SELFMAG && !memcmp(image, ELFMAG, SELFMAG);
}

static bool in_file(const ElfImage *e, uint64_t off, uint64_t len)
{
    return off <= e->len && len <= e->len - off;
}

static bool elf_open(ElfImage *e, const uint8_t *image, size_t len, GError **errp)
{
    e->data = image;
    e->len = len;
    if (!pvh_is_elf(image, len) || len < EI_NIDENT) {
        return tern_invalid(errp, "kernel ELF: not an ELF file");
    }
    if (image[EI_DATA] != ELFDATA2LSB) {
        return tern_invalid(errp, "kernel ELF: not little-endian");
    }
    e->is64 = image[EI_CLASS] == ELFCLASS64;
    if (e->is64 && len >= sizeof(Elf64_Ehdr)) {
        Elf64_Ehdr h;

        memcpy(&h, image, sizeof(h));
        if (h.e_machine != EM_X86_64 && h.e_machine != EM_386) {
            return tern_invalid(errp, "kernel ELF: not an x86 image");
        }
        e->phoff = h.e_phoff;
        e->phnum = h.e_phnum;
        e->phentsize = h.e_phentsize;
        if (e->phentsize != sizeof(Elf64_Phdr)) {
            return tern_invalid(errp, "kernel ELF: unexpected program header "
                                "size");
        }
    } else if (image[EI_CLASS] == ELFCLASS32 && len >= sizeof(Elf32_Ehdr)) {
        Elf32_Ehdr h;

        memcpy(&h, image, sizeof(h));
        if (h.e_machine != EM_386 && h.e_machine != EM_X86_64) {
            return tern_invalid(errp, "kernel ELF: not an x86 image");
        }
        e->phoff = h.e_phoff;
        e->phnum = h.e_phnum;
        e->phentsize = h.e_phentsize;
        if (e->phentsize != sizeof(Elf32_Phdr)) {
            return tern_invalid(errp, "kernel ELF: unexpected program header "
                                "size");
        }
    } else {
        return tern_invalid(errp, "kernel ELF: truncated header or unknown "
                            "class");
    }
    if (!e->phnum || !in_file(e, e->phoff, (uint64_t)e->phnum * e->phentsize)) {
        return tern_invalid(errp, "kernel ELF: program headers missing or "
                            "outside the file");
    }
    return true;
}

static ElfSeg elf_seg(const ElfImage *e, unsigned i)
{
    const uint8_t *p = e->data + e->phoff + (uint64_t)i * e->phentsize;
    ElfSeg s;

    if (e->is64) {
        Elf64_Phdr h;

        memcpy(&h, p, sizeof(h));
        s = (ElfSeg){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
    } else {
        Elf32_Phdr h;

        memcpy(&h, p, sizeof(h));
        s = (ElfSeg){ h.p_type, h.p_offset, h.p_paddr, h.p_filesz, h.p_memsz };
    }
    return s;
}

/* Walks the notes of one PT_NOTE segment for Xen's PHYS32_ENTRY. */
static bool find_entry_note(const ElfImage *e, const ElfSeg *s, uint32_t *entry)
{
    uint64_t off = s->offset, end = s->offset + s->filesz;

    while (end - off >= 12) {
        uint32_t hdr[3];   /* namesz, descsz, type */
        uint64_t name_len, desc_len;

        memcpy(hdr, e->data + off, sizeof(hdr));
        name_len = ALIGN_UP((uint64_t)hdr[0], 4);
        desc_len = ALIGN_UP((uint64_t)hdr[1], 4);
        if (name_len + desc_len > end - off - 12) {
            return false;
        }
        if (hdr[2] == XEN_ELFNOTE_PHYS32_ENTRY && hdr[0] == 4 &&
            !memcmp(e->data + off + 12, "Xen", 4) && hdr[1] >= 4) {
            memcpy(entry, e->data + off + 12 + name_len, 4);
            return true;
        }
        off += 12 + name_len + desc_len;
    }
    return false;
}

static bool load_segments(GuestMemory *mem, const ElfImage *e, PvhBootInfo *out,
                          GError **errp)
{
    bool have_entry = false, have_load = false;

    out->kernel_low = UINT64_MAX;
    out->kernel_end = 0;
    for (unsigned i = 0; i < e->phnum; i++) {
        ElfSeg s = elf_seg(e, i);
        uint8_t *dst;

        if (s.type == PT_NOTE && in_file(e, s.offset, s.filesz) && !have_entry) {
            have_entry = find_entry_note(e, &s, &out->entry);
        }
        if (s.type != PT_LOAD || !s.memsz) {
            continue;
        }
        if (s.filesz > s.memsz || !in_file(e, s.offset, s.filesz)) {
            return tern_invalid(errp, "kernel ELF: segment lies outside the "
                                "file");
        }
        dst = guest_mem_ptr(mem, s.paddr, s.memsz);
        if (!dst || s.paddr < PVH_INFO_ADDR + PVH_INFO_SIZE ||
            (s.paddr < PVH_CMDLINE_ADDR + PVH_CMDLINE_MAX &&
             s.paddr + s.memsz > PVH_CMDLINE_ADDR)) {
            g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                        "kernel ELF: segment at 0x%" PRIx64 "+0x%" PRIx64
                        " is not in guest RAM or overlaps the boot info at "
                        "0x6000/0x20000", s.paddr, s.memsz);
            return false;
        }
        memcpy(dst, e->data + s.offset, s.filesz);
        guest_mem_zero(mem, s.paddr + s.filesz, s.memsz - s.filesz, NULL);   /* in RAM: checked */
        out->kernel_low = MIN(out->kernel_low, s.paddr);
        out->kernel_end = MAX(out->kernel_end, s.paddr + s.memsz);
        have_load = true;
    }
    if (!have_load) {
        return tern_invalid(errp, "kernel ELF: no loadable segment");
    }
    if (!have_entry) {
        return tern_invalid(errp, "kernel ELF: no XEN_ELFNOTE_PHYS32_ENTRY "
                            "note: not a PVH kernel");
    }
    return true;
}

/* Highest page-aligned spot for the initrd in the RAM region that holds the
 * kernel's end, above the kernel and the command line. */
static bool place_initrd(GuestMemory *mem, size_t len, PvhBootInfo *out, GError **errp)
{
    uint64_t floor = MAX(out->kernel_end, PVH_CMDLINE_ADDR + PVH_CMDLINE_MAX);

    for (unsigned i = 0; i < mem->nr_regions; i++) {
        const GuestRegion *r = &mem->regions[i];
        uint64_t top = r->gpa + r->size;
        uint64_t lo = MAX(floor, r->gpa);

        if (r->gpa >= 4 * GiB || top <= lo || top - lo < len) {
            continue;
        }
        out->initrd_addr = ALIGN_DOWN(top - len, 4096);
        if (out->initrd_addr >= lo) {
            return true;
        }
    }
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                "initrd of %zu bytes does not fit in guest RAM below 4 GiB above "
                "the kernel (end 0x%" PRIx64 ")", len, out->kernel_end);
    return false;
}

static bool write_start_info(GuestMemory *mem, const char *cmdline, size_t initrd_len,
                             uint64_t rsdp, PvhBootInfo *out, GError **errp)
{
    HvmStartInfo si = {
        .magic = XEN_HVM_START_MAGIC, .version = 1, .rsdp_paddr = rsdp,
        .memmap_entries = mem->nr_e820,
    };
    uint64_t modlist = PVH_INFO_ADDR + sizeof(si);
    uint64_t memmap = modlist + sizeof(HvmModlistEntry);
    HvmMemmapEntry map[E820_MAX_ENTRIES];
    size_t cmd_len = cmdline ? strlen(cmdline) + 1 : 0;

    if (cmd_len > PVH_CMDLINE_MAX) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "kernel command line is longer than %" PRIu64 " bytes",
                    PVH_CMDLINE_MAX - 1);
        return false;
    }
    if (cmd_len) {
        si.cmdline_paddr = PVH_CMDLINE_ADDR;
        if (!guest_mem_write(mem, PVH_CMDLINE_ADDR, cmdline, cmd_len, errp)) {
            return false;
        }
    }
    if (initrd_len) {
        HvmModlistEntry m = { .paddr = out->initrd_addr, .size = initrd_len };

        si.nr_modules = 1;
        si.modlist_paddr = modlist;
        if (!guest_mem_write(mem, modlist, &m, sizeof(m), errp)) {
            return false;
        }
    }
    for (unsigned i = 0; i < mem->nr_e820; i++) {
        map[i] = (HvmMemmapEntry){ mem->e820[i].addr, mem->e820[i].size,
                                   mem->e820[i].type, 0 };
    }
    si.memmap_paddr = memmap;
    out->start_info = PVH_INFO_ADDR;
    return guest_mem_write(mem, memmap, map, mem->nr_e820 * sizeof(map[0]), errp) &&
           guest_mem_write(mem, PVH_INFO_ADDR, &si, sizeof(si), errp);
}

bool pvh_load(GuestMemory *mem, const uint8_t *image, size_t len,
              const uint8_t *initrd, size_t initrd_len, const char *cmdline,
              uint64_t rsdp, PvhBootInfo *out, GError **errp)
{
    ElfImage e;

    G_STATIC_ASSERT(sizeof(HvmStartInfo) + sizeof(HvmModlistEntry) +
                    E820_MAX_ENTRIES * sizeof(HvmMemmapEntry) <= PVH_INFO_SIZE);
    memset(out, 0, sizeof(*out));
    if (!elf_open(&e, image, len, errp) || !load_segments(mem, &e, out, errp)) {
        return false;
    }
    if (initrd_len) {
        if (!place_initrd(mem, initrd_len, out, errp) ||
            !guest_mem_write(mem, out->initrd_addr, initrd, initrd_len, errp)) {
            return false;
        }
    }
    return write_start_info(mem, cmdline, initrd_len, rsdp, out, errp);
}
