/*
 * Shared between the ACPI table builders in hw/i386/acpi-*.c: a little-endian
 * byte writer and the standard table header. Not for use outside hw/i386.
 */
#ifndef HW_I386_ACPI_INTERNAL_H
#define HW_I386_ACPI_INTERNAL_H

#include "hw/i386/acpi-build.h"

#define ACPI_HEADER_LEN 36

void acpi_put(GByteArray *b, uint64_t v, unsigned bytes);
void acpi_put_bytes(GByteArray *b, const void *p, size_t len);
/* Starts a table: header with signature and revision, length/checksum 0. */
GByteArray *acpi_table_begin(const char *sig, uint8_t revision);
/* Sets the length and checksum fields. */
void acpi_table_end(GByteArray *t);
/* Generic Address Structure in system I/O space. */
void acpi_put_gas_io(GByteArray *b, uint8_t bit_width, uint8_t access_size,
                     uint64_t port);
/* The DSDT for cfg (header included, checksummed). */
GByteArray *acpi_build_dsdt(const AcpiConfig *cfg);

#endif
