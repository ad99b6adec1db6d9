/* fifo_main.c — a main() for a module compiled with `kiln build -c`: it hands
 * the command line to the runtime's main, as the main of `kiln build` does. */
#include "fifo_queue.h"

int main(int argc, char **argv) { return kiln_main(argc, argv, &fifo_queue_desc); }
