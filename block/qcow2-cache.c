/*
 * The qcow2 metadata cache: whole-cluster tables (L2 tables or refcount
 * blocks) kept in memory in their on-disk (big-endian) form, looked up by
 * host offset, evicted least-recently-used, written back lazily.
 *
 * Order at a power cut: a cache may depend on the other, or on a sync of
 * the file. Before it writes anything back, what it depends on is written
 * back and the file synced, then the dependency is gone until it is set
 * again. The refcount code sets it as each change needs: a raised refcount
 * makes the L2 cache depend on the refcount cache (the count, and the data
 * the entry points at, are durable before the entry), a lowered one the
 * other way round (the entry that let the cluster go, or a pointer written
 * directly, is durable before the count drops); copied data makes the L2
 * cache depend on a sync. Between dependencies, write-backs need no sync.
 *
 * A new L2 table's refcount, or the counts of new refcount blocks, are
 * made durable by themselves (qcow2_cache_flush_durable: a few tables
 * written with RWF_DSYNC) where nothing else has to be: a sync in the
 * middle of a stream of writes would push out all the guest data the page
 * cache holds.
 */
#include "block/qcow2.h"
#include "block/block-int.h"

typedef struct Qcow2CacheEntry {
    uint64_t offset;          /* 0: slot unused (cluster 0 is the header) */
    uint8_t *table;
    uint64_t lru;
    int ref;
    bool dirty;
} Qcow2CacheEntry;

struct Qcow2Cache {
    BlockNode *bs;
    uint32_t kind;            /* QCOW2_OL_* of the tables, for writeback */
    Qcow2Cache *depends;      /* made durable before ours are written */
    bool depends_on_sync;     /* the file synced before ours are written */
    uint64_t unsynced_gen;    /* written without RWF_DSYNC before sync
                               * number unsynced_gen (s->sync_count) */
    uint32_t table_size;
    int nb_tables;
    uint64_t lru_counter;
    Qcow2CacheEntry *entries;
    uint8_t *tables;          /* nb_tables * table_size, entry i at i */
    GHashTable *by_offset;    /* offset -> entry */
};

Qcow2Cache *qcow2_cache_new(BlockNode *bs, int nb_tables, uint32_t kind)
{
    BDRVQcow2State *s = bs->opaque;
    Qcow2Cache *c = g_new0(Qcow2Cache, 1);

    c->bs = bs;
    c->kind = kind;
    c->table_size = s->cluster_size;
    c->nb_tables = nb_tables;
    c->entries = g_new0(Qcow2CacheEntry, nb_tables);
    c->tables = g_malloc((size_t)nb_tables * c->table_size);
    for (int i = 0; i < nb_tables; i++) {
        c->entries[i].table = c->tables + (size_t)i * c->table_size;
    }
    c->by_offset = g_hash_table_new(g_int64_hash, g_int64_equal);
    return c;
}

void qcow2_cache_free(Qcow2Cache *c)
{
    if (!c) {
        return;
    }
    g_free(c->tables);
    g_hash_table_destroy(c->by_offset);
    g_free(c->entries);
    g_free(c);
}

/* At most this many dirty tables are made durable one by one; more, by a
 * write-back and a sync of the file. */
#define DURABLE_WRITES_MAX 4

/* Tables went out with plain writes that no sync has covered yet. */
static bool unsynced(Qcow2Cache *c)
{
    BDRVQcow2State *s = c->bs->opaque;

    return c->unsynced_gen > s->sync_count;
}

static bool flush_dependency(Qcow2Cache *c, GError **errp);

static bool entry_writeback(Qcow2Cache *c, Qcow2CacheEntry *e, bool durable,
                            GError **errp)
{
    BDRVQcow2State *s = c->bs->opaque;

    if (!e->dirty) {
        return true;
    }
    if ((c->depends || c->depends_on_sync) && !flush_dependency(c, errp)) {
        return false;
    }
    if (durable ? !qcow2_file_pwrite_durable(c->bs, c->kind, e->offset,
                                             e->table, c->table_size, errp)
                : !qcow2_file_pwrite(c->bs, c->kind, e->offset, e->table,
                                     c->table_size, errp)) {
        return false;
    }
    if (!durable) {
        c->unsynced_gen = s->sync_count + 1;
    }
    e->dirty = false;
    return true;
}

bool qcow2_cache_flush(Qcow2Cache *c, GError **errp)
{
    for (int i = 0; i < c->nb_tables; i++) {
        if (!entry_writeback(c, &c->entries[i], false, errp)) {
            return false;
        }
    }
    return true;
}

bool qcow2_cache_flush_durable(Qcow2Cache *c, GError **errp)
{
    int dirty = 0;

    for (int i = 0; i < c->nb_tables; i++) {
        dirty += c->entries[i].dirty;
    }
    if (unsynced(c) || dirty > DURABLE_WRITES_MAX) {
        return qcow2_cache_flush(c, errp) && qcow2_sync(c->bs, errp);
    }
    for (int i = 0; i < c->nb_tables; i++) {
        if (!entry_writeback(c, &c->entries[i], true, errp)) {
            return false;
        }
    }
    return true;
}

