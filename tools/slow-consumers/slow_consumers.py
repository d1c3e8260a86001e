#!/usr/bin/env python3
"""Slow consumers against atpd (issue 14 item 1), from docs/PROTOCOL.md alone.

Slow consumers connect, say hello and pipeline queries whose replies are large (every location of
84 SKUs with their cells: about 80 KB a reply) as fast as the server takes them, and never read a
byte. Meanwhile one healthy client asks single-cell queries, one at a time, and times them. The
server's resident memory is sampled from /proc. Phases: the healthy client alone (the idle
baseline), with the slow consumers, and after they closed (recovery).

Prints one line per phase and a final `result` line (key=value) for scripts.

Usage: slow_consumers.py --port P --pid PID [--consumers 16] [--seconds 10] [--settle-seconds 1]
                         [--token demo-admin]
"""
import argparse
import random
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

QUERY, HELLO = 0x10, 0x01


def frame(opcode, request_id, payload):
    return struct.pack("<IBBI", 6 + len(payload), opcode, 0, request_id) + payload


def name(text):
    data = text.encode()
    return bytes([len(data)]) + data


def hello(token):
    token = token.encode()
    return frame(HELLO, 1, b"ATP1" + struct.pack("<HHH", 1, 1, len(token)) + token + name("slow-consumers"))


def cell_query(request_id, sku, location):
    return frame(QUERY, request_id, bytes([0]) + struct.pack("<I", 1) + bytes([1]) + name(sku) + name(location))


def big_query(request_id, first_sku, items):
    body = b"".join(bytes([2]) + name("SKU-%05d" % (1 + (first_sku + i) % 5000)) for i in range(items))
    return frame(QUERY, request_id, bytes([1]) + struct.pack("<I", items) + body)


def read_frame(sock):
    header = read_exactly(sock, 10)
    length, opcode, flags, request_id = struct.unpack("<IBBI", header)
    return opcode, flags, request_id, read_exactly(sock, length - 6)


def read_exactly(sock, count):
    data = bytearray()
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("server closed the connection")
        data += chunk
    return bytes(data)


