/*
 * Kernel loading for the virt machine: -kernel is a PVH ELF (started in
 * 32-bit protected mode with EBX = hvm_start_info) or a Linux bzImage
 * (started in 64-bit mode with RSI = boot_params), chosen by content.
 * Only the BSP is set up; the APs wait for INIT/SIPI as on real hardware.
 */
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>

#include "hw/i386/machine-internal.h"
#include "target/i386/bzimage.h"
#include "target/i386/cpu-state.h"
#include "target/i386/pvh.h"
#include "tern/error.h"

typedef struct BootFiles {
    gchar *kernel;
    gsize kernel_len;
    gchar *initrd;
    gsize initrd_len;
} BootFiles;

static void boot_files_clear(BootFiles *f)
{
    g_free(f->kernel);
    g_free(f->initrd);
}

static bool read_file(const char *what, const char *path, gchar **data, gsize *len,
                      GError **errp)
{
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents(path, data, len, &err)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "cannot read %s: %s",
                    what, err->message);
        return false;
    }
    return true;
}

static bool set_bsp_bzimage(Machine *m, const X86BootState *st, GError **errp)
{
    int fd = vcpu_fd(m->vcpus[0]);
    struct kvm_sregs sregs;
    struct kvm_regs regs = {
        .rip = st->rip, .rsi = st->rsi, .rsp = st->rsp, .rflags = st->rflags,
    };

    if (ioctl(fd, KVM_GET_SREGS, &sregs) < 0) {
        tern_set_error_errno(errp, errno, "KVM_GET_SREGS");
        return false;
    }
    sregs.cs = st->cs;
    sregs.ds = st->ds;
    sregs.es = st->es;
    sregs.fs = st->fs;
    sregs.gs = st->gs;
    sregs.ss = st->ss;
    sregs.tr = st->tr;
    sregs.ldt = st->ldt;
    sregs.gdt = st->gdt;
    sregs.idt = st->idt;
    sregs.cr0 = st->cr0;
    sregs.cr3 = st->cr3;
    sregs.cr4 = st->cr4;
    sregs.efer = st->efer;
    if (ioctl(fd, KVM_SET_SREGS, &sregs) < 0 || ioctl(fd, KVM_SET_REGS, &regs) < 0) {
        tern_set_error_errno(errp, errno, "setting the BSP's boot state");
        return false;
    }
    return true;
}

static bool boot_pvh(Machine *m, const BootFiles *f, GError **errp)
{
    PvhBootInfo info;

    return pvh_load(&m->mem, (const uint8_t *)f->kernel, f->kernel_len,
                    (const uint8_t *)f->initrd, f->initrd_len, m->cfg->append,
                    m->rsdp, &info, errp) &&
           x86_cpu_setup_pvh(vcpu_fd(m->vcpus[0]), info.entry, info.start_info, errp);
}

static bool boot_bzimage(Machine *m, const BootFiles *f, GError **errp)
{
    X86BootState st;

    return bzimage_load(&m->mem, (const uint8_t *)f->kernel, f->kernel_len,
                        (const uint8_t *)f->initrd, f->initrd_len, m->cfg->append,
                        &st, NULL, errp) &&
           set_bsp_bzimage(m, &st, errp);
}

bool machine_boot(Machine *m, GError **errp)
{
    const VmConfig *cfg = m->cfg;
    BootFiles f = { 0 };
    bool ok = false;

    if (!cfg->kernel) {
        if (g_hash_table_contains(cfg->lists, "incoming")) {
            return true;   /* the migration stream brings the whole state */
        }
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "no -kernel given: tern has no firmware and boots a PVH ELF or "
                    "a Linux bzImage directly");
        return false;
    }
    if (cfg->initrd && !cfg->kernel) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "-initrd needs -kernel");
        return false;
    }
    if (!read_file("kernel", cfg->kernel, &f.kernel, &f.kernel_len, errp) ||
        (cfg->initrd && !read_file("initrd", cfg->initrd, &f.initrd, &f.initrd_len, errp))) {
        goto out;
    }
    if (pvh_is_elf((const uint8_t *)f.kernel, f.kernel_len)) {
        ok = boot_pvh(m, &f, errp);
    } else if (f.kernel_len >= BZ_HDR_MAGIC + 4 &&
               !memcmp(f.kernel + BZ_HDR_MAGIC, "HdrS", 4)) {
        ok = boot_bzimage(m, &f, errp);
    } else {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "kernel '%s' is neither a PVH ELF nor a Linux bzImage", cfg->kernel);
    }
    if (!ok) {
        g_prefix_error(errp, "%s: ", cfg->kernel);
    }
out:
    boot_files_clear(&f);
    return ok;
}
