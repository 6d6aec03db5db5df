// Whether the peer of a loopback TCP socket has nothing to say (docs/simulator.md, "Device
// time"): it has read every byte this end wrote, nothing it wrote is on the way back, and
// every thread of its process sleeps in a wait that only input ends (a wait for sockets
// with no timer or a long one, an untimed lock). A peer the host merely runs late is
// runnable, one that answers after a sleep or a near timer is in a timed wait: neither is
// quiet, and the walk gives it the rest of its net grace.

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

ssize_t __real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to, socklen_t len);
ssize_t __real_recv(int fd, void *buf, size_t n, int flags);

#define MAX_FD (1024)
#define QUIET_TIMER_MS (100)  // a timed wait this long or longer is a loop's tick (mosquitto's
                              // is 100 ms), not an answer being timed

// This end's socket and its peer's, as the kernel counts them.
typedef struct {
    struct tcp_info me, peer;
    unsigned int peer_unread;
    unsigned long peer_inode;
} conn_t;

static struct {
    ino_t ino;  // this end's socket: its peer's process is known for it
    int pid;
    struct sockaddr_storage to;  // a datagram socket's last destination
} peer_of[MAX_FD];

static int diag_fd = -1;

static bool loopback(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET) {
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    }
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

static void diag_end(const struct sockaddr_storage *ss, __be16 *port, __be32 *addr) {
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        *port = a->sin_port;
        addr[0] = a->sin_addr.s_addr;
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        *port = a->sin6_port;
        memcpy(addr, &a->sin6_addr, 16);
    }
}

// sock_diag's answer about one socket: the one a segment from `from` to `to` reaches.
static struct inet_diag_msg *diag(int protocol, const struct sockaddr_storage *from,
    const struct sockaddr_storage *to, int *attrs_len) {
    if (diag_fd < 0) {
        diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
        if (diag_fd < 0) {
            return NULL;
        }
    }
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 req;
    } msg = {0};
    msg.nlh.nlmsg_len = sizeof(msg);
    msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    msg.nlh.nlmsg_flags = NLM_F_REQUEST;
    msg.req.sdiag_family = to->ss_family;
    msg.req.sdiag_protocol = protocol;
    msg.req.idiag_ext = 1 << (INET_DIAG_INFO - 1);
    msg.req.idiag_states = ~0U;
    if (protocol == IPPROTO_TCP) {  // the socket's own end first
        diag_end(to, &msg.req.id.idiag_sport, msg.req.id.idiag_src);
        diag_end(from, &msg.req.id.idiag_dport, msg.req.id.idiag_dst);
    } else {  // the sender's end first (a lookup as for a datagram arriving)
        diag_end(from, &msg.req.id.idiag_sport, msg.req.id.idiag_src);
        diag_end(to, &msg.req.id.idiag_dport, msg.req.id.idiag_dst);
    }
    msg.req.id.idiag_cookie[0] = msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    if (__real_sendto(diag_fd, &msg, sizeof(msg), 0, (struct sockaddr *)&kernel, sizeof(kernel)) != sizeof(msg)) {
        return NULL;
    }
    static uint32_t buf[2048];
    ssize_t n = __real_recv(diag_fd, buf, sizeof(buf), 0);
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (n < (ssize_t)NLMSG_LENGTH(sizeof(struct inet_diag_msg)) || !NLMSG_OK(h, (size_t)n)
        || h->nlmsg_type != SOCK_DIAG_BY_FAMILY) {
        return NULL;  // an error: no such socket
    }
    *attrs_len = h->nlmsg_len - NLMSG_LENGTH(sizeof(struct inet_diag_msg));
    return NLMSG_DATA(h);
}

// The peer's end of a loopback connection: its queue, inode and tcp_info.
static bool peer_diag(const struct sockaddr_storage *me, const struct sockaddr_storage *peer, conn_t *c) {
    int len;
    struct inet_diag_msg *m = diag(IPPROTO_TCP, me, peer, &len);
    if (!m || m->idiag_state != 1) {  // TCP_ESTABLISHED
        return false;
    }
    c->peer_unread = m->idiag_rqueue;
    c->peer_inode = m->idiag_inode;
    for (struct rtattr *a = (struct rtattr *)(m + 1); RTA_OK(a, len); a = RTA_NEXT(a, len)) {
        if (a->rta_type == INET_DIAG_INFO && RTA_PAYLOAD(a) >= sizeof(struct tcp_info)) {
            memcpy(&c->peer, RTA_DATA(a), sizeof(struct tcp_info));
            return true;
        }
    }
    return false;
}

