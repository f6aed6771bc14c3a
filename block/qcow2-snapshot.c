/*
 * qcow2 internal snapshots: the snapshot table (read, validated, rewritten
 * whole on every change) and create / list / apply / delete with their
 * refcount updates.
 *
 * Table entry layout (big-endian, each entry padded to 8 bytes):
 *   0 l1_table_offset (8)  8 l1_size (4)  12 id_str_size (2)
 *  14 name_size (2)  16 date_sec (4)  20 date_nsec (4)  24 vm_clock_nsec (8)
 *  32 vm_state_size (4)  36 extra_data_size (4)  40 extra data, id, name
 * Extra data: vm_state_size_large (8), disk_size (8), icount (8), then
 * fields tern keeps without interpreting.
 *
 * Each change writes a new table into new clusters and then switches the
 * header (nb_snapshots + snapshots_offset, one 12-byte write), so a crash
 * leaves either table intact.
 */
#include <errno.h>

#include "block/qcow2.h"
#include "block/block-int.h"

#define KNOWN_EXTRA ((uint32_t)sizeof(Qcow2SnapshotExtra))

void qcow2_free_snapshots(BDRVQcow2State *s)
{
    for (uint32_t i = 0; s->snapshots && i < s->nb_snapshots; i++) {
        g_free(s->snapshots[i].id_str);
        g_free(s->snapshots[i].name);
        g_free(s->snapshots[i].unknown_extra);
    }
    g_clear_pointer(&s->snapshots, g_free);
    s->nb_snapshots = 0;
}

static bool bad_table(GError **errp, uint32_t i, const char *why)
{
    g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                "qcow2: bad snapshot table: snapshot %u: %s", i, why);
    return false;
}

static bool read_one(BlockNode *bs, uint32_t i, uint64_t *off, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Snapshot *sn = &s->snapshots[i];
    Qcow2SnapshotHeader h;
    Qcow2SnapshotExtra ex = { 0 };
    /* The table starts inside the file (qcow2_read_snapshots), so these
     * sums stay far from wrapping. */
    uint64_t end = MIN(s->snapshots_offset + QCOW2_MAX_SNAPSHOTS_SIZE,
                       qcow2_file_length(bs));

    if (*off + sizeof(h) > end) {
        return bad_table(errp, i, "past the end of the file");
    }
    if (!qcow2_file_pread(bs, *off, &h, sizeof(h), errp)) {
        return false;
    }
    *off += sizeof(h);
    sn->l1_table_offset = GUINT64_FROM_BE(h.l1_table_offset);
    sn->l1_size = GUINT32_FROM_BE(h.l1_size);
    sn->date_sec = GUINT32_FROM_BE(h.date_sec);
    sn->date_nsec = GUINT32_FROM_BE(h.date_nsec);
    sn->vm_clock_nsec = GUINT64_FROM_BE(h.vm_clock_nsec);
    sn->vm_state_size = GUINT32_FROM_BE(h.vm_state_size);
    sn->extra_data_size = GUINT32_FROM_BE(h.extra_data_size);
    uint16_t id_len = GUINT16_FROM_BE(h.id_str_size);
    uint16_t name_len = GUINT16_FROM_BE(h.name_size);

    if (sn->extra_data_size > QCOW2_MAX_SNAPSHOT_EXTRA) {
        return bad_table(errp, i, "too much extra data");
    }
    uint64_t rest = (uint64_t)sn->extra_data_size + id_len + name_len;
    if (*off + rest > end) {
        return bad_table(errp, i, "past the end of the file");
    }
    g_autofree uint8_t *buf = g_malloc(rest + 1);
    if (!qcow2_file_pread(bs, *off, buf, rest, errp)) {
        return false;
    }
    memcpy(&ex, buf, MIN(sn->extra_data_size, KNOWN_EXTRA));
    sn->disk_size = bs->size;
    sn->icount = -1;
    if (sn->extra_data_size >= 8) {
        sn->vm_state_size = GUINT64_FROM_BE(ex.vm_state_size_large);
    }
    if (sn->extra_data_size >= 16) {
        sn->disk_size = GUINT64_FROM_BE(ex.disk_size);
    }
    if (sn->extra_data_size >= 24) {
        sn->icount = (int64_t)GUINT64_FROM_BE(ex.icount);
    }
    if (sn->extra_data_size > KNOWN_EXTRA) {
        sn->unknown_extra = g_memdup2(buf + KNOWN_EXTRA,
                                      sn->extra_data_size - KNOWN_EXTRA);
    }
    sn->id_str = g_strndup((char *)buf + sn->extra_data_size, id_len);
    sn->name = g_strndup((char *)buf + sn->extra_data_size + id_len, name_len);
    *off = ALIGN_UP(*off + rest, 8);

    if (qcow2_offset_into_cluster(s, sn->l1_table_offset)) {
        return bad_table(errp, i, "L1 table offset not cluster aligned");
    }
    if (sn->l1_size > QCOW2_MAX_L1_SIZE) {
        return bad_table(errp, i, "L1 table too large");
    }
    if (sn->l1_table_offset > qcow2_file_length(bs) ||
        (uint64_t)sn->l1_size * 8 >
        qcow2_file_length(bs) - sn->l1_table_offset) {
        return bad_table(errp, i, "L1 table past the end of the file");
    }
    return true;
}

