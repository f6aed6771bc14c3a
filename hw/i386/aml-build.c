/*
 * ACPI Machine Language encoding (ACPI 6.x chapter 20). Every node keeps its
 * opcode and its already-encoded content; serializing a node emits
 * opcode + PkgLength(content) + content for the length-prefixed kinds, or the
 * content alone for plain terms. Packages count their elements, and resource
 * templates prepend their BufferSize and append the end tag when serialized.
 */
#include <string.h>

#include "hw/i386/aml-build.h"

#define AML_ZERO_OP        0x00
#define AML_ONE_OP         0x01
#define AML_NAME_OP        0x08
#define AML_BYTE_PREFIX    0x0a
#define AML_WORD_PREFIX    0x0b
#define AML_DWORD_PREFIX   0x0c
#define AML_STRING_PREFIX  0x0d
#define AML_QWORD_PREFIX   0x0e
#define AML_SCOPE_OP       0x10
#define AML_BUFFER_OP      0x11
#define AML_PACKAGE_OP     0x12
#define AML_EXT_PREFIX     0x5b
#define AML_DEVICE_OP      0x82   /* after AML_EXT_PREFIX */
#define AML_ROOT_CHAR      '\\'
#define AML_PARENT_CHAR    '^'
#define AML_DUAL_NAME      0x2e
#define AML_MULTI_NAME     0x2f

typedef enum AmlKind {
    AML_KIND_TERM,        /* content only */
    AML_KIND_BLOCK,       /* op + PkgLength + content (name included) */
    AML_KIND_PACKAGE,     /* op + PkgLength + NumElements + content */
    AML_KIND_RESOURCES,   /* Buffer: op + PkgLength + size + content + end tag */
} AmlKind;

struct Aml {
    AmlKind kind;
    uint8_t op[2];
    unsigned oplen;
    unsigned count;       /* package elements */
    GByteArray *buf;
};

static Aml *aml_new(AmlKind kind)
{
    Aml *a = g_new0(Aml, 1);

    a->kind = kind;
    a->buf = g_byte_array_new();
    return a;
}

static void put8(GByteArray *b, uint8_t v)
{
    g_byte_array_append(b, &v, 1);
}

static void put_le(GByteArray *b, uint64_t v, unsigned bytes)
{
    for (unsigned i = 0; i < bytes; i++) {
        put8(b, (uint8_t)(v >> (8 * i)));
    }
}

void aml_free(Aml *node)
{
    if (node) {
        g_byte_array_unref(node->buf);
        g_free(node);
    }
}

/* PkgLength counts its own bytes: one byte holds up to 63, then a lead byte
 * with the byte count in bits 7:6 and the low nibble, plus 1-3 more bytes. */
void aml_put_pkglength(GByteArray *out, size_t content_len)
{
    size_t total;
    unsigned extra;

    if (content_len + 1 <= 0x3f) {
        put8(out, (uint8_t)(content_len + 1));
        return;
    }
    for (extra = 1; extra <= 3; extra++) {
        total = content_len + 1 + extra;
        if (total < (1ULL << (4 + 8 * extra))) {
            break;
        }
    }
    g_assert(extra <= 3);   /* 256 MiB of AML: a builder bug, not input */
    put8(out, (uint8_t)((extra << 6) | (total & 0xf)));
    put_le(out, total >> 4, extra);
}

static void put_nameseg(GByteArray *out, const char *seg, size_t len)
{
    char s[4] = { '_', '_', '_', '_' };

    g_assert(len >= 1 && len <= 4);
    memcpy(s, seg, len);
    g_byte_array_append(out, (const uint8_t *)s, 4);
}