// Both ends of `fd`'s connection, if its peer is on this host over TCP.
static bool conn(int fd, conn_t *c) {
    struct sockaddr_storage me, peer;
    socklen_t ml = sizeof(me), pl = sizeof(peer), il = sizeof(c->me);
    int type;
    socklen_t tl = sizeof(type);
    return !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) && type == SOCK_STREAM
           && !getsockname(fd, (struct sockaddr *)&me, &ml) && !getpeername(fd, (struct sockaddr *)&peer, &pl)
           && (me.ss_family == AF_INET || me.ss_family == AF_INET6) && loopback(&peer)
           && !getsockopt(fd, IPPROTO_TCP, TCP_INFO, &c->me, &il) && il >= sizeof(c->me)
           && peer_diag(&me, &peer, c);
}

// Every byte one end wrote has reached the other (the unique bytes it sent, all received).
static bool arrived(const struct tcp_info *from, const struct tcp_info *to) {
    return !from->tcpi_notsent_bytes && from->tcpi_bytes_sent - from->tcpi_bytes_retrans == to->tcpi_bytes_received;
}

// The process holding socket `inode` (not this one), or 0.
static int holder(unsigned long inode) {
    char want[40], path[64], link[40];
    snprintf(want, sizeof(want), "socket:[%lu]", inode);
    int self = getpid(), pid = 0;
    DIR *proc = opendir("/proc");
    struct dirent *p;
    while (proc && !pid && (p = readdir(proc))) {
        int candidate = atoi(p->d_name);
        if (candidate <= 0 || candidate == self) {
            continue;
        }
        snprintf(path, sizeof(path), "/proc/%d/fd", candidate);
        DIR *fds = opendir(path);
        struct dirent *d;
        while (fds && !pid && (d = readdir(fds))) {
            snprintf(path, sizeof(path), "/proc/%d/fd/%.12s", candidate, d->d_name);
            ssize_t n = readlink(path, link, sizeof(link) - 1);
            if (n > 0) {
                link[n] = 0;
                pid = strcmp(link, want) ? 0 : candidate;
            }
        }
        if (fds) {
            closedir(fds);
        }
    }
    if (proc) {
        closedir(proc);
    }
    return pid;
}

// A peer's system call numbers are its own architecture's (this build may be 32-bit).
typedef struct {
    unsigned short machine;  // ELF e_machine
    long read, poll, select, ppoll, pselect6, futex, epoll_wait, epoll_pwait, recvfrom, recvmsg,
         accept, accept4;
} abi_t;

static const abi_t abis[] = {
    {62, 0, 7, 23, 271, 270, 202, 232, 281, 45, 47, 43, 288},           // x86_64
    {183, 63, -1, -1, 73, 72, 98, -1, 22, 207, 212, 202, 242},          // aarch64
};

static const abi_t *peer_abi(int pid) {
    char path[32];
    unsigned char h[20];
    snprintf(path, sizeof(path), "/proc/%d/exe", pid);
    FILE *f = fopen(path, "rb");
    bool got = f && fread(h, 1, sizeof(h), f) == sizeof(h);
    if (f) {
        fclose(f);
    }
    if (!got || memcmp(h, "\x7f" "ELF", 4) || h[4] != 2 || h[5] != 1) {  // 64-bit, little-endian
        return NULL;
    }
    for (size_t i = 0; i < sizeof(abis) / sizeof(abis[0]); i++) {
        if (abis[i].machine == (h[18] | h[19] << 8)) {
            return &abis[i];
        }
    }
    return NULL;
}

