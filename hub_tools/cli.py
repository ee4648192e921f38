"""psycopref: build PsyCoPref preference data, reward models and policies, Hub-native.

The root parser; each area (the dataset pipeline, the demo, evaluation) registers its own subcommands:

    psycopref speeches RECIPE [--section.key value ...]   collect client speeches
    psycopref generate RECIPE [...]                        model-pool responses
    psycopref judge RECIPE [...]                           principle ratings
    psycopref pairs RECIPE [...]                           split + preference pairs (+ privacy scrub)
    psycopref dataset RECIPE [...]                         the dataset repo folder with its card
    psycopref push RECIPE [--hub-dir DIR | --hub]          publish the folder
    psycopref run RECIPE [...]                             every stage the recipe names, in order
    psycopref demo [--work-dir DIR] [--hub-dir DIR]        the whole pipeline offline on the embedded default
    psycopref annotate export|score ...                    expert-validation sheets (paper §3.4)
    psycopref train-reward RECIPE [...]                    Bradley-Terry reward model (paper §4.1) + its repo folder
    psycopref eval-reward RECIPE [...]                     test metrics, calibration, baselines -> folder and card
    psycopref push-reward RECIPE [--hub-dir DIR | --hub]   publish the reward model folder
    psycopref train-dpo RECIPE [...]                       offline DPO policy (paper §4.2) + its repo folder
    psycopref train-dpo-iter RECIPE [...]                  iterative DPO with a reward model, resumable rounds
    psycopref push-policy RECIPE [--hub-dir DIR | --hub]   publish the policy folder
    psycopref estimate RECIPE [...] [--markdown|--costs]   peak training memory per GPU, or GPU-hours and dollars
    psycopref eval-policy RECIPE [...]                     win rates against a reference model (paper Table 2)
    psycopref chat --endpoint URL [SPEECH]                 one streamed answer from a served policy (TGI, vLLM, llama.cpp)
    psycopref space run|deploy [...]                       the comparison Space: launch it locally, or upload it to the Hub
    psycopref release RECIPE [--dry-run] [--hub]           publish every artifact of a release with one version tag

Flags after the recipe override its keys (`--judge.mode per_principle`); unknown keys are an error.
Every stage resumes: finished model calls are cached in the work dir and never paid for twice.
Errors you can fix (a bad recipe or input file, a missing stage output, an unreachable endpoint) are
one line; anything else is a bug and keeps its traceback. `-v` shows tracebacks always.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import traceback

from .errors import PsycoprefError

AREAS = ("hub_tools.dataset.pipeline", "hub_tools.demo", "hub_tools.annotate.pair_sheets", "hub_tools.reward.cli",
         "hub_tools.policy.cli", "hub_tools.policy.winrate.evaluate", "hub_tools.estimate.costs", "hub_tools.chat",
         "hub_tools.arena.cli", "hub_tools.release.cli")  # each has add_cli(subparsers)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    for noisy in ("httpx", "httpx2", "huggingface_hub", "datasets", "urllib3", "filelock"):
        logging.getLogger(noisy).setLevel(logging.INFO if verbose else logging.WARNING)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="psycopref", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="Log HTTP requests and library chatter; show tracebacks of every error.")
    sub = parser.add_subparsers(dest="command", required=True)
    for area in AREAS:
        importlib.import_module(area).add_cli(sub)
    return parser


def _log_hint(err: BaseException) -> str:
    path = getattr(err, "psycopref_log", None)
    return f" (log: {path})" if path else ""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    takes_overrides = getattr(args, "overrides", False)
    if extra and not takes_overrides:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)
    try:
        return (args.func(args, extra) if takes_overrides else args.func(args)) or 0
    except KeyboardInterrupt:
        print("interrupted: finished work is kept; rerun the same command to resume", file=sys.stderr)
        return 130
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
