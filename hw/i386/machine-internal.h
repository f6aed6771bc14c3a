/*
 * What the machine's own files share (machine.c, machine-boot.c,
 * machine-devices.c); nothing outside hw/i386/machine*.c includes this.
 */
#ifndef HW_I386_MACHINE_INTERNAL_H
#define HW_I386_MACHINE_INTERNAL_H

#include "hw/i386/machine.h"

/* Serial port, platform devices, -device instances, firmware tables. */
bool machine_devices_init(Machine *m, GError **errp);
void machine_devices_free(Machine *m);
/* Frees the drives, then the block nodes under them (NULL sets are fine). */
void machine_close_block(Machine *m);
/* Loads -kernel/-initrd/-append and points the BSP at the entry. */
bool machine_boot(Machine *m, GError **errp);

#endif
