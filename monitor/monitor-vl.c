/*
 * Glue between tern's main program and the monitor: reads the monitor
 * options that the command line stored raw, registers the machine and block
 * commands against this machine, and orders start-up and teardown around the
 * main loop. The block commands look drives up in the machine's block
 * backend list.
 */
#include "hw/block/drive.h"
#include "monitor/qmp-dispatch.h"
#include "softmmu/chardev.h"
#include "monitor/monitor-vl.h"
#include "migration/migration.h"
#include "migration/snapshot.h"
#include "monitor/qmp-block.h"
#include "monitor/qmp-job.h"
#include "monitor/qmp-machine.h"
#include "monitor/qmp-qom.h"
#include "monitor/qmp-snapshot.h"

struct MonitorVl {
    Monitor *mon;
    Machine *machine;
    QmpMachine qm;
    MigrationState *migration;      /* owns the drives' hand-over, or NULL */
    QmpJobs *jobs;
    QmpSnapshots *snapshots;
};

static const char *machine_name(void *opaque)
{
    MonitorVl *mv = opaque;

    return mv->machine->cfg->name;
}

static unsigned machine_cpu_count(void *opaque)
{
    MonitorVl *mv = opaque;

    return mv->machine->nr_vcpus;
}

static unsigned machine_cores_per_socket(void *opaque)
{
    MonitorVl *mv = opaque;

    return mv->machine->cfg->topo.cores;
}

static int64_t machine_cpu_thread_id(void *opaque, unsigned index)
{
    MonitorVl *mv = opaque;

    return index < mv->machine->nr_vcpus ? vcpu_thread_id(mv->machine->vcpus[index]) : 0;
}

static void machine_powerdown_op(void *opaque)
{
    MonitorVl *mv = opaque;

    machine_powerdown(mv->machine);
}

/* Before cont: a half-loaded snapshot must not run, and inactive drives
 * come back. */
static bool machine_activate_disks(void *opaque, GError **errp)
{
    MonitorVl *mv = opaque;

    return !mv->migration ||
           (vm_snapshot_can_run(migration_snapshots(mv->migration), errp) &&
            migration_activate_disks(mv->migration, errp));
}

static const QmpMachineOps machine_ops = {
    .name = machine_name,
    .cpu_count = machine_cpu_count,
    .cores_per_socket = machine_cores_per_socket,
    .cpu_thread_id = machine_cpu_thread_id,
    .powerdown = machine_powerdown_op,
    .activate_disks = machine_activate_disks,
};

/* --- query-chardev: the monitor's sockets and the serial port's backend --- */

static json_object *cmd_query_chardev(const QmpCall *call, const void *args,
                                      GError **errp)
{
    MonitorVl *mv = call->opaque;
    json_object *list = json_object_new_array();
    Chardev *serial = machine_serial_chardev(mv->machine);

    monitor_add_chardev_info(mv->mon, list);
    if (serial && chardev_label(serial)) {
        json_object *o = json_object_new_object();

        tern_json_add_bool(o, "frontend-open", true);
        tern_json_add_str(o, "filename", chardev_filename(serial));
        tern_json_add_str(o, "label", chardev_label(serial));
        json_object_array_add(list, o);
    }
    return list;
}

QMP_SHAPE(chardev_info, "ChardevInfo",
    QMP_OUT("label", qmp_type_str), QMP_OUT("filename", qmp_type_str),
    QMP_OUT("frontend-open", qmp_type_bool));
QMP_ARRAY_TYPE(chardev_info_list, chardev_info);

static const QmpCommandDef chardev_commands[] = {
    QMP_COMMAND("query-chardev", cmd_query_chardev, NULL, &chardev_info_list),
};

typedef bool (*OptionAdd)(Monitor *, const char *, GError **);

static bool add_options(MonitorVl *mv, VmConfig *cfg, const char *name, OptionAdd add,
                        GError **errp)
{
    GPtrArray *args = vm_config_list(cfg, name);

    for (guint i = 0; i < args->len; i++) {
        if (!add(mv->mon, args->pdata[i], errp)) {
            g_prefix_error(errp, "-%s: ", name);
            return false;
        }
    }
    return true;
}

MonitorVl *monitor_vl_init(VmConfig *cfg, Machine *machine, GError **errp)
{
    MonitorVl *mv = g_new0(MonitorVl, 1);

    mv->mon = monitor_new(machine->ctx);
    mv->machine = machine;
    mv->qm.ops = &machine_ops;
    mv->qm.opaque = mv;
    qmp_machine_attach(&mv->qm, mv->mon);
    qmp_register_qom_commands(monitor_registry(mv->mon), machine);
    qmp_register_blockdev_commands(monitor_registry(mv->mon), machine->blockdevs);
    qmp_register_commands(monitor_registry(mv->mon), chardev_commands,
                          ARRAY_SIZE(chardev_commands), mv);
    mv->jobs = qmp_jobs_attach(mv->mon);
    qmp_register_block_commands(monitor_registry(mv->mon),
                                machine->drives ? machine->drives->backends
                                                : NULL);
    if (!add_options(mv, cfg, "qmp", monitor_add_qmp_option, errp) ||
        !add_options(mv, cfg, "chardev", monitor_add_chardev_option, errp) ||
        !add_options(mv, cfg, "mon", monitor_add_mon_option, errp) ||
        !monitor_start(mv->mon, errp)) {
        monitor_vl_cleanup(mv);
        return NULL;
    }
    return mv;
}

void monitor_vl_cleanup(MonitorVl *mv)
{
    if (mv) {
        qmp_machine_detach(&mv->qm);
        monitor_free(mv->mon);
        qmp_snapshot_free(mv->snapshots);
        qmp_jobs_free(mv->jobs);
        g_free(mv);
    }
}

Monitor *monitor_vl_monitor(MonitorVl *mv)
{
    return mv->mon;
}

void monitor_vl_set_migration(MonitorVl *mv, MigrationState *ms)
{
    mv->migration = ms;
    mv->snapshots = qmp_snapshot_attach(mv->mon, migration_snapshots(ms),
                                        mv->machine->drives
                                            ? mv->machine->drives->backends
                                            : NULL,
                                        qmp_jobs_list(mv->jobs));
}