void aml_put_namestring(GByteArray *out, const char *path)
{
    g_auto(GStrv) segs = NULL;
    unsigned n;

    while (*path == AML_ROOT_CHAR || *path == AML_PARENT_CHAR) {
        put8(out, (uint8_t)*path++);
    }
    if (!*path) {
        put8(out, AML_ZERO_OP);          /* NullName */
        return;
    }
    segs = g_strsplit(path, ".", -1);
    n = g_strv_length(segs);
    if (n == 2) {
        put8(out, AML_DUAL_NAME);
    } else if (n > 2) {
        put8(out, AML_MULTI_NAME);
        put8(out, (uint8_t)n);
    }
    for (unsigned i = 0; i < n; i++) {
        put_nameseg(out, segs[i], strlen(segs[i]));
    }
}

Aml *aml_body(void)
{
    return aml_new(AML_KIND_TERM);
}

Aml *aml_scope(const char *path)
{
    Aml *a = aml_new(AML_KIND_BLOCK);

    a->op[0] = AML_SCOPE_OP;
    a->oplen = 1;
    aml_put_namestring(a->buf, path);
    return a;
}

Aml *aml_device(const char *name)
{
    Aml *a = aml_new(AML_KIND_BLOCK);

    a->op[0] = AML_EXT_PREFIX;
    a->op[1] = AML_DEVICE_OP;
    a->oplen = 2;
    aml_put_namestring(a->buf, name);
    return a;
}

Aml *aml_package(void)
{
    Aml *a = aml_new(AML_KIND_PACKAGE);

    a->op[0] = AML_PACKAGE_OP;
    a->oplen = 1;
    return a;
}

Aml *aml_resource_template(void)
{
    Aml *a = aml_new(AML_KIND_RESOURCES);

    a->op[0] = AML_BUFFER_OP;
    a->oplen = 1;
    return a;
}

Aml *aml_name_decl(const char *name, Aml *value)
{
    Aml *a = aml_new(AML_KIND_TERM);

    put8(a->buf, AML_NAME_OP);
    aml_put_namestring(a->buf, name);
    aml_append(a, value);
    return a;
}

static void put_int(GByteArray *b, uint64_t v)
{
    if (v == 0 || v == 1) {
        put8(b, v ? AML_ONE_OP : AML_ZERO_OP);
    } else if (v <= 0xff) {
        put8(b, AML_BYTE_PREFIX);
        put_le(b, v, 1);
    } else if (v <= 0xffff) {
        put8(b, AML_WORD_PREFIX);
        put_le(b, v, 2);
    } else if (v <= 0xffffffff) {
        put8(b, AML_DWORD_PREFIX);
        put_le(b, v, 4);
    } else {
        put8(b, AML_QWORD_PREFIX);
        put_le(b, v, 8);
    }
}

Aml *aml_int(uint64_t v)
{
    Aml *a = aml_new(AML_KIND_TERM);

    put_int(a->buf, v);
    return a;
}

Aml *aml_zero(void)
{
    return aml_int(0);
}

Aml *aml_string(const char *s)
{
    Aml *a = aml_new(AML_KIND_TERM);

    put8(a->buf, AML_STRING_PREFIX);
    g_byte_array_append(a->buf, (const uint8_t *)s, strlen(s) + 1);
    return a;
}

/* EISA ID: three letters of 5 bits each then four hex digits, stored as the
 * bytes of a big-endian 32-bit value inside a DWord constant. */
Aml *aml_eisaid(const char *id)
{
    Aml *a = aml_new(AML_KIND_TERM);
    uint16_t vendor;
    uint16_t product;

    g_assert(strlen(id) == 7);
    vendor = (uint16_t)(((id[0] - 0x40) & 0x1f) << 10 |
                        ((id[1] - 0x40) & 0x1f) << 5 | ((id[2] - 0x40) & 0x1f));
    product = (uint16_t)g_ascii_strtoull(id + 3, NULL, 16);
    put8(a->buf, AML_DWORD_PREFIX);
    put8(a->buf, vendor >> 8);
    put8(a->buf, vendor & 0xff);
    put8(a->buf, product >> 8);
    put8(a->buf, product & 0xff);
    return a;
}

static Aml *resource(const uint8_t *bytes, size_t len)
{
    Aml *a = aml_new(AML_KIND_TERM);

    g_byte_array_append(a->buf, bytes, (guint)len);
    return a;
}