bool qcow2_read_snapshots(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint32_t n = s->nb_snapshots;

    s->nb_snapshots = 0;
    s->snapshots_size = 0;
    if (n == 0) {
        return true;
    }
    if (n > QCOW2_MAX_SNAPSHOTS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "qcow2: too many snapshots (%u)", n);
        return false;
    }
    if (s->snapshots_offset >= qcow2_file_length(bs)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "qcow2: snapshot table at %#" PRIx64 " is past the end "
                    "of the file", s->snapshots_offset);
        return false;
    }
    if (qcow2_offset_into_cluster(s, s->snapshots_offset) ||
        s->snapshots_offset == 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "qcow2: snapshot table offset %#" PRIx64 " is invalid",
                    s->snapshots_offset);
        return false;
    }
    s->snapshots = g_new0(Qcow2Snapshot, n);
    uint64_t off = s->snapshots_offset, l1_bytes = 0;
    for (uint32_t i = 0; i < n; i++) {
        s->nb_snapshots = i + 1;   /* so that free sees what was read */
        if (!read_one(bs, i, &off, errp)) {
            qcow2_free_snapshots(s);
            return false;
        }
        l1_bytes += (uint64_t)s->snapshots[i].l1_size * 8;
    }
    /* Every snapshot has an L1 table of its own, so together they fit in
     * the file; tables that overlap would make every walk over them (the
     * metadata map, check) read the file many times over. */
    if (l1_bytes > qcow2_file_length(bs)) {
        qcow2_free_snapshots(s);
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "qcow2: bad snapshot "
                    "table: the snapshots' L1 tables overlap (%" PRIu64
                    " bytes in a %" PRIu64 "-byte file)", l1_bytes,
                    qcow2_file_length(bs));
        return false;
    }
    s->snapshots_size = off - s->snapshots_offset;
    return true;
}

static void put_entry(GByteArray *out, const Qcow2Snapshot *sn)
{
    uint32_t extra = MAX(sn->extra_data_size, KNOWN_EXTRA);
    Qcow2SnapshotHeader h = {
        .l1_table_offset = GUINT64_TO_BE(sn->l1_table_offset),
        .l1_size = GUINT32_TO_BE(sn->l1_size),
        .id_str_size = GUINT16_TO_BE((uint16_t)strlen(sn->id_str)),
        .name_size = GUINT16_TO_BE((uint16_t)strlen(sn->name)),
        .date_sec = GUINT32_TO_BE(sn->date_sec),
        .date_nsec = GUINT32_TO_BE(sn->date_nsec),
        .vm_clock_nsec = GUINT64_TO_BE(sn->vm_clock_nsec),
        .vm_state_size = GUINT32_TO_BE((uint32_t)sn->vm_state_size),
        .extra_data_size = GUINT32_TO_BE(extra),
    };
    Qcow2SnapshotExtra ex = {
        .vm_state_size_large = GUINT64_TO_BE(sn->vm_state_size),
        .disk_size = GUINT64_TO_BE(sn->disk_size),
        .icount = GUINT64_TO_BE((uint64_t)sn->icount),
    };
    static const uint8_t zero[8];

    g_byte_array_append(out, (const guint8 *)&h, sizeof(h));
    g_byte_array_append(out, (const guint8 *)&ex, sizeof(ex));
    if (extra > KNOWN_EXTRA) {
        g_byte_array_append(out, sn->unknown_extra, extra - KNOWN_EXTRA);
    }
    g_byte_array_append(out, (const guint8 *)sn->id_str, strlen(sn->id_str));
    g_byte_array_append(out, (const guint8 *)sn->name, strlen(sn->name));
    g_byte_array_append(out, zero, ALIGN_UP(out->len, 8) - out->len);
}

