/* Placeholder entry until the machine issue lands: tern cannot boot guests yet. */
#include <stdio.h>
#include <string.h>

#include "tern/error.h"

int main(int argc, char **argv)
{
    g_set_prgname("tern");
    if (argc > 1 && (!strcmp(argv[1], "-version") || !strcmp(argv[1], "--version"))) {
        printf("tern version %s\n", TERN_VERSION);
        return 0;
    }
    tern_error_report("this build cannot run guests yet");
    return 1;
}
