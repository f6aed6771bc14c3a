/*
 * A small encoder for ACPI Machine Language (ACPI 6.x, chapter 20): enough to
 * write a DSDT with scopes, devices, named integers/strings/EISA IDs, packages
 * and resource templates. A node is built bottom-up: create it, append its
 * children (aml_append takes ownership and serializes the child), then append
 * it to its parent. PkgLength fields are computed when a node is serialized.
 *
 *   Aml *dev = aml_device("COM1");
 *   aml_append(dev, aml_name_decl("_HID", aml_eisaid("PNP0501")));
 *   Aml *crs = aml_resource_template();
 *   aml_append(crs, aml_io16(0x3f8, 8));
 *   aml_append(dev, aml_name_decl("_CRS", crs));
 *   aml_append(scope, dev);
 */
#ifndef HW_I386_AML_BUILD_H
#define HW_I386_AML_BUILD_H

#include "tern/common.h"

typedef struct Aml Aml;

/* Containers. */
Aml *aml_body(void);                       /* a plain term list (table body) */
Aml *aml_scope(const char *path);
Aml *aml_device(const char *name);
Aml *aml_package(void);                    /* at most 255 elements */
Aml *aml_resource_template(void);          /* a Buffer of descriptors */

/* Terms. */
Aml *aml_name_decl(const char *name, Aml *value);
Aml *aml_int(uint64_t v);
Aml *aml_zero(void);
Aml *aml_string(const char *s);
Aml *aml_eisaid(const char *id);           /* "PNP0A03" */

/* Resource descriptors (append to a resource template only). */
Aml *aml_io16(uint16_t base, uint8_t len);
Aml *aml_irq_noflags(uint8_t irq);
Aml *aml_word_bus_number(uint16_t min, uint16_t max);
Aml *aml_word_io(uint16_t min, uint16_t max);
Aml *aml_dword_memory(uint32_t min, uint32_t max, bool prefetchable);
Aml *aml_qword_memory(uint64_t min, uint64_t max, bool prefetchable);
Aml *aml_memory32_fixed(uint32_t base, uint32_t len);

/* Serializes child into parent and frees child. */
void aml_append(Aml *parent, Aml *child);
/* Serializes a node into its final bytes and frees it. */
GByteArray *aml_serialize(Aml *node);
void aml_free(Aml *node);

/* Helpers shared with the table builders. */
void aml_put_pkglength(GByteArray *out, size_t content_len);
void aml_put_namestring(GByteArray *out, const char *path);

#endif
