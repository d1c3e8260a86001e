// atpbench: a closed-loop load generator as cheap as redis-benchmark, for measuring atpd against
// Redis like for like. One file, C11, libc and Linux only:
//
//   cc -O2 -pthread -o atpbench tools/atpbench/atpbench.c
//   atpbench --self-test [--doc docs/PROTOCOL.md]
//   atpbench --protocol atp  --port 7411 --scenario query -c 50 -P 16 --seconds 5
//   atpbench --protocol resp --port 6379 --scenario query -c 50 -P 16 --seconds 5 --preload
//
// Protocols: `atp` (docs/PROTOCOL.md: 10-byte frame header, `hello` handshake with a token,
// request ids matched on the way back) and `resp` (Redis). Scenarios:
//   ping     atp ping                       | Redis PING
//   query    one random (location, SKU) cell | GET of one random key
//   batch    K random cells in one frame      | MGET of K random keys
//   reserve  reserve 1 unit of one of H hot SKUs at one location, unique reservation id, short ttl
//            | EVALSHA of a Lua script: GET stock, check >= n, DECRBY, SET reservation key PX ttl
// Keys are the cells of `atpd --demo` (SKU-00001..SKU-05000 x DC-EAST, DC-WEST, STORE-001..020):
// key index i is SKU (i / 22 + 1) at location (i % 22), so both sides draw from the same names.
// `--preload` stores in Redis exactly the cells the demo catalogue has (it skips the store cells
// the demo leaves empty), so both sides see the same hit ratio.
//
// Every connection keeps `-P` requests in flight (closed loop). Frames are encoded once: ping and
// reserve frames are templates whose request id, reservation-id counter and hot-SKU digits are
// patched in place; query frames are a pre-built header plus pre-encoded cell items copied from a
// table. Nothing is allocated per request. Every reply is checked (atp: opcode, flags, request id,
// payload shape; RESP: type) and a protocol desync stops the run with a message.
//
// Output: one `key=value` line (machine-parsable, prefixed `atpbench `) and one human line.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------------
// Small helpers

static void die(const char *format, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs("atpbench: ", stderr);
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    va_end(args);
    exit(2);
}

static inline uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void sleep_seconds(double seconds) {
    if (seconds <= 0) return;
    struct timespec t = {.tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

static inline uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

// A uniform index in [0, n) for n < 2^32 (Lemire's multiply-shift; the bias is negligible here).
static inline uint32_t random_below(uint64_t *state, uint32_t n) {
    return (uint32_t)(((splitmix64(state) >> 32) * (uint64_t)n) >> 32);
}

// Little-endian field writers and readers (docs/PROTOCOL.md §1).
static inline uint8_t *put_u8(uint8_t *p, uint8_t v) { *p = v; return p + 1; }
static inline uint8_t *put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); return p + 2; }
static inline uint8_t *put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
    return p + 4;
}
static inline uint8_t *put_u64(uint8_t *p, uint64_t v) { put_u32(p, (uint32_t)v); put_u32(p + 4, (uint32_t)(v >> 32)); return p + 8; }
static inline uint8_t *put_i64(uint8_t *p, int64_t v) { return put_u64(p, (uint64_t)v); }
static inline uint8_t *put_name(uint8_t *p, const char *s) {
    size_t n = strlen(s);
    if (n > 255) die("name longer than 255 bytes: %.40s...", s);
    *p++ = (uint8_t)n;
    memcpy(p, s, n);
    return p + n;
}
static inline uint8_t *put_blob(uint8_t *p, const void *s, size_t n) {
    p = put_u16(p, (uint16_t)n);
    memcpy(p, s, n);
    return p + n;
}
static inline uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t get_u32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static inline uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32; }
static inline int64_t get_i64(const uint8_t *p) { return (int64_t)get_u64(p); }
static inline int32_t get_i32(const uint8_t *p) { return (int32_t)get_u32(p); }

static const char hex_digits[] = "0123456789abcdef";
static inline void put_hex32(uint8_t *p, uint32_t v) {
    for (int i = 7; i >= 0; i--) { p[i] = (uint8_t)hex_digits[v & 15]; v >>= 4; }
}

static void hex_dump(FILE *out, const uint8_t *p, size_t n, size_t max) {
    for (size_t i = 0; i < n && i < max; i++) fprintf(out, "%02x%s", p[i], (i % 16 == 15) ? "\n" : " ");
    if (n > max) fprintf(out, "... (%zu bytes)", n);
    fputc('\n', out);
}

// ---------------------------------------------------------------------------------------------
// ATP wire format (docs/PROTOCOL.md)

enum {
    OP_NOTICE = 0x00, OP_HELLO = 0x01, OP_PING = 0x02, OP_QUERY = 0x10, OP_RESERVE = 0x20, OP_COMMIT = 0x21,
    OP_RELEASE = 0x22, OP_INGEST = 0x30, OP_REJECTION_LOG = 0x31, OP_CHANNEL_SET = 0x40, OP_CHANNEL_SHOW = 0x41,
    OP_CHANNEL_REMOVE = 0x42, OP_STATS = 0x50, OP_SNAPSHOT_NOW = 0x60,
};
enum { FLAG_REPLY = 0x01, FLAG_ERROR = 0x02 };
#define ATP_HEADER 10

static const char *const error_names[] = {
    "0?", "malformedFrame", "frameTooLarge", "unsupportedVersion", "unauthenticated", "forbidden", "batchTooLarge",
    "tooManyInFlight", "unknownOpcode", "invalidName", "invalidRequest", "serverBusy", "shuttingDown",
    "internalError", "notImplemented", "notFound", "replyTooLarge", "tooManyConnections", "notDurable",
};
static const char *error_name(unsigned code) {
    return code < sizeof(error_names) / sizeof(error_names[0]) ? error_names[code] : "unknown";
}
// §5: the codes after which the server closes the connection.
static bool error_closes(unsigned code) { return code == 1 || code == 2 || code == 3 || code == 4 || code == 12 || code == 17; }

// Starts a request frame at f; returns where the payload goes. atp_end fills in the length.
static uint8_t *atp_begin(uint8_t *f, uint8_t opcode, uint32_t request_id) {
    put_u32(f, 0);
    f[4] = opcode;
    f[5] = 0; // flags: request
    put_u32(f + 6, request_id);
    return f + ATP_HEADER;
}
static size_t atp_end(uint8_t *f, const uint8_t *end) {
    size_t n = (size_t)(end - f);
    put_u32(f, (uint32_t)(n - 4));
    return n;
}

// §7.1
static size_t enc_hello(uint8_t *f, uint32_t id, uint16_t version_min, uint16_t version_max, const char *token,
                        const char *client_name) {
    uint8_t *p = atp_begin(f, OP_HELLO, id);
    memcpy(p, "ATP1", 4);
    p += 4;
    p = put_u16(p, version_min);
    p = put_u16(p, version_max);
    p = put_blob(p, token, strlen(token));
    p = put_name(p, client_name);
    return atp_end(f, p);
}

// §7.2
static size_t enc_ping(uint8_t *f, uint32_t id, uint64_t nonce) {
    uint8_t *p = atp_begin(f, OP_PING, id);
    p = put_u64(p, nonce);
    return atp_end(f, p);
}

// §7.3: one query item. kind 1 cell (place = location), 2 SKU (place unused), 3 channel (place = channel).
static uint8_t *enc_query_item(uint8_t *p, uint8_t kind, const char *sku, const char *place) {
    p = put_u8(p, kind);
    p = put_name(p, sku);
    if (kind == 1 || kind == 3) p = put_name(p, place);
    return p;
}
struct query_item { uint8_t kind; const char *sku, *place; };
static uint8_t *enc_query_head(uint8_t *f, uint32_t id, uint8_t options, uint32_t count) {
    uint8_t *p = atp_begin(f, OP_QUERY, id);
    p = put_u8(p, options);
    return put_u32(p, count);
}
#define QUERY_HEAD 15 // header + options + count
static size_t enc_query(uint8_t *f, uint32_t id, uint8_t options, uint32_t count, const struct query_item *items) {
    uint8_t *p = enc_query_head(f, id, options, count);
    for (uint32_t i = 0; i < count; i++) p = enc_query_item(p, items[i].kind, items[i].sku, items[i].place);
    return atp_end(f, p);
}

// §7.4
struct reserve_line { const char *sku; uint8_t target; const char *place; int64_t quantity; };
static size_t enc_reserve(uint8_t *f, uint32_t id, const char *reservation_id, int64_t ttl_ms, uint8_t mode,
                          uint32_t line_count, const struct reserve_line *lines) {
    uint8_t *p = atp_begin(f, OP_RESERVE, id);
    p = put_name(p, reservation_id);
    p = put_i64(p, ttl_ms);
    p = put_u8(p, mode);
    p = put_u32(p, line_count);
    for (uint32_t i = 0; i < line_count; i++) {
        p = put_name(p, lines[i].sku);
        p = put_u8(p, lines[i].target);
        p = put_name(p, lines[i].place);
        p = put_i64(p, lines[i].quantity);
    }
    return atp_end(f, p);
}

// §7.5, §7.9, §7.10, §7.11: requests whose payload is one name.
static size_t enc_name_request(uint8_t *f, uint8_t opcode, uint32_t id, const char *name) {
    uint8_t *p = atp_begin(f, opcode, id);
    p = put_name(p, name);
    return atp_end(f, p);
}

// §7.6
enum { EV_INTO_QUARANTINE = 1, EV_CLOSES_INBOUND = 2, EV_COUNTS_DAMAGED = 4, EV_COUNTS_QUARANTINE = 8,
       EV_HAS_TO_LOCATION = 16, EV_HAS_CORRELATION = 32 };
struct event {
    uint8_t kind, flags, code;
    uint16_t reason_code;
    uint64_t sequence;
    int64_t quantity, event_time_ms;
    const char *sku, *location, *to_location, *correlation;
    int32_t count_damaged, count_quarantine;
};
static uint8_t *enc_event(uint8_t *p, const struct event *e) {
    p = put_u8(p, e->kind);
    p = put_u8(p, e->flags);
    p = put_u8(p, e->code);
    p = put_u16(p, e->reason_code);
    p = put_u64(p, e->sequence);
    p = put_i64(p, e->quantity);
    p = put_i64(p, e->event_time_ms);
    p = put_name(p, e->sku);
    p = put_name(p, e->location);
    if (e->flags & EV_HAS_TO_LOCATION) p = put_name(p, e->to_location);
    if (e->flags & EV_COUNTS_DAMAGED) p = put_u32(p, (uint32_t)e->count_damaged);
    if (e->flags & EV_COUNTS_QUARANTINE) p = put_u32(p, (uint32_t)e->count_quarantine);
    if (e->flags & EV_HAS_CORRELATION) p = put_name(p, e->correlation);
    return p;
}
static size_t enc_ingest(uint8_t *f, uint32_t id, const char *source, uint32_t count, const struct event *events) {
    uint8_t *p = atp_begin(f, OP_INGEST, id);
    p = put_name(p, source);
    p = put_u32(p, count);
    for (uint32_t i = 0; i < count; i++) p = enc_event(p, &events[i]);
    return atp_end(f, p);
}

// §7.7
static size_t enc_rejection_log(uint8_t *f, uint32_t id, uint64_t after, uint32_t limit) {
    uint8_t *p = atp_begin(f, OP_REJECTION_LOG, id);
    p = put_u64(p, after);
    p = put_u32(p, limit);
    return atp_end(f, p);
}

// §7.8
static size_t enc_channel_set(uint8_t *f, uint32_t id, const char *channel, int64_t buffer_units, uint8_t cap_percent,
                              uint32_t count, const char *const *locations) {
    uint8_t *p = atp_begin(f, OP_CHANNEL_SET, id);
    p = put_name(p, channel);
    p = put_i64(p, buffer_units);
    p = put_u8(p, cap_percent);
    p = put_u32(p, count);
    for (uint32_t i = 0; i < count; i++) p = put_name(p, locations[i]);
    return atp_end(f, p);
}

// §7.12
static size_t enc_snapshot_now(uint8_t *f, uint32_t id) { return atp_end(f, atp_begin(f, OP_SNAPSHOT_NOW, id)); }

