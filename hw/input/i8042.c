/*
 * The i8042 keyboard controller with nothing plugged in behind it. What it
 * models: the status register, the command byte, the controller commands
 * Linux's i8042 driver and atkbd probe send (self test, port tests, enable and
 * disable, AUX loopback, output-port read/write), keyboard-device commands
 * answered with ACK (reset also with the self-test pass code), and reset by
 * pulsing output-port bit 0 (command 0xfe, or 0xd1 with bit 0 clear). Replies
 * queue in a small output buffer; IRQ1/IRQ12 follow "output buffer full" when
 * the command byte enables them.
 */
#include <string.h>

#include "hw/input/i8042.h"
#include "migration/vmstate.h"
#include "tern/error.h"

#define OUT_QUEUE_LEN      16

/* Command byte bits. */
#define CB_KBD_INT         0x01
#define CB_AUX_INT         0x02
#define CB_SYS             0x04
#define CB_KBD_DISABLE     0x10
#define CB_AUX_DISABLE     0x20
#define CB_XLATE           0x40

/* Controller commands (port 0x64). */
#define CMD_READ_CB        0x20
#define CMD_WRITE_CB       0x60
#define CMD_AUX_DISABLE    0xa7
#define CMD_AUX_ENABLE     0xa8
#define CMD_AUX_TEST       0xa9
#define CMD_SELF_TEST      0xaa
#define CMD_KBD_TEST       0xab
#define CMD_KBD_DISABLE    0xad
#define CMD_KBD_ENABLE     0xae
#define CMD_READ_INPUT     0xc0
#define CMD_READ_OUTPUT    0xd0
#define CMD_WRITE_OUTPUT   0xd1
#define CMD_WRITE_KBD_OBUF 0xd2
#define CMD_WRITE_AUX_OBUF 0xd3
#define CMD_WRITE_AUX      0xd4
#define CMD_PULSE_FIRST    0xf0

#define OUTPORT_RESET_HIGH 0x01    /* bit 0 low = CPU reset */
#define OUTPORT_A20        0x02

#define KBD_ACK            0xfa
#define KBD_RESET          0xff
#define KBD_GET_ID         0xf2
#define KBD_ECHO           0xee
#define KBD_SELF_TEST_OK   0xaa

typedef struct OutByte {
    uint8_t val;
    bool aux;
} OutByte;

struct I8042 {
    GMutex lock;
    IoBus *pio;
    IrqLine kbd_irq, aux_irq;
    const PowerOps *power;
    void *power_opaque;
    uint8_t cmd_byte;
    uint8_t outport;
    uint8_t pending;               /* controller command awaiting data */
    bool last_was_cmd;             /* status bit 3 */
    OutByte out[OUT_QUEUE_LEN];
    unsigned out_head, out_len;
    /* Migration: the output queue oldest first (see vmstate_i8042). */
    uint8_t vm_out_len;
    uint8_t vm_out_val[OUT_QUEUE_LEN];
    uint8_t vm_out_aux[OUT_QUEUE_LEN];
};

static void update_irqs(I8042 *k)
{
    bool full = k->out_len > 0;
    bool aux = full && k->out[k->out_head].aux;

    irq_set(&k->kbd_irq, full && !aux && (k->cmd_byte & CB_KBD_INT));
    irq_set(&k->aux_irq, full && aux && (k->cmd_byte & CB_AUX_INT));
}

/* A full queue drops the byte, as a controller would overrun. */
static void push(I8042 *k, uint8_t val, bool aux)
{
    if (k->out_len < OUT_QUEUE_LEN) {
        k->out[(k->out_head + k->out_len++) % OUT_QUEUE_LEN] =
            (OutByte){ .val = val, .aux = aux };
    }
}

static bool reset_requested(uint8_t outport)
{
    return !(outport & OUTPORT_RESET_HIGH);
}