/* What c waits for, done: the other cache written back and the file
 * synced. (The sync also makes the data the entries point at durable and
 * the file long enough for them, as in QEMU: a table made durable on its
 * own would not.) */
static bool flush_dependency(Qcow2Cache *c, GError **errp)
{
    bool ok = (!c->depends || qcow2_cache_flush(c->depends, errp)) &&
              qcow2_sync(c->bs, errp);

    if (ok) {
        c->depends = NULL;
        c->depends_on_sync = false;
    }
    return ok;
}

bool qcow2_cache_set_dependency(Qcow2Cache *c, Qcow2Cache *dep,
                                GError **errp)
{
    if (c->depends == dep) {
        return true;
    }
    /* No cycle: what dep waits for is done first. */
    if ((dep->depends && !flush_dependency(dep, errp)) ||
        (c->depends && !flush_dependency(c, errp))) {
        return false;
    }
    c->depends = dep;
    return true;
}

void qcow2_cache_depends_on_sync(Qcow2Cache *c)
{
    c->depends_on_sync = true;
}

static Qcow2CacheEntry *find_victim(Qcow2Cache *c, GError **errp)
{
    Qcow2CacheEntry *victim = NULL;
    for (int i = 0; i < c->nb_tables; i++) {
        Qcow2CacheEntry *e = &c->entries[i];
        if (e->ref == 0 && (!victim || e->lru < victim->lru)) {
            victim = e;
        }
    }
    if (!victim) {
        g_set_error(errp, TERN_ERROR, TERN_ERR_FAILED,
                    "qcow2 metadata cache is full");
        return NULL;
    }
    if (!entry_writeback(c, victim, false, errp)) {
        return NULL;
    }
    if (victim->offset) {
        g_hash_table_remove(c->by_offset, &victim->offset);
        victim->offset = 0;
    }
    return victim;
}

static void *cache_get(Qcow2Cache *c, uint64_t offset, bool read,
                       GError **errp)
{
    BDRVQcow2State *s = c->bs->opaque;
    if (offset == 0 || qcow2_offset_into_cluster(s, offset)) {
        qcow2_signal_corruption(c->bs, errp, "Metadata table at invalid "
                                "offset %#" PRIx64, offset);
        return NULL;
    }
    Qcow2CacheEntry *e = g_hash_table_lookup(c->by_offset, &offset);
    if (!e) {
        e = find_victim(c, errp);
        if (!e) {
            return NULL;
        }
        if (read) {
            if (offset + c->table_size > qcow2_file_length(c->bs)) {
                qcow2_signal_corruption(c->bs, errp, "Metadata table at "
                                        "%#" PRIx64 " is past the end of "
                                        "the image file", offset);
                return NULL;
            }
            if (!qcow2_file_pread(c->bs, offset, e->table, c->table_size,
                                  errp)) {
                return NULL;
            }
        } else {
            memset(e->table, 0, c->table_size);
            e->dirty = true;
        }
        e->offset = offset;
        g_hash_table_insert(c->by_offset, &e->offset, e);
    } else if (!read) {
        memset(e->table, 0, c->table_size);
        e->dirty = true;
    }
    e->ref++;
    e->lru = ++c->lru_counter;
    return e->table;
}

void *qcow2_cache_get(Qcow2Cache *c, uint64_t offset, GError **errp)
{
    return cache_get(c, offset, true, errp);
}

void *qcow2_cache_get_empty(Qcow2Cache *c, uint64_t offset, GError **errp)
{
    return cache_get(c, offset, false, errp);
}

static Qcow2CacheEntry *entry_of(Qcow2Cache *c, void *table)
{
    size_t i = (size_t)((uint8_t *)table - c->tables) / c->table_size;
    g_assert(i < (size_t)c->nb_tables);
    return &c->entries[i];
}

void qcow2_cache_put(Qcow2Cache *c, void *table)
{
    Qcow2CacheEntry *e = entry_of(c, table);
    g_assert(e->ref > 0);
    e->ref--;
}

void qcow2_cache_mark_dirty(Qcow2Cache *c, void *table)
{
    entry_of(c, table)->dirty = true;
}

void qcow2_cache_discard(Qcow2Cache *c, uint64_t offset)
{
    Qcow2CacheEntry *e = g_hash_table_lookup(c->by_offset, &offset);
    if (e && e->ref == 0) {
        g_hash_table_remove(c->by_offset, &e->offset);
        e->offset = 0;
        e->dirty = false;
        e->lru = 0;
    }
}

/* Each cache waits for what it depends on, so the order here is free. */
bool qcow2_flush_caches(BlockNode *bs, GError **errp)
{
    BDRVQcow2State *s = bs->opaque;

    qcow2_settle_frees(bs);
    return qcow2_cache_flush(s->refcount_block_cache, errp) &&
           qcow2_cache_flush(s->l2_table_cache, errp);
}

bool qcow2_flush_all(BlockNode *bs, GError **errp)
{
    return qcow2_flush_caches(bs, errp) && qcow2_sync(bs, errp);
}