// Checks the header of the frame at the start of `buffer` (`available` bytes). Returns the whole
// frame's size when it is complete, 0 when more bytes are needed, and -1 (with `why`) when the
// header cannot be a frame (§2).
static long atp_frame_size(const uint8_t *buffer, size_t available, uint32_t frame_bytes_max, const char **why) {
    if (available < 4) return 0;
    uint32_t length = get_u32(buffer);
    if (length < 6) { *why = "frame length below 6"; return -1; }
    if ((uint64_t)length + 4 > frame_bytes_max) { *why = "frame length above frameBytesMax"; return -1; }
    if (available < (size_t)length + 4) return 0;
    uint8_t flags = buffer[5];
    if (flags != FLAG_REPLY && flags != (FLAG_REPLY | FLAG_ERROR)) { *why = "reply flags are neither 0x01 nor 0x03"; return -1; }
    return (long)length + 4;
}

// §7.1 The shard map of a version-2 hello reply, and the hash that places a SKU on its shard.
#define OWNERS_MAX 256
struct shard_map {
    uint8_t placement;              // 0 server only, 1 name-hash
    uint16_t shard_count, owner_count, connection_owner;
    uint16_t ports[OWNERS_MAX];     // by owner; 0: no port of its own
    uint16_t shard_owner[4096];     // by shard
};

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xFF51AFD7ED558CCDull; x ^= x >> 33; x *= 0xC4CEB9FE1A85EC53ull; x ^= x >> 33;
    return x;
}
// hashBytes of docs/PROTOCOL.md §7.1: little-endian words, then the 1..7 remaining bytes as one word.
static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = 0;
        for (int b = 7; b >= 0; b--) w = w << 8 | p[i + (size_t)b];
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 29;
    }
    if (i < n) {
        uint64_t t = 0;
        for (size_t b = n; b > i; b--) t = t << 8 | p[b - 1];
        h = (h ^ t) * 0x94D049BB133111EBull;
    }
    return mix64(h);
}

// Parses the map at p (n bytes left); returns the bytes it took, or -1.
static long parse_shard_map(const uint8_t *p, size_t n, struct shard_map *m) {
    size_t at = 0;
    if (n < 5) return -1;
    m->placement = p[0];
    m->shard_count = get_u16(p + 1);
    m->owner_count = get_u16(p + 3);
    at = 5;
    if (m->shard_count < 1 || m->shard_count > 4096 || (m->shard_count & (m->shard_count - 1))) return -1;
    if (m->owner_count < 1 || m->owner_count > OWNERS_MAX) return -1;
    for (uint16_t o = 0; o < m->owner_count; o++) {
        if (at + 1 > n) return -1;
        size_t host = p[at];
        if (host != 0) return -1; // an owner on another host: not supported here
        if (at + 1 + host + 2 > n) return -1;
        m->ports[o] = get_u16(p + at + 1 + host);
        at += 1 + host + 2;
    }
    if (at + 2u * m->shard_count + 2 > n) return -1;
    for (uint16_t s = 0; s < m->shard_count; s++) {
        m->shard_owner[s] = get_u16(p + at + 2u * s);
        if (m->shard_owner[s] >= m->owner_count) return -1;
    }
    at += 2u * m->shard_count;
    m->connection_owner = get_u16(p + at);
    return (long)(at + 2);
}

// The owner of the SKU named `name` under a name-hash map.
static uint16_t owner_of_sku(const struct shard_map *m, const char *name) {
    uint64_t h = hash_bytes((const uint8_t *)name, strlen(name));
    return m->shard_owner[h & (uint64_t)(m->shard_count - 1)];
}

// §7.1 hello reply (version 2: with the shard map, stored in `map` when given).
struct hello_reply { uint16_t version; uint8_t roles; int64_t server_time_ms; uint32_t frame_bytes_max, batch_items_max, in_flight_max; };
static int parse_hello_reply(const uint8_t *payload, size_t n, struct hello_reply *r, struct shard_map *map) {
    if (n < 2 + 1 + 8 + 4 + 4 + 4) return -1;
    r->version = get_u16(payload);
    r->roles = payload[2];
    r->server_time_ms = get_i64(payload + 3);
    r->frame_bytes_max = get_u32(payload + 11);
    r->batch_items_max = get_u32(payload + 15);
    r->in_flight_max = get_u32(payload + 19);
    if (r->version < 2) return n == 23 ? 0 : -1;
    struct shard_map ignored;
    long taken = parse_shard_map(payload + 23, n - 23, map ? map : &ignored);
    return taken >= 0 && (size_t)taken == n - 23 ? 0 : -1;
}

// §5 error payload: code, then a text message.
static int parse_error(const uint8_t *payload, size_t n, uint16_t *code, const uint8_t **message, size_t *message_length) {
    if (n < 4) return -1;
    *code = get_u16(payload);
    size_t length = get_u16(payload + 2);
    if (4 + length != n) return -1;
    *message = payload + 4;
    *message_length = length;
    return 0;
}

// §7.3 reply without cells: checks its shape for `count` items and counts the answers whose
// status says `exists`. Returns -1 when the payload does not have that shape.
static long verify_query_reply(const uint8_t *payload, size_t n, uint32_t count) {
    if (n != 5 + (size_t)17 * count || payload[0] != 0 || get_u32(payload + 1) != count) return -1;
    long exists = 0;
    const uint8_t *status = payload + 5;
    for (uint32_t i = 0; i < count; i++, status += 17) exists += *status & 1;
    return exists;
}

// §7.3 reply with cells: the onHand bucket of each answer's first cell (0 when it has none).
static int parse_query_on_hand(const uint8_t *payload, size_t n, uint32_t count, int32_t *on_hand, uint8_t *status) {
    if (n < 5 || payload[0] != 1 || get_u32(payload + 1) != count) return -1;
    size_t at = 5;
    for (uint32_t i = 0; i < count; i++) {
        if (at + 21 > n) return -1;
        status[i] = payload[at];
        uint32_t cells = get_u32(payload + at + 17);
        at += 21;
        on_hand[i] = 0;
        for (uint32_t c = 0; c < cells; c++) {
            if (at + 1 > n) return -1;
            at += 1 + payload[at];       // location
            if (at + 1 + 32 > n) return -1;
            if (c == 0) on_hand[i] = get_i32(payload + at + 1);
            at += 1 + 32;                // status, 8 buckets
        }
    }
    return at == n ? 0 : -1;
}

// §7.4 reservation reply.
struct reservation_reply {
    const uint8_t *id; size_t id_length;
    uint8_t result, state, flags;
    int64_t expires_ms;
    uint32_t line_count;
    int64_t requested, granted; // sums over the lines
};
static int parse_reservation_reply(const uint8_t *payload, size_t n, struct reservation_reply *r) {
    if (n < 1) return -1;
    r->id_length = payload[0];
    r->id = payload + 1;
    size_t at = 1 + r->id_length;
    if (at + 15 > n) return -1;
    r->result = payload[at];
    r->state = payload[at + 1];
    r->flags = payload[at + 2];
    r->expires_ms = get_i64(payload + at + 3);
    r->line_count = get_u32(payload + at + 11);
    at += 15;
    r->requested = r->granted = 0;
    for (uint32_t l = 0; l < r->line_count; l++) {
        if (at + 20 > n) return -1;
        r->requested += get_i64(payload + at);
        r->granted += get_i64(payload + at + 8);
        uint32_t allocations = get_u32(payload + at + 16);
        at += 20;
        for (uint32_t a = 0; a < allocations; a++) {
            if (at + 1 > n) return -1;
            at += 1 + payload[at];
            if (at + 8 > n) return -1;
            at += 8;
        }
    }
    return at == n ? 0 : -1;
}

