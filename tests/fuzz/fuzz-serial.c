/*
 * Fuzz the 16550A UART (hw/char/serial.c) with guest port I/O: each input
 * pair is (register | write flag, value); host input is injected on the way.
 * The UART must never crash or overflow its FIFO whatever the guest does.
 */
#include "hw/char/serial.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void irq_ignore(void *opaque, unsigned gsi, bool level)
{
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    IoBus *bus = iobus_new("pio");
    IrqLine irq = { .set = irq_ignore };
    SerialState *s = serial_new(NULL, irq, NULL);
    SerialRegs r;

    serial_attach(s, bus, 0x3f8, NULL);
    for (size_t i = 0; i + 1 < size; i += 2) {
        uint8_t op = data[i], val = data[i + 1];
        uint64_t v;

        if (op & 0x80) {
            serial_receive(s, &val, 1);
        } else if (op & 0x08) {
            iobus_write(bus, 0x3f8 + (op & 7), val, 1);
        } else {
            iobus_read(bus, 0x3f8 + (op & 7), &v, 1);
        }
    }
    serial_get_regs(s, &r);
    g_assert(r.rx_count <= SERIAL_FIFO_SIZE);
    serial_free(s);
    iobus_free(bus);
    return 0;
}