Aml *aml_io16(uint16_t base, uint8_t len)
{
    const uint8_t d[8] = { 0x47, 0x01, base & 0xff, base >> 8,
                           base & 0xff, base >> 8, 0x01, len };

    return resource(d, sizeof(d));
}

Aml *aml_irq_noflags(uint8_t irq)
{
    uint16_t mask = (uint16_t)(1u << (irq & 15));
    const uint8_t d[3] = { 0x22, mask & 0xff, mask >> 8 };

    return resource(d, sizeof(d));
}

/* Address space descriptors (6.4.3.5): producer, min and max fixed,
 * positive decode. 'width' is 2, 4 or 8 bytes per field. */
static Aml *address_space(uint8_t tag, unsigned width, uint8_t type,
                          uint8_t type_flags, uint64_t min, uint64_t max)
{
    Aml *a = aml_new(AML_KIND_TERM);
    unsigned body = 3 + 5 * width;

    put8(a->buf, tag);
    put_le(a->buf, body, 2);
    put8(a->buf, type);
    put8(a->buf, 0x0c);            /* MaxFixed | MinFixed, producer */
    put8(a->buf, type_flags);
    put_le(a->buf, 0, width);      /* granularity */
    put_le(a->buf, min, width);
    put_le(a->buf, max, width);
    put_le(a->buf, 0, width);      /* translation offset */
    put_le(a->buf, max - min + 1, width);
    return a;
}

Aml *aml_word_bus_number(uint16_t min, uint16_t max)
{
    return address_space(0x88, 2, 2, 0, min, max);
}

Aml *aml_word_io(uint16_t min, uint16_t max)
{
    return address_space(0x88, 2, 1, 0x03 /* EntireRange */, min, max);
}

/* Memory type flags: read/write, and non-cacheable or prefetchable. */
static uint8_t mem_flags(bool prefetchable)
{
    return prefetchable ? 0x07 : 0x01;
}

Aml *aml_dword_memory(uint32_t min, uint32_t max, bool prefetchable)
{
    return address_space(0x87, 4, 0, mem_flags(prefetchable), min, max);
}

Aml *aml_qword_memory(uint64_t min, uint64_t max, bool prefetchable)
{
    return address_space(0x8a, 8, 0, mem_flags(prefetchable), min, max);
}

Aml *aml_memory32_fixed(uint32_t base, uint32_t len)
{
    Aml *a = aml_new(AML_KIND_TERM);

    put8(a->buf, 0x86);
    put_le(a->buf, 9, 2);
    put8(a->buf, 0x01);            /* read/write */
    put_le(a->buf, base, 4);
    put_le(a->buf, len, 4);
    return a;
}

GByteArray *aml_serialize(Aml *node)
{
    GByteArray *out = g_byte_array_new();
    GByteArray *content = g_byte_array_new();

    if (node->kind == AML_KIND_PACKAGE) {
        g_assert(node->count <= 0xff);
        put8(content, (uint8_t)node->count);
    } else if (node->kind == AML_KIND_RESOURCES) {
        put_int(content, node->buf->len + 2);   /* + end tag */
    }
    g_byte_array_append(content, node->buf->data, node->buf->len);
    if (node->kind == AML_KIND_RESOURCES) {
        const uint8_t end_tag[2] = { 0x79, 0x00 };  /* checksum 0: "ignore" */

        g_byte_array_append(content, end_tag, 2);
    }
    if (node->kind != AML_KIND_TERM) {
        g_byte_array_append(out, node->op, node->oplen);
        aml_put_pkglength(out, content->len);
    }
    g_byte_array_append(out, content->data, content->len);
    g_byte_array_unref(content);
    aml_free(node);
    return out;
}

void aml_append(Aml *parent, Aml *child)
{
    GByteArray *bytes = aml_serialize(child);

    g_byte_array_append(parent->buf, bytes->data, bytes->len);
    g_byte_array_unref(bytes);
    parent->count++;
}