def connect(port, token):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(hello(token))
    _, flags, _, payload = read_frame(sock)
    if flags != 0x01:
        raise RuntimeError("hello refused: %r" % payload)
    return sock


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler(threading.Thread):
    """Samples the server's RSS every 50 ms; keeps the peak since the last reset."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)


def healthy_phase(port, token, seconds, timeout):
    """Single-cell round trips for `seconds`; latencies in µs. A reply slower than `timeout` s
    counts as a stall (its latency is kept)."""
    sock = connect(port, token)
    sock.settimeout(timeout + 60)
    latencies, request_id, rng = [], 10, random.Random(7)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        request_id += 1
        sku = "SKU-%05d" % rng.randint(1, 5000)
        started = time.perf_counter()
        sock.sendall(cell_query(request_id, sku, "DC-EAST"))
        opcode, flags, got_id, _ = read_frame(sock)
        latencies.append((time.perf_counter() - started) * 1e6)
        if got_id != request_id or flags != 0x01:
            raise RuntimeError("unexpected reply: id %d flags %d" % (got_id, flags))
        time.sleep(0.001)
    sock.close()
    latencies.sort()
    return latencies


def percentile(values, fraction):
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else float("nan")


def slow_consumer(port, token, index, stop, sent_bytes):
    """Sends large-reply queries until told to stop; never reads."""
    sock = connect(port, token)
    sock.setblocking(False)
    request_id, pending = 100, b""
    while not stop.is_set():
        if not pending:
            request_id += 1
            pending = big_query(request_id, index * 997 + request_id * 84, 84)
        try:
            written = sock.send(pending)
            sent_bytes[index] += written
            pending = pending[written:]
        except BlockingIOError:
            select.select([], [sock], [], 0.05)
        except OSError:
            break
    return sock


def run_consumers(arguments):
    """The slow consumers, in a process of their own (the healthy client's timing must not wait for
    their threads); they send until SIGTERM, then print how many bytes they sent and exit."""
    stop, sent = threading.Event(), [0] * arguments.consumers
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sockets, threads = [None] * arguments.consumers, []
    for index in range(arguments.consumers):
        def run(i=index):
            sockets[i] = slow_consumer(arguments.port, arguments.token, i, stop, sent)
        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
    print("ready", flush=True)
    while not stop.is_set():
        stop.wait(0.1)
    for thread in threads:
        thread.join()
    for sock in sockets:
        if sock is not None:
            sock.close()
    print("sent %d" % sum(sent), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, default=0)
    parser.add_argument("--consumers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--token", default="demo-admin")
    parser.add_argument("--settle-seconds", type=float, default=1,
                        help="wait after the consumers start before timing (the server first executes "
                             "their requests up to each connection's budget)")
    parser.add_argument("--consumers-only", action="store_true", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.consumers_only:
        return run_consumers(arguments)

    sampler = Sampler(arguments.pid)
    sampler.start()
    rss_start = rss_kib(arguments.pid)
    idle = healthy_phase(arguments.port, arguments.token, arguments.seconds / 2, 30)
    print("idle:     %6d queries, p50 %8.0f us, p99 %8.0f us, max %8.0f us; RSS %d MiB"
          % (len(idle), percentile(idle, 0.5), percentile(idle, 0.99), idle[-1], rss_start // 1024), flush=True)

    consumers = subprocess.Popen([sys.executable, __file__, "--consumers-only", "--port", str(arguments.port),
                                  "--consumers", str(arguments.consumers), "--token", arguments.token],
                                 stdout=subprocess.PIPE, text=True)
    if consumers.stdout.readline().strip() != "ready":
        raise RuntimeError("the slow consumers did not start")
    time.sleep(arguments.settle_seconds)  # the consumers fill their socket buffers and the server's
    sampler.peak = 0
    loaded = healthy_phase(arguments.port, arguments.token, arguments.seconds, 30)
    rss_loaded = sampler.peak
    print("loaded:   %6d queries, p50 %8.0f us, p99 %8.0f us, max %8.0f us; RSS peak %d MiB; %d slow consumers"
          % (len(loaded), percentile(loaded, 0.5), percentile(loaded, 0.99), loaded[-1], rss_loaded // 1024,
             arguments.consumers), flush=True)

    consumers.send_signal(signal.SIGTERM)
    sent = int(consumers.stdout.readline().split()[1])
    consumers.wait()
    closed_at = time.monotonic()
    print("          the slow consumers sent %d KiB and closed" % (sent // 1024), flush=True)
    after = healthy_phase(arguments.port, arguments.token, arguments.seconds / 2, 120)
    time.sleep(0.5)
    rss_after = rss_kib(arguments.pid)
    print("after:    %6d queries, p50 %8.0f us, p99 %8.0f us, max %8.0f us; RSS %d MiB (%.1f s after closing)"
          % (len(after), percentile(after, 0.5), percentile(after, 0.99), after[-1], rss_after // 1024,
             time.monotonic() - closed_at), flush=True)
    sampler.stop = True
    print("result idle_p99_us=%.0f loaded_p50_us=%.0f loaded_p99_us=%.0f loaded_max_us=%.0f after_p99_us=%.0f "
          "rss_start_mib=%d rss_peak_mib=%d rss_after_mib=%d p99_ratio=%.2f"
          % (percentile(idle, 0.99), percentile(loaded, 0.5), percentile(loaded, 0.99), loaded[-1],
             percentile(after, 0.99), rss_start // 1024, rss_loaded // 1024, rss_after // 1024,
             percentile(loaded, 0.99) / percentile(idle, 0.99)))


if __name__ == "__main__":
    sys.exit(main())
