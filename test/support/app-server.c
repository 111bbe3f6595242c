/*
 * The web app the release tests deploy: answers its version on /cgi-bin/app and "ok" on
 * /healthz, from one process with one poll loop.
 *
 * Why not busybox httpd with a CGI: it forks per connection and again per request, and on
 * machines where process creation is slow (10-30 ms) it tops out near the 200 requests/s
 * the tests put through the router, so requests timed out whatever the release did.
 *
 * Usage: app-server PORT VERSION HEALTHY(1|0) FAIL_ONE_IN(0 = never)
 * SIGTERM stops accepting, finishes the open connections, then exits, as a well-behaved app does.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#define MAX_CONNS 1024
#define REQ_MAX 8192

struct conn {
  int fd;
  size_t len;
  char buf[REQ_MAX];
};

static volatile sig_atomic_t stopping = 0;
static void on_term(int sig) { (void)sig; stopping = 1; }

static struct conn conns[MAX_CONNS];
static int nconns = 0;
static const char *version;
static int healthy;
static int fail_one_in;

static void drop(int i) {
  close(conns[i].fd);
  conns[i] = conns[--nconns];
}

static void answer(int fd, int status, const char *reason, const char *body, int keep) {
  char out[512];
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                   "Connection: %s\r\n\r\n%s",
                   status, reason, strlen(body), keep ? "keep-alive" : "close", body);
  /* Answers are a few hundred bytes: they fit a fresh socket buffer in one write. */
  ssize_t w = write(fd, out, (size_t)n);
  (void)w;
}

/* Returns 1 to keep the connection open for another request. */
static int serve(struct conn *c) {
  char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!end) return c->len < REQ_MAX ? 2 : 0;
  size_t head = (size_t)(end - c->buf) + 4;
  char method[8] = {0}, path[256] = {0};
  if (sscanf(c->buf, "%7s %255s", method, path) != 2) return 0;
  int keep = !memmem(c->buf, head, "Connection: close", 17) && !stopping;
  int is_head = strcmp(method, "HEAD") == 0;
  char body[128];
  if (strcmp(path, "/cgi-bin/app") == 0) {
    if (fail_one_in > 0 && rand() % fail_one_in == 0) {
      answer(c->fd, 500, "Internal Server Error", is_head ? "" : "boom\n", keep);
    } else {
      snprintf(body, sizeof body, "%s\n", version);
      answer(c->fd, 200, "OK", is_head ? "" : body, keep);
    }
  } else if (strcmp(path, "/healthz") == 0 && healthy) {
    answer(c->fd, 200, "OK", is_head ? "" : "ok\n", keep);
  } else {
    answer(c->fd, 404, "Not Found", is_head ? "" : "not found\n", keep);
  }
  /* Requests carry no body here (GET/HEAD); anything pipelined after the head is kept. */
  memmove(c->buf, c->buf + head, c->len - head);
  c->len -= head;
  return keep;
}

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: app-server PORT VERSION HEALTHY FAIL_ONE_IN\n");
    return 2;
  }
  version = argv[2];
  healthy = atoi(argv[3]);
  fail_one_in = atoi(argv[4]);
  srand((unsigned)time(NULL) ^ (unsigned)getpid());
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);

  int lfd = socket(AF_INET6, SOCK_STREAM, 0);
  int one = 1, zero = 0;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  struct sockaddr_in6 addr = {0};
  addr.sin6_family = AF_INET6;
  addr.sin6_port = htons((unsigned short)atoi(argv[1]));
  addr.sin6_addr = in6addr_any;
  if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) {
    perror("app-server: listen");
    return 1;
  }
  fcntl(lfd, F_SETFL, O_NONBLOCK);

  struct pollfd fds[MAX_CONNS + 1];
  for (;;) {
    if (stopping && lfd >= 0) {
      close(lfd);
      lfd = -1;
    }
    if (lfd < 0 && nconns == 0) return 0;
    int n = 0;
    if (lfd >= 0) fds[n++] = (struct pollfd){.fd = lfd, .events = POLLIN};
    int first = n;
    for (int i = 0; i < nconns; i++) fds[n++] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
    /* While stopping, idle keep-alive connections get 1 s before they are closed. */
    int ready = poll(fds, (nfds_t)n, stopping ? 1000 : -1);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0 && stopping) {
      while (nconns > 0) drop(0);
      continue;
    }
    /* Walk connections from the end: drop() moves the last one into the freed slot. */
    for (int i = nconns - 1; i >= 0; i--) {
      short ev = fds[first + i].revents;
      if (!ev) continue;
      struct conn *c = &conns[i];
      ssize_t r = read(c->fd, c->buf + c->len, REQ_MAX - c->len);
      if (r <= 0) {
        drop(i);
        continue;
      }
      c->len += (size_t)r;
      int keep;
      while ((keep = serve(c)) == 1 && c->len > 0 && memmem(c->buf, c->len, "\r\n\r\n", 4)) {
      }
      if (keep == 0) drop(i);
    }
    if (lfd >= 0 && (fds[0].revents & POLLIN)) {
      for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) break;
        if (nconns == MAX_CONNS) {
          close(fd);
          continue;
        }
        conns[nconns].fd = fd;
        conns[nconns].len = 0;
        nconns++;
      }
    }
  }
}