/* Returns true if the guest asked for a CPU reset. */
static bool controller_command(I8042 *k, uint8_t cmd)
{
    switch (cmd) {
    case CMD_READ_CB:       push(k, k->cmd_byte, false); break;
    case CMD_AUX_DISABLE:   k->cmd_byte |= CB_AUX_DISABLE; break;
    case CMD_AUX_ENABLE:    k->cmd_byte &= ~CB_AUX_DISABLE; break;
    case CMD_AUX_TEST:      push(k, 0x00, false); break;
    case CMD_SELF_TEST:     push(k, 0x55, false); break;
    case CMD_KBD_TEST:      push(k, 0x00, false); break;
    case CMD_KBD_DISABLE:   k->cmd_byte |= CB_KBD_DISABLE; break;
    case CMD_KBD_ENABLE:    k->cmd_byte &= ~CB_KBD_DISABLE; break;
    case CMD_READ_INPUT:    push(k, 0x80, false); break;   /* keyboard unlocked */
    case CMD_READ_OUTPUT:   push(k, k->outport, false); break;
    case CMD_WRITE_CB:
    case CMD_WRITE_OUTPUT:
    case CMD_WRITE_KBD_OBUF:
    case CMD_WRITE_AUX_OBUF:
    case CMD_WRITE_AUX:
        k->pending = cmd;
        break;
    default:
        /* 0xf0-0xff pulse output-port bits whose mask bit is 0. */
        if (cmd >= CMD_PULSE_FIRST) {
            return !(cmd & OUTPORT_RESET_HIGH);
        }
        break;                      /* unknown commands are ignored */
    }
    return false;
}

static void keyboard_command(I8042 *k, uint8_t val)
{
    if (val == KBD_ECHO) {
        push(k, KBD_ECHO, false);   /* echo answers itself, not ACK */
        return;
    }
    push(k, KBD_ACK, false);
    if (val == KBD_RESET) {
        push(k, KBD_SELF_TEST_OK, false);
    } else if (val == KBD_GET_ID) {
        push(k, 0xab, false);
        push(k, 0x83, false);
    }
}

/* Returns true if the guest asked for a CPU reset. */
static bool data_write(I8042 *k, uint8_t val)
{
    uint8_t cmd = k->pending;

    k->pending = 0;
    switch (cmd) {
    case CMD_WRITE_CB:
        k->cmd_byte = val;
        break;
    case CMD_WRITE_OUTPUT:
        k->outport = val;
        return reset_requested(val);
    case CMD_WRITE_KBD_OBUF:
        push(k, val, false);
        break;
    case CMD_WRITE_AUX_OBUF:
        push(k, val, true);         /* AUX loopback, Linux's AUX probe */
        break;
    case CMD_WRITE_AUX:
        break;                      /* no mouse: the byte goes nowhere */
    default:
        keyboard_command(k, val);
        break;
    }
    return false;
}

static uint64_t data_read(void *opaque, uint64_t off, unsigned size)
{
    I8042 *k = opaque;
    uint8_t v = 0;

    g_mutex_lock(&k->lock);
    if (k->out_len) {
        v = k->out[k->out_head].val;
        k->out_head = (k->out_head + 1) % OUT_QUEUE_LEN;
        k->out_len--;
    }
    /* Drop the lines before loading the next byte, so each byte is a new
     * edge on the (edge-triggered) ISA IRQ. */
    irq_set(&k->kbd_irq, false);
    irq_set(&k->aux_irq, false);
    update_irqs(k);
    g_mutex_unlock(&k->lock);
    return v;
}

static void data_port_write(void *opaque, uint64_t off, uint64_t val,
                            unsigned size)
{
    I8042 *k = opaque;
    bool reset;

    g_mutex_lock(&k->lock);
    k->last_was_cmd = false;
    reset = data_write(k, (uint8_t)val);
    update_irqs(k);
    g_mutex_unlock(&k->lock);
    if (reset) {
        power_request_reset(k->power, k->power_opaque);
    }
}

static uint64_t status_read(void *opaque, uint64_t off, unsigned size)
{
    I8042 *k = opaque;
    uint8_t st;

    g_mutex_lock(&k->lock);
    st = (k->cmd_byte & CB_SYS ? I8042_STATUS_SYS : 0) |
         (k->last_was_cmd ? I8042_STATUS_CMD : 0) | 0x10 /* not inhibited */;
    if (k->out_len) {
        st |= I8042_STATUS_OBF;
        st |= k->out[k->out_head].aux ? I8042_STATUS_AUXDATA : 0;
    }
    g_mutex_unlock(&k->lock);
    return st;
}

static void command_write(void *opaque, uint64_t off, uint64_t val,
                          unsigned size)
{
    I8042 *k = opaque;
    bool reset;

    g_mutex_lock(&k->lock);
    k->last_was_cmd = true;
    k->pending = 0;
    reset = controller_command(k, (uint8_t)val);
    update_irqs(k);
    g_mutex_unlock(&k->lock);
    if (reset) {
        power_request_reset(k->power, k->power_opaque);
    }
}

const IoOps i8042_data_ops = {
    .read = data_read,
    .write = data_port_write,
};

