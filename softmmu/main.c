/* The tern executable: everything happens in tern_main() (softmmu/vl.c). */
#include "softmmu/vl.h"

int main(int argc, char **argv)
{
    return tern_main(argc, argv);
}