// §7.6 ingest reply.
struct ingest_reply { uint32_t applied, duplicates, rejected; uint32_t first_index; uint16_t first_reason; };
static int parse_ingest_reply(const uint8_t *payload, size_t n, struct ingest_reply *r) {
    if (n < 12) return -1;
    r->applied = get_u32(payload);
    r->duplicates = get_u32(payload + 4);
    r->rejected = get_u32(payload + 8);
    if (n != 12 + (size_t)6 * r->rejected) return -1;
    r->first_index = r->rejected ? get_u32(payload + 12) : 0;
    r->first_reason = r->rejected ? get_u16(payload + 16) : 0;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// RESP (Redis)

// Parses one RESP element at p (n bytes). Returns its size, 0 when incomplete, -1 when p does not
// start a RESP element. *type is its first byte; *value the integer, the bulk length (-1: nil) or
// the array count.
static long resp_element(const uint8_t *p, size_t n, uint8_t *type, int64_t *value) {
    if (n < 3) return 0;
    uint8_t t = p[0];
    if (t != '+' && t != '-' && t != ':' && t != '$' && t != '*') return -1;
    const uint8_t *newline = memchr(p, '\n', n);
    if (!newline) return 0;
    size_t line = (size_t)(newline - p) + 1;
    if (line < 3 || newline[-1] != '\r') return -1;
    *type = t;
    *value = 0;
    if (t == '+' || t == '-') return (long)line;
    bool negative = p[1] == '-';
    int64_t v = 0;
    for (const uint8_t *d = p + 1 + negative; d < newline - 1; d++) {
        if (*d < '0' || *d > '9') return -1;
        v = v * 10 + (*d - '0');
    }
    *value = negative ? -v : v;
    if (t != '$' || *value < 0) return (long)line;
    size_t total = line + (size_t)*value + 2;
    if (n < total) return 0;
    if (p[total - 2] != '\r' || p[total - 1] != '\n') return -1;
    return (long)total;
}

// ---------------------------------------------------------------------------------------------
// The demo catalogue (Sources/ATPServer/DemoCatalog.swift): SKU-00001..SKU-05000 at DC-EAST,
// DC-WEST, STORE-001..STORE-020; a store cell exists only when its demo quantity is not 0.

#define DEMO_LOCATIONS 22
#define DEMO_SKUS 5000
static char location_names[DEMO_LOCATIONS][24];

static void init_locations(void) {
    strcpy(location_names[0], "DC-EAST");
    strcpy(location_names[1], "DC-WEST");
    for (int s = 1; s <= 20; s++) snprintf(location_names[1 + s], sizeof(location_names[0]), "STORE-%03d", s);
}
// The demo's stock of SKU number `sku` (1-based) at location index `location`, 0 when the demo
// creates no cell there.
static int64_t demo_quantity(uint32_t sku, uint32_t location) {
    if (sku < 1 || sku > DEMO_SKUS) return 0;
    if (location < 2) return 50 + (int64_t)(sku * 7 + location * 13) % 200;
    return (int64_t)(sku + location * 3) % 9;
}
static void cell_names(uint32_t index, char *sku, const char **location) {
    snprintf(sku, 16, "SKU-%05u", index / DEMO_LOCATIONS + 1);
    *location = location_names[index % DEMO_LOCATIONS];
}

// ---------------------------------------------------------------------------------------------
// Configuration

enum { PROTOCOL_ATP, PROTOCOL_RESP };
enum { SCENARIO_PING, SCENARIO_QUERY, SCENARIO_BATCH, SCENARIO_RESERVE };
static const char *const scenario_names[] = {"ping", "query", "batch", "reserve"};

static struct {
    const char *host;
    int port;
    int protocol;
    int scenario;
    int threads, connections, pipeline;
    double seconds, warmup_seconds;
    uint32_t keyspace, batch, hot;
    int64_t ttl_ms;
    uint64_t seed;
    const char *token, *location, *doc;
    bool preload, self_test, quiet;
    int server_pid;
    bool perf;
    const char *label;
    bool shard_aware;
} cfg = {
    .host = "127.0.0.1", .port = -1, .protocol = PROTOCOL_ATP, .scenario = SCENARIO_PING, .threads = 1,
    .connections = 50, .pipeline = 1, .seconds = 5, .warmup_seconds = 1, .keyspace = DEMO_SKUS * DEMO_LOCATIONS,
    .batch = 1000, .hot = 1, .ttl_ms = 1000, .seed = 1, .token = "demo-admin", .location = "DC-EAST",
    .doc = NULL, .server_pid = 0,
};

// The shard map (--shard-aware) and, per owner, the keys (query, batch) and hot SKUs (reserve) it
// owns: a connection to owner o draws only those, so every request goes to the core that owns it.
static struct shard_map shard_map;
static uint32_t *keys_by_owner[OWNERS_MAX], key_count_by_owner[OWNERS_MAX];
static uint32_t *hot_by_owner[OWNERS_MAX], hot_count_by_owner[OWNERS_MAX];

// Limits from the server's hello reply (§6); defaults until then.
static uint32_t server_frame_bytes_max = 16u << 20, server_batch_items_max = 100000, server_in_flight_max = 1024;

static const uint32_t STOCK_TARGET = 1000000000; // units a hot atp cell is topped up to (quantityMax default)

// ---------------------------------------------------------------------------------------------
// Pre-encoded requests

// The largest pre-encoded key: atp kind + "SKU-00042" + "STORE-001" as names; RESP "$19\r\n" + key + "\r\n".
#define ATP_ITEM_MAX (1 + 1 + 9 + 1 + 9)
#define RESP_ITEM_MAX (1 + 2 + 2 + 19 + 2)
struct item_table { uint8_t *data; uint32_t *offset; uint8_t *length; };
static struct item_table items;          // one pre-encoded cell item / key per key index
static uint8_t request_head[64];         // what precedes the items of a query frame
static size_t request_head_length;
static size_t max_request_bytes;         // the largest frame one request can take
static char run_tag[9];                  // 8 hex digits, unique per run: reservation ids differ across runs
static char script_sha[41];              // EVALSHA script (resp reserve)
static char hot_digits[100000][5];       // "00001" .. for hot SKU numbers 1..H

static void build_items(void) {
    uint32_t n = cfg.keyspace;
    size_t per_item = cfg.protocol == PROTOCOL_ATP ? ATP_ITEM_MAX : RESP_ITEM_MAX;
    items.data = malloc((size_t)n * per_item);
    items.offset = malloc((size_t)n * sizeof(uint32_t));
    items.length = malloc(n);
    if (!items.data || !items.offset || !items.length) die("out of memory for %u keys", n);
    uint8_t *p = items.data;
    char sku[16];
    const char *location;
    for (uint32_t i = 0; i < n; i++) {
        cell_names(i, sku, &location);
        uint8_t *start = p;
        if (cfg.protocol == PROTOCOL_ATP) {
            p = enc_query_item(p, 1, sku, location);
        } else {
            char key[40];
            int k = snprintf(key, sizeof(key), "%s@%s", sku, location);
            p += sprintf((char *)p, "$%d\r\n%s\r\n", k, key);
        }
        items.offset[i] = (uint32_t)(start - items.data);
        items.length[i] = (uint8_t)(p - start);
    }
}

// --shard-aware: the keys and hot SKUs each owner owns (by the SKU's name, as the server places it).
static void build_owner_lists(void) {
    uint16_t owners = shard_map.owner_count;
    char sku[16];
    if (cfg.scenario == SCENARIO_QUERY || cfg.scenario == SCENARIO_BATCH) {
        uint32_t skus = (cfg.keyspace + DEMO_LOCATIONS - 1) / DEMO_LOCATIONS;
        uint16_t *owner_of = malloc(skus * sizeof(uint16_t));
        for (uint32_t n = 0; n < skus; n++) {
            snprintf(sku, sizeof(sku), "SKU-%05u", n + 1);
            owner_of[n] = owner_of_sku(&shard_map, sku);
        }
        for (uint16_t o = 0; o < owners; o++) keys_by_owner[o] = malloc(cfg.keyspace * sizeof(uint32_t));
        for (uint32_t key = 0; key < cfg.keyspace; key++) {
            uint16_t o = owner_of[key / DEMO_LOCATIONS];
            keys_by_owner[o][key_count_by_owner[o]++] = key;
        }
        free(owner_of);
    } else if (cfg.scenario == SCENARIO_RESERVE) {
        for (uint16_t o = 0; o < owners; o++) hot_by_owner[o] = malloc(cfg.hot * sizeof(uint32_t));
        for (uint32_t h = 0; h < cfg.hot; h++) {
            snprintf(sku, sizeof(sku), "SKU-%05u", h + 1);
            uint16_t o = owner_of_sku(&shard_map, sku);
            hot_by_owner[o][hot_count_by_owner[o]++] = h;
        }
    }
}

// --shard-aware: the owner connection `i` sends to: owners in turn, skipping owners without keys
// (hot SKUs) of the scenario.
static uint16_t owner_of_connection(int i) {
    uint16_t usable[OWNERS_MAX], count = 0;
    for (uint16_t o = 0; o < shard_map.owner_count; o++) {
        uint32_t has = cfg.scenario == SCENARIO_RESERVE ? hot_count_by_owner[o]
                     : (cfg.scenario == SCENARIO_QUERY || cfg.scenario == SCENARIO_BATCH) ? key_count_by_owner[o] : 1;
        if (has > 0) usable[count++] = o;
    }
    if (count == 0) die("--shard-aware: no core owns any key");
    return usable[i % count];
}

// Builds the request templates of the scenario.
static void build_requests(void) {
    uint32_t k = cfg.scenario == SCENARIO_BATCH ? cfg.batch : 1;
    if (cfg.scenario == SCENARIO_QUERY || cfg.scenario == SCENARIO_BATCH) {
        build_items();
        if (cfg.protocol == PROTOCOL_ATP) {
            request_head_length = (size_t)(enc_query_head(request_head, 0, 0, k) - request_head);
            max_request_bytes = request_head_length + (size_t)k * ATP_ITEM_MAX;
        } else if (cfg.scenario == SCENARIO_QUERY) {
            request_head_length = (size_t)sprintf((char *)request_head, "*2\r\n$3\r\nGET\r\n");
            max_request_bytes = request_head_length + RESP_ITEM_MAX;
        } else {
            request_head_length = (size_t)sprintf((char *)request_head, "*%u\r\n$4\r\nMGET\r\n", k + 1);
            max_request_bytes = request_head_length + (size_t)k * RESP_ITEM_MAX;
        }
    } else if (cfg.scenario == SCENARIO_PING) {
        if (cfg.protocol == PROTOCOL_ATP) {
            request_head_length = enc_ping(request_head, 0, 0);
        } else {
            request_head_length = (size_t)sprintf((char *)request_head, "*1\r\n$4\r\nPING\r\n");
        }
        max_request_bytes = request_head_length;
    } else {
        for (uint32_t h = 0; h < cfg.hot; h++) {
            char d[16];
            snprintf(d, sizeof(d), "%05u", h + 1);
            memcpy(hot_digits[h], d, 5);
        }
        max_request_bytes = 512; // the per-connection templates are built in make_reserve_template
    }
    if (cfg.shard_aware) build_owner_lists();
}

// Reservation ids: "bench-<run>-<connection>-<counter>", counter 8 hex digits patched per request.
struct reserve_template { uint8_t frame[512]; size_t length, counter_at, sku_at; };

static void make_reserve_template(struct reserve_template *t, int connection) {
    char reservation_id[64];
    snprintf(reservation_id, sizeof(reservation_id), "bench-%s-%04x-%08x", run_tag, connection & 0xffff, 0u);
    size_t counter_from_end = 8;
    if (cfg.protocol == PROTOCOL_ATP) {
        struct reserve_line line = {.sku = "SKU-00001", .target = 1, .place = cfg.location, .quantity = 1};
        t->length = enc_reserve(t->frame, 0, reservation_id, cfg.ttl_ms, 0, 1, &line);
        t->counter_at = ATP_HEADER + 1 + strlen(reservation_id) - counter_from_end;
        t->sku_at = ATP_HEADER + 1 + strlen(reservation_id) + 8 + 1 + 4 + 1 + 4; // "SKU-" digits
    } else {
        char stock_key[64], reservation_key[80], ttl[24];
        int sk = snprintf(stock_key, sizeof(stock_key), "stock:SKU-00001@%s", cfg.location);
        int rk = snprintf(reservation_key, sizeof(reservation_key), "res:%s", reservation_id);
        int tl = snprintf(ttl, sizeof(ttl), "%" PRId64, cfg.ttl_ms);
        char *f = (char *)t->frame;
        int at = sprintf(f, "*7\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n$1\r\n2\r\n$%d\r\n", script_sha, sk);
        t->sku_at = (size_t)at + strlen("stock:SKU-");
        at += sprintf(f + at, "%s\r\n$%d\r\n%s\r\n", stock_key, rk, reservation_key);
        t->counter_at = (size_t)at - 2 - counter_from_end;
        at += sprintf(f + at, "$1\r\n1\r\n$%d\r\n%s\r\n", tl, ttl);
        t->length = (size_t)at;
    }
}

// ---------------------------------------------------------------------------------------------
// Latency histogram: log-linear, 32 sub-buckets per power of two (about 3 % resolution), in ns.

#define HIST_BUCKETS (64 + 42 * 32)
static inline uint32_t hist_index(uint64_t v) {
    if (v < 64) return (uint32_t)v;
    if (v >= (1ull << 48)) v = (1ull << 48) - 1;
    uint32_t e = 63 - (uint32_t)__builtin_clzll(v);
    return 64 + (e - 6) * 32 + (uint32_t)((v >> (e - 5)) & 31);
}
static double hist_value(uint32_t i) { // the bucket's midpoint
    if (i < 64) return i;
    uint32_t e = (i - 64) / 32 + 6, s = (i - 64) % 32;
    double width = (double)(1ull << (e - 5));
    return (double)(32 + s) * width + width / 2;
}

// ---------------------------------------------------------------------------------------------
// Connections and workers

struct stats {
    uint64_t replies;       // replies of any kind
    uint64_t answers;       // items answered (batch: K per good reply)
    uint64_t errors;        // error replies, unexpected replies
    uint64_t hits;          // query items that found their cell / key
    uint64_t granted, shorts, replayed, other; // reserve outcomes
    uint64_t error_codes[32];
    uint64_t histogram[HIST_BUCKETS];
};

struct connection {
    int fd, index;
    uint8_t *out; size_t out_length, out_sent, out_capacity;
    uint8_t *in; size_t in_length, in_capacity;
    uint32_t outstanding;    // requests encoded and not yet answered
    uint32_t sequence;       // requests made (request-id high bits, reservation counter)
    uint64_t random;
    bool writable_armed;
    // atp: in-flight slots; request id = sequence << 16 | slot
    uint64_t *slot_sent;
    uint32_t *slot_id;
    uint16_t *free_slots;
    uint32_t free_count;
    // resp: replies come in order; a ring of send times
    uint64_t *ring;
    uint32_t ring_mask, ring_head, ring_tail;
    int64_t array_left, array_count;
    uint64_t array_hits;
    bool array_bad;
    struct reserve_template *reserve;
    // --shard-aware: the keys (query, batch) or hot SKU numbers (reserve) of this connection's owner
    const uint32_t *keys;
    uint32_t key_count;
};

struct worker {
    pthread_t thread;
    int epoll_fd;
    struct connection **connections;
    int count;
    struct stats stats __attribute__((aligned(64)));
};

static _Atomic int phase; // 0 warm-up, 1 measuring, 2 stop
static char first_error_text[256];
static atomic_flag first_error_taken = ATOMIC_FLAG_INIT;

static void note_error_text(const char *prefix, const uint8_t *text, size_t n) {
    if (atomic_flag_test_and_set(&first_error_taken)) return;
    if (n > 160) n = 160;
    int at = snprintf(first_error_text, sizeof(first_error_text), "%s", prefix);
    for (size_t i = 0; i < n && at < (int)sizeof(first_error_text) - 1; i++) {
        uint8_t c = text[i];
        first_error_text[at++] = (c >= 32 && c < 127) ? (char)c : '.';
    }
    first_error_text[at] = 0;
}

static void desync(struct connection *c, const char *why, const uint8_t *at, size_t n) __attribute__((noreturn));
static void desync(struct connection *c, const char *why, const uint8_t *at, size_t n) {
    fprintf(stderr, "atpbench: protocol desync on connection %d: %s; bytes at the reply:\n", c->index, why);
    hex_dump(stderr, at, n, 64);
    exit(3);
}

static void set_interest(struct worker *w, struct connection *c, bool writable) {
    struct epoll_event event = {.events = EPOLLIN | (writable ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(w->epoll_fd, EPOLL_CTL_MOD, c->fd, &event) != 0) die("epoll_ctl: %s", strerror(errno));
    c->writable_armed = writable;
}

static void flush(struct worker *w, struct connection *c) {
    while (c->out_sent < c->out_length) {
        ssize_t n = send(c->fd, c->out + c->out_sent, c->out_length - c->out_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) { c->out_sent += (size_t)n; continue; }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!c->writable_armed) set_interest(w, c, true);
            return;
        }
        if (atomic_load_explicit(&phase, memory_order_relaxed) == 2) return;
        die("connection %d: send: %s", c->index, n == 0 ? "no progress" : strerror(errno));
    }
    c->out_length = c->out_sent = 0;
    if (c->writable_armed) set_interest(w, c, false);
}

