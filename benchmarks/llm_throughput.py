"""Slot occupancy of mlift's LLM stage path against a bare `AsyncOpenAI` client, on the same requests.

    python benchmarks/llm_throughput.py [--conc 16,64,256] [--sigmas 0.8,0.05] [--rate 200] [--per-slot 60]
                                        [--code /work/main]

A local OpenAI-compatible server (aiohttp, in its own process) answers each request after a lognormal latency whose
median makes the slots ask `--rate` requests/s of the client (median = conc / rate / e^(sigma^2/2)), and whose sigma is 0.8 (heavy-tailed) or 0.05 (near-constant); the latency is drawn from
a hash of the request body, so both clients see the same latency for the same request. The server has no limit of its
own and logs when each request arrived and left.

occupancy = sum of server latencies / concurrency / wall, wall = from the first request's arrival to the last answer
(the startup of a process is not counted for either side).
- mlift: `mlift translate` (an LLM translator on the openai backend, completion mode, `concurrency: C`, every other
  field at its default) over `per-slot * C` one-line texts, run as a subprocess with `--code` first on PYTHONPATH (to
  measure another checkout, e.g. main's code before a change).
- bare: `AsyncOpenAI` + `asyncio.Semaphore(C)` over the same prompts (same bodies but for the prompt template).
Then the client's ceiling: the same `mlift translate` and bare runs with zero latency at concurrency 64 (requests/s
and CPU milliseconds per request of the client process without its startup, the request cache included for mlift).
The machine's load average is printed beside every row: the client and the server share the same cores.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------------------- server
def serve(port: int, median: float, sigma: float) -> None:
    from aiohttp import web

    log: list[tuple[float, float, float]] = []  # (arrived, answered, latency)
    state = {"median": median, "sigma": sigma}

    def latency(body: bytes) -> float:
        if state["median"] <= 0:
            return 0.0
        h = int.from_bytes(hashlib.sha256(body).digest()[:8], "big")
        u1, u2 = ((h & 0xFFFFFFFF) + 1) / 2**32, ((h >> 32) + 1) / 2**32
        z = math.sqrt(-2 * math.log(u1)) * math.cos(2 * math.pi * u2)  # Box-Muller: one standard normal
        return state["median"] * math.exp(state["sigma"] * z)

    async def complete(request: web.Request) -> web.Response:
        arrived = time.time()
        body = await request.read()
        lat = latency(body)
        if lat:
            await asyncio.sleep(lat)
        data = json.loads(body)
        text = "out " + hashlib.md5(body).hexdigest()[:8]
        usage = {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
        if request.path.endswith("/chat/completions"):
            choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            obj = "chat.completion"
        else:
            choice = {"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}
            obj = "text_completion"
        log.append((arrived, time.time(), lat))
        return web.json_response({"id": "x", "object": obj, "created": int(arrived), "model": data.get("model", "m"),
                                  "choices": [choice], "usage": usage})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(log)

    async def reset(request: web.Request) -> web.Response:
        q = await request.json()
        log.clear()
        state.update(q)
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=2**24)
    app.router.add_post("/v1/chat/completions", complete)
    app.router.add_post("/v1/completions", complete)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    web.run_app(app, host="127.0.0.1", port=port, print=None, backlog=4096, access_log=None)


class Server:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve", str(self.port)])
        import urllib.request

        for _ in range(200):
            try:
                urllib.request.urlopen(self.url + "/stats", timeout=1).read()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the benchmark server did not start")

    def reset(self, median: float, sigma: float) -> None:
        import urllib.request

        req = urllib.request.Request(self.url + "/reset", json.dumps({"median": median, "sigma": sigma}).encode(),
                                     {"Content-Type": "application/json"})
        urllib.request.urlopen(req).read()

    def log(self) -> list[list[float]]:
        import urllib.request

        return json.loads(urllib.request.urlopen(self.url + "/stats").read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait()


def occupancy(log: list[list[float]], conc: int) -> tuple[float, float]:
    wall = max(x[1] for x in log) - min(x[0] for x in log)
    return sum(x[2] for x in log) / conc / wall, wall


# --------------------------------------------------------------------------------------------------------- clients
def texts(n: int) -> list[str]:
    return [f"Ceci est la phrase numéro {i} du banc d'essai." for i in range(n)]


def run_mlift(server: Server, code: Path, n: int, conc: int, tmp: Path) -> tuple[float, float]:
    """`mlift translate` as a subprocess; returns (client wall seconds, client CPU seconds)."""
    import yaml

    src = tmp / "in.txt"
    src.write_text("\n".join(texts(n)) + "\n")
    out = tmp / f"run-{conc}-{time.time_ns()}"
    recipe = {"seed": 0, "output_dir": str(out), "input": {"path": str(src), "lang": "fra_Latn"},
              "target_langs": ["eng_Latn"],
              "translator": {"kind": "llm", "mode": "completion", "fewshot": 0, "max_new_tokens": 16,
                             "llm": {"backend": "openai", "model": "bench", "base_url": server.url + "/v1",
                                     "concurrency": conc}}}
    path = tmp / f"recipe-{conc}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    env = {**os.environ, "PYTHONPATH": str(code), "OPENAI_API_KEY": "x"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    # cwd=code too: `python -m` puts the working directory first on sys.path
    proc = subprocess.run([sys.executable, "-m", "mlift", "translate", str(path), "--no-progress"], env=env, cwd=code,
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(proc.stdout + proc.stderr)
    print(f"    ({proc.stdout.strip().splitlines()[0]})  code: {code}", flush=True)
    kept = sum(1 for _ in (out / "to_en").glob("shard-*.jsonl") for _ in _.open())
    assert kept == n, f"kept {kept} of {n}"
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def bare_client(url: str, n: int, conc: int) -> None:
    """The reference: AsyncOpenAI with a semaphore, the prompts a completion-mode translator would send."""
    from openai import AsyncOpenAI

    async def main() -> None:
        sem = asyncio.Semaphore(conc)
        async with AsyncOpenAI(base_url=url + "/v1", api_key="x", max_retries=4, timeout=120) as client:
            async def one(text: str) -> str:
                async with sem:
                    r = await client.completions.create(model="bench", prompt=f"French: {text}\nEnglish:",
                                                        max_tokens=16, temperature=0.0, seed=0, stop=["\n"])
                    return r.choices[0].text

            await asyncio.gather(*(one(t) for t in texts(n)))

    asyncio.run(main())


def run_bare(server: Server, n: int, conc: int) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--bare", server.url, str(n), str(conc)], check=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conc", default="16,64,256")
    ap.add_argument("--sigmas", default="0.8,0.05")
    ap.add_argument("--rate", type=float, default=100.0,
                    help="requests/s that keep every slot full: the median latency is set to conc / rate / e^(sigma^2/2) "
                    "(the mean of a lognormal), so every concurrency asks the same rate of the client")
    ap.add_argument("--per-slot", type=int, default=60, help="requests per slot: n = per_slot * concurrency")
    ap.add_argument("--max-n", type=int, default=None, help="at most this many requests per row (slow code: before)")
    ap.add_argument("--ceiling-n", type=int, default=3000)
    ap.add_argument("--code", default=str(REPO), help="the mlift checkout to measure (put first on PYTHONPATH)")
    ap.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--bare", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.serve, 0.1, 0.8)
    if args.bare:
        return bare_client(args.bare[0], int(args.bare[1]), int(args.bare[2]))

    load = os.getloadavg()
    print(f"code: {args.code}   rate {args.rate}/s   load average before: {load[0]:.2f} {load[1]:.2f}")
    used = subprocess.run([sys.executable, "-c", "import mlift; print(mlift.__file__)"], cwd=args.code, text=True,
                          env={**os.environ, "PYTHONPATH": args.code}, capture_output=True).stdout.strip()
    print(f"mlift measured: {used}")
    server = Server()
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            for sigma in [float(s) for s in args.sigmas.split(",")]:
                for conc in [int(c) for c in args.conc.split(",")]:
                    n = min(args.per_slot * conc, args.max_n or 10**9)
                    median = conc / args.rate / math.exp(sigma**2 / 2)
                    server.reset(median, sigma)
                    run_mlift(server, Path(args.code), n, conc, tmp)
                    occ_m, wall_m = occupancy(server.log(), conc)
                    server.reset(median, sigma)
                    run_bare(server, n, conc)
                    occ_b, wall_b = occupancy(server.log(), conc)
                    rows.append((sigma, conc, n, occ_m, wall_m, occ_b, wall_b))
                    print(f"sigma {sigma:<5} conc {conc:<4} median {median:.3f} s  n {n:<6} mlift {occ_m:.3f} ({wall_m:6.1f} s)  "
                          f"bare {occ_b:.3f} ({wall_b:6.1f} s)  ratio {occ_m / occ_b:.3f}  "
                          f"load {os.getloadavg()[0]:.2f}", flush=True)
            # The ceiling: zero latency; CPU per request without the process's startup (a run of 20 requests
            # measures that), and requests/s over the server-side span.
            ceiling = {}
            for name, one in (("mlift", lambda n: run_mlift(server, Path(args.code), n, 64, tmp)),
                              ("bare", lambda n: run_bare(server, n, 64))):
                server.reset(0.0, 0.0)
                _, cpu_small = one(20)
                server.reset(0.0, 0.0)
                _, cpu = one(args.ceiling_n)
                ceiling[name] = (args.ceiling_n / occupancy(server.log(), 64)[1],
                                 (cpu - cpu_small) / (args.ceiling_n - 20))
    finally:
        server.stop()
    print()
    print("| latency sigma | concurrency | requests | mlift occupancy | bare occupancy | mlift / bare |")
    print("|---|---|---|---|---|---|")
    for sigma, conc, n, occ_m, _, occ_b, _ in rows:
        print(f"| {sigma} | {conc} | {n} | {occ_m:.3f} | {occ_b:.3f} | {occ_m / occ_b:.3f} |")
    print()
    print(f"zero latency, concurrency 64, {args.ceiling_n} requests: requests/s over the server-side span; CPU per "
          "request of the client process, its startup taken out")
    for name, (rate, cpu) in ceiling.items():
        print(f"  {name:<6}: {rate:7.1f} req/s   CPU {1000 * cpu:.2f} ms/request")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
