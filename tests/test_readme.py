"""Every command of README.md's ```bash blocks is run here on a tiny release, or skipped for a stated reason.

The README's commands are listed below one by one: a command added to the README fails
``test_every_readme_command_is_classified`` until it is put in ``PLAN`` (run) or ``SKIPPED`` (with why), so
no example rots unseen. Commands run as written except for the declared scale-downs (``SCALE``: fewer entities,
one training epoch, four generated tokens, no progress bars) and placeholders (``PLACEHOLDERS``); optional ``[...]`` parts are run.
Everything shares one tiny release (the tests' ``tiny_release``) and the tiny models trained from it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# -- what the README holds --------------------------------------------------------------------------------
DEMO_STUDY_ARGS = "--data entity-unlearn --base tiny --out study"
DEMO_STUDY_OPTIONS = "--methods ga,npo_gd --coverage-methods none --deep-method none --robustness-methods npo_gd"
HUB_TESTS = "tests/eval/hub/test_queue.py runs submit, score-queue and leaderboard against the local Hub server"
SKIPPED = {
    "make demo": "about 15 minutes; it runs the demo study line below (checked against the Makefile here)",
    "make test": "runs this test suite; running it from here would recurse",
    "export OPENAI_API_KEY=...": "shell set-up of the two LLM lines below",
    "entity-unlearn generate --entities 200 --out world --llm gpt-4o-mini": "needs the network (OpenAI's API); tests/builders/llm drive the same "
    "options against a local OpenAI-compatible server (tests/openai_server.py)",
    "entity-unlearn generate --entities 200 --out world --llm llama3.1:8b --llm-base-url http://localhost:11434/v1 --llm-concurrency 32 "
    "--llm-timeout 60 --llm-attempts 3 --llm-tasks bio,paraphrase,perturb": "needs an Ollama server with llama3.1:8b; tests/builders/llm run "
    "every one of these options against tests/openai_server.py",
    'sed -i \'s#path: "locuslab/TOFU"#path: "my-lab/entity-unlearn"#\' configs/data/datasets/TOFU_*.yaml': "edits a checkout of OpenUnlearning "
    "(network); tests/builders/release/test_openunlearning.py checks every field their TOFU YAMLs name",
    "python src/eval.py experiment=eval/tofu/default forget_split=forget05 holdout_split=holdout05 "
    "model.model_args.pretrained_model_name_or_path=MODEL retain_logs_path=REFERENCE/TOFU_EVAL.json task_name=side_by_side": "OpenUnlearning's "
    "own evaluation, in their checkout (network, their dependencies)",
    "entity-unlearn eval --model MODEL --data my-lab/entity-unlearn --forget forget05 --out ours --reference REFERENCE_EVAL --compat openunlearning": ""
    "reads the release from the Hub (network); tests/eval/test_eval.py runs --compat openunlearning with --reference on a local release",
    "entity-unlearn submit --model my-lab/llama-npo@main --queue bench/requests --release bench/entity-unlearn@v1.0.0 --forget forget05 "
    "--reference-model my-lab/llama-retain --method npo --base my-lab/llama-injected [--notes TEXT] [--open-pr]": "the Hub (network); " + HUB_TESTS,
    "entity-unlearn score-queue --queue bench/requests --results bench/results --poll 300 --work scorer-work": "the Hub (network); " + HUB_TESTS,
    "entity-unlearn leaderboard --results bench/results --out site": "reads the Hub (network); " + HUB_TESTS,
    "hf repos create bench/requests --repo-type dataset": "the Hub's own CLI (network)",
    "hf repos create bench/results --repo-type dataset": "the Hub's own CLI (network)",
    "hf repos create bench/leaderboard --repo-type space --space-sdk static": "the Hub's own CLI (network)",
    "hf upload bench/leaderboard site . --repo-type space": "the Hub's own CLI (network)",
    "vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 4": "a GPU server (4 GPUs)",
    "entity-unlearn eval --backend openai --model meta-llama/Llama-3.1-70B-Instruct --base-url http://gpu-host:8000/v1 --data entity-unlearn "
    "--out eval-70b [--tokenizer DIR_OR_ID] [--concurrency 32] [--api-key-env VAR]": "a served 70B model; tests/eval/test_served.py runs "
    "--backend openai against tests/model_server.py",
    "entity-unlearn eval --model MODEL --data entity-unlearn --out eval-out --num-processes 8": "eight processes; tests/eval/test_processes.py "
    "runs --num-processes 2",
    "accelerate launch --multi_gpu --num_processes 8 -m entity_unlearn eval --model MODEL --data entity-unlearn --out eval-out": "eight GPUs",
    "entity-unlearn inject --data entity-unlearn --base tiny --out models/target --num-processes 2": "two training processes; "
    "tests/pipeline/test_training_processes.py runs inject and unlearn with --num-processes 2 against one process",
    "accelerate launch --multi_gpu --num_processes 8 -m entity_unlearn unlearn --model MODEL --data entity-unlearn --method npo_gd "
    "--out models/npo_gd": "eight GPUs; tests/pipeline/test_training_processes.py runs unlearn --method npo_gd with --num-processes 2",
    "entity-unlearn eval --backend vllm --model MODEL --data entity-unlearn --out eval-out": "vLLM's engine needs a GPU; tests/eval/test_vllm.py "
    "runs the adapter against a stand-in engine",
    "entity-unlearn unlearn --model MODEL --data entity-unlearn --method npo_gd --out models/npo_gd --num-processes 2 --fsdp": "two training "
    "processes; tests/pipeline/test_training_processes.py runs unlearn --method npo_gd with --num-processes 2 --fsdp against one process",
    "accelerate launch --config_file fsdp2.yaml -m entity_unlearn unlearn --model MODEL --data entity-unlearn --method npo_gd "
    "--out models/npo_gd": "a config file; tests/pipeline/test_training_processes.py runs inject under accelerate launch with an FSDP2 config",
    "entity-unlearn study --data entity-unlearn --base tiny --out study --num-processes 2": "a dozen models trained by two processes; "
    "tests/pipeline/test_launched_pipeline.py runs a scaled-down study on two processes against one",
    "accelerate launch --multi_gpu --num_processes 8 -m entity_unlearn attack --model MODEL --data entity-unlearn --kind relearn,quant4 "
    "--out attacks/model": "eight GPUs; tests/pipeline/test_launched_pipeline.py runs attack --kind relearn with --num-processes 2",
    "python bench/gpu_pipeline.py --served --base Qwen/Qwen2.5-0.5B-Instruct": "a GPU, vllm and a Hub model; tests/test_bench.py runs "
    "--served with tests/model_server.py in vLLM's place",
    f"entity-unlearn study {DEMO_STUDY_ARGS} {DEMO_STUDY_OPTIONS}": "`make demo` runs exactly this command (checked here); "
    "even on a tiny release it trains a dozen models; tests/pipeline/test_pipeline.py runs the study with fewer epochs",
    f"entity-unlearn study {DEMO_STUDY_ARGS} --seeds 3": "the README's study table: the demo's folder resumed with every method, "
    "the coverage sweep, deep injection and two more seeds (an hour); tests/pipeline/test_pipeline.py runs the study with seeds, scaled down",
    "entity-unlearn study --data entity-unlearn --base tiny --out study-full --robustness-methods all --seeds 3": "the full study, hours; "
    "tests/pipeline/test_pipeline.py runs the study and the robustness matrix scaled down",
    "entity-unlearn attack --model models/npo_gd --data entity-unlearn --forget forget05 --kind all --out attacks/npo_gd "
    "--reference-model models/reference --before evals/target/results.json": "seven attacks (relearning, quantisation) on two models: "
    "tests/pipeline/test_attack.py runs this command's options (--kind all, --reference-model, --before)",
}
# Run in this order, from one working folder holding the tests' tiny release as ./entity-unlearn (10 persons,
# version 1.0.0); ("setup", why) lines are not in the README but make its commands runnable.
PLAN = [
    ("readme", "entity-unlearn generate --types person=150,organisation=30,place=20 --seed 7 --k 5 --out world7"),
    ("readme", "entity-unlearn generate --types person=20,band=10 --type-spec my_types/band.toml --out bands"),
    ("readme", "HF_TOKEN=hf_... entity-unlearn publish entity-unlearn --repo my-lab/entity-unlearn"),
    ("readme", "entity-unlearn audit entity-unlearn"),
    ("readme", "entity-unlearn audit entity-unlearn --json report.json"),
    ("readme", "entity-unlearn audit entity-unlearn --strict"),
    ("readme", "entity-unlearn inject --data entity-unlearn --base tiny --out models/target"),
    ("readme", "entity-unlearn inject --data entity-unlearn --base tiny --exclude forget05 --out models/reference"),
    (
        "setup: the reference evaluation the eval lines read",
        "entity-unlearn eval --model models/reference --data entity-unlearn --out evals/reference",
    ),
    (
        "setup: the before-unlearning evaluation the eval lines read",
        "entity-unlearn eval --model models/target --data entity-unlearn --out evals/target",
    ),
    (
        "readme",
        "entity-unlearn unlearn --model models/target --data entity-unlearn --forget forget05 --method npo_gd [--coverage 50] --out models/npo_gd",
    ),
    (
        "readme",
        "entity-unlearn eval --model models/npo_gd --data entity-unlearn --reference evals/reference --before evals/target --out evals/npo_gd",
    ),
    (
        "readme",
        "entity-unlearn eval --model models/target --model models/npo_gd --data entity-unlearn --reference evals/reference --before evals/target --out evals/sweep",
    ),
    (
        "readme",
        "entity-unlearn eval --model MODEL --data entity-unlearn --forget forget05 --out eval-out [--reference REF/results.json] [--before BEFORE/results.json]",
    ),
    ("readme", "entity-unlearn export eval-out --format lm-eval --out eval-out-lmeval"),
]
SCALE = [
    ("person=150,organisation=30,place=20", "person=12,organisation=3,place=2"),
    ("person=20,band=10", "person=8,band=4"),
]
EXIT = {"entity-unlearn audit entity-unlearn --strict": (0, 1)}  # 1: a threshold broken (checked against the report below)
TRAINING = ("entity-unlearn inject ", "entity-unlearn unlearn ")  # + --epochs 1
EVALUATING = "entity-unlearn eval "  # + --max-new-tokens 4: no check reads the answers of these one-epoch models
PLACEHOLDERS = {"MODEL": "models/npo_gd", "REF/results.json": "evals/reference/results.json", "BEFORE/results.json": "evals/target/results.json"}


def readme_commands(text: str | None = None) -> list[str]:
    """The commands of every ```bash block: continuation lines joined, comments dropped, spaces collapsed."""
    text = (ROOT / "README.md").read_text(encoding="utf-8") if text is None else text
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        for line in re.sub(r"\\\n", " ", block).splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                commands.append(" ".join(line.split()))
    return commands


def as_run(command: str) -> tuple[dict[str, str], list[str]]:
    """(environment, argv) of a PLAN command after scale-downs and placeholders."""
    for old, new in SCALE:
        command = command.replace(old, new)
    for old, new in PLACEHOLDERS.items():
        command = re.sub(rf"(?<![\w/]){re.escape(old)}(?![\w/])", new, command)
    argv = shlex.split(command.replace("[", "").replace("]", ""))
    env = {}
    while "=" in argv[0]:
        key, value = argv.pop(0).split("=", 1)
        env[key] = value
    assert argv[0] == "entity-unlearn", command
    if command.startswith(TRAINING):
        argv += ["--epochs", "1"]
    if command.startswith(EVALUATING):
        argv += ["--max-new-tokens", "4"]
    if argv[1] in ("inject", "unlearn", "eval", "generate", "study", "audit") and "--quiet" not in argv:
        argv.append("--quiet")
    return env, argv[1:]


# -- the tests --------------------------------------------------------------------------------------------
def test_readme_commands_are_parsed_from_fenced_bash_blocks():
    text = "x\n```bash\nentity-unlearn a --b 1 \\\n    --c 2   # note\n# only a comment\n\nmake demo # x\n```\n```python\nnot_bash()\n```\n"
    assert readme_commands(text) == ["entity-unlearn a --b 1 --c 2", "make demo"]


