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
 *
 * Two optional roles, chosen by environment variables so one image serves all of them:
 *   COUNTER_FILE=/data/count  GET /count adds 1 to the integer in that file (0 when it is missing),
 *                             stores it (temp file, fsync, rename, under an flock on FILE.lock so
 *                             replicas sharing a volume do not lose counts) and answers "<n>\n";
 *                             GET /peek answers the value without adding. Unset: both are 404.
 *   UPSTREAM=host:port        GET /db asks http://host:port/count (HTTP/1.0, the host resolved per
 *                             request, so a compose service name works; 2 s for the whole call) and
 *                             answers "<VERSION> <upstream body>\n", or 502 with the reason. Unset: 404.
 *                             The call blocks the poll loop: fine for the few /db requests tests make.
 * HEAD behaves as GET without the body, on every path (HEAD /count adds 1 too).
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
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
static const char *counter_file; /* COUNTER_FILE, or NULL */
static const char *upstream;     /* UPSTREAM, or NULL */

#define UPSTREAM_TIMEOUT_MS 2000

static void drop(int i) {
  close(conns[i].fd);
  conns[i] = conns[--nconns];
}

static void answer(int fd, int status, const char *reason, const char *body, int keep) {
  char out[1024];
  int n = snprintf(out, sizeof out,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                   "Connection: %s\r\n\r\n%s",
                   status, reason, strlen(body), keep ? "keep-alive" : "close", body);
  /* Answers are a few hundred bytes: they fit a fresh socket buffer in one write. */
  ssize_t w = write(fd, out, (size_t)n);
  (void)w;
}

/* ---- COUNTER_FILE ------------------------------------------------------------------------ */

/* Reads the counter into *n (0 when the file is missing). Returns NULL or why it failed. */
static const char *counter_read(long long *n) {
  *n = 0;
  int fd = open(counter_file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return errno == ENOENT ? NULL : "cannot open the counter file";
  char buf[64];
  ssize_t r = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (r < 0) return "cannot read the counter file";
  buf[r] = 0;
  char *p = buf;
  while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
  if (!*p) return NULL; /* an empty file counts as 0 */
  char *end;
  errno = 0;
  *n = strtoll(p, &end, 10);
  while (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t') end++;
  if (errno || end == p || *end) return "the counter file does not hold a number";
  return NULL;
}

/* Stores n: a temp file beside it, fsync, rename over it, fsync the directory. */
static const char *counter_write(long long n) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp", counter_file) >= (int)sizeof tmp) return "counter path too long";
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return "cannot create the counter temp file";
  char buf[32];
  int len = snprintf(buf, sizeof buf, "%lld\n", n);
  if (write(fd, buf, (size_t)len) != len || fsync(fd) < 0) {
    close(fd);
    unlink(tmp);
    return "cannot write the counter temp file";
  }
  close(fd);
  if (rename(tmp, counter_file) < 0) {
    unlink(tmp);
    return "cannot rename the counter temp file";
  }
  char dir[4096];
  snprintf(dir, sizeof dir, "%s", counter_file);
  char *slash = strrchr(dir, '/');
  if (slash == dir) slash[1] = 0;
  else if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd); /* best effort: the rename is what makes the new value visible */
    close(dfd);
  }
  return NULL;
}

/* /count (add = 1) and /peek (add = 0): the value after the change, or NULL and *why. */
static const char *counter(int add, long long *n) {
  /* One lock file beside the counter (its own inode survives the renames), so replicas on one volume
   * take turns; flock() failing (a filesystem without locks) leaves the count unlocked, not broken. */
  char lock[4096];
  if (snprintf(lock, sizeof lock, "%s.lock", counter_file) >= (int)sizeof lock) return "counter path too long";
  int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lfd < 0) return "cannot open the counter lock file";
  while (flock(lfd, add ? LOCK_EX : LOCK_SH) < 0 && errno == EINTR) {
  }
  const char *why = counter_read(n);
  if (!why && add) {
    *n += 1;
    why = counter_write(*n);
  }
  close(lfd); /* releases the lock */
  return why;
}