// Appends one request to the connection's output; `sent` is its send time.
static inline void encode_one(struct connection *c, uint64_t sent) {
    uint8_t *f = c->out + c->out_length;
    size_t n;
    uint32_t id = 0;
    if (cfg.protocol == PROTOCOL_ATP) {
        uint32_t slot = c->free_slots[--c->free_count];
        id = (c->sequence << 16) | slot;
        c->slot_id[slot] = id;
        c->slot_sent[slot] = sent;
    } else {
        c->ring[c->ring_head++ & c->ring_mask] = sent;
    }
    switch (cfg.scenario) {
    case SCENARIO_PING:
        memcpy(f, request_head, request_head_length);
        if (cfg.protocol == PROTOCOL_ATP) {
            put_u32(f + 6, id);
            put_u64(f + ATP_HEADER, id); // nonce: the reply must echo it
        }
        n = request_head_length;
        break;
    case SCENARIO_QUERY:
    case SCENARIO_BATCH: {
        uint32_t k = cfg.scenario == SCENARIO_BATCH ? cfg.batch : 1;
        memcpy(f, request_head, request_head_length);
        uint8_t *p = f + request_head_length;
        for (uint32_t i = 0; i < k; i++) {
            uint32_t key = c->keys ? c->keys[random_below(&c->random, c->key_count)] : random_below(&c->random, cfg.keyspace);
            memcpy(p, items.data + items.offset[key], items.length[key]);
            p += items.length[key];
        }
        n = (size_t)(p - f);
        if (cfg.protocol == PROTOCOL_ATP) {
            put_u32(f, (uint32_t)(n - 4));
            put_u32(f + 6, id);
        }
        break;
    }
    default: { // reserve
        struct reserve_template *t = c->reserve;
        memcpy(f, t->frame, t->length);
        put_hex32(f + t->counter_at, c->sequence);
        if (c->keys) memcpy(f + t->sku_at, hot_digits[c->keys[random_below(&c->random, c->key_count)]], 5);
        else if (cfg.hot > 1) memcpy(f + t->sku_at, hot_digits[random_below(&c->random, cfg.hot)], 5);
        if (cfg.protocol == PROTOCOL_ATP) put_u32(f + 6, id);
        n = t->length;
        break;
    }
    }
    c->sequence++;
    c->out_length += n;
    c->outstanding++;
}

// Tops the connection up to `-P` requests in flight and sends them.
static void fill(struct worker *w, struct connection *c) {
    if (atomic_load_explicit(&phase, memory_order_relaxed) == 2) return;
    if (c->outstanding >= (uint32_t)cfg.pipeline) return;
    if (c->out_sent > 0) { // rare: a partial send left bytes behind
        memmove(c->out, c->out + c->out_sent, c->out_length - c->out_sent);
        c->out_length -= c->out_sent;
        c->out_sent = 0;
    }
    uint64_t sent = now_ns();
    while (c->outstanding < (uint32_t)cfg.pipeline) encode_one(c, sent);
    flush(w, c);
}

// One atp reply frame f of n bytes.
static void atp_reply(struct connection *c, struct stats *s, bool measuring, const uint8_t *f, size_t n, uint64_t now) {
    uint8_t opcode = f[4], flags = f[5];
    uint32_t id = get_u32(f + 6);
    const uint8_t *payload = f + ATP_HEADER;
    size_t payload_length = n - ATP_HEADER;
    if (opcode == OP_NOTICE) {
        uint16_t code = 0;
        const uint8_t *message = NULL;
        size_t length = 0;
        if (parse_error(payload, payload_length, &code, &message, &length) != 0) desync(c, "unreadable notice", f, n);
        fprintf(stderr, "atpbench: connection %d: server notice %u %s: %.*s\n", c->index, code, error_name(code),
                (int)length, (const char *)message);
        exit(3);
    }
    static const uint8_t expected_opcode[] = {OP_PING, OP_QUERY, OP_QUERY, OP_RESERVE};
    if (opcode != expected_opcode[cfg.scenario]) desync(c, "reply opcode differs from the request's", f, n);
    uint32_t slot = id & 0xffff;
    if (slot >= (uint32_t)cfg.pipeline || c->slot_sent[slot] == 0 || c->slot_id[slot] != id)
        desync(c, "reply to a request id that is not in flight", f, n);
    uint64_t latency = now - c->slot_sent[slot];
    c->slot_sent[slot] = 0;
    c->free_slots[c->free_count++] = (uint16_t)slot;
    c->outstanding--;
    if (measuring) {
        s->replies++;
        s->histogram[hist_index(latency)]++;
    }
    if (flags & FLAG_ERROR) {
        uint16_t code = 0;
        const uint8_t *message = NULL;
        size_t length = 0;
        if (parse_error(payload, payload_length, &code, &message, &length) != 0) desync(c, "unreadable error reply", f, n);
        if (error_closes(code)) {
            fprintf(stderr, "atpbench: connection %d: error %u %s (the server closes): %.*s\n", c->index, code,
                    error_name(code), (int)length, (const char *)message);
            exit(3);
        }
        if (measuring) { s->errors++; s->error_codes[code < 32 ? code : 31]++; }
        char prefix[64];
        snprintf(prefix, sizeof(prefix), "atp error %u %s: ", code, error_name(code));
        note_error_text(prefix, message, length);
        return;
    }
    switch (cfg.scenario) {
    case SCENARIO_PING:
        if (payload_length != 16 || get_u64(payload) != id) desync(c, "ping reply does not echo the nonce", f, n);
        if (measuring) s->answers++;
        break;
    case SCENARIO_QUERY:
    case SCENARIO_BATCH: {
        uint32_t k = cfg.scenario == SCENARIO_BATCH ? cfg.batch : 1;
        long exists = verify_query_reply(payload, payload_length, k);
        if (exists < 0) desync(c, "query reply does not have the request's item count", f, n);
        if (measuring) { s->answers += k; s->hits += (uint64_t)exists; }
        break;
    }
    default: {
        struct reservation_reply r;
        if (parse_reservation_reply(payload, payload_length, &r) != 0 || r.id_length != c->reserve->frame[ATP_HEADER])
            desync(c, "unreadable reservation reply", f, n);
        if (!measuring) break;
        s->answers++;
        if (r.flags & 1) s->replayed++;
        if (r.result == 0 && r.state == 1 && r.granted == 1) s->granted++;
        else if (r.result == 0 && r.state == 5) s->shorts++;
        else s->other++;
        break;
    }
    }
}

// One complete RESP reply: its top-level type and value (arrays: count, hits, bad members).
static void resp_reply(struct connection *c, struct stats *s, bool measuring, uint8_t type, int64_t value,
                       const uint8_t *at, size_t n, uint64_t now) {
    if (c->ring_tail == c->ring_head) desync(c, "reply without a request in flight", at, n);
    uint64_t latency = now - c->ring[c->ring_tail++ & c->ring_mask];
    c->outstanding--;
    if (measuring) {
        s->replies++;
        s->histogram[hist_index(latency)]++;
    }
    bool good;
    switch (cfg.scenario) {
    case SCENARIO_PING: good = type == '+'; if (good && measuring) s->answers++; break;
    case SCENARIO_QUERY:
        good = type == '$';
        if (good && measuring) { s->answers++; s->hits += value >= 0; }
        break;
    case SCENARIO_BATCH:
        good = type == '*' && value == (int64_t)cfg.batch && !c->array_bad;
        if (good && measuring) { s->answers += cfg.batch; s->hits += c->array_hits; }
        break;
    default:
        good = type == ':' && (value == 0 || value == 1);
        if (good && measuring) {
            s->answers++;
            if (value == 1) s->granted++; else s->shorts++;
        }
        break;
    }
    if (!good) {
        if (measuring) s->errors++;
        note_error_text(type == '-' ? "redis error: " : "unexpected redis reply: ", at, n);
    }
}

static size_t resp_replies(struct connection *c, struct stats *s, bool measuring, uint64_t now) {
    size_t at = 0;
    while (at < c->in_length) {
        uint8_t type;
        int64_t value;
        long size = resp_element(c->in + at, c->in_length - at, &type, &value);
        if (size == 0) break;
        if (size < 0) desync(c, "not a RESP reply", c->in + at, c->in_length - at);
        const uint8_t *element = c->in + at;
        at += (size_t)size;
        if (c->array_left > 0) { // a member of an MGET reply
            if (type != '$') c->array_bad = true;
            else c->array_hits += value >= 0;
            if (--c->array_left == 0) resp_reply(c, s, measuring, '*', c->array_count, element, (size_t)size, now);
            continue;
        }
        if (type == '*' && value > 0) {
            c->array_left = c->array_count = value;
            c->array_hits = 0;
            c->array_bad = false;
            continue;
        }
        resp_reply(c, s, measuring, type, value, element, (size_t)size, now);
    }
    return at;
}

static size_t atp_replies(struct connection *c, struct stats *s, bool measuring, uint64_t now) {
    size_t at = 0;
    for (;;) {
        const char *why = NULL;
        long size = atp_frame_size(c->in + at, c->in_length - at, server_frame_bytes_max, &why);
        if (size == 0) break;
        if (size < 0) desync(c, why, c->in + at, c->in_length - at);
        atp_reply(c, s, measuring, c->in + at, (size_t)size, now);
        at += (size_t)size;
    }
    return at;
}

static void readable(struct worker *w, struct connection *c) {
    for (;;) {
        size_t room = c->in_capacity - c->in_length;
        if (room == 0) die("connection %d: a reply does not fit in %zu bytes", c->index, c->in_capacity);
        ssize_t n = recv(c->fd, c->in + c->in_length, room, MSG_DONTWAIT);
        if (n == 0) {
            if (atomic_load_explicit(&phase, memory_order_relaxed) == 2) return;
            fprintf(stderr, "atpbench: connection %d: the server closed the connection\n", c->index);
            exit(3);
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            if (atomic_load_explicit(&phase, memory_order_relaxed) == 2) return;
            die("connection %d: recv: %s", c->index, strerror(errno));
        }
        c->in_length += (size_t)n;
        uint64_t now = now_ns();
        bool measuring = atomic_load_explicit(&phase, memory_order_relaxed) == 1;
        size_t used = cfg.protocol == PROTOCOL_ATP ? atp_replies(c, &w->stats, measuring, now)
                                                   : resp_replies(c, &w->stats, measuring, now);
        if (used > 0) {
            memmove(c->in, c->in + used, c->in_length - used);
            c->in_length -= used;
        }
        if ((size_t)n < room) break; // the socket is most likely drained
    }
    fill(w, c);
}

static void *worker_main(void *argument) {
    struct worker *w = argument;
    for (int i = 0; i < w->count; i++) fill(w, w->connections[i]);
    struct epoll_event events[128];
    while (atomic_load_explicit(&phase, memory_order_relaxed) != 2) {
        int n = epoll_wait(w->epoll_fd, events, 128, 50);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int i = 0; i < n; i++) {
            struct connection *c = events[i].data.ptr;
            if (events[i].events & EPOLLOUT) flush(w, c);
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(w, c);
        }
    }
    return NULL;
}

// ---------------------------------------------------------------------------------------------
// Blocking set-up I/O (handshake, preload, stock top-up)

