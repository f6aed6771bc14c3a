/*
 * The tern executable's body (softmmu/vl.c), kept in the core library so that
 * softmmu/main.c stays a one-line entry point.
 */
#ifndef SOFTMMU_VL_H
#define SOFTMMU_VL_H

int tern_main(int argc, char **argv);

#endif
