#ifndef FEEGATE_SERVER_H
#define FEEGATE_SERVER_H
/* Runs the master and its workers until SIGTERM; returns the process exit code. */
int server_run(void);
#endif