/* Writes the in-memory table to new clusters, switches the header to it and
 * frees the old one. */
static bool write_snapshots(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    g_autoptr(GByteArray) out = g_byte_array_new();
    int64_t off = 0;

    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        put_entry(out, &s->snapshots[i]);
    }
    if (out->len) {
        off = qcow2_alloc_clusters(bs, out->len, errp);
        if (off < 0 ||
            !qcow2_file_pwrite(bs, QCOW2_OL_SNAPSHOT_TABLE, (uint64_t)off,
                               out->data, out->len, errp)) {
            return false;
        }
    }
    struct TERN_PACKED { uint32_t nb; uint64_t off; } hdr = {
        GUINT32_TO_BE(s->nb_snapshots), GUINT64_TO_BE((uint64_t)off),
    };
    /* The table, the L1 tables it names and every count they need are
     * durable before the header points at it (and the header before the
     * old table is freed). */
    if (!qcow2_header_pwrite(bs, 60, &hdr, sizeof(hdr), errp)) {
        return false;
    }
    uint64_t old_off = s->snapshots_offset, old_size = s->snapshots_size;
    s->snapshots_offset = (uint64_t)off;
    s->snapshots_size = out->len;
    qcow2_meta_remove(bs, QCOW2_OL_SNAPSHOT_TABLE, old_off, old_size);
    qcow2_meta_add(bs, QCOW2_OL_SNAPSHOT_TABLE, (uint64_t)off, out->len);
    if (old_size) {
        qcow2_free_clusters(bs, old_off, old_size);
    }
    return true;
}

static int find_snapshot(BDRVQcow2State *s, const char *id, const char *name)
{
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        if ((!id || !strcmp(s->snapshots[i].id_str, id)) &&
            (!name || !strcmp(s->snapshots[i].name, name))) {
            return (int)i;
        }
    }
    return -1;
}

static char *new_snapshot_id(BDRVQcow2State *s)
{
    uint64_t max = 0;
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        max = MAX(max, g_ascii_strtoull(s->snapshots[i].id_str, NULL, 10));
    }
    return g_strdup_printf("%" PRIu64, max + 1);
}

static bool snapshot_create(BlockNode *bs, const BlockSnapshotInfo *info,
                            GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    if (s->nb_snapshots >= QCOW2_MAX_SNAPSHOTS) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                    "qcow2: too many snapshots");
        return false;
    }
    if (info->id_str && find_snapshot(s, info->id_str, NULL) >= 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Snapshot with ID '%s' already exists", info->id_str);
        return false;
    }
    if (strlen(info->name ? info->name : "") > 65535 ||
        (info->id_str && strlen(info->id_str) > 65535)) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID,
                    "Snapshot name or id too long");
        return false;
    }
    Qcow2Snapshot sn = {
        .l1_size = s->l1_size,
        .id_str = info->id_str ? g_strdup(info->id_str) : new_snapshot_id(s),
        .name = g_strdup(info->name ? info->name : ""),
        .disk_size = bs->size,
        .vm_state_size = info->vm_state_size,
        .date_sec = info->date_sec,
        .date_nsec = info->date_nsec,
        .vm_clock_nsec = info->vm_clock_nsec,
        .icount = info->icount,
        .extra_data_size = KNOWN_EXTRA,
    };
    /* Everything the active L1 reaches gains the snapshot's reference. */
    bool ok = qcow2_update_l1_array_refcounts(bs, s->l1_table, s->l1_size, 1,
                                              errp) &&
              qcow2_fix_copied_flags(bs, errp);
    if (ok && s->l1_size) {
        int64_t off = qcow2_alloc_clusters(bs, (uint64_t)s->l1_size * 8, errp);
        g_autofree uint64_t *be = g_new(uint64_t, s->l1_size);
        for (uint32_t i = 0; i < s->l1_size; i++) {
            be[i] = GUINT64_TO_BE(s->l1_table[i]);
        }
        sn.l1_table_offset = (uint64_t)off;
        ok = off >= 0 && qcow2_file_pwrite(bs, QCOW2_OL_INACTIVE_L1,
                                           (uint64_t)off, be,
                                           (size_t)s->l1_size * 8, errp);
    }
    if (!ok) {
        g_free(sn.id_str);
        g_free(sn.name);
        return false;
    }
    s->snapshots = g_renew(Qcow2Snapshot, s->snapshots, s->nb_snapshots + 1);
    s->snapshots[s->nb_snapshots++] = sn;
    /* The new L1 table and the L2 tables it shares join the map. */
    if (!write_snapshots(bs, errp) || !qcow2_meta_rebuild(bs, errp)) {
        return false;
    }
    /* The active image no longer needs the VM state; keeping it would cost
     * copy-on-write on the next snapshot. */
    return qcow2_cluster_discard(bs, qcow2_vm_state_offset(s),
                                 ALIGN_UP(sn.vm_state_size,
                                          (uint64_t)s->cluster_size),
                                 QCOW2_DISCARD, errp);
}

