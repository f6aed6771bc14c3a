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
