"""Generation throughput through the toolkit against the raw llama.cpp server, same prompts, same load.

A llama.cpp server (xllamacpp, SmolLM2-135M-Instruct; a fresh one for each side, warmed up with two
unrelated prompts) serves each side, for each concurrency c in the list (the server gets c slots):
  - raw: c threads POST the Responding Prompt straight to /v1/chat/completions (urllib, no toolkit);
  - toolkit: `run_generate` with one pool member and `concurrency: c`, so every request goes through
    the Runtime, the SQLite cache (a fresh one: every call is a miss) and the backend
    (huggingface_hub's InferenceClient).
Both send identical requests (same messages, max_tokens, temperature and seed), so the server
produces the same tokens; throughput = completion tokens / wall seconds. Target: toolkit >= 90%
of raw.

    python benchmarks/bench_generate.py --speeches 24 --concurrency 1 2 [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from hub_tools.config import Responder, ServerConfig
from hub_tools.generate.config import GenerateConfig
from hub_tools.generate.stage import run_generate
from hub_tools.paper.prompts import responding_messages
from hub_tools.serving.llama_server import LlamaServer
from hub_tools.serving.runtime import Runtime
from hub_tools.speeches.config import SpeechesConfig
from hub_tools.speeches.stage import run_speeches

PARAMS = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 64, "seed": 1}  # the demo pool's settings


def raw(url: str, texts: list[str], concurrency: int) -> tuple[float, int]:
    """Wall seconds and completion tokens for the prompts sent straight to the server."""
    def one(i: int) -> int:
        body = {"model": "smollm2", "messages": responding_messages(texts[i]), **PARAMS}
        req = urllib.request.Request(f"{url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=300) as r:
            return json.loads(r.read())["usage"]["completion_tokens"]

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        tokens = sum(pool.map(one, range(len(texts))))
    return time.perf_counter() - start, tokens


def toolkit(url: str, speeches, concurrency: int, work: Path) -> tuple[float, int]:
    """The same requests through run_generate: one member answering each speech once."""
    member = Responder(name="smollm2", backend="llamacpp", model="smollm2", base_url=url, params=PARAMS)
    cfg = GenerateConfig(pool=[member], members_per_speech=1, concurrency=concurrency)
    with Runtime(work) as rt:
        start = time.perf_counter()
        out = run_generate(cfg, work, rt, speeches=speeches)
        seconds = time.perf_counter() - start
    return seconds, sum(out["completion_tokens"])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--speeches", type=int, default=24)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    speeches = run_speeches(SpeechesConfig(), root / "speeches-work").select(range(args.speeches))
    texts = speeches["text"]
    rows = []
    warm = [f"Warm-up {i}: I have been feeling low for a few days." for i in range(2)]
    for c in args.concurrency:
        cfg = ServerConfig(threads=args.threads, n_parallel=c, ctx_size=2048 * c)
        # a fresh server per side: llama.cpp keeps recent prompts' KV cache in RAM, which would hand the
        # second side the first side's prompt processing
        with LlamaServer(cfg, root / "logs") as server:
            raw(server.base_url, warm, c)
            r_s, r_tok = raw(server.base_url, texts, c)
        with LlamaServer(cfg, root / "logs") as server:
            raw(server.base_url, warm, c)
            t_s, t_tok = toolkit(server.base_url, speeches, c, root / f"work-{c}")
        rows.append((c, r_s, r_tok, t_s, t_tok))
    print(f"\n{args.speeches} prompts, {args.threads} thread(s), max_tokens {PARAMS['max_tokens']}\n")
    print("| concurrency | raw tok/s | toolkit tok/s | toolkit / raw | raw tokens | toolkit tokens |")
    print("|---:|---:|---:|---:|---:|---:|")
    for c, r_s, r_tok, t_s, t_tok in rows:
        print(f"| {c} | {r_tok / r_s:.1f} | {t_tok / t_s:.1f} | {100 * (t_tok / t_s) / (r_tok / r_s):.0f}% | "
              f"{r_tok} | {t_tok} |")


if __name__ == "__main__":
    main()
