/*
 * The tern executable's body (softmmu/vl.c), kept in the core library so that
 * softmmu/main.c stays a one-line entry point.
 */
#ifndef SYSEMU_VL_H
#define SYSEMU_VL_H

int tern_main(int argc, char **argv);

#endif