#define SETUP_TIMEOUT_SECONDS 10
static int connect_to_port(int port_number) {
    char port[16];
    snprintf(port, sizeof(port), "%d", port_number);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *list = NULL;
    int status = getaddrinfo(cfg.host, port, &hints, &list);
    if (status != 0) die("%s: %s", cfg.host, gai_strerror(status));
    int fd = -1;
    for (struct addrinfo *a = list; a; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0) continue;
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(list);
    if (fd < 0) die("cannot connect to %s:%d: %s", cfg.host, port_number, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval timeout = {.tv_sec = SETUP_TIMEOUT_SECONDS}; // set-up reads only; the load path never blocks
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    return fd;
}
static int connect_to(void) { return connect_to_port(cfg.port); }

static void write_all(int fd, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) die("send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

struct reader { int fd; uint8_t *buffer; size_t length, capacity; };

static void reader_fill(struct reader *r) {
    if (r->length == r->capacity) {
        r->capacity *= 2;
        r->buffer = realloc(r->buffer, r->capacity);
        if (!r->buffer) die("out of memory");
    }
    ssize_t n = recv(r->fd, r->buffer + r->length, r->capacity - r->length, 0);
    if (n == 0) die("the server closed the connection during set-up (is %s:%d an %s server?)", cfg.host, cfg.port,
                    cfg.protocol == PROTOCOL_ATP ? "atpd" : "Redis");
    if (n < 0 && errno == EINTR) return;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        die("no reply within %d s during set-up (is %s:%d an %s server?)", SETUP_TIMEOUT_SECONDS, cfg.host, cfg.port,
            cfg.protocol == PROTOCOL_ATP ? "atpd" : "Redis");
    if (n < 0) die("recv during set-up: %s", strerror(errno));
    r->length += (size_t)n;
}
static void reader_consume(struct reader *r, size_t n) {
    memmove(r->buffer, r->buffer + n, r->length - n);
    r->length -= n;
}

// Reads one atp frame into frame (malloc'd by the caller's reader); returns its size.
static size_t atp_read_frame(struct reader *r, uint8_t **frame) {
    for (;;) {
        if (r->length >= 4) {
            uint32_t length = get_u32(r->buffer);
            if (length < 6 || (uint64_t)length + 4 > server_frame_bytes_max) die("set-up: bad frame length %u", length);
            if (r->length >= (size_t)length + 4) {
                *frame = malloc(length + 4);
                memcpy(*frame, r->buffer, length + 4);
                reader_consume(r, length + 4);
                return length + 4;
            }
        }
        reader_fill(r);
    }
}

// Sends an atp request and returns its reply's payload (malloc'd); dies on an error reply.
static uint8_t *atp_call(struct reader *r, const uint8_t *request, size_t n, size_t *payload_length, const char *what) {
    write_all(r->fd, request, n);
    uint8_t *f = NULL;
    size_t size = atp_read_frame(r, &f);
    if (f[5] & FLAG_ERROR) {
        uint16_t code = 0;
        const uint8_t *message = NULL;
        size_t length = 0;
        parse_error(f + ATP_HEADER, size - ATP_HEADER, &code, &message, &length);
        die("%s: error %u %s: %.*s", what, code, error_name(code), (int)length, (const char *)message);
    }
    if (f[4] != request[4] || f[5] != FLAG_REPLY || get_u32(f + 6) != get_u32(request + 6))
        die("%s: the reply does not match the request (opcode 0x%02x flags 0x%02x)", what, f[4], f[5]);
    *payload_length = size - ATP_HEADER;
    memmove(f, f + ATP_HEADER, *payload_length);
    return f;
}

// Opens a connection to `port` and says hello (§3), asking for version 2 (the shard map, stored in
// `map` when given) with --shard-aware; returns the roles granted.
static int atp_connect_port(struct reader *r, struct hello_reply *hello, int port, struct shard_map *map) {
    r->fd = connect_to_port(port);
    uint8_t frame[2048];
    if (strlen(cfg.token) > 1024) die("token longer than 1,024 bytes");
    size_t n = enc_hello(frame, 1, 1, cfg.shard_aware ? 2 : 1, cfg.token, "atpbench");
    size_t payload_length;
    uint8_t *payload = atp_call(r, frame, n, &payload_length, "hello");
    if (parse_hello_reply(payload, payload_length, hello, map) != 0) die("hello: unreadable reply");
    free(payload);
    return hello->roles;
}
static int atp_connect(struct reader *r, struct hello_reply *hello) { return atp_connect_port(r, hello, cfg.port, NULL); }

static void reader_init(struct reader *r) {
    r->capacity = 1 << 16;
    r->buffer = malloc(r->capacity);
    r->length = 0;
}

// Reads one complete RESP reply; returns its type, and for a bulk string its text in `text`.
static uint8_t resp_read_reply(struct reader *r, int64_t *value, char *text, size_t text_capacity) {
    for (;;) {
        size_t at = 0;
        int64_t members = 0;
        uint8_t type = 0, top = 0;
        int64_t v = 0, top_value = 0;
        bool complete = false;
        if (text) text[0] = 0;
        for (bool first = true; at < r->length;) {
            long size = resp_element(r->buffer + at, r->length - at, &type, &v);
            if (size < 0) die("set-up: not a RESP reply");
            if (size == 0) break;
            if (first) {
                top = type;
                top_value = v;
                if ((type == '$' || type == '+' || type == '-') && text) {
                    const uint8_t *body = r->buffer + at + (type == '$' ? (size_t)size - (size_t)(v < 0 ? 0 : v) - 2 : 1);
                    size_t length = type == '$' ? (size_t)(v < 0 ? 0 : v) : (size_t)size - 3;
                    if (length >= text_capacity) length = text_capacity - 1;
                    memcpy(text, body, length);
                    text[length] = 0;
                }
                members = type == '*' && v > 0 ? v : 0;
                first = false;
            } else {
                members--;
            }
            at += (size_t)size;
            if (members == 0) { complete = true; break; }
        }
        if (complete) {
            reader_consume(r, at);
            *value = top_value;
            return top;
        }
        reader_fill(r);
    }
}

// Sends a RESP command built from argv-style strings.
static size_t resp_command(uint8_t *out, int argc, const char *const *argv) {
    size_t at = (size_t)sprintf((char *)out, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) at += (size_t)sprintf((char *)out + at, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
    return at;
}

static const char reserve_script[] =
    "local s = tonumber(redis.call('GET', KEYS[1]) or '0')\n"
    "local n = tonumber(ARGV[1])\n"
    "if s < n then return 0 end\n"
    "redis.call('DECRBY', KEYS[1], n)\n"
    "redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])\n"
    "return 1\n";

// Redis set-up: preload the cells (query, batch), or load the script and the stock (reserve).
static void resp_setup(void) {
    struct reader r;
    reader_init(&r);
    r.fd = connect_to();
    int64_t value;
    char text[256];
    uint8_t *command = malloc(1 << 20);
    if (cfg.scenario == SCENARIO_RESERVE) {
        const char *load[] = {"SCRIPT", "LOAD", reserve_script};
        write_all(r.fd, command, resp_command(command, 3, load));
        if (resp_read_reply(&r, &value, text, sizeof(text)) != '$' || strlen(text) != 40) die("SCRIPT LOAD: %s", text);
        memcpy(script_sha, text, 41);
        for (uint32_t h = 0; h < cfg.hot; h++) {
            char key[64];
            snprintf(key, sizeof(key), "stock:SKU-%05u@%s", h + 1, cfg.location);
            const char *set[] = {"SET", key, "1000000000000000"};
            write_all(r.fd, command, resp_command(command, 3, set));
            if (resp_read_reply(&r, &value, text, sizeof(text)) != '+') die("SET %s: %s", key, text);
        }
        if (!cfg.quiet) fprintf(stderr, "atpbench: redis: script %s loaded, stock of %u hot key(s) set to 1e15\n", script_sha, cfg.hot);
    } else if (cfg.preload && (cfg.scenario == SCENARIO_QUERY || cfg.scenario == SCENARIO_BATCH)) {
        uint64_t stored = 0;
        uint32_t i = 0;
        while (i < cfg.keyspace) {
            size_t at = 0;
            int pairs = 0;
            char header[32];
            at = 64; // room for the array header, moved into place below
            for (; i < cfg.keyspace && pairs < 1000; i++) {
                uint32_t sku = i / DEMO_LOCATIONS + 1, location = i % DEMO_LOCATIONS;
                int64_t quantity = sku <= DEMO_SKUS ? demo_quantity(sku, location) : 1;
                if (quantity == 0) continue; // the demo has no such cell: a miss on both sides
                char key[40], number[24];
                int k = snprintf(key, sizeof(key), "SKU-%05u@%s", sku, location_names[location]);
                int q = snprintf(number, sizeof(number), "%" PRId64, quantity);
                at += (size_t)sprintf((char *)command + at, "$%d\r\n%s\r\n$%d\r\n%s\r\n", k, key, q, number);
                pairs++;
            }
            if (pairs == 0) continue;
            int h = snprintf(header, sizeof(header), "*%d\r\n$4\r\nMSET\r\n", 1 + 2 * pairs);
            memcpy(command + 64 - h, header, (size_t)h);
            write_all(r.fd, command + 64 - h, at - 64 + (size_t)h);
            if (resp_read_reply(&r, &value, text, sizeof(text)) != '+') die("MSET: %s", text);
            stored += (uint64_t)pairs;
        }
        if (!cfg.quiet) fprintf(stderr, "atpbench: redis: preloaded %" PRIu64 " of %u keys (the cells atpd --demo has)\n", stored, cfg.keyspace);
    }
    free(command);
    close(r.fd);
    free(r.buffer);
}

// atp set-up for reserve: tops the hot cells up to STOCK_TARGET units with one receive event each,
// so that stock never runs out and every reservation does the same work.
static void atp_setup(void) {
    struct reader r;
    reader_init(&r);
    struct hello_reply hello;
    int roles = atp_connect_port(&r, &hello, cfg.port, &shard_map);
    if (cfg.shard_aware) {
        if (hello.version < 2) die("--shard-aware: the server speaks protocol version %u, which has no shard map", hello.version);
        if (shard_map.placement != 1)
            die("--shard-aware: the server's placement %u is not name-hash (a data directory from before name placement?)",
                shard_map.placement);
        for (uint16_t o = 0; o < shard_map.owner_count; o++)
            if (shard_map.ports[o] == 0)
                die("--shard-aware: core %u has no port of its own: start atpd with --thread-per-core --core-port-base N", o);
        if (!cfg.quiet) {
            fprintf(stderr, "atpbench: shard map: %u shards over %u cores, ports", shard_map.shard_count, shard_map.owner_count);
            for (uint16_t o = 0; o < shard_map.owner_count; o++) fprintf(stderr, " %u", shard_map.ports[o]);
            fprintf(stderr, "\n");
        }
    }
    server_frame_bytes_max = hello.frame_bytes_max;
    server_batch_items_max = hello.batch_items_max;
    server_in_flight_max = hello.in_flight_max;
    bool admin = roles & 0x08;
    if (cfg.scenario == SCENARIO_QUERY || cfg.scenario == SCENARIO_BATCH) {
        if (!(roles & 0x01) && !admin) die("the token lacks the query role (roles 0x%02x); try --token demo-query", roles);
        if (cfg.batch > server_batch_items_max) die("--batch %u exceeds the server's batchItemsMax %u", cfg.batch, server_batch_items_max);
        if (cfg.keyspace > DEMO_SKUS * DEMO_LOCATIONS && !cfg.quiet)
            fprintf(stderr, "atpbench: note: keys past %u are cells the demo catalogue does not have\n", DEMO_SKUS * DEMO_LOCATIONS);
    }
    if ((uint32_t)cfg.pipeline > server_in_flight_max && !cfg.quiet)
        fprintf(stderr, "atpbench: note: -P %d exceeds inFlightRequestsMax %u: the server will apply back-pressure\n",
                cfg.pipeline, server_in_flight_max);
    if (cfg.scenario == SCENARIO_RESERVE) {
        if (!(roles & 0x02) && !admin) die("the token lacks the reserve role (roles 0x%02x); try --token demo-admin", roles);
        if (!(roles & 0x04) && !admin) die("the token lacks the ingest role needed to top the stock up; try --token demo-admin");
        uint32_t h = cfg.hot;
        struct query_item *query = calloc(h, sizeof(*query));
        char (*skus)[16] = calloc(h, 16);
        for (uint32_t i = 0; i < h; i++) {
            snprintf(skus[i], 16, "SKU-%05u", i + 1);
            query[i] = (struct query_item){.kind = 1, .sku = skus[i], .place = cfg.location};
        }
        uint8_t *frame = malloc(64 + (size_t)h * 200);
        size_t n = enc_query(frame, 2, 1 /* includeCells */, h, query);
        size_t payload_length;
        uint8_t *payload = atp_call(&r, frame, n, &payload_length, "query of the hot cells");
        int32_t *on_hand = calloc(h, sizeof(int32_t));
        uint8_t *status = calloc(h, 1);
        if (parse_query_on_hand(payload, payload_length, h, on_hand, status) != 0) die("query of the hot cells: unreadable reply");
        free(payload);
        struct event *events = calloc(h, sizeof(*events));
        uint32_t count = 0;
        for (uint32_t i = 0; i < h; i++) {
            if (on_hand[i] >= (int32_t)(STOCK_TARGET / 2)) continue;
            events[count++] = (struct event){.kind = 1, .sequence = count + 1, .quantity = STOCK_TARGET - on_hand[i],
                                             .sku = skus[i], .location = cfg.location};
        }
        if (count > 0) {
            char source[40];
            snprintf(source, sizeof(source), "atpbench-%s", run_tag);
            n = enc_ingest(frame, 3, source, count, events);
            payload = atp_call(&r, frame, n, &payload_length, "ingest of the stock top-up");
            struct ingest_reply ingest;
            if (parse_ingest_reply(payload, payload_length, &ingest) != 0) die("ingest: unreadable reply");
            if (ingest.applied != count)
                die("ingest of the stock top-up: %u of %u applied, %u duplicates, %u rejected (first: event %u reason %u)",
                    ingest.applied, count, ingest.duplicates, ingest.rejected, ingest.first_index, ingest.first_reason);
            free(payload);
        }
        if (!cfg.quiet)
            fprintf(stderr, "atpbench: atp: %u hot cell(s) at %s, %u topped up to %u units on hand\n", h, cfg.location, count, STOCK_TARGET);
        free(events); free(frame); free(on_hand); free(status); free(query); free(skus);
    }
    close(r.fd);
    free(r.buffer);
}

// ---------------------------------------------------------------------------------------------
// Server CPU (from /proc) and instructions (perf stat, when permitted)

static uint64_t process_cpu_ns(int pid) {
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks) return 0;
    uint64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] == '.') continue;
        char file[320];
        snprintf(file, sizeof(file), "/proc/%d/task/%s/schedstat", pid, entry->d_name);
        FILE *f = fopen(file, "r");
        if (!f) continue;
        unsigned long long on_cpu = 0;
        if (fscanf(f, "%llu", &on_cpu) == 1) total += on_cpu;
        fclose(f);
    }
    closedir(tasks);
    return total;
}

