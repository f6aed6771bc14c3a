/*
 * qcow2 compressed clusters, read side: decoding the compressed form of an
 * L2 entry (bit 62 set; a host byte offset in the low bits and, above it, the
 * number of further 512-byte sectors the data spans; the split point depends
 * on cluster_bits) and inflating its raw deflate stream into one cluster.
 * tern never writes compressed clusters: a write into one turns it into a
 * normal cluster (qcow2-cluster.c). The zstd compression type is refused at
 * open (qcow2.c), so every stream here is zlib/deflate.
 */
#include <zlib.h>

#include "block/qcow2.h"
#include "block/block-int.h"

/* Bit where the sector count starts in a compressed L2 entry. */
static int csize_shift(const BDRVQcow2State *s)
{
    return 62 - (s->cluster_bits - 8);
}

void qcow2_compressed_extent(const BDRVQcow2State *s, uint64_t entry,
                             uint64_t *offset, uint64_t *bytes)
{
    int shift = csize_shift(s);
    uint64_t sectors_mask = (1ULL << (s->cluster_bits - 8)) - 1;
    *offset = entry & ((1ULL << shift) - 1);
    *bytes = (((entry >> shift) & sectors_mask) + 1) * 512;
}

void qcow2_compressed_ref_range(const BDRVQcow2State *s, uint64_t entry,
                                uint64_t *start, uint64_t *len)
{
    uint64_t off, bytes;
    qcow2_compressed_extent(s, entry, &off, &bytes);
    *start = off & ~511ULL;     /* the sector count starts at this sector */
    *len = bytes;
}

/* Inflates 'in' (raw deflate, no zlib header) into exactly 'out_len' bytes.
 * Bytes past the end of the stream are allowed (the sector count is only an
 * upper bound); a stream that yields less than a cluster is an error. */
static bool inflate_cluster(const uint8_t *in, size_t in_len, uint8_t *out,
                            size_t out_len)
{
    z_stream z = { 0 };
    if (inflateInit2(&z, -12) != Z_OK) {    /* 4 KiB window, no header */
        return false;
    }
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    int ret = inflate(&z, Z_FINISH);
    bool ok = (ret == Z_STREAM_END || ret == Z_BUF_ERROR) && z.avail_out == 0;
    inflateEnd(&z);
    return ok;
}

bool qcow2_read_compressed(BlockNode *bs, uint64_t entry, uint8_t *out,
                           GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t off, bytes, file_len = qcow2_file_length(bs);
    qcow2_compressed_extent(s, entry, &off, &bytes);
    bytes -= off & 511;         /* the first sector is used from 'off' on */
    if (off < s->cluster_size || off >= file_len) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "qcow2: compressed cluster "
                    "data at %#" PRIx64 " is outside the image's data area",
                    off);
        return false;
    }
    /* The last sector of the file may be partial: read what exists. */
    bytes = MIN(bytes, file_len - off);
    g_autofree uint8_t *in = g_malloc(bytes);
    if (!bdrv_file_pread(bs->file, off, in, bytes, errp)) {
        return false;
    }
    if (!inflate_cluster(in, bytes, out, s->cluster_size)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_IO, "qcow2: compressed cluster "
                    "at %#" PRIx64 " (L2 entry %#" PRIx64 ") does not inflate "
                    "to a whole cluster", off, entry);
        return false;
    }
    return true;
}
