"""`psycopref chat`: one answer from a served policy, streamed to the terminal.

    psycopref chat --endpoint http://localhost:8080 "I can't sleep before exams..."
    echo "..." | psycopref chat --endpoint http://localhost:8000/v1 --backend vllm-server --model ORG/NAME
    psycopref chat --config spaces/config.yaml --policy PsyCoPref-Llama3-8B --example 5

The speech is wrapped in the paper's Responding Prompt (optionally "Answer in about N words."), sent
through the policy client (`serving.policy_client`: TGI's Messages API or any OpenAI-compatible server,
retries honouring Retry-After on 429/503), and the answer is printed as it streams; a summary line goes
to stderr. A policy's endpoint, system prompt and decoding parameters can come from a Space config or a
recipe (`--config FILE --policy NAME`); flags override them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .config import Endpoint, RecipeError, ServerConfig, load_any, recipe_kind
from .serving.policy_client import PolicyClient


def find_policy(path: str | Path, name: str) -> tuple[Endpoint, str | None, ServerConfig]:
    """(endpoint, system prompt, server config) of the policy or pool member `name` in a Space config or a
    recipe (an eval recipe's `policies`, a dataset recipe's `generate.pool`)."""
    from .kinds import KINDS

    if recipe_kind(path) in KINDS:
        recipe = load_any(path)
        members = getattr(recipe, "policies", None) or getattr(getattr(recipe, "generate", None), "pool", None) or []
        server = getattr(recipe, "server", None) or ServerConfig()
    else:
        from .arena.config import load_space_config

        cfg = load_space_config(path)
        members, server = [p.resolved() for p in cfg.policies], cfg.server
    for member in members:
        if member.name == name:
            endpoint = Endpoint(**{k: getattr(member, k) for k in Endpoint.model_fields})
            return endpoint, member.system_prompt, server
    raise RecipeError(f"{path}: no policy named {name!r} (there are: {', '.join(m.name for m in members) or 'none'})")


def _speech(args) -> str:
    if args.example is not None:
        from .arena.app import example_speeches

        speeches = example_speeches(64)
        if not 1 <= args.example <= len(speeches):
            raise RecipeError(f"--example takes 1 to {len(speeches)}, got {args.example}")
        return speeches[args.example - 1]["text"]
    if args.speech and args.speech != "-":
        return args.speech
    if sys.stdin.isatty():
        raise RecipeError("give the client speech as an argument, on standard input, or pick one with --example N")
    return sys.stdin.read().strip()


def _chat(args) -> int:
    import contextlib

    from .serving.llama_server import LlamaServer

    if args.config:
        if not args.policy:
            raise RecipeError("--config needs --policy NAME")
        endpoint, system_prompt, server = find_policy(args.config, args.policy)
    elif args.endpoint:
        endpoint, system_prompt, server = Endpoint(model=args.model or "tgi", backend=args.backend), None, ServerConfig()
    else:
        raise RecipeError("name the server with --endpoint URL, or a policy with --config FILE --policy NAME")
    updates = {"base_url": args.endpoint, "model": args.model, "api_key_env": args.api_key_env,
               "timeout": args.timeout, "max_retries": args.max_retries}
    params = {"max_tokens": args.max_tokens, "temperature": args.temperature, "top_p": args.top_p, "seed": args.seed}
    endpoint = endpoint.model_copy(update={**{k: v for k, v in updates.items() if v is not None},
                                           "params": {**endpoint.params, **{k: v for k, v in params.items() if v is not None}}})
    speech = _speech(args)
    with contextlib.ExitStack() as stack:
        managed = None
        if endpoint.base_url == "managed":
            managed = stack.enter_context(LlamaServer(server, Path(args.log_dir))).base_url
        client = PolicyClient(endpoint, args.system_prompt or system_prompt, args.length_words, managed_url=managed)
        if args.wait_ready:
            client.wait_ready(args.wait_ready)
        start, first, text = time.monotonic(), None, []
        for piece in ([client.answer(speech).text] if args.no_stream else client.stream(speech)):
            first = first if first is not None else time.monotonic() - start
            text.append(piece)
            print(piece, end="", flush=True)
        print()
    answer = "".join(text)
    print(f"[{client.label}: {len(answer.split())} words in {time.monotonic() - start:.1f} s, first text after "
          f"{first or 0:.2f} s]", file=sys.stderr)
    return 0


def add_cli(sub) -> None:
    chat = sub.add_parser("chat", help="one streamed answer from a served policy (TGI, vLLM, ...)")
    chat.add_argument("speech", nargs="?", help="the client speech ('-' or nothing: read standard input)")
    chat.add_argument("--endpoint", help="server URL: TGI's root (http://host:8080), vLLM's or llama.cpp's .../v1, "
                                         "or 'managed' for the toolkit's own llama.cpp server")
    chat.add_argument("--backend", default="tgi", help="with --endpoint: tgi, vllm-server, llamacpp or openai (default: tgi)")
    chat.add_argument("--model", help="model id sent to the server (TGI ignores it; default: tgi)")
    chat.add_argument("--config", help="a Space config or recipe to take the policy from (with --policy)")
    chat.add_argument("--policy", help="the policy's (or pool member's) name in --config")
    chat.add_argument("--api-key-env", help="environment variable holding the server's API key (none is sent otherwise)")
    chat.add_argument("--system-prompt", help="system message before the Responding Prompt")
    chat.add_argument("--length-words", type=int, help="ask for about this many words (the paper's length constraint)")
    chat.add_argument("--max-tokens", type=int, help="decoding: most new tokens")
    chat.add_argument("--temperature", type=float, help="decoding: sampling temperature")
    chat.add_argument("--top-p", type=float, help="decoding: nucleus sampling")
    chat.add_argument("--seed", type=int, help="decoding: sampling seed")
    chat.add_argument("--timeout", type=float, help="seconds to wait for the server (for each streamed piece)")
    chat.add_argument("--max-retries", type=int, help="retries of connection errors, 408, 429 and 5xx")
    chat.add_argument("--wait-ready", type=float, metavar="SECONDS", help="first wait up to this long for /health")
    chat.add_argument("--example", type=int, metavar="N", help="answer the N-th bundled example speech (1-64)")
    chat.add_argument("--no-stream", action="store_true", help="one request for the whole answer")
    chat.add_argument("--log-dir", default="logs", help="where a managed llama.cpp server logs")
    chat.set_defaults(func=_chat)
