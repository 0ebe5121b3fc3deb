/*
 * ceiling: the smallest libevent HTTP server worth the name, answering every request with a
 * fixed small JSON body. N processes each own a listening socket on one port (SO_REUSEPORT),
 * as feegate's workers do, so its rate is the HTTP ceiling of N event loops on this machine:
 * what feegate could reach if its handlers cost nothing.
 *
 * With --delay-ms D every answer is sent D ms after its request arrived (a timer, the loop
 * stays free): a server of known latency, for checking the load generator.
 *
 *   ceiling [--port P] [--workers N] [--delay-ms D] [--port-file F]
 *
 * --port 0 (the default) picks a free port. When every worker listens, the master prints
 * "listening 127.0.0.1:PORT" (and writes PORT to --port-file). SIGTERM or SIGINT stops all;
 * the workers also stop when the master dies.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_WORKERS 64

static const char body[] = "{\"status\":\"ok\",\"service\":\"ceiling\"}";
static struct timeval delay;
static bool delayed;

static void reply(struct evhttp_request *req)
{
	struct evkeyvalq *h = evhttp_request_get_output_headers(req);
	evhttp_add_header(h, "Content-Type", "application/json");
	struct evbuffer *out = evbuffer_new();
	evbuffer_add_reference(out, body, sizeof body - 1, NULL, NULL);
	evhttp_send_reply(req, 200, "OK", out);
	evbuffer_free(out);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
	reply(arg);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct event_base *base = arg;
	if (delayed && event_base_once(base, -1, EV_TIMEOUT, on_delay, req, &delay) == 0)
		return;
	reply(req);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
	event_base_loopexit(arg, NULL);
}

static int listen_on(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static int worker(int port, int ready_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	signal(SIGPIPE, SIG_IGN);
	/* precise timers: libevent's default clock is CLOCK_MONOTONIC_COARSE, whose ticks of a few
	 * milliseconds would let a delayed answer go out early */
	struct event_config *ec = event_config_new();
	event_config_set_flag(ec, EVENT_BASE_FLAG_PRECISE_TIMER);
	struct event_base *base = event_base_new_with_config(ec);
	event_config_free(ec);
	if (!base)
		return 1;
	int fd = listen_on(port);
	if (fd < 0) {
		fprintf(stderr, "ceiling: cannot listen on 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	struct evhttp *http = evhttp_new(base);
	evhttp_set_gencb(http, on_request, base);
	evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD);
	evhttp_set_timeout(http, 120);
	if (!evhttp_accept_socket_with_handle(http, fd)) {
		fprintf(stderr, "ceiling: evhttp refused the listening socket\n");
		return 1;
	}
	struct event *term = evsignal_new(base, SIGTERM, on_term, base);
	struct event *intr = evsignal_new(base, SIGINT, on_term, base);
	event_add(term, NULL);
	event_add(intr, NULL);
	if (write(ready_fd, "r", 1) != 1)
		return 1;
	close(ready_fd);
	event_base_dispatch(base);
	evhttp_free(http);
	event_free(term);
	event_free(intr);
	event_base_free(base);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: ceiling [--port P] [--workers N] [--delay-ms D] [--port-file F]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"port", required_argument, NULL, 'p'},
		{"workers", required_argument, NULL, 'w'},
		{"delay-ms", required_argument, NULL, 'd'},
		{"port-file", required_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	int port = 0, workers = 1;
	double delay_ms = 0;
	const char *port_file = NULL;
	int ch;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		char *end;
		switch (ch) {
		case 'p':
			port = (int)strtol(optarg, &end, 10);
			if (*end || port < 0 || port > 65535)
				usage();
			break;
		case 'w':
			workers = (int)strtol(optarg, &end, 10);
			if (*end || workers < 1 || workers > MAX_WORKERS)
				usage();
			break;
		case 'd':
			delay_ms = strtod(optarg, &end);
			if (*end || !(delay_ms >= 0 && delay_ms <= 600000))
				usage();
			break;
		case 'f':
			port_file = optarg;
			break;
		default:
			usage();
		}
	}
	if (optind < argc)
		usage();
	if (delay_ms > 0) {
		delayed = true;
		long us = (long)(delay_ms * 1000);
		delay.tv_sec = us / 1000000;
		delay.tv_usec = us % 1000000;
	}
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Hold the port (bound, not listening, so it takes no connections) until the workers listen. */
	int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t salen = sizeof sa;
	if (hold < 0 || setsockopt(hold, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
	    setsockopt(hold, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
	    bind(hold, (struct sockaddr *)&sa, sizeof sa) != 0 || getsockname(hold, (struct sockaddr *)&sa, &salen) != 0) {
		fprintf(stderr, "ceiling: cannot bind 127.0.0.1:%d: %s\n", port, strerror(errno));
		return 1;
	}
	port = ntohs(sa.sin_port);

	sigset_t set, old;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	sigprocmask(SIG_BLOCK, &set, &old);

	int ready[2];
	if (pipe(ready) != 0)
		return 1;
	pid_t pids[MAX_WORKERS];
	for (int i = 0; i < workers; i++) {
		pids[i] = fork();
		if (pids[i] < 0) {
			perror("ceiling: fork");
			return 1;
		}
		if (pids[i] == 0) {
			close(ready[0]);
			close(hold);
			sigprocmask(SIG_SETMASK, &old, NULL);
			_exit(worker(port, ready[1]));
		}
	}
	close(ready[1]);
	int up = 0;
	char c;
	while (up < workers && read(ready[0], &c, 1) == 1)
		up++;
	close(ready[0]);
	close(hold);
	int rc = 0;
	if (up < workers) {
		fprintf(stderr, "ceiling: only %d of %d workers started\n", up, workers);
		rc = 1;
	} else {
		if (port_file) {
			FILE *f = fopen(port_file, "w");
			if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0) {
				fprintf(stderr, "ceiling: cannot write %s\n", port_file);
				rc = 1;
			}
		}
		printf("listening 127.0.0.1:%d (%d workers%s)\n", port, workers, delayed ? ", delayed" : "");
		fflush(stdout);
		/* until TERM or INT, or a worker exits (a worker merely stopped, by SIGSTOP, is fine) */
		while (rc == 0) {
			int sig;
			sigwait(&set, &sig);
			if (sig != SIGCHLD)
				break;
			int status;
			pid_t pid = waitpid(-1, &status, WNOHANG);
			if (pid > 0) {
				fprintf(stderr, "ceiling: worker %d exited (status %d); stopping\n", (int)pid, status);
				for (int i = 0; i < workers; i++)
					if (pids[i] == pid)
						pids[i] = 0;
				rc = 1;
			}
		}
	}
	for (int i = 0; i < workers; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	for (int i = 0; i < workers; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
	return rc;
}