GPtrArray *qcow2_snapshot_list(BlockNode *bs)
{
    BDRVQcow2State *s = bs->opaque;
    GPtrArray *list = g_ptr_array_new_with_free_func(
        (GDestroyNotify)block_snapshot_info_free);
    for (uint32_t i = 0; i < s->nb_snapshots; i++) {
        const Qcow2Snapshot *sn = &s->snapshots[i];
        BlockSnapshotInfo *info = g_new0(BlockSnapshotInfo, 1);
        info->id_str = g_strdup(sn->id_str);
        info->name = g_strdup(sn->name);
        info->vm_state_size = sn->vm_state_size;
        info->date_sec = sn->date_sec;
        info->date_nsec = sn->date_nsec;
        info->vm_clock_nsec = sn->vm_clock_nsec;
        info->disk_size = sn->disk_size;
        info->icount = sn->icount;
        g_ptr_array_add(list, info);
    }
    return list;
}

static bool set_disk_size(BlockNode *bs, uint64_t size, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;
    uint64_t be = GUINT64_TO_BE(size);

    if (size == bs->size) {
        return true;
    }
    if (!qcow2_grow_l1_table(bs, DIV_ROUND_UP(size, per_l1), errp) ||
        !qcow2_header_pwrite(bs, 24, &be, 8, errp)) {
        return false;
    }
    bs->size = size;
    s->l1_vm_state_index = (uint32_t)DIV_ROUND_UP(size, per_l1);
    return true;
}

static bool snapshot_apply(BlockNode *bs, const char *id_or_name,
                           GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int i = find_snapshot(s, id_or_name, NULL);
    if (i < 0) {
        i = find_snapshot(s, NULL, id_or_name);
    }
    if (i < 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                    "Can't find snapshot '%s'", id_or_name);
        return false;
    }
    Qcow2Snapshot *sn = &s->snapshots[i];
    /* disk_size comes from the table: check it before anything changes. */
    if (!qcow2_check_disk_size(s, sn->disk_size, errp)) {
        g_prefix_error(errp, "snapshot '%s': ", sn->id_str);
        return false;
    }
    if (!qcow2_grow_l1_table(bs, sn->l1_size, errp) ||
        !qcow2_flush_caches(bs, errp)) {
        return false;
    }
    g_autofree uint64_t *sn_l1 = g_new0(uint64_t, s->l1_size);
    g_autofree uint64_t *be = g_new(uint64_t, MAX(sn->l1_size, 1));
    if (!qcow2_file_pread(bs, sn->l1_table_offset, be,
                          (size_t)sn->l1_size * 8, errp)) {
        return false;
    }
    for (uint32_t j = 0; j < sn->l1_size; j++) {
        sn_l1[j] = GUINT64_FROM_BE(be[j]) & ~QCOW2_OFLAG_COPIED;
    }
    if (qcow2_l1_has_duplicates(sn_l1, sn->l1_size)) {
        qcow2_signal_corruption(bs, errp, "Snapshot '%s' has two L1 entries "
                                "pointing at one L2 table", sn->id_str);
        return false;
    }
    /* New references first (durable), then the switch, then drop the old
     * ones (after the switch is durable: cache dependency). */
    if (!qcow2_update_l1_array_refcounts(bs, sn_l1, sn->l1_size, 1, errp) ||
        !qcow2_flush_all(bs, errp)) {
        return false;
    }
    g_autofree uint64_t *old = s->l1_table;
    s->l1_table = g_steal_pointer(&sn_l1);
    /* The map follows the switch before old tables are freed (and maybe
     * reallocated as something else). */
    if (!qcow2_write_l1(bs, errp) || !qcow2_meta_rebuild(bs, errp) ||
        !qcow2_update_l1_array_refcounts(bs, old, s->l1_size, -1, errp) ||
        !set_disk_size(bs, sn->disk_size, errp)) {
        return false;
    }
    return qcow2_fix_copied_flags(bs, errp);
}