// A thread asleep in a wait that only input (or a timer QUIET_TIMER_MS away or more) ends.
static bool thread_quiet(int pid, const abi_t *abi, const char *tid) {
    char path[80], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/task/%.16s/stat", pid, tid);
    FILE *f = fopen(path, "r");
    bool got = f && fgets(buf, sizeof(buf), f);
    if (f) {
        fclose(f);
    }
    char *p = got ? strrchr(buf, ')') : NULL;
    if (!p || p[1] != ' ' || p[2] != 'S') {
        return false;  // runnable, or in the disk's hands
    }
    // "nr arg1 ... arg6 sp pc" while in a system call (readable by a process allowed to
    // trace it: otherwise not known to be quiet).
    snprintf(path, sizeof(path), "/proc/%d/task/%.16s/syscall", pid, tid);
    f = fopen(path, "r");
    got = f && fgets(buf, sizeof(buf), f);
    if (f) {
        fclose(f);
    }
    unsigned long long a[6];
    long nr;
    if (!got || sscanf(buf, "%ld %llx %llx %llx %llx %llx %llx", &nr, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]) != 7) {
        return false;
    }
    if (nr == abi->epoll_wait || nr == abi->epoll_pwait) {
        return (int)a[3] < 0 || (int)a[3] >= QUIET_TIMER_MS;
    }
    if (nr == abi->poll) {
        return (int)a[2] < 0 || (int)a[2] >= QUIET_TIMER_MS;
    }
    if (nr == abi->ppoll) {
        return a[2] == 0;  // a timer: its length is in the peer's memory
    }
    if (nr == abi->select || nr == abi->pselect6) {
        return a[4] == 0;
    }
    if (nr == abi->futex) {
        return a[3] == 0;  // an untimed lock: another thread of its own wakes it
    }
    // Blocking input; a sleep, a child, anything else: it may answer after it.
    return nr == abi->read || nr == abi->recvfrom || nr == abi->recvmsg || nr == abi->accept
           || nr == abi->accept4;
}

static bool process_quiet(int pid) {
    char path[32];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    const abi_t *abi = peer_abi(pid);
    DIR *tasks = abi ? opendir(path) : NULL;
    if (!tasks) {
        return false;
    }
    bool quiet = true;
    struct dirent *t;
    while (quiet && (t = readdir(tasks))) {
        if (t->d_name[0] != '.') {
            quiet = thread_quiet(pid, abi, t->d_name);
        }
    }
    closedir(tasks);
    return quiet;
}

// A datagram socket's destination, as the firmware sends to it.
void epx_sim_peer_sent(int fd, const struct sockaddr *to, socklen_t len) {
    if (fd >= 0 && fd < MAX_FD && to && len <= sizeof(peer_of[fd].to)) {
        memcpy(&peer_of[fd].to, to, len);
    }
}

// Nothing on this host is bound where a datagram socket sent: no answer can come.
static bool nobody_there(int fd) {
    struct sockaddr_storage me, to;
    socklen_t ml = sizeof(me), tl = sizeof(to);
    if (getpeername(fd, (struct sockaddr *)&to, &tl)) {
        to = peer_of[fd].to;  // not connected: where it last sent
    }
    if ((to.ss_family != AF_INET && to.ss_family != AF_INET6) || !loopback(&to)
        || getsockname(fd, (struct sockaddr *)&me, &ml) || me.ss_family != to.ss_family) {
        return false;
    }
    // Bound to any address, it sends from the loopback address it sends to.
    if (me.ss_family == AF_INET && !((struct sockaddr_in *)&me)->sin_addr.s_addr) {
        ((struct sockaddr_in *)&me)->sin_addr = ((struct sockaddr_in *)&to)->sin_addr;
    } else if (me.ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&((struct sockaddr_in6 *)&me)->sin6_addr)) {
        ((struct sockaddr_in6 *)&me)->sin6_addr = ((struct sockaddr_in6 *)&to)->sin6_addr;
    }
    int len;
    return !diag(IPPROTO_UDP, &me, &to, &len);
}

// The caller polls `fd` afterwards: an answer that arrived meanwhile is its to read.
bool epx_sim_peer_quiet(int fd) {
    conn_t c;
    struct stat st;
    int type;
    socklen_t tl = sizeof(type);
    if (fd >= 0 && fd < MAX_FD && !getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) && type == SOCK_DGRAM) {
        return nobody_there(fd);
    }
    if (fd < 0 || fd >= MAX_FD || fstat(fd, &st) || !conn(fd, &c) || !arrived(&c.me, &c.peer)
        || c.peer_unread) {
        return false;  // not a TCP peer on this host, or it has not read everything yet
    }
    if (peer_of[fd].ino != st.st_ino) {
        peer_of[fd].ino = st.st_ino;
        peer_of[fd].pid = holder(c.peer_inode);
    }
    // Everything was read before its threads were seen asleep; whatever it wrote before
    // falling asleep has then reached this end.
    return peer_of[fd].pid && process_quiet(peer_of[fd].pid) && conn(fd, &c)
           && arrived(&c.me, &c.peer) && !c.peer_unread && arrived(&c.peer, &c.me);
}
