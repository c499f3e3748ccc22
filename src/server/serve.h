/* `candado serve`: configuration from flags and environment, and the event loop that
 * ties the HTTP server, the API, the lock layer and the store together. */
#ifndef CD_SERVE_H
#define CD_SERVE_H

/** The verb's main: argv[0] is "serve". Returns the process exit code. */
int cd_serve_main(int argc, char **argv);

#endif
