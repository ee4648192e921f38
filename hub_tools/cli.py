"""psycopref: build PsyCoPref preference data, reward models and policies, Hub-native.

Commands are grouped by the artifact they make; each area registers its own (`add_cli`):

    psycopref dataset speeches|generate|judge|pairs|build|push|run RECIPE   the preference dataset, stage by stage
    psycopref reward train|eval|push RECIPE                                 Bradley-Terry reward models (paper §4.1)
    psycopref policy dpo|dpo-iter|eval|push RECIPE                          DPO / DPO-Iter policies, win rates (§4.2)
    psycopref space run|deploy [...]                                        the comparison Space, locally or on the Hub
    psycopref release RECIPE [--dry-run] [--hub]                            every artifact of a release, one version tag
    psycopref estimate RECIPE [...] [--markdown|--costs]                    memory per GPU, or GPU-hours and dollars
    psycopref annotate export|score ...                                     expert-validation sheets (paper §3.4)
    psycopref demo [--work-dir DIR] [--hub-dir DIR]                         the whole pipeline offline, on the CPU
    psycopref chat --endpoint URL [SPEECH]                                  one streamed answer from a served policy

`psycopref <group> --help` lists a group's commands. Flags after a recipe override its keys
(`--judge.mode per_principle`); unknown keys are an error. Every stage resumes: finished model calls are
cached in the work dir and never paid for twice. Ctrl-C (or SIGTERM) stops sending, waits up to
$PSYCOPREF_STOP_GRACE seconds (30) for calls in flight, says how many calls finished and exits 130 (143 for
SIGTERM). Errors you can fix (a bad recipe or input file, a missing stage output, an unreachable endpoint)
are one line; anything else is a bug and keeps its traceback. `-v` shows tracebacks always. The old command
names (`train-reward`, `psycopref run`, ...) still work for one release and say which command replaces them.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import traceback

from .commands import translate
from .errors import Interrupted, PsycoprefError

AREAS = ("hub_tools.dataset.cli", "hub_tools.reward.cli", "hub_tools.policy.cli", "hub_tools.arena.cli",
         "hub_tools.release.cli", "hub_tools.estimate.cli", "hub_tools.annotate.cli", "hub_tools.demo",
         "hub_tools.chat")  # each registers its commands with add_cli(subparsers), in this order in --help


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2", "huggingface_hub", "datasets", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="psycopref", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="Log HTTP requests and library chatter; show tracebacks of every error.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands")
    for area in AREAS:
        importlib.import_module(area).add_cli(sub)
    return parser


def _log_hint(err: BaseException) -> str:
    path = getattr(err, "psycopref_log", None)
    return f" (log: {path})" if path else ""


def _terminate(signum, frame) -> None:
    raise Interrupted("", signum)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (a `kill`, a job scheduler, a container stopping) stops a run like Ctrl-C does, instead of
    killing it on the spot with its calls in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(err: KeyboardInterrupt) -> int:
    """One line on what a Ctrl-C or SIGTERM kept; the exit code a shell gives that signal (128 + its number)."""
    signum = getattr(err, "signum", signal.SIGINT)
    how = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    kept = f"{err}; " if str(err) else "finished work is kept; "
    print(f"psycopref: interrupted by {how}: {kept}rerun the same command to resume", file=sys.stderr)
    return 128 + signum


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(translate(sys.argv[1:] if argv is None else list(argv)))
    takes_overrides = getattr(args, "overrides", False)
    if extra and not takes_overrides:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)
    try:
        with _sigterm_as_interrupt():
            return (args.func(args, extra) if takes_overrides else args.func(args)) or 0
    except KeyboardInterrupt as err:
        return _interrupted(err)
    except PsycoprefError as err:
        if args.verbose:
            traceback.print_exc()
        print(f"psycopref: error: {err}{_log_hint(err)}", file=sys.stderr)
        return 2
    except Exception as err:
        print(f"psycopref: unexpected error, probably a bug; please report it with the traceback below{_log_hint(err)}",
              file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
