// The kernel's floor for one unpipelined request/response over loopback TCP: a client and an
// echo server exchange MESSAGE_BYTES-byte messages, one in flight, and the client records each
// round trip. Client and server are pinned to CPUs given on the command line (same CPU or two).
//
//   cc -O2 -pthread -o pingpong pingpong.c
//   ./pingpong [round_trips=100000] [client_cpu=0] [server_cpu=1] [message_bytes=48]
//
// Prints p50/p90/p99/p99.9/max in microseconds.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int message_bytes = 48;
static int server_cpu = 1;
static int listen_fd;

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

static int read_full(int fd, char *buffer, int count) {
    int done = 0;
    while (done < count) {
        ssize_t n = read(fd, buffer + done, count - done);
        if (n <= 0) return -1;
        done += (int)n;
    }
    return 0;
}

static void *serve(void *unused) {
    (void)unused;
    pin(server_cpu);
    int fd = accept(listen_fd, NULL, NULL);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char buffer[4096];
    while (read_full(fd, buffer, message_bytes) == 0) {
        if (write(fd, buffer, message_bytes) != message_bytes) break;
    }
    close(fd);
    return NULL;
}

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    int round_trips = argc > 1 ? atoi(argv[1]) : 100000;
    int client_cpu = argc > 2 ? atoi(argv[2]) : 0;
    server_cpu = argc > 3 ? atoi(argv[3]) : 1;
    message_bytes = argc > 4 ? atoi(argv[4]) : 48;
    if (message_bytes < 1 || message_bytes > 4096 || round_trips < 1) {
        fprintf(stderr, "usage: pingpong [round_trips] [client_cpu] [server_cpu] [message_bytes<=4096]\n");
        return 2;
    }
    listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = 0};
    if (bind(listen_fd, (struct sockaddr *)&address, sizeof(address)) != 0 || listen(listen_fd, 1) != 0) {
        perror("bind/listen");
        return 1;
    }
    socklen_t length = sizeof(address);
    getsockname(listen_fd, (struct sockaddr *)&address, &length);
    pthread_t server;
    pthread_create(&server, NULL, serve, NULL);
    pin(client_cpu);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(fd, (struct sockaddr *)&address, sizeof(address)) != 0) {
        perror("connect");
        return 1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    char buffer[4096];
    memset(buffer, 7, sizeof(buffer));
    double *samples = malloc(sizeof(double) * round_trips);
    for (int i = 0; i < round_trips + 1000; i++) {
        double start = now_us();
        if (write(fd, buffer, message_bytes) != message_bytes || read_full(fd, buffer, message_bytes) != 0) {
            perror("round trip");
            return 1;
        }
        if (i >= 1000) samples[i - 1000] = now_us() - start;  // the first 1,000 warm up
    }
    close(fd);
    pthread_join(server, NULL);
    qsort(samples, round_trips, sizeof(double), compare);
    printf("pingpong %d B, client cpu %d, server cpu %d, %d round trips: p50 %.1f us, p90 %.1f us, p99 %.1f us, "
           "p99.9 %.1f us, max %.1f us\n",
           message_bytes, client_cpu, server_cpu, round_trips, samples[round_trips / 2],
           samples[(int)(round_trips * 0.9)], samples[(int)(round_trips * 0.99)],
           samples[(int)(round_trips * 0.999)], samples[round_trips - 1]);
    return 0;
}