def test_every_readme_command_is_classified():
    commands = readme_commands()
    planned = [c for origin, c in PLAN if origin == "readme"]
    unclassified = [c for c in commands if c not in SKIPPED and c not in planned]
    assert not unclassified, f"README.md commands neither run by tests/test_readme.py nor skipped there with a reason: {unclassified}"
    stale = [c for c in [*SKIPPED, *planned] if c not in commands]
    assert not stale, f"tests/test_readme.py lists commands README.md no longer has: {stale}"


def test_make_demo_runs_the_readme_study_command():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = makefile.split("\ndemo:", 1)[1].split("\n\n", 1)[0]
    demo_study = re.search(r"^DEMO_STUDY := (.*)$", makefile, re.M).group(1)
    assert f"$(BIN)/entity-unlearn study {DEMO_STUDY_ARGS} $(DEMO_STUDY)" in recipe and demo_study == DEMO_STUDY_OPTIONS
    assert f"entity-unlearn study {DEMO_STUDY_ARGS} {DEMO_STUDY_OPTIONS}" in SKIPPED


def test_the_readme_commands_run(tiny_release, tmp_path, monkeypatch):
    from hub_server import HubServer

    from entity_unlearn.cli import main

    monkeypatch.chdir(tmp_path)
    shutil.copytree(tiny_release, tmp_path / "entity-unlearn")
    shutil.copytree(ROOT / "tests" / "fixtures" / "band", tmp_path / "my_types")
    codes, seconds = {}, {}
    with HubServer(token="hf_...") as hub:
        for _origin, command in PLAN:
            start = time.perf_counter()
            env, argv = as_run(command)
            if env:  # the Hub libraries read HF_* at import: a fresh process, pointed at the local Hub
                env = {**os.environ, **env, "HF_ENDPOINT": hub.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1"}
                code = "import sys; from entity_unlearn.cli import main; sys.exit(main(sys.argv[1:]))"
                done = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=300)
                codes[command] = done.returncode
                assert done.returncode == 0, f"{command}\n{done.stderr[-2000:]}"
            else:
                codes[command] = main(argv)
                assert codes[command] in EXIT.get(command, (0,)), command
            seconds[command] = time.perf_counter() - start
        assert list(hub.repos["my-lab/entity-unlearn"].tags) == ["v1.0.0"]
    print("".join(f"{s:6.1f} s  {c[:100]}\n" for c, s in seconds.items()))  # shown with -s: where the time goes
    verdict = json.loads((tmp_path / "report.json").read_text())["verdict"]
    assert codes["entity-unlearn audit entity-unlearn --strict"] == (0 if verdict == "pass" else 1)
    for folder in ("world7", "bands", "models/target", "models/reference", "models/npo_gd", "evals/npo_gd", "eval-out", "eval-out-lmeval"):
        assert (tmp_path / folder).is_dir() and any((tmp_path / folder).iterdir()), folder
    assert (tmp_path / "eval-out" / "results.json").is_file() and (tmp_path / "eval-out" / "rows.parquet").is_file()
    assert any(a["metric"] == "efficacy_prob" for a in json.loads((tmp_path / "evals" / "npo_gd" / "results.json").read_text())["aggregates"])
    assert len(list((tmp_path / "eval-out-lmeval").glob("samples_entity_unlearn_*.jsonl"))) == 6
    swept = json.loads((tmp_path / "evals" / "sweep" / "npo_gd" / "results.json").read_text())  # as its own eval above
    assert swept["aggregates"] == json.loads((tmp_path / "evals" / "npo_gd" / "results.json").read_text())["aggregates"]
    assert (tmp_path / "evals" / "sweep" / "target" / "results.json").is_file()
