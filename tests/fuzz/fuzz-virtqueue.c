/*
 * Fuzz harness for split virtqueues: the input is a guest's 64 KiB of RAM
 * holding the descriptor table (0x0), available ring (0x1000) and used ring
 * (0x2000), with the first two bytes choosing the queue size and event idx.
 * The device side maps the rings, pops until the ring is empty or broken,
 * pushes what it popped and evaluates interrupt suppression; ASan/UBSan catch
 * any access outside guest memory, the bounded loop catches hangs.
 */
#include <string.h>

#include "hw/virtio/virtqueue.h"

#define RAM_SIZE 0x10000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *ram = g_malloc0(RAM_SIZE);
    GuestMemory mem = { .nr_regions = 1, .fd = -1, .ram_size = RAM_SIZE };
    VirtQueueElement elem = { 0 };
    VirtQueue vq;

    if (size < 2) {
        g_free(ram);
        return 0;
    }
    mem.regions[0] = (GuestRegion){ .gpa = 0, .size = RAM_SIZE, .hva = ram };
    memcpy(ram, data + 2, MIN(size - 2, (size_t)RAM_SIZE));
    virtqueue_reset(&vq);
    vq.size = (uint16_t)(data[0] & 0x80 ? data[0] * 3 : 1u << (data[0] % 9));
    vq.desc_gpa = 0;
    vq.avail_gpa = 0x1000;
    vq.used_gpa = 0x2000;
    if (virtqueue_map(&vq, &mem, NULL)) {
        vq.enabled = true;
        vq.event_idx = data[1] & 1;
        virtqueue_set_notification(&vq, !(data[1] & 2));
        for (unsigned i = 0; i < 2u * vq.size; i++) {
            int r = virtqueue_pop(&vq, &mem, data[1] >> 2 ? data[1] >> 2 : 1, &elem, NULL);

            if (r <= 0) {
                break;
            }
            /* Touch every buffer the way a device would. */
            for (unsigned k = 0; k < elem.out_num + elem.in_num; k++) {
                if (elem.iov[k].iov_len) {
                    volatile uint8_t *p = elem.iov[k].iov_base;

                    p[0] = p[elem.iov[k].iov_len - 1];
                }
            }
            virtqueue_push(&vq, &elem, (uint32_t)MIN(elem.in_len, UINT32_MAX));
            virtqueue_should_notify(&vq);
        }
        virtqueue_set_notification(&vq, true);
        virtqueue_empty(&vq);
    }
    virtqueue_element_clear(&elem);
    g_free(ram);
    return 0;
}