static pid_t perf_pid;
static char perf_file[64];
static void perf_start(void) {
    snprintf(perf_file, sizeof(perf_file), "/tmp/atpbench-perf-%d.txt", (int)getpid());
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", cfg.server_pid);
    perf_pid = fork();
    if (perf_pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0); dup2(null, 1); dup2(null, 2);
        execlp("perf", "perf", "stat", "-x,", "-e", "instructions", "-p", pid, "-o", perf_file, (char *)NULL);
        _exit(127);
    }
}
// Returns the instructions counted, or -1.
static double perf_stop(void) {
    if (perf_pid <= 0) return -1;
    kill(perf_pid, SIGINT);
    int status = 0;
    waitpid(perf_pid, &status, 0);
    FILE *f = fopen(perf_file, "r");
    double result = -1;
    if (f) {
        char line[512];
        while (fgets(line, sizeof(line), f)) {
            if (!strstr(line, ",instructions")) continue;
            char *end = NULL;
            double v = strtod(line, &end);
            if (end != line && *end == ',') result = v;
        }
        fclose(f);
    }
    unlink(perf_file);
    return result;
}

// ---------------------------------------------------------------------------------------------
// Self-test: encodes the requests of docs/PROTOCOL.md §10 and compares them byte for byte with the
// document's hex; decodes its replies with the same code the load path uses.

struct vector { char name[64]; uint8_t *bytes; size_t length; };
static struct vector vectors[64];
static int vector_count;

static int load_vectors(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    char line[1024];
    struct vector *current = NULL;
    size_t capacity = 0;
    while (fgets(line, sizeof(line), f)) {
        if (!current) {
            if (strncmp(line, "```hex ", 7) != 0 || vector_count == 64) continue;
            current = &vectors[vector_count++];
            sscanf(line + 7, "%63s", current->name);
            capacity = 4096;
            current->bytes = malloc(capacity);
            current->length = 0;
            continue;
        }
        if (strncmp(line, "```", 3) == 0) { current = NULL; continue; }
        char *hash = strchr(line, '#');
        if (hash) *hash = 0;
        for (char *p = line; *p;) {
            while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
            if (!*p) break;
            unsigned v;
            int used = 0;
            if (sscanf(p, "%2x%n", &v, &used) != 1 || used != 2) { fclose(f); return -2; }
            if (current->length == capacity) current->bytes = realloc(current->bytes, capacity *= 2);
            current->bytes[current->length++] = (uint8_t)v;
            p += 2;
        }
    }
    fclose(f);
    return vector_count;
}

static const struct vector *find_vector(const char *name) {
    for (int i = 0; i < vector_count; i++)
        if (strcmp(vectors[i].name, name) == 0) return &vectors[i];
    return NULL;
}

static int failures, checks;

static void check_bytes(const char *name, const uint8_t *got, size_t length, const char *what) {
    checks++;
    const struct vector *v = find_vector(name);
    if (!v) { printf("FAIL %-24s vector not found in the document\n", name); failures++; return; }
    if (v->length == length && memcmp(v->bytes, got, length) == 0) {
        printf("ok   %-24s %4zu bytes  %s\n", name, length, what);
        return;
    }
    failures++;
    size_t at = 0;
    while (at < length && at < v->length && got[at] == v->bytes[at]) at++;
    printf("FAIL %-24s %s: %zu bytes encoded, %zu in the document, first difference at byte %zu\n", name, what, length, v->length, at);
    printf("     encoded:  "); hex_dump(stdout, got, length, 96);
    printf("     document: "); hex_dump(stdout, v->bytes, v->length, 96);
}

static void check(bool condition, const char *name, const char *what) {
    checks++;
    if (condition) { printf("ok   %-24s %s\n", name, what); return; }
    failures++;
    printf("FAIL %-24s %s\n", name, what);
}

// A reply vector's payload, after checking its header against `opcode` / `flags`.
static const uint8_t *reply_payload(const char *name, uint8_t opcode, uint8_t flags, size_t *n) {
    const struct vector *v = find_vector(name);
    if (!v) { check(false, name, "vector not found in the document"); return NULL; }
    const char *why = NULL;
    long size = atp_frame_size(v->bytes, v->length, 16u << 20, &why);
    if (size != (long)v->length || v->bytes[4] != opcode || v->bytes[5] != flags) {
        check(false, name, why ? why : "header: length, opcode or flags unexpected");
        return NULL;
    }
    *n = v->length - ATP_HEADER;
    return v->bytes + ATP_HEADER;
}

