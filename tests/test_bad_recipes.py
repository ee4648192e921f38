"""Broken recipes and CLI overrides, tried as a new user would, through every command that reads one.

Each case writes its files into a fresh folder, runs `psycopref ...` in-process and must exit 2 with one
line on stderr that names the file (and line or key) or the flag, with no traceback, and must leave the
folder exactly as it was: a recipe mistake stops the run before any stage starts. The ids count the
cases (recipe001, recipe002, ...); a few run the real console script, and one with -v shows the traceback.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from hub_tools.cli import main

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
SPACE = ROOT / "spaces"


def _yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


DATASET = {"speeches": {"sources": [{"name": "bundled"}]}, "stages": ["speeches"]}  # + work_dir
MODEL_RECIPES = {kind: _yaml(RECIPES / "smollm2-135m-instruct" / kind / "config_demo.yaml")
                 for kind in ("reward", "dpo", "dpo-iter", "eval")}
RELEASE = _yaml(RECIPES / "psycopref" / "release" / "config_demo.yaml")
SPACE_CONFIG = _yaml(SPACE / "config.local.yaml")


@dataclass
class Case:
    """`argv` runs on `files` (name -> text or bytes; {dir} is the case's folder); stderr must match `error`
    ({recipe} is the first file's path)."""

    id: str
    files: dict[str, str | bytes]
    argv: list[str]
    error: str
    extra: list[str] = field(default_factory=list)


def _dump(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def dataset(text: str = "", **changes) -> dict[str, str]:
    """A dataset recipe: the text given, else the base recipe with `changes` (section -> keys) merged in."""
    if text:
        return {"dataset/config.yaml": "work_dir: '{dir}/work'\n" + text}
    data = {"work_dir": "{dir}/work", **DATASET}
    for section, keys in changes.items():
        data[section] = {**data.get(section, {}), **keys} if isinstance(keys, dict) else keys
    return {"dataset/config.yaml": _dump(data)}


def model(kind: str, **changes) -> dict[str, str]:
    data = {**MODEL_RECIPES[kind], "work_dir": "{dir}/work"}
    for section, keys in changes.items():
        data[section] = {**data.get(section, {}), **keys} if isinstance(keys, dict) else keys
    return {f"{kind}/config.yaml": _dump(data)}


SPEECHES = ["dataset", "speeches", "{recipe}"]
RUN = ["dataset", "run", "{recipe}"]
POOL = [{"name": n, "model": "m", "base_url": "http://127.0.0.1:9/v1"} for n in ("a", "b")]
JUDGE = {"endpoint": {"model": "j", "base_url": "http://127.0.0.1:9/v1"}}
R = r"{recipe}"

CASES = [
    # --- the file itself
    Case("missing-file", {}, ["dataset", "speeches", "{dir}/nope.yaml"], r"recipe not found: .*/nope\.yaml$"),
    Case("empty-file", {"dataset/config.yaml": ""}, SPEECHES, rf"{R}: the recipe is empty"),
    Case("comments-only", {"dataset/config.yaml": "# work_dir: runs/x\n\n"}, SPEECHES, rf"{R}: the recipe is empty"),
    Case("empty-mapping", {"dataset/config.yaml": "{}\n"}, SPEECHES, rf"{R}: the recipe is empty"),
    Case("a-list", {"dataset/config.yaml": "- speeches\n"}, SPEECHES, rf"{R}: a recipe is a mapping of keys, got list"),
    Case("a-scalar", {"dataset/config.yaml": "speeches\n"}, SPEECHES, rf"{R}: a recipe is a mapping of keys, got str"),
    Case("not-utf8", {"dataset/config.yaml": "work_dir: caf\xe9\n".encode("latin-1")}, SPEECHES,
         rf"{R}:1: not valid UTF-8 at byte offset 13"),
    Case("control-character", dataset("seed: 4\x072\n"), SPEECHES, rf"{R}:2: not valid YAML: character #x0007"),
    Case("two-documents", dataset("---\nseed: 1\n---\nseed: 2\n"), SPEECHES,
         rf"{R}:2:1: not valid YAML: but found another document"),
    # --- YAML syntax: one line naming file:line:column (it was six, "in <unicode string>")
    Case("unclosed-bracket", dataset("stages: [speeches\nseed: 1\n"), SPEECHES,
         rf"{R}:3:5: not valid YAML: expected ',' or ']', but got ':' \(while parsing a flow sequence at line 2\)"),
    Case("bad-indentation", dataset("speeches:\n  min_chars: 1\n max_chars: 2\n"), SPEECHES,
         rf"{R}:4:2: not valid YAML: expected <block end>"),
    Case("mapping-in-value", dataset("seed: a: b\n"), SPEECHES, rf"{R}:2:8: not valid YAML: mapping values are not allowed"),
    Case("unclosed-quote", dataset("seed: 'x\n"), SPEECHES, rf"{R}:3:1: not valid YAML: found unexpected end of stream"),
    Case("tab-indent", dataset("speeches:\n\tmin_chars: 1\n"), SPEECHES, rf"{R}:3:1: not valid YAML: found character '\\t'"),
    Case("undefined-alias", dataset("seed: *nope\n"), SPEECHES, rf"{R}:2:7: not valid YAML: found undefined alias 'nope'"),
    Case("python-tag", dataset("seed: !!python/object:os.system x\n"), SPEECHES,
         rf"{R}:2:7: not valid YAML: could not determine a constructor"),
    Case("nested-too-deep", dataset("seed: " + "[" * 3000 + "]" * 3000 + "\n"), SPEECHES,
         rf"{R}: not valid YAML: nested too deeply to read"),
    # --- a key given twice: last-one-wins no more
    Case("duplicate-top-key", dataset("seed: 1\nstages: [speeches]\nseed: 2\n"), SPEECHES,
         rf"{R}:4: key 'seed' is given twice \(lines 2 and 4\); keep one"),
    Case("duplicate-work-dir", {"dataset/config.yaml": "work_dir: '{dir}/a'\nstages: [speeches]\nwork_dir: '{dir}/b'\n"},
         SPEECHES, rf"{R}:3: key 'work_dir' is given twice \(lines 1 and 3\)"),
    Case("duplicate-nested-key", dataset("speeches:\n  min_chars: 100\n  max_chars: 900\n  min_chars: 5\n"), SPEECHES,
         rf"{R}:5: key 'speeches.min_chars' is given twice \(lines 3 and 5\)"),
    Case("duplicate-key-in-list", dataset("speeches:\n  sources:\n  - name: bundled\n    name: amod\n"), SPEECHES,
         rf"{R}:5: key 'speeches.sources.0.name' is given twice \(lines 4 and 5\)"),
    Case("duplicate-flow-key", dataset("speeches: {min_chars: 1, min_chars: 2}\n"), SPEECHES,
         rf"{R}:2: key 'speeches.min_chars' is given twice \(lines 2 and 2\)"),
    # --- values no run can use, refused before any stage
    Case("min-above-max", dataset(speeches={"min_chars": 500, "max_chars": 100}), SPEECHES,
         rf"{R}: invalid recipe: speeches.max_chars: must be at least min_chars \(500\).* \(got 100\)$"),
    Case("min-chars-zero", dataset(speeches={"min_chars": 0}), SPEECHES,
         rf"{R}: invalid recipe: speeches.min_chars: Input should be greater than or equal to 1 \(got 0\)$"),
    Case("letter-fraction-above-one", dataset(speeches={"min_letter_fraction": 1.5}), SPEECHES,
         rf"{R}: invalid recipe: speeches.min_letter_fraction: Input should be less than or equal to 1"),
    Case("unknown-key", dataset(speeches={"min_char": 5}), SPEECHES, rf"{R}: invalid recipe: speeches.min_char: unknown key$"),
    Case("wrong-type", dataset(speeches={"near_dedup": "maybe"}), SPEECHES,
         rf"{R}: invalid recipe: speeches.near_dedup: Input should be a valid boolean"),
    Case("negative-seed", dataset(seed=-1), SPEECHES, rf"{R}: invalid recipe: seed: Input should be greater than or equal to 0"),
    Case("classifier-timeout-zero", dataset(speeches={"classifier": {"model": "m", "base_url": "http://x", "timeout": 0}}),
         SPEECHES, rf"{R}: invalid recipe: speeches.classifier.timeout: Input should be greater than 0 \(got 0\)$"),
    Case("pool-timeout-negative", dataset(generate={"pool": [{**POOL[0], "timeout": -5}]}, stages=["generate"]), RUN,
         rf"{R}: invalid recipe: generate.pool.0.timeout: Input should be greater than 0 \(got -5\)$"),
    Case("judge-max-tokens-zero", dataset(judge={"endpoint": {**JUDGE["endpoint"], "params": {"max_tokens": 0}}}), SPEECHES,
         rf"{R}: invalid recipe: judge.endpoint.params: max_tokens must be an integer in \[1, "),
    Case("temperature-text", dataset(generate={"pool": [{**POOL[0], "params": {"temperature": "warm"}}]}), SPEECHES,
         rf"{R}: invalid recipe: generate.pool.0.params: temperature must be a number"),
    Case("top-p-above-one", dataset(generate={"pool": [{**POOL[0], "params": {"top_p": 1.5}}]}), SPEECHES,
         rf"{R}: invalid recipe: generate.pool.0.params: top_p must be a number in \[0, 1\]"),
    Case("server-port", dataset(server={"port": 70000}), SPEECHES,
         rf"{R}: invalid recipe: server.port: Input should be less than or equal to 65535 \(got 70000\)$"),
    Case("server-startup-timeout", dataset(server={"startup_timeout": 0}), SPEECHES,
         rf"{R}: invalid recipe: server.startup_timeout: Input should be greater than 0"),
    Case("several-problems-one-line", dataset(seed=-1, speeches={"min_chars": 0, "shingle_size": 99}), SPEECHES,
         rf"{R}: invalid recipe: seed: .*; speeches.min_chars: .*; speeches.shingle_size: Input should be less than or equal to 64"),
    Case("duplicate-member-names", dataset(generate={"pool": [POOL[0], POOL[0]]}, stages=["generate"]), RUN,
         rf"{R}: invalid recipe: generate: .*member names must be unique, repeated: a"),
    Case("more-members-than-pool", dataset(generate={"pool": POOL, "members_per_speech": 3}, stages=["speeches", "generate"]),
         RUN, r"generate.members_per_speech=3 but the pool has only 2 members"),
    Case("judge-needs-four", dataset(generate={"pool": POOL, "members_per_speech": 2}, judge=JUDGE,
                                     stages=["speeches", "generate", "judge"]), RUN,
         r"generate.members_per_speech must be 4 \(times samples_per_member\) for the judge's Rating Prompt, got 2 x 1"),
    Case("judge-stage-without-section", dataset(stages=["speeches", "judge"]), RUN, r"the recipe has no `judge` section"),
    # --- CLI overrides
    Case("override-not-yaml", dataset(), SPEECHES,
         r"override --speeches.min_chars: value '\[1,': not valid YAML: expected the node content", ["--speeches.min_chars", "[1,"]),
    Case("override-duplicate-flow-key", dataset(), SPEECHES,
         r"override --speeches: value '\{min_chars: 1, min_chars: 2\}': key 'min_chars' is given twice",
         ["--speeches", "{min_chars: 1, min_chars: 2}"]),
    Case("override-conflict", dataset(), SPEECHES, r"override --speeches.min_chars: --speeches already sets a value",
         ["--speeches", "3", "--speeches.min_chars", "5"]),
    Case("override-twice", dataset(), SPEECHES, r"override --seed is given twice", ["--seed", "1", "--seed=2"]),
    Case("override-empty-key", dataset(), SPEECHES, r"override --speeches..min_chars: empty key name",
         ["--speeches..min_chars", "3"]),
    Case("override-no-value", dataset(), SPEECHES, r"override --seed has no value", ["--seed"]),
    Case("override-unknown-key", dataset(), SPEECHES, rf"{R}: invalid recipe: speeches.nope: unknown key$",
         ["--speeches.nope", "1"]),
    Case("override-bad-value", dataset(), SPEECHES, rf"{R}: invalid recipe: speeches.max_chars: must be at least min_chars",
         ["--speeches.max_chars", "50"]),
    Case("override-timeout-zero", dataset(judge=JUDGE), SPEECHES, rf"{R}: invalid recipe: judge.endpoint.timeout: .*than 0",
         ["--judge.endpoint.timeout", "0"]),
    # --- the other kinds of recipe
    Case("reward-batch-zero", model("reward", training={"per_device_train_batch_size": 0}), ["reward", "train", "{recipe}"],
         rf"{R}: invalid recipe: training.per_device_train_batch_size: .*greater than or equal to 1 \(got 0\)$"),
    Case("reward-negative-learning-rate", model("reward", training={"learning_rate": -1e-5}), ["reward", "train", "{recipe}"],
         rf"{R}: invalid recipe: training.learning_rate: Input should be greater than 0"),
    Case("reward-lora-rank-zero", model("reward", model={"lora": {"r": 0}}), ["reward", "eval", "{recipe}"],
         rf"{R}: invalid recipe: model.lora.r: Input should be greater than or equal to 1"),
    Case("reward-duplicate-key", {"reward/config.yaml": "work_dir: '{dir}/w'\ntraining:\n  seed: 1\n  seed: 2\n"},
         ["reward", "train", "{recipe}"], rf"{R}:4: key 'training.seed' is given twice \(lines 3 and 4\)"),
    Case("reward-empty", {"reward/config.yaml": "\n"}, ["reward", "train", "{recipe}"], rf"{R}: the recipe is empty"),
    Case("dpo-beta-zero", model("dpo", training={"beta": 0}), ["policy", "dpo", "{recipe}"],
         rf"{R}: invalid recipe: training.beta: Input should be greater than 0"),
    Case("dpo-grad-accumulation-zero", model("dpo", training={"gradient_accumulation_steps": 0}), ["policy", "dpo", "{recipe}"],
         rf"{R}: invalid recipe: training.gradient_accumulation_steps: .*greater than or equal to 1"),
    Case("dpo-iter-one-sample", model("dpo-iter", iter={**MODEL_RECIPES["dpo-iter"]["iter"], "generation": {"samples": 1}}),
         ["policy", "dpo-iter", "{recipe}"], rf"{R}: invalid recipe: iter.generation.samples: .*greater than or equal to 2"),
    Case("eval-confidence", model("eval", bootstrap={"confidence": 1.5}), ["policy", "eval", "{recipe}"],
         rf"{R}: invalid recipe: bootstrap.confidence: Input should be less than 1"),
    Case("eval-server-threads", model("eval", server={"threads": 0}), ["policy", "eval", "{recipe}"],
         rf"{R}: invalid recipe: server.threads: Input should be greater than or equal to 1"),
    Case("eval-syntax", {"eval/config.yaml": "policies:\n  - name: a\n   model: m\n"}, ["policy", "eval", "{recipe}"],
         rf"{R}:3:\d+: not valid YAML"),
    Case("release-empty", {"release/config.yaml": ""}, ["release", "{recipe}", "--dry-run"], rf"{R}: the recipe is empty"),
    Case("release-duplicate-artifact-key", {"release/config.yaml": _dump({**RELEASE, "staging_dir": "{dir}/s"})
                                            + "org: Someone-Else\n"},
         ["release", "{recipe}", "--dry-run"], rf"{R}:\d+: key 'org' is given twice \(lines 1 and \d+\)"),
    Case("release-entry-recipe-invalid", {"release/config.yaml": _dump({
        **RELEASE, "staging_dir": "{dir}/s", "artifacts": [{**RELEASE["artifacts"][0], "overrides": {
            "work_dir": "{dir}/d", "speeches": {"min_chars": 900, "max_chars": 100}}}]})},
         ["release", "{recipe}", "--dry-run"],
         r"recipes/psycopref/dataset/config_demo\.yaml: invalid recipe: speeches\.max_chars: must be at least min_chars"),
    Case("space-min-above-max", {"config.yaml": _dump({**SPACE_CONFIG, "limits": {"min_input_chars": 500,
                                                                                 "max_input_chars": 100}})},
         ["space", "deploy", "--repo-id", "a/b", "--folder", str(SPACE), "--config", "{recipe}", "--hub-dir", "{dir}/hub"],
         rf"{R}: invalid recipe: limits: .*min_input_chars \(500\) is above max_input_chars \(100\)"),
    Case("space-duplicate-key", {"config.yaml": _dump(SPACE_CONFIG) + "examples: 3\nexamples: 4\n"},
         ["space", "deploy", "--repo-id", "a/b", "--folder", str(SPACE), "--config", "{recipe}", "--hub-dir", "{dir}/hub"],
         rf"{R}:\d+: key 'examples' is given twice"),
    Case("space-policy-port", {"config.yaml": _dump({**SPACE_CONFIG, "server": {"port": 0}})},
         ["space", "run", "--folder", str(SPACE), "--config", "{recipe}"],
         rf"{R}: invalid recipe: server.port: Input should be greater than or equal to 1"),
    Case("space-crisis-file-syntax", {"config.yaml": _dump({**SPACE_CONFIG, "crisis_file": "{dir}/crisis.yaml"}),
                                      "crisis.yaml": "categories:\n  self_harm: ['a'\nbanner: x\n"},
         ["space", "run", "--folder", str(SPACE), "--config", "{recipe}"], r".*/crisis\.yaml:3:1: not valid YAML"),
    Case("space-crisis-file-duplicate", {"config.yaml": _dump({**SPACE_CONFIG, "crisis_file": "{dir}/crisis.yaml"}),
                                         "crisis.yaml": "banner: 'About {{signals}}'\nbanner: x\n"},
         ["space", "run", "--folder", str(SPACE), "--config", "{recipe}"],
         r".*/crisis\.yaml:2: key 'banner' is given twice \(lines 1 and 2\)"),
    Case("estimate-accelerate-config", {**model("reward", hardware={"gpus": 2, "accelerate_config": "{dir}/accel.yaml"}),
                                        "accel.yaml": "distributed_type: DEEPSPEED\ndistributed_type: FSDP\n"},
         ["estimate", "{recipe}"], r".*/accel\.yaml:2: key 'distributed_type' is given twice"),
    Case("estimate-costs-inputs", {**model("reward"), "measured.yaml": "build: [\n"},
         ["estimate", "--costs", "--inputs", "{dir}/measured.yaml", "{recipe}"], r".*/measured\.yaml:2:1: not valid YAML"),
]
IDS = [f"recipe{i:03d}-{c.id}" for i, c in enumerate(CASES, start=1)]  # the count shows in every id


def _setup(tmp_path: Path, case: Case) -> list[str]:
    """Write the case's files; the argv with {dir} and {recipe} filled in."""
    first = None
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content.replace("{dir}", str(tmp_path)), encoding="utf-8")
        else:
            path.write_bytes(content)
        first = first or path
    return [a.replace("{dir}", str(tmp_path)).replace("{recipe}", str(first)) for a in case.argv + case.extra]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _expected(case: Case, argv: list[str], tmp_path: Path) -> str:
    first = next(iter(case.files), None)
    recipe = re.escape(str(tmp_path / first)) if first else ""
    return case.error.replace(R, recipe)


def test_the_matrix_has_thirty_broken_recipes_and_overrides_across_every_kind():
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)
    commands = {" ".join(a for a in c.argv[:2] if not a.startswith(("{", "-"))) for c in CASES}  # "reward train"
    assert {"dataset speeches", "dataset run", "reward train", "reward eval", "policy dpo", "policy dpo-iter",
            "policy eval", "release", "space run", "space deploy", "estimate"} <= commands
    assert sum(bool(c.extra) for c in CASES) >= 8  # CLI overrides


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_a_broken_recipe_is_one_line_naming_file_and_key_and_nothing_is_written(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(ROOT)  # release recipes name their artifacts' recipes relative to the repository
    argv = _setup(tmp_path, case)
    before = _tree(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    assert re.match(rf"psycopref: error: {_expected(case, argv, tmp_path)}", err), err
    assert _tree(tmp_path) == before, "a recipe mistake wrote something"
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize("name", ["unclosed-bracket", "duplicate-nested-key", "override-not-yaml"])
def test_the_console_script_prints_one_error_line(tmp_path, name):
    case = next(c for c in CASES if c.id == name)
    argv = _setup(tmp_path, case)
    out = subprocess.run([sys.executable, "-m", "hub_tools.cli", *argv], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 2 and "Traceback" not in out.stderr and out.stderr.count("\n") == 1, out.stderr
    assert re.match(rf"psycopref: error: {_expected(case, argv, tmp_path)}", out.stderr), out.stderr


def test_verbose_shows_the_traceback(tmp_path, capsys):
    case = next(c for c in CASES if c.id == "duplicate-top-key")
    assert main(["-v", *_setup(tmp_path, case)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("psycopref: error: ")