/* ---- UPSTREAM ---------------------------------------------------------------------------- */

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until the deadline. Returns 1 when ready, 0 on timeout. */
static int wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {.fd = fd, .events = events};
    int r = poll(&p, 1, (int)left);
    if (r > 0) return 1;
    if (r == 0) return 0;
    if (errno != EINTR) return 1; /* let the next read/write report the error */
  }
}

/* Connects to one address without blocking past the deadline. Returns the fd or -1 (errno set). */
static int connect_by(const struct addrinfo *ai, long long deadline) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return -1;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
    if (errno != EINPROGRESS) goto fail;
    if (!wait_fd(fd, POLLOUT, deadline)) {
      errno = ETIMEDOUT;
      goto fail;
    }
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) goto fail;
    if (err) {
      errno = err;
      goto fail;
    }
  }
  return fd;
fail:;
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

/*
 * GET /count from UPSTREAM. On success returns 1 and the body (trailing whitespace cut) in out;
 * otherwise returns 0 and the reason in out.
 */
static int upstream_get(char *out, size_t outsz) {
  long long deadline = now_ms() + UPSTREAM_TIMEOUT_MS;
  char host[256], port[16];
  const char *colon = strrchr(upstream, ':');
  const char *h = upstream;
  size_t hlen = colon ? (size_t)(colon - upstream) : 0;
  if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') { /* [v6]:port */
    h++;
    hlen -= 2;
  }
  if (!colon || hlen == 0 || hlen >= sizeof host || !colon[1] || strlen(colon + 1) >= sizeof port) {
    snprintf(out, outsz, "UPSTREAM must be host:port, not \"%s\"", upstream);
    return 0;
  }
  memcpy(host, h, hlen);
  host[hlen] = 0;
  snprintf(port, sizeof port, "%s", colon + 1);

  struct addrinfo hints = {0}, *res = NULL;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  int gai = getaddrinfo(host, port, &hints, &res);
  if (gai != 0) {
    snprintf(out, outsz, "cannot resolve %.100s: %s", host, gai == EAI_SYSTEM ? strerror(errno) : gai_strerror(gai));
    return 0;
  }
  int fd = -1, err = 0;
  for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
    fd = connect_by(ai, deadline);
    if (fd < 0) err = errno;
  }
  freeaddrinfo(res);
  if (fd < 0) {
    snprintf(out, outsz, "cannot connect to %s: %s", upstream, err == ETIMEDOUT ? "timed out" : strerror(err));
    return 0;
  }

  char req[512];
  int reqlen = snprintf(req, sizeof req, "GET /count HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n", upstream);
  for (int sent = 0; sent < reqlen;) {
    if (!wait_fd(fd, POLLOUT, deadline)) {
      close(fd);
      snprintf(out, outsz, "%s timed out", upstream);
      return 0;
    }
    ssize_t w = write(fd, req + sent, (size_t)(reqlen - sent));
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (w < 0) {
      snprintf(out, outsz, "cannot send to %s: %s", upstream, strerror(errno));
      close(fd);
      return 0;
    }
    sent += (int)w;
  }

  /* Read to EOF, or until Content-Length bytes of body are in, in case the upstream keeps alive. */
  char resp[4096];
  size_t len = 0;
  for (;;) {
    if (len == sizeof resp - 1) break;
    if (!wait_fd(fd, POLLIN, deadline)) {
      close(fd);
      snprintf(out, outsz, "%s timed out", upstream);
      return 0;
    }
    ssize_t r = read(fd, resp + len, sizeof resp - 1 - len);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r < 0) {
      snprintf(out, outsz, "cannot read from %s: %s", upstream, strerror(errno));
      close(fd);
      return 0;
    }
    if (r == 0) break;
    len += (size_t)r;
    resp[len] = 0;
    char *hend = strstr(resp, "\r\n\r\n");
    char *cl = hend ? strcasestr(resp, "\r\nContent-Length:") : NULL;
    if (cl && cl < hend && len >= (size_t)(hend + 4 - resp) + strtoul(cl + 17, NULL, 10)) break;
  }
  close(fd);
  resp[len] = 0;

  int status = 0;
  char *body = strstr(resp, "\r\n\r\n");
  if (sscanf(resp, "HTTP/%*d.%*d %d", &status) != 1 || !body) {
    snprintf(out, outsz, "%s sent no HTTP answer", upstream);
    return 0;
  }
  body += 4;
  char *cl = strcasestr(resp, "\r\nContent-Length:");
  if (cl && cl < body) {
    size_t want = strtoul(cl + 17, NULL, 10);
    if (want < strlen(body)) body[want] = 0;
  }
  size_t blen = strlen(body);
  while (blen > 0 && (body[blen - 1] == '\n' || body[blen - 1] == '\r' || body[blen - 1] == ' ')) body[--blen] = 0;
  if (status != 200) {
    snprintf(out, outsz, "%s answered %d: %.100s", upstream, status, body);
    return 0;
  }
  snprintf(out, outsz, "%s", body);
  return 1;
}