static int self_test(const char *argv0) {
    char fallback[4096];
    const char *path = cfg.doc;
    if (!path) {
        path = "docs/PROTOCOL.md";
        if (access(path, R_OK) != 0) { // next to the source: tools/atpbench/../../docs
            snprintf(fallback, sizeof(fallback), "%s", argv0);
            char *slash = strrchr(fallback, '/');
            if (slash) { strcpy(slash, "/../../docs/PROTOCOL.md"); path = fallback; }
        }
    }
    int loaded = load_vectors(path);
    if (loaded < 0) {
        fprintf(stderr, "atpbench: cannot read the test vectors of %s (%s); run from the repository root or pass --doc PATH\n",
                path, loaded == -1 ? strerror(errno) : "a hex block does not parse");
        return 2;
    }
    printf("self-test: %d hex vectors in %s\n", loaded, path);
    uint8_t f[4096];
    size_t n;

    // Requests, encoded with the encoders the load path uses.
    n = enc_hello(f, 1, 1, 1, "s3cret", "shop-sync");
    check_bytes("hello.request", f, n, "enc_hello");
    n = enc_ping(f, 2, 0x0123456789abcdefull);
    check_bytes("ping.request", f, n, "enc_ping");
    struct query_item three[] = {{1, "SKU-1001", "STORE-01"}, {2, "SKU-1001", NULL}, {3, "SKU-1001", "web"}};
    n = enc_query(f, 3, 0, 3, three);
    check_bytes("query.request", f, n, "enc_query: cell, SKU, channel items");
    struct query_item cell = {1, "SKU-000000001234", "STORE-BERLIN-001"};
    n = enc_query(f, 4, 0, 1, &cell);
    check_bytes("query-cell.request", f, n, "enc_query: one cell");
    { // the load path: a pre-built head with request id 0, a pre-encoded item, then length and id patched
        uint8_t head[QUERY_HEAD], item[64];
        size_t head_length = (size_t)(enc_query_head(head, 0, 0, 1) - head);
        size_t item_length = (size_t)(enc_query_item(item, 1, "SKU-000000001234", "STORE-BERLIN-001") - item);
        memcpy(f, head, head_length);
        memcpy(f + head_length, item, item_length);
        n = head_length + item_length;
        put_u32(f, (uint32_t)(n - 4));
        put_u32(f + 6, 4);
        check_bytes("query-cell.request", f, n, "load path: template + item, length and id patched");
    }
    struct query_item detail = {2, "SKU-1001", NULL};
    n = enc_query(f, 5, 1, 1, &detail);
    check_bytes("query-detail.request", f, n, "enc_query: includeCells");
    struct reserve_line lines[] = {{"SKU-1001", 1, "STORE-01", 2}, {"SKU-2002", 2, "web", 3}};
    n = enc_reserve(f, 6, "order-77", 900000, 0, 2, lines);
    check_bytes("reserve.request", f, n, "enc_reserve");
    n = enc_name_request(f, OP_COMMIT, 7, "order-77");
    check_bytes("commit.request", f, n, "commit");
    n = enc_name_request(f, OP_RELEASE, 8, "order-78");
    check_bytes("release.request", f, n, "release");
    struct event events[] = {
        {.kind = 1, .flags = EV_CLOSES_INBOUND, .sequence = 1001, .quantity = 24, .event_time_ms = 1700000000000, .sku = "SKU-1001", .location = "DC-1"},
        {.kind = 2, .flags = EV_HAS_CORRELATION, .sequence = 1002, .quantity = 2, .event_time_ms = 1700000001000, .sku = "SKU-1001", .location = "STORE-01", .correlation = "order-77"},
        {.kind = 3, .flags = EV_HAS_TO_LOCATION, .sequence = 1003, .quantity = 5, .event_time_ms = 1700000002000, .sku = "SKU-1001", .location = "DC-1", .to_location = "STORE-01"},
        {.kind = 4, .code = 1, .reason_code = 42, .sequence = 1004, .quantity = -1, .event_time_ms = 1700000003000, .sku = "SKU-1001", .location = "STORE-01"},
        {.kind = 5, .flags = EV_COUNTS_DAMAGED, .sequence = 1005, .quantity = 12, .event_time_ms = 1700000004000, .sku = "SKU-2002", .location = "DC-1", .count_damaged = 1},
        {.kind = 8, .code = 2, .sequence = 1006, .quantity = 1, .event_time_ms = 1700000005000, .sku = "SKU-1001", .location = "STORE-01"},
    };
    n = enc_ingest(f, 9, "wms-eu", 6, events);
    check_bytes("ingest.request", f, n, "enc_ingest: six event layouts");
    n = enc_rejection_log(f, 10, 0, 100);
    check_bytes("rejection-log.request", f, n, "rejectionLogRead");
    const char *channel_locations[] = {"DC-1", "STORE-01"};
    n = enc_channel_set(f, 11, "web", 5, 80, 2, channel_locations);
    check_bytes("channel-set.request", f, n, "channelSet");
    n = enc_name_request(f, OP_CHANNEL_SHOW, 12, "");
    check_bytes("channel-show.request", f, n, "channelShow (all)");
    n = enc_name_request(f, OP_CHANNEL_REMOVE, 13, "web");
    check_bytes("channel-remove.request", f, n, "channelRemove");
    n = enc_name_request(f, OP_STATS, 14, "");
    check_bytes("stats.request", f, n, "stats (every statistic)");
    n = enc_snapshot_now(f, 15);
    check_bytes("snapshot-now.request", f, n, "snapshotNow");

    // Replies, decoded with the load path's checks.
    const uint8_t *p;
    struct hello_reply hello;
    if ((p = reply_payload("hello.reply", OP_HELLO, FLAG_REPLY, &n)))
        check(parse_hello_reply(p, n, &hello, NULL) == 0 && hello.version == 1 && hello.roles == 3 && hello.server_time_ms == 1700000000000 &&
                  hello.frame_bytes_max == 16777216 && hello.batch_items_max == 100000 && hello.in_flight_max == 1024,
              "hello.reply", "version 1, roles query|reserve, limits 16 MiB / 100,000 / 1,024");
    struct shard_map map;
    if ((p = reply_payload("hello.reply.v2", OP_HELLO, FLAG_REPLY, &n)))
        check(parse_hello_reply(p, n, &hello, &map) == 0 && hello.version == 2 && map.placement == 1 && map.shard_count == 4 &&
                  map.owner_count == 2 && map.ports[0] == 7412 && map.ports[1] == 7413 && map.shard_owner[1] == 1 &&
                  map.shard_owner[2] == 0 && map.connection_owner == 0,
              "hello.reply.v2", "version 2, shard map: 4 shards over 2 owners on ports 7412 and 7413");
    struct { const char *name; uint64_t hash; } hashes[] = {
        {"SKU-00001", 0x431CCED2321B210Cull}, {"SKU-00002", 0x4257903D8037E807ull}, {"A", 0x4A9811570D6F3421ull},
        {"BOOK-978-0-13-110362-7", 0x3BBE679C58BBDABAull}, {"caf\xc3\xa9", 0x40D3F18F95795B77ull},
    };
    bool hashes_ok = true;
    for (size_t h = 0; h < sizeof(hashes) / sizeof(hashes[0]); h++)
        hashes_ok &= hash_bytes((const uint8_t *)hashes[h].name, strlen(hashes[h].name)) == hashes[h].hash;
    check(hashes_ok, "hashBytes", "the §7.1 vectors (SKU-00001, SKU-00002, A, BOOK-…, café)");
    if ((p = reply_payload("ping.reply", OP_PING, FLAG_REPLY, &n)))
        check(n == 16 && get_u64(p) == 0x0123456789abcdefull && get_i64(p + 8) == 1700000000123, "ping.reply", "nonce echoed, server time");
    if ((p = reply_payload("query.reply", OP_QUERY, FLAG_REPLY, &n)))
        check(verify_query_reply(p, n, 3) == 3 && get_i64(p + 5 + 17 + 1) == 16 && get_i64(p + 5 + 17 + 9) == 20, "query.reply",
              "3 answers, all exist, answer 1 sellable 16 projected 20");
    if ((p = reply_payload("query-cell.reply", OP_QUERY, FLAG_REPLY, &n)))
        check(verify_query_reply(p, n, 1) == 1 && verify_query_reply(p, n, 2) == -1, "query-cell.reply", "1 answer that exists; a count of 2 refused");
    if ((p = reply_payload("query-detail.reply", OP_QUERY, FLAG_REPLY, &n))) {
        int32_t on_hand = -1;
        uint8_t status = 0;
        check(parse_query_on_hand(p, n, 1, &on_hand, &status) == 0 && on_hand == 12 && status == 1, "query-detail.reply", "includeCells: first cell onHand 12");
    }
    struct reservation_reply reservation;
    if ((p = reply_payload("reserve.reply", OP_RESERVE, FLAG_REPLY, &n)))
        check(parse_reservation_reply(p, n, &reservation) == 0 && reservation.id_length == 8 && memcmp(reservation.id, "order-77", 8) == 0 &&
                  reservation.result == 0 && reservation.state == 1 && reservation.line_count == 2 && reservation.requested == 5 &&
                  reservation.granted == 5 && reservation.expires_ms == 1700000900000,
              "reserve.reply", "held, 2 lines, 5 of 5 granted");
    if ((p = reply_payload("commit.reply", OP_COMMIT, FLAG_REPLY, &n)))
        check(parse_reservation_reply(p, n, &reservation) == 0 && reservation.state == 2 && reservation.granted == 5, "commit.reply", "committed");
    if ((p = reply_payload("release.reply", OP_RELEASE, FLAG_REPLY, &n)))
        check(parse_reservation_reply(p, n, &reservation) == 0 && reservation.result == 1 && reservation.state == 5 && reservation.line_count == 0,
              "release.reply", "unknownReservation, refused, no lines");
    struct ingest_reply ingest;
    if ((p = reply_payload("ingest.reply", OP_INGEST, FLAG_REPLY, &n)))
        check(parse_ingest_reply(p, n, &ingest) == 0 && ingest.applied == 4 && ingest.duplicates == 1 && ingest.rejected == 1 &&
                  ingest.first_index == 3 && ingest.first_reason == 10,
              "ingest.reply", "4 applied, 1 duplicate, event 3 rejected sequenceTooOld");
    uint16_t code = 0;
    const uint8_t *message = NULL;
    size_t message_length = 0;
    if ((p = reply_payload("error.reply", OP_RESERVE, FLAG_REPLY | FLAG_ERROR, &n)))
        check(parse_error(p, n, &code, &message, &message_length) == 0 && code == 5 && message_length == 30 &&
                  memcmp(message, "reserve needs the reserve role", 30) == 0 && !error_closes(code),
              "error.reply", "forbidden, connection stays open");
    if ((p = reply_payload("notice.reply", OP_NOTICE, FLAG_REPLY | FLAG_ERROR, &n)))
        check(parse_error(p, n, &code, &message, &message_length) == 0 && code == 2 && error_closes(code) &&
                  get_u32(find_vector("notice.reply")->bytes + 6) == 0,
              "notice.reply", "frameTooLarge notice, request id 0, closes");

    // The load path's reserve template: patching the counter must give what encoding that id gives.
    init_locations();
    snprintf(run_tag, sizeof(run_tag), "0badcafe");
    cfg.protocol = PROTOCOL_ATP;
    cfg.hot = 3;
    struct reserve_template t;
    make_reserve_template(&t, 7);
    memcpy(f, t.frame, t.length);
    put_hex32(f + t.counter_at, 0x1234abcd);
    memcpy(f + t.sku_at, "00003", 5);
    put_u32(f + 6, 99);
    struct reserve_line hot = {"SKU-00003", 1, cfg.location, 1};
    uint8_t expected[512];
    size_t expected_length = enc_reserve(expected, 99, "bench-0badcafe-0007-1234abcd", cfg.ttl_ms, 0, 1, &hot);
    check(expected_length == t.length && memcmp(f, expected, t.length) == 0, "reserve template", "patched id, counter and SKU match enc_reserve");

    // RESP: the load path's items and the reply parser, fed one byte at a time.
    cfg.protocol = PROTOCOL_RESP;
    cfg.keyspace = 2000;
    build_items();
    const char *get41 = "$19\r\nSKU-00042@STORE-001\r\n";
    uint32_t key = 41 * DEMO_LOCATIONS + 2;
    check(items.length[key] == strlen(get41) && memcmp(items.data + items.offset[key], get41, strlen(get41)) == 0, "resp key item",
          "key 904 is SKU-00042@STORE-001");
    cfg.protocol = PROTOCOL_ATP;
    build_items();
    uint8_t item[64];
    size_t item_length = (size_t)(enc_query_item(item, 1, "SKU-00042", "STORE-001") - item);
    check(items.length[key] == item_length && memcmp(items.data + items.offset[key], item, item_length) == 0, "atp cell item",
          "key 904 is SKU-00042 at STORE-001");
    const char *stream = "+PONG\r\n$3\r\n123\r\n$-1\r\n*3\r\n$1\r\na\r\n$-1\r\n$2\r\nbc\r\n:1\r\n-ERR no\r\n";
    const uint8_t expected_types[] = {'+', '$', '$', '*', '$', '$', '$', ':', '-'};
    const int64_t expected_values[] = {0, 3, -1, 3, 1, -1, 2, 1, 0};
    bool resp_ok = true;
    for (size_t split = 1; split < strlen(stream); split++) { // every split point: incomplete, then whole
        size_t at = 0;
        int element = 0;
        uint8_t type;
        int64_t value;
        long size = resp_element((const uint8_t *)stream, split, &type, &value);
        if (size > 0 && (size_t)size > split) resp_ok = false;
        while (at < strlen(stream)) {
            size = resp_element((const uint8_t *)stream + at, strlen(stream) - at, &type, &value);
            if (size <= 0 || type != expected_types[element] || value != expected_values[element]) { resp_ok = false; break; }
            at += (size_t)size;
            element++;
        }
        if (element != 9) resp_ok = false;
    }
    uint8_t type;
    int64_t value;
    check(resp_ok && resp_element((const uint8_t *)"?x\r\n", 4, &type, &value) == -1, "resp parser", "types, nil, arrays; garbage refused");

    printf("self-test: %d checks, %d failed\n", checks, failures);
    return failures == 0 ? 0 : 1;
}

// ---------------------------------------------------------------------------------------------
// Main

static void usage(FILE *out) {
    fprintf(out,
            "usage: atpbench [options]\n"
            "  --protocol atp|resp       wire protocol (default atp)\n"
            "  --scenario ping|query|batch|reserve  (default ping)\n"
            "  -h, --host HOST           server address (default 127.0.0.1)\n"
            "  -p, --port PORT           server port (default 7411 for atp, 6379 for resp)\n"
            "  -c, --connections N       connections (default 50)\n"
            "  -P, --pipeline N          requests in flight per connection (default 1)\n"
            "  --threads N               epoll threads (default 1)\n"
            "  --seconds S               measured time (default 5)\n"
            "  --warmup-seconds S        warm-up before it (default 1)\n"
            "  --keyspace N              keys / cells drawn from (default 110000, the demo catalogue)\n"
            "  --batch K                 items per batch request (default 1000)\n"
            "  --hot H                   hot SKUs for reserve: SKU-00001..H (default 1)\n"
            "  --location NAME           location of the hot cells (default DC-EAST)\n"
            "  --ttl-ms MS               reservation time to live (default 1000)\n"
            "  --seed N                  PRNG seed for the keys (default 1)\n"
            "  --token TOKEN             atp token (default demo-admin)\n"
            "  --preload                 resp: store the demo cells as keys before the run\n"
            "  --server-pid PID          report the server's CPU time per request (from /proc)\n"
            "  --perf                    with --server-pid: count the server's instructions with perf stat\n"
            "  --label TEXT              added to the output line as label=TEXT\n"
            "  --quiet                   no set-up notes on stderr\n"
            "  --shard-aware             atp: read the shard map (protocol version 2) and send each key to the\n"
            "                            port of the core that owns it (atpd --thread-per-core --core-port-base N)\n"
            "  --self-test [--doc PATH]  check the encoders against docs/PROTOCOL.md §10 and exit\n");
}

static long parse_long(const char *option, const char *value, long min, long max) {
    char *end = NULL;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (errno || !end || *end || v < min || v > max) die("%s: expected a whole number in %ld...%ld, got '%s'", option, min, max, value);
    return v;
}
static double parse_double(const char *option, const char *value) {
    char *end = NULL;
    double v = strtod(value, &end);
    if (!end || *end || v < 0 || v > 86400) die("%s: expected seconds, got '%s'", option, value);
    return v;
}

static void parse_options(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *option = argv[i], *value = NULL;
        char *equals = strncmp(option, "--", 2) == 0 ? strchr(option, '=') : NULL;
        if (equals) { *equals = 0; value = equals + 1; }
#define VALUE() (value ? value : (i + 1 < argc ? argv[++i] : (die("%s needs a value", option), "")))
        if (!strcmp(option, "--help")) { usage(stdout); exit(0); }
        else if (!strcmp(option, "--self-test")) cfg.self_test = true;
        else if (!strcmp(option, "--doc")) cfg.doc = VALUE();
        else if (!strcmp(option, "--protocol")) {
            const char *v = VALUE();
            if (!strcmp(v, "atp")) cfg.protocol = PROTOCOL_ATP;
            else if (!strcmp(v, "resp") || !strcmp(v, "redis")) cfg.protocol = PROTOCOL_RESP;
            else die("--protocol: atp or resp, not '%s'", v);
        } else if (!strcmp(option, "--scenario")) {
            const char *v = VALUE();
            int found = -1;
            for (int s = 0; s < 4; s++) if (!strcmp(v, scenario_names[s])) found = s;
            if (found < 0) die("--scenario: ping, query, batch or reserve, not '%s'", v);
            cfg.scenario = found;
        } else if (!strcmp(option, "-h") || !strcmp(option, "--host")) cfg.host = VALUE();
        else if (!strcmp(option, "-p") || !strcmp(option, "--port")) cfg.port = (int)parse_long(option, VALUE(), 1, 65535);
        else if (!strcmp(option, "-c") || !strcmp(option, "--connections")) cfg.connections = (int)parse_long(option, VALUE(), 1, 10000);
        else if (!strcmp(option, "-P") || !strcmp(option, "--pipeline")) cfg.pipeline = (int)parse_long(option, VALUE(), 1, 65535);
        else if (!strcmp(option, "--threads")) cfg.threads = (int)parse_long(option, VALUE(), 1, 64);
        else if (!strcmp(option, "--seconds")) cfg.seconds = parse_double(option, VALUE());
        else if (!strcmp(option, "--warmup-seconds")) cfg.warmup_seconds = parse_double(option, VALUE());
        else if (!strcmp(option, "--keyspace")) cfg.keyspace = (uint32_t)parse_long(option, VALUE(), 1, 99999L * DEMO_LOCATIONS);
        else if (!strcmp(option, "--batch")) cfg.batch = (uint32_t)parse_long(option, VALUE(), 1, 1000000);
        else if (!strcmp(option, "--hot")) cfg.hot = (uint32_t)parse_long(option, VALUE(), 1, 99999);
        else if (!strcmp(option, "--location")) cfg.location = VALUE();
        else if (!strcmp(option, "--ttl-ms")) cfg.ttl_ms = parse_long(option, VALUE(), 1, 604800000);
        else if (!strcmp(option, "--seed")) cfg.seed = (uint64_t)parse_long(option, VALUE(), 0, LONG_MAX);
        else if (!strcmp(option, "--token")) cfg.token = VALUE();
        else if (!strcmp(option, "--preload")) cfg.preload = true;
        else if (!strcmp(option, "--server-pid")) cfg.server_pid = (int)parse_long(option, VALUE(), 1, 1 << 30);
        else if (!strcmp(option, "--perf")) cfg.perf = true;
        else if (!strcmp(option, "--label")) cfg.label = VALUE();
        else if (!strcmp(option, "--quiet")) cfg.quiet = true;
        else if (!strcmp(option, "--shard-aware")) cfg.shard_aware = true;
        else { usage(stderr); die("unknown option '%s'", option); }
#undef VALUE
    }
    if (cfg.port < 0) cfg.port = cfg.protocol == PROTOCOL_ATP ? 7411 : 6379;
    if (strlen(cfg.location) > 40) die("--location: at most 40 bytes");
    if (cfg.shard_aware && cfg.protocol != PROTOCOL_ATP) die("--shard-aware: atp only");
}