static uint64_t *read_snapshot_l1(BlockNode *bs, const Qcow2Snapshot *sn,
                                  GError **errp)
{
    uint64_t *l1 = g_new0(uint64_t, MAX(sn->l1_size, 1));

    if (!qcow2_file_pread(bs, sn->l1_table_offset, l1, (size_t)sn->l1_size * 8,
                          errp)) {
        g_free(l1);
        return NULL;
    }
    for (uint32_t i = 0; i < sn->l1_size; i++) {
        l1[i] = GUINT64_FROM_BE(l1[i]);
    }
    return l1;
}

/*
 * The snapshot's VM state is read through its own L1 table: the active
 * table is set aside for the length of one read (the node lock is held, so
 * nothing else maps through it meanwhile) and the ordinary read path runs
 * on the snapshot's. Reads never allocate or write, so the snapshot's
 * clusters are left as they are.
 */
bool qcow2_snapshot_load_vmstate(BlockNode *bs, const char *id, uint64_t pos,
                                 void *buf, size_t len, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int i = find_snapshot(s, id, NULL);
    uint64_t per_l1 = (uint64_t)s->cluster_size << s->l2_bits;

    if (!qcow2_check_usable(bs, errp)) {
        return false;
    }
    if (i < 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                    "Can't find snapshot '%s'", id);
        return false;
    }
    const Qcow2Snapshot *sn = &s->snapshots[i];
    /* The most any L1 table can map: a hostile disk size or position must
     * not wrap around into the guest's data. */
    uint64_t limit = (uint64_t)QCOW2_MAX_L1_SIZE * per_l1;
    uint64_t start = DIV_ROUND_UP(MIN(sn->disk_size, limit), per_l1) * per_l1;
    if (sn->disk_size > limit || pos > limit || len > limit - pos ||
        start > limit - pos - len) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_INVALID, "snapshot '%s': VM "
                    "state at %" PRIu64 "+%zu is outside what qcow2 can map",
                    id, pos, len);
        return false;
    }
    uint64_t *l1 = read_snapshot_l1(bs, sn, errp);
    if (!l1) {
        return false;
    }
    uint64_t *active = s->l1_table;
    uint32_t active_size = s->l1_size;

    s->l1_table = l1;
    s->l1_size = sn->l1_size;
    bool ok = qcow2_rw_vmspace(bs, start + pos, buf, len, false, errp);
    s->l1_table = active;
    s->l1_size = active_size;
    g_free(l1);
    return ok;
}

static bool snapshot_delete(BlockNode *bs, const char *id,
                            const char *name, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;
    int i = find_snapshot(s, id, name);
    if (i < 0) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_NOT_FOUND,
                    "Can't find the snapshot (id '%s', name '%s')",
                    id ? id : "", name ? name : "");
        return false;
    }
    Qcow2Snapshot sn = s->snapshots[i];
    memmove(&s->snapshots[i], &s->snapshots[i + 1],
            (s->nb_snapshots - (uint32_t)i - 1) * sizeof(sn));
    s->nb_snapshots--;
    /* Its tables leave the map before they are freed. */
    bool ok = write_snapshots(bs, errp) && qcow2_meta_rebuild(bs, errp) &&
              qcow2_update_l1_refcounts(bs, sn.l1_table_offset, sn.l1_size,
                                        -1, errp);
    if (ok && sn.l1_size) {
        qcow2_free_clusters(bs, sn.l1_table_offset, (uint64_t)sn.l1_size * 8);
    }
    g_free(sn.id_str);
    g_free(sn.name);
    g_free(sn.unknown_extra);
    return ok && qcow2_fix_copied_flags(bs, errp);
}

/* Each operation ends with the metadata map rebuilt, whatever it got to:
 * the set of L1 and L2 tables changed. */
bool qcow2_snapshot_create(BlockNode *bs, const BlockSnapshotInfo *info,
                           GError **errp)
{
    return qcow2_check_usable(bs, errp) &&
           qcow2_meta_rebuild_after(bs, snapshot_create(bs, info, errp), errp);
}

bool qcow2_snapshot_apply(BlockNode *bs, const char *id_or_name, GError **errp)
{
    return qcow2_check_usable(bs, errp) &&
           qcow2_meta_rebuild_after(bs, snapshot_apply(bs, id_or_name, errp),
                                    errp);
}

bool qcow2_snapshot_delete(BlockNode *bs, const char *id, const char *name,
                           GError **errp)
{
    return qcow2_check_usable(bs, errp) &&
           qcow2_meta_rebuild_after(bs, snapshot_delete(bs, id, name, errp),
                                    errp);
}