/* ---- HTTP -------------------------------------------------------------------------------- */

/* Returns 1 to keep the connection open for another request. */
static int serve(struct conn *c) {
  char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
  if (!end) return c->len < REQ_MAX ? 2 : 0;
  size_t head = (size_t)(end - c->buf) + 4;
  char method[8] = {0}, path[256] = {0};
  if (sscanf(c->buf, "%7s %255s", method, path) != 2) return 0;
  int keep = !memmem(c->buf, head, "Connection: close", 17) && !stopping;
  int is_head = strcmp(method, "HEAD") == 0;
  char body[512];
  if (strcmp(path, "/cgi-bin/app") == 0) {
    if (fail_one_in > 0 && rand() % fail_one_in == 0) {
      answer(c->fd, 500, "Internal Server Error", is_head ? "" : "boom\n", keep);
    } else {
      snprintf(body, sizeof body, "%s\n", version);
      answer(c->fd, 200, "OK", is_head ? "" : body, keep);
    }
  } else if (strcmp(path, "/healthz") == 0 && healthy) {
    answer(c->fd, 200, "OK", is_head ? "" : "ok\n", keep);
  } else if (counter_file && (strcmp(path, "/count") == 0 || strcmp(path, "/peek") == 0)) {
    long long n;
    const char *why = counter(strcmp(path, "/count") == 0, &n);
    if (why) {
      fprintf(stderr, "app-server: %s %s: %s (%s)\n", path, counter_file, why, strerror(errno));
      snprintf(body, sizeof body, "%s\n", why);
      answer(c->fd, 500, "Internal Server Error", is_head ? "" : body, keep);
    } else {
      snprintf(body, sizeof body, "%lld\n", n);
      answer(c->fd, 200, "OK", is_head ? "" : body, keep);
    }
  } else if (upstream && strcmp(path, "/db") == 0) {
    char got[256];
    if (upstream_get(got, sizeof got)) {
      snprintf(body, sizeof body, "%s %s\n", version, got);
      answer(c->fd, 200, "OK", is_head ? "" : body, keep);
    } else {
      fprintf(stderr, "app-server: /db: %s\n", got);
      snprintf(body, sizeof body, "upstream: %s\n", got);
      answer(c->fd, 502, "Bad Gateway", is_head ? "" : body, keep);
    }
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
  counter_file = getenv("COUNTER_FILE");
  if (counter_file && !*counter_file) counter_file = NULL;
  upstream = getenv("UPSTREAM");
  if (upstream && !*upstream) upstream = NULL;
  /* Keep a name lookup inside the /db budget when the DNS server does not answer (glibc reads this). */
  if (upstream) setenv("RES_OPTIONS", "timeout:1 attempts:1", 0);
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
