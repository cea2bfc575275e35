"""Real loopback servers for tests: `transformers serve` (an OpenAI-compatible server) and a fault-injecting proxy.

The proxy forwards to the real server and, per request, can answer 500 or 429, delay past the client's timeout, or drop
the connection, following a plan keyed by the request body; it counts attempts and successful answers per body.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def stop_process(proc: subprocess.Popen, log) -> None:
    """Terminate a server process (kill it after 10 s) and close its log."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
    log.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quiet_port() -> int:
    """A free port below the kernel's ephemeral range: a port that must stay free for minutes (a job's rendezvous,
    chosen before the job starts) is then never taken by another process's outgoing or listening sockets, which the
    kernel draws from the ephemeral range (srun, gloo and torchrun open many)."""
    import random

    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, max(20001, min(low, 32768)))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return free_port()


class ModelServer:
    """`transformers serve MODEL_DIR` on 127.0.0.1, offline, on the CPU."""

    def __init__(self, model_dir: str | Path, log: Path):
        self.model = str(model_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("transformers")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
        self.log = open(log, "w")
        self.proc = subprocess.Popen([str(exe), "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port),
                                      "--device", "cpu"], stdout=self.log, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited: see {log}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"transformers serve did not start in 120 s: see {log}")

    def stop(self) -> None:
        stop_process(self.proc, self.log)


# (request body, attempt number from 1) -> "ok" | "500" | "429" | "drop" | "delay:SECONDS" | "401echo" (a 401 whose body
# echoes the Authorization header back, as some gateways do: the client's error text then holds the key)
Plan = Callable[[str, int], str]


class FaultProxy:
    def __init__(self, upstream: str):
        self.upstream = upstream.removeprefix("http://")
        self.plan: Plan = lambda body, attempt: "ok"
        self.attempts: Counter = Counter()
        self.successes: Counter = Counter()
        self.authorizations: Counter = Counter()  # Authorization header values seen (never printed by the tests)
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                self._forward(b"")

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._forward(body)

            def _forward(self, body: bytes):
                key = body_key(body)
                auth = self.headers.get("Authorization", "")
                with proxy.lock:
                    proxy.attempts[key] += 1
                    proxy.authorizations[auth] += 1
                    attempt = proxy.attempts[key]
                action = proxy.plan(body.decode("utf-8", "replace"), attempt) if body else "ok"
                if action == "401echo":
                    payload = json.dumps({"error": {"message": f"invalid credentials: {auth}", "type": "auth"}}).encode()
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if action in ("500", "429"):
                    payload = b'{"error": {"message": "injected fault"}}'
                    self.send_response(int(action))
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action.startswith("delay:"):
                    time.sleep(float(action.split(":")[1]))
                conn = http.client.HTTPConnection(proxy.upstream, timeout=300)
                headers = {"Content-Type": self.headers.get("Content-Type", "application/json")}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                try:
                    self.send_response(resp.status)
                    self.send_header("Content-Type", resp.getheader("Content-Type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up (timeout): not a success
                if resp.status == 200 and body:
                    with proxy.lock:
                        proxy.successes[key] += 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self, plan: Plan | None = None) -> None:
        with self.lock:
            self.attempts.clear()
            self.successes.clear()
            self.authorizations.clear()
        self.plan = plan or (lambda body, attempt: "ok")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def body_key(body: bytes) -> str:
    return hashlib.sha1(body).hexdigest()[:12]


class LatencyServer:
    """A local OpenAI-compatible server (chat and completions) that answers after a latency chosen per request by
    `latency(prompt_text) -> seconds`, with a deterministic answer derived from the prompt. It counts the requests in
    flight and the most at once, and logs every prompt it answered (a stand-in for a model server: the client side,
    mlift's scheduler, is what the tests measure)."""

    def __init__(self, latency: Callable[[str], float] = lambda text: 0.0,
                 answer: Callable[[dict], str] | None = None):
        self.latency = latency
        self.answer = answer  # request body -> answer text (default: answer_for(prompt text))
        self.bodies: list[dict] = []
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.answered: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                data = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                text = data["prompt"] if "prompt" in data else data["messages"][-1]["content"]
                with server.lock:
                    server.now += 1
                    server.peak = max(server.peak, server.now)
                try:
                    time.sleep(server.latency(text))
                finally:
                    with server.lock:
                        server.now -= 1
                answer = server.answer(data) if server.answer else answer_for(text)
                choice = ({"index": 0, "text": answer, "finish_reason": "stop"} if "prompt" in data else
                          {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"})
                payload = json.dumps({"id": "x", "object": "text_completion", "created": 0, "model": data["model"],
                                      "choices": [choice],
                                      "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    return
                with server.lock:
                    server.answered.append(text)
                    server.bodies.append(data)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024  # hundreds of connections may arrive at once

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def reset(self, latency: Callable[[str], float] | None = None) -> None:
        with self.lock:
            self.peak = self.now
            self.answered.clear()
            self.bodies.clear()
            if latency is not None:
                self.latency = latency

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer_for(text: str) -> str:
    return "ans-" + hashlib.sha1(text.encode()).hexdigest()[:10]