static double timeval_us(struct timeval t) { return (double)t.tv_sec * 1e6 + (double)t.tv_usec; }

int main(int argc, char **argv) {
    parse_options(argc, argv);
    if (cfg.self_test) return self_test(argv[0]);
    signal(SIGPIPE, SIG_IGN);
    init_locations();
    { // a run tag no earlier run against the same server has used: reservation ids stay unique
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        uint64_t mix = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec + ((uint64_t)getpid() << 40);
        snprintf(run_tag, sizeof(run_tag), "%08x", (uint32_t)splitmix64(&mix));
    }
    if (cfg.protocol == PROTOCOL_ATP) atp_setup(); else resp_setup();
    build_requests();
    uint32_t k = cfg.scenario == SCENARIO_BATCH ? cfg.batch : 1;
    if (cfg.protocol == PROTOCOL_ATP && max_request_bytes > server_frame_bytes_max)
        die("a request of %zu bytes exceeds the server's frameBytesMax %u", max_request_bytes, server_frame_bytes_max);

    // Connections: opened and (atp) authenticated one by one, then handed to the workers.
    if (cfg.threads > cfg.connections) cfg.threads = cfg.connections;
    struct worker *workers = calloc((size_t)cfg.threads, sizeof(struct worker));
    for (int t = 0; t < cfg.threads; t++) {
        workers[t].epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        workers[t].connections = calloc((size_t)cfg.connections, sizeof(struct connection *));
    }
    size_t max_reply = cfg.protocol == PROTOCOL_ATP ? QUERY_HEAD + 17 * (size_t)k + 4096 : 4096;
    uint32_t ring = 1;
    while (ring < (uint32_t)cfg.pipeline) ring <<= 1;
    for (int i = 0; i < cfg.connections; i++) {
        struct connection *c = calloc(1, sizeof(*c));
        c->index = i;
        if (cfg.protocol == PROTOCOL_ATP) {
            struct reader r;
            reader_init(&r);
            struct hello_reply hello;
            if (cfg.shard_aware) {
                uint16_t owner = owner_of_connection(i);
                struct shard_map seen;
                atp_connect_port(&r, &hello, shard_map.ports[owner], &seen);
                if (seen.connection_owner != owner)
                    die("--shard-aware: port %u is served by core %u, not %u", shard_map.ports[owner], seen.connection_owner, owner);
                if (cfg.scenario == SCENARIO_RESERVE) { c->keys = hot_by_owner[owner]; c->key_count = hot_count_by_owner[owner]; }
                else if (cfg.scenario != SCENARIO_PING) { c->keys = keys_by_owner[owner]; c->key_count = key_count_by_owner[owner]; }
            } else {
                atp_connect(&r, &hello);
            }
            if (r.length != 0) die("bytes after the hello reply");
            c->fd = r.fd;
            free(r.buffer);
            c->slot_sent = calloc((size_t)cfg.pipeline, sizeof(uint64_t));
            c->slot_id = calloc((size_t)cfg.pipeline, sizeof(uint32_t));
            c->free_slots = calloc((size_t)cfg.pipeline, sizeof(uint16_t));
            for (int s = 0; s < cfg.pipeline; s++) c->free_slots[s] = (uint16_t)(cfg.pipeline - 1 - s);
            c->free_count = (uint32_t)cfg.pipeline;
            if (cfg.pipeline > 65536) die("-P: at most 65,536 for atp");
        } else {
            c->fd = connect_to();
            c->ring = calloc(ring, sizeof(uint64_t));
            c->ring_mask = ring - 1;
        }
        fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
        c->out_capacity = (size_t)cfg.pipeline * max_request_bytes + 64;
        c->out = malloc(c->out_capacity);
        c->in_capacity = max_reply * 2 + (1 << 18);
        c->in = malloc(c->in_capacity);
        uint64_t seed = cfg.seed * 0x9E3779B97F4A7C15ull + (uint64_t)i;
        c->random = splitmix64(&seed);
        if (cfg.scenario == SCENARIO_RESERVE) {
            c->reserve = malloc(sizeof(struct reserve_template));
            make_reserve_template(c->reserve, i);
        }
        if (!c->out || !c->in) die("out of memory");
        struct worker *w = &workers[i % cfg.threads];
        w->connections[w->count++] = c;
        struct epoll_event event = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, c->fd, &event) != 0) die("epoll_ctl: %s", strerror(errno));
    }

    atomic_store(&phase, 0);
    for (int t = 0; t < cfg.threads; t++)
        if (pthread_create(&workers[t].thread, NULL, worker_main, &workers[t]) != 0) die("pthread_create failed");
    sleep_seconds(cfg.warmup_seconds);
    struct rusage usage_start, usage_end;
    getrusage(RUSAGE_SELF, &usage_start);
    uint64_t server_start = cfg.server_pid ? process_cpu_ns(cfg.server_pid) : 0;
    if (cfg.perf && cfg.server_pid) perf_start();
    uint64_t start = now_ns();
    atomic_store(&phase, 1);
    sleep_seconds(cfg.seconds);
    atomic_store(&phase, 2);
    uint64_t end = now_ns();
    getrusage(RUSAGE_SELF, &usage_end);
    uint64_t server_end = cfg.server_pid ? process_cpu_ns(cfg.server_pid) : 0;
    double instructions = cfg.perf && cfg.server_pid ? perf_stop() : -1;
    for (int t = 0; t < cfg.threads; t++) pthread_join(workers[t].thread, NULL);

    struct stats total = {0};
    for (int t = 0; t < cfg.threads; t++) {
        struct stats *s = &workers[t].stats;
        total.replies += s->replies; total.answers += s->answers; total.errors += s->errors; total.hits += s->hits;
        total.granted += s->granted; total.shorts += s->shorts; total.replayed += s->replayed; total.other += s->other;
        for (int e = 0; e < 32; e++) total.error_codes[e] += s->error_codes[e];
        for (int b = 0; b < HIST_BUCKETS; b++) total.histogram[b] += s->histogram[b];
    }
    double elapsed = (double)(end - start) / 1e9;
    double percentile[4] = {0, 0, 0, 0};
    const double quantiles[4] = {0.5, 0.99, 0.999, 1.0};
    uint64_t counted = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) counted += total.histogram[b];
    for (int q = 0; q < 4 && counted; q++) {
        uint64_t target = (uint64_t)(quantiles[q] * (double)counted + 0.999999), seen = 0;
        if (target < 1) target = 1;
        for (int b = 0; b < HIST_BUCKETS; b++) {
            seen += total.histogram[b];
            if (seen >= target) { percentile[q] = hist_value((uint32_t)b) / 1000.0; break; }
        }
    }
    double client_us = (timeval_us(usage_end.ru_utime) + timeval_us(usage_end.ru_stime)) -
                       (timeval_us(usage_start.ru_utime) + timeval_us(usage_start.ru_stime));
    double requests = (double)total.replies;
    double per_request = requests > 0 ? client_us / requests : 0;
    double server_us = (double)(server_end - server_start) / 1000.0;
    char server_cpu[32] = "NA", server_pct[32] = "NA", server_instructions[32] = "NA", label[160] = "";
    if (cfg.server_pid && server_end > 0 && requests > 0) {
        snprintf(server_cpu, sizeof(server_cpu), "%.3f", server_us / requests);
        snprintf(server_pct, sizeof(server_pct), "%.1f", server_us / (elapsed * 1e4));
    }
    if (instructions >= 0 && requests > 0) snprintf(server_instructions, sizeof(server_instructions), "%.0f", instructions / requests);
    if (cfg.label) snprintf(label, sizeof(label), "label=%s ", cfg.label);
    const char *protocol = cfg.protocol == PROTOCOL_ATP ? "atp" : "resp";

    printf("atpbench %sprotocol=%s scenario=%s host=%s port=%d threads=%d conns=%d pipeline=%d batch=%u keyspace=%u hot=%u "
           "seconds=%.3f requests=%" PRIu64 " rps=%.0f answers=%" PRIu64 " answers_per_s=%.0f p50_us=%.1f p99_us=%.1f "
           "p999_us=%.1f max_us=%.1f errors=%" PRIu64 " hits=%" PRIu64 " granted=%" PRIu64 " short=%" PRIu64 " other=%" PRIu64
           " replayed=%" PRIu64 " client_cpu_us=%.0f client_cpu_us_per_req=%.3f client_cpu_pct=%.1f server_cpu_us_per_req=%s "
           "server_cpu_pct=%s server_instructions_per_req=%s shard_aware=%d\n",
           label, protocol, scenario_names[cfg.scenario], cfg.host, cfg.port, cfg.threads, cfg.connections, cfg.pipeline, k,
           cfg.keyspace, cfg.hot, elapsed, total.replies, requests / elapsed, total.answers, (double)total.answers / elapsed,
           percentile[0], percentile[1], percentile[2], percentile[3], total.errors, total.hits, total.granted, total.shorts,
           total.other, total.replayed, client_us, per_request, client_us / (elapsed * 1e4), server_cpu, server_pct,
           server_instructions, cfg.shard_aware ? 1 : 0);
    fflush(stdout);
    printf("%s %s: %.0f req/s", protocol, scenario_names[cfg.scenario], requests / elapsed);
    if (cfg.scenario == SCENARIO_BATCH) printf(" (%.0f answers/s)", (double)total.answers / elapsed);
    printf(", latency p50 %.1f us, p99 %.1f us, p99.9 %.1f us; errors %" PRIu64, percentile[0], percentile[1], percentile[2], total.errors);
    if (cfg.scenario == SCENARIO_QUERY || cfg.scenario == SCENARIO_BATCH)
        printf("; hits %.1f %%", total.answers ? 100.0 * (double)total.hits / (double)total.answers : 0);
    if (cfg.scenario == SCENARIO_RESERVE)
        printf("; granted %" PRIu64 ", short %" PRIu64 ", other %" PRIu64 ", replayed %" PRIu64, total.granted, total.shorts, total.other, total.replayed);
    printf("; client CPU %.3f us/req (%.0f %% of a core)", per_request, client_us / (elapsed * 1e4));
    if (cfg.server_pid) printf("; server CPU %s us/req (%s %% of a core)", server_cpu, server_pct);
    printf("\n");
    if (total.errors) {
        fprintf(stderr, "atpbench: %" PRIu64 " errors", total.errors);
        for (int e = 0; e < 32; e++)
            if (total.error_codes[e]) fprintf(stderr, "; %s (%d): %" PRIu64, error_name((unsigned)e), e, total.error_codes[e]);
        fprintf(stderr, "\n");
    }
    if (first_error_text[0]) fprintf(stderr, "atpbench: first error: %s\n", first_error_text);
    if ((cfg.scenario == SCENARIO_QUERY || cfg.scenario == SCENARIO_BATCH) && total.answers > 0 && total.hits == 0)
        fprintf(stderr, "atpbench: warning: no key was found; %s\n", cfg.protocol == PROTOCOL_RESP
                ? "load the keys once with --preload" : "is this atpd started with --demo?");
    return 0;
}
