/*
 * The scalar and buffer encoders of the VMState engine. Each VMStateInfo
 * moves one element between memory (host order) and the stream (big-endian);
 * their names are the "type" strings of QEMU's JSON VM description.
 */
#include "migration/vmstate.h"

#define VMSTATE_INFO_INT(tname, ctype, bits)                                 \
static bool get_##tname(QEMUFile *f, void *pv, size_t size,                 \
                        const VMStateField *field, GError **errp)           \
{                                                                           \
    *(ctype *)pv = (ctype)qemu_get_be##bits(f);                             \
    return true;                                                            \
}                                                                           \
static void put_##tname(QEMUFile *f, const void *pv, size_t size,           \
                        const VMStateField *field)                          \
{                                                                           \
    qemu_put_be##bits(f, (uint##bits##_t)*(const ctype *)pv);               \
}                                                                           \
const VMStateInfo vmstate_info_##tname = {                                  \
    .name = #tname, .get = get_##tname, .put = put_##tname,                 \
};

/* 8-bit values have no be8 accessor; alias the byte functions. */
#define qemu_get_be8 qemu_get_byte
#define qemu_put_be8 qemu_put_byte

VMSTATE_INFO_INT(int8, int8_t, 8)
VMSTATE_INFO_INT(int16, int16_t, 16)
VMSTATE_INFO_INT(int32, int32_t, 32)
VMSTATE_INFO_INT(int64, int64_t, 64)
VMSTATE_INFO_INT(uint8, uint8_t, 8)
VMSTATE_INFO_INT(uint16, uint16_t, 16)
VMSTATE_INFO_INT(uint32, uint32_t, 32)
VMSTATE_INFO_INT(uint64, uint64_t, 64)

/* One byte; any non-zero value reads as true, as QEMU does. */
static bool get_bool(QEMUFile *f, void *pv, size_t size,
                     const VMStateField *field, GError **errp)
{
    *(bool *)pv = qemu_get_byte(f) != 0;
    return true;
}

static void put_bool(QEMUFile *f, const void *pv, size_t size,
                     const VMStateField *field)
{
    qemu_put_byte(f, *(const bool *)pv);
}

const VMStateInfo vmstate_info_bool = {
    .name = "bool", .get = get_bool, .put = put_bool,
};

static bool get_buffer(QEMUFile *f, void *pv, size_t size,
                       const VMStateField *field, GError **errp)
{
    qemu_get_buffer(f, pv, size);
    return true;
}

static void put_buffer(QEMUFile *f, const void *pv, size_t size,
                       const VMStateField *field)
{
    qemu_put_buffer(f, pv, size);
}

const VMStateInfo vmstate_info_buffer = {
    .name = "buffer", .get = get_buffer, .put = put_buffer,
};

/*
 * "equal" fields carry a value the destination must already have (a
 * configuration property such as a queue count): loading compares instead
 * of storing.
 */
#define VMSTATE_INFO_EQUAL(tname, qname, ctype, bits, fmt)                    \
static bool get_##tname##_equal(QEMUFile *f, void *pv, size_t size,         \
                                const VMStateField *field, GError **errp)   \
{                                                                           \
    ctype v = (ctype)qemu_get_be##bits(f);                                  \
                                                                            \
    if (!qemu_file_get_error(f) && v != *(ctype *)pv) {                     \
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,                     \
                    "%s is %" fmt " in the stream but %" fmt " here",       \
                    field->name, v, *(ctype *)pv);                          \
        return false;                                                       \
    }                                                                       \
    return true;                                                            \
}                                                                           \
const VMStateInfo vmstate_info_##tname##_equal = {                          \
    .name = qname, .get = get_##tname##_equal, .put = put_##tname,          \
};

VMSTATE_INFO_EQUAL(uint8, "uint8 equal", uint8_t, 8, PRIu8)
VMSTATE_INFO_EQUAL(uint16, "uint16 equal", uint16_t, 16, PRIu16)
VMSTATE_INFO_EQUAL(uint32, "uint32 equal", uint32_t, 32, PRIu32)
VMSTATE_INFO_EQUAL(int32, "int32 equal", int32_t, 32, PRId32)

/* Bytes a device no longer has: zeros out, skipped in. */
static bool get_unused(QEMUFile *f, void *pv, size_t size,
                       const VMStateField *field, GError **errp)
{
    qemu_file_skip(f, size);
    return true;
}

static void put_unused(QEMUFile *f, const void *pv, size_t size,
                       const VMStateField *field)
{
    static const uint8_t zeros[64];

    for (size_t done = 0; done < size; done += sizeof(zeros)) {
        qemu_put_buffer(f, zeros, MIN(sizeof(zeros), size - done));
    }
}

const VMStateInfo vmstate_info_unused_buffer = {
    .name = "unused_buffer", .get = get_unused, .put = put_unused,
};
