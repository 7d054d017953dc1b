/* Placeholder until the verb lands. */
#include "cli/cmds.h"

int cmd_ai_tokenize(int argc, char **argv)
{
    return cli_error("'%s' is not built yet", argv[0]);
}