const IoOps i8042_cmd_ops = {
    .read = status_read,
    .write = command_write,
};

static void power_on_state(I8042 *k)
{
    k->cmd_byte = CB_KBD_INT | CB_SYS | CB_XLATE;
    k->outport = OUTPORT_RESET_HIGH | OUTPORT_A20;
    k->pending = 0;
    k->last_was_cmd = false;
    k->out_head = k->out_len = 0;
}

void i8042_reset(I8042 *k)
{
    g_mutex_lock(&k->lock);
    power_on_state(k);
    update_irqs(k);
    g_mutex_unlock(&k->lock);
}

static const VMStateDescription vmstate_i8042;

static void reset_hook(void *opaque)
{
    i8042_reset(opaque);
}

I8042 *i8042_new(IoBus *pio, const IrqLine *kbd_irq, const IrqLine *aux_irq,
                 const PowerOps *power, void *power_opaque, DeviceList *dl,
                 GError **errp)
{
    I8042 *k = g_new0(I8042, 1);

    g_mutex_init(&k->lock);
    k->pio = pio;
    k->kbd_irq = kbd_irq ? *kbd_irq : (IrqLine){ 0 };
    k->aux_irq = aux_irq ? *aux_irq : (IrqLine){ 0 };
    k->power = power;
    k->power_opaque = power_opaque;
    power_on_state(k);
    if (pio) {
        if (!iobus_register(pio, 0x60, 1, &i8042_data_ops, k, errp)) {
            goto fail;
        }
        if (!iobus_register(pio, 0x64, 1, &i8042_cmd_ops, k, errp)) {
            iobus_unregister(pio, 0x60);
            goto fail;
        }
    }
    device_list_add_reset(dl, reset_hook, k);
    device_list_add_vmstate(dl, "i8042", 0, &vmstate_i8042, k);
    return k;

fail:
    g_mutex_clear(&k->lock);
    g_free(k);
    return NULL;
}

void i8042_free(I8042 *k)
{
    if (!k) {
        return;
    }
    if (k->pio) {
        iobus_unregister(k->pio, 0x60);
        iobus_unregister(k->pio, 0x64);
    }
    g_mutex_clear(&k->lock);
    g_free(k);
}

/*
 * Migration ("i8042", tern's own layout, version 1):
 *   u8 command byte | u8 output port | u8 pending controller command |
 *   u8 last write was a command | u8 n | n x u8 queued byte | n x u8 from AUX
 * The queue travels oldest first, so the ring position is not part of it.
 */
static bool i8042_pre_save(void *opaque, GError **errp)
{
    I8042 *k = opaque;

    g_mutex_lock(&k->lock);
    k->vm_out_len = (uint8_t)k->out_len;
    for (unsigned i = 0; i < k->out_len; i++) {
        const OutByte *b = &k->out[(k->out_head + i) % OUT_QUEUE_LEN];

        k->vm_out_val[i] = b->val;
        k->vm_out_aux[i] = b->aux;
    }
    g_mutex_unlock(&k->lock);
    return true;
}

static bool i8042_post_load(void *opaque, int version_id, GError **errp)
{
    I8042 *k = opaque;

    g_mutex_lock(&k->lock);
    k->out_head = 0;
    k->out_len = k->vm_out_len;     /* the engine bounded it by the queue */
    for (unsigned i = 0; i < k->out_len; i++) {
        k->out[i] = (OutByte){ .val = k->vm_out_val[i],
                               .aux = k->vm_out_aux[i] != 0 };
    }
    update_irqs(k);
    g_mutex_unlock(&k->lock);
    return true;
}

static const VMStateDescription vmstate_i8042 = {
    .name = "i8042",
    .version_id = 1,
    .minimum_version_id = 1,
    .pre_save = i8042_pre_save,
    .post_load = i8042_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT8(cmd_byte, I8042),
        VMSTATE_UINT8(outport, I8042),
        VMSTATE_UINT8(pending, I8042),
        VMSTATE_BOOL(last_was_cmd, I8042),
        VMSTATE_UINT8(vm_out_len, I8042),
        VMSTATE_VARRAY(vm_out_val, I8042, vm_out_len, uint8_t, OUT_QUEUE_LEN,
                       vmstate_info_uint8, uint8_t),
        VMSTATE_VARRAY(vm_out_aux, I8042, vm_out_len, uint8_t, OUT_QUEUE_LEN,
                       vmstate_info_uint8, uint8_t),
        VMSTATE_END_OF_LIST()
    },
};
