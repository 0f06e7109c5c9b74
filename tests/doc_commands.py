"""The command blocks of README.md and INSTALL.md as data: extraction, classification (run or listed as not run)
and the mechanical substitution rules that make them run on tiny data (see tests/test_docs_commands.py).

Pure text processing: no torch, no files other than the docs, so the fast checks stay fast.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "INSTALL.md")
DOCS_DIR = REPO  # where DOCS are read from (a copy, to check that the test catches a broken command)

# Commands the test does not run, each with the reason (a regex searched in the command's text, line by line).
# Every entry must match at least one documented command, so the table cannot rot either.
NOT_RUN: Dict[str, str] = {
    r"^make quickstart\b": "the whole quick start (minutes); tests/test_quickstart.py runs it",
    r"^make test\b": "the test suite itself",
    r"^python3 -m venv ": "creates and activates the environment the tests run in (make setup does it; "
                          "tests/test_packaging.py installs the wheel into a fresh venv)",
    r"^pip install ": "installs packages from an index (network); make setup and CI install them",
    r"^sudo ": "system administration (PostgreSQL server install/roles/restart)",
    r"^vot ": "the VOT toolkit lives in its own venv (pinned opencv-python); scripts/vot_toolkit_check.sh runs it",
    r"^URL=postgresql": "needs a PostgreSQL server; tests/hpsearch/test_postgres.py runs the search against one",
    r"--storage \"\$URL\"": "needs a PostgreSQL server; tests/hpsearch/test_postgres.py runs workers against one",
    r"^optuna-dashboard ": "a web server that runs until stopped (and a PostgreSQL URL)",
    r"^python benchmarks/": "measurements (minutes each); tests/test_benchmarks.py runs them at toy sizes",
}

# What a NOT_RUN command leaves behind that later documented commands rely on, made by the test instead
# (regex of NOT_RUN's kind -> bash template using the match's groups).
STAND_INS: Dict[str, str] = {
    r"^vot initialize .*--workspace (\S+)": r"mkdir -p \1",  # the workspace folder trackers.ini is written into
}

# Programs the test knows how to run (after the substitutions below); any other program must be in NOT_RUN.
RUNNABLE = re.compile(r"^(cd|siamkpn-[a-z-]+|torchrun|python -m torch\.distributed\.launch"
                      r"|python (\.\./\.\./)?(tools|scripts)/\w+\.py)(\s|$)")

# The shortened run appended to every training command (README, Training: a shortened run of a published
# config needs the warm-up to end before the last epoch, hence TRAIN.LR_WARMUP.EPOCH 1 with 2 epochs).
TRAIN_EPOCHS = 2
TRAIN_OPTS = (f"TRAIN.EPOCH {TRAIN_EPOCHS} TRAIN.LR_WARMUP.EPOCH 1 TRAIN.BATCH_SIZE 2 TRAIN.NUM_WORKERS 0 "
              "DATASET.VIDEOS_PER_EPOCH 4 TRAIN.PRINT_FREQ 1")
# Sizes appended to every synthetic-data command (the defaults write 50 + 2 x 10 videos at 320x240).
SYNTHETIC_SIZES = "--train-videos 3 --train-frames 6 --test-videos 1 --test-frames 8 --width 96 --height 72"
DEVICE_LOOP_ITEMS = 2  # `for k in 0 1 2 3` (one worker per GPU) keeps its first two items
NPROC = 1  # `--nproc_per_node=4` -> one process: the launchers run as written; two-process gloo training is
# tests/engine/test_train_distributed.py's job (two gloo processes here, beside the rest of the run, aborted once)


@dataclass
class Command:
    """One logical command of a doc block: continuation lines joined, a `for ... done` loop kept whole."""

    doc: str
    line: int  # 1-based line of its first line in the doc
    text: str  # as written, continuations and newlines kept
    alternative_of: Optional["Command"] = field(default=None, repr=False)  # from a `# = CMD` comment

    @property
    def flat(self) -> str:
        """The text with backslash-newline continuations joined (what bash executes)."""
        return re.sub(r"[ \t]*\\\n\s*", " ", self.text)

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def bash_blocks(doc: str) -> List[Tuple[int, List[str]]]:
    """(line number of the block's first line, its lines) for every ```bash block of `doc`."""
    blocks, current, start = [], None, 0
    for number, line in enumerate((DOCS_DIR / doc).read_text(encoding="utf-8").splitlines(), 1):
        fence = line.strip()
        if current is None and fence == "```bash":
            current, start = [], number + 1
        elif current is not None and fence.startswith("```"):
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        raise ValueError(f"{doc}:{start - 1}: unterminated ```bash block")
    return blocks


def _depth(line: str) -> int:
    """How many compound commands (for/while/until ... done, if ... fi, case ... esac) the line opens net."""
    code = line.split(" #", 1)[0]
    try:
        lex = shlex.shlex(code, posix=True, punctuation_chars=True)
        lex.whitespace_split = True
        words = list(lex)
    except ValueError:  # an unbalanced quote continues on the next line; it opens nothing by itself
        words = code.split()
    opens = sum(w in ("do", "if", "case") for w in words)
    closes = sum(w in ("done", "fi", "esac") for w in words)
    return opens - closes


def split_commands(doc: str, start: int, lines: List[str]) -> List[Command]:
    """The logical commands of one block; full-line comments and blank lines between commands are dropped."""
    commands: List[Command] = []
    buf: List[str] = []
    first = depth = 0
    for offset, line in enumerate(lines):
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not buf:
            first = start + offset
        buf.append(line)
        depth += _depth(line)
        if line.rstrip().endswith("\\") or depth > 0:
            continue
        commands.append(Command(doc, first, "\n".join(buf).strip()))
        buf, depth = [], 0
    if buf:
        raise ValueError(f"{doc}:{first}: command does not end inside its block (a trailing \\ or an open loop)")
    return [c for command in commands for c in (command, *_alternatives(command))]


def _alternatives(command: Command) -> List[Command]:
    """`CMD ...  # = OTHER ARGS` documents an equivalent spelling; `# = OTHER ...` means OTHER with CMD's
    arguments."""
    last = command.text.splitlines()[-1]
    match = re.search(r"\s#\s*=\s*(.+?)\s*$", last)
    if not match:
        return []
    alt = match.group(1)
    main = re.sub(r"\s+#.*$", "", command.flat)
    if alt.endswith("..."):
        program = alt[:-3].strip()
        alt = program + " " + main.split(None, 1)[1]
    return [Command(command.doc, command.line, alt, alternative_of=command)]


def doc_blocks() -> List[List[Command]]:
    """Every block of every doc, in order, as its list of commands."""
    return [split_commands(doc, start, lines) for doc in DOCS for start, lines in bash_blocks(doc)]


def programs(flat: str) -> List[str]:
    """The simple commands of a (flattened) command line, without loop keywords and leading VAR=value."""
    out = []
    for part in re.split(r"&&|\|\||[;&|\n]", re.sub(r"\s#.*", "", flat)):
        words = part.split()
        while words and words[0] == "do":
            words.pop(0)
        if not words or words[0] in ("for", "done", "wait"):
            continue
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words.pop(0)
        out.append(" ".join(words))
    return out


def not_run_reason(command: Command) -> Optional[Tuple[str, str]]:
    """(pattern, reason) of the first NOT_RUN entry matching the command, else None."""
    for pattern, reason in NOT_RUN.items():
        if re.search(pattern, command.flat, re.M):
            return pattern, reason
    return None


def is_runnable(command: Command) -> bool:
    """True when every simple command of `command` is a program the test knows how to run."""
    progs = programs(command.flat)
    return bool(progs) and all(RUNNABLE.match(p) for p in progs)


def stand_in(command: Command) -> Optional[str]:
    """The bash command that leaves what a NOT_RUN command would have left, if later commands need it."""
    for pattern, template in STAND_INS.items():
        match = re.search(pattern, command.flat, re.M)
        if match:
            return match.expand(template)
    return None


# ---------------------------------------------------------------- substitution rules


def _sub_data(text: str, data: str) -> str:
    return re.sub(r"(?<![\w./-])/data(?=/|\s|$)", data, text)


def _sub_optional(text: str) -> str:
    return re.sub(r"\[(--[^\[\]]*)\]", r"\1", text)


def _sub_device(text: str) -> str:
    return re.sub(r"--device cuda(:\d+)?(,cuda(:\d+)?)*\b", "--device cpu", text)  # a list of GPUs too


def _sub_nproc(text: str) -> str:
    return re.sub(r"--nproc[_-]per[_-]node[= ]\d+", f"--nproc_per_node={NPROC}", text)


def _sub_loop(text: str) -> str:
    def keep(m: re.Match) -> str:
        return f"for {m.group(1)} in {' '.join(m.group(2).split()[:DEVICE_LOOP_ITEMS])};"

    return re.sub(r"\bfor (\w+) in ([^;\n]+);", keep, text)


def _sub_background(text: str) -> str:
    # bash's bare `wait` returns 0 whatever the jobs returned: remember each job and check every status
    if not re.search(r"(?<![&>])&(?!&)\s*(\n|$)", text):
        return text
    text = re.sub(r"(?<![&>])&(?!&)(\s*)(\n|$)", r'& _pids+=("$!")\1\2', text)
    check = 'for _p in "${_pids[@]}"; do wait "$_p" || _bad=1; done; [ -z "$_bad" ]'
    return "_pids=()\n" + re.sub(r"\bwait\b(?! \"\$_p\")", check, text)


def _sub_ranges(text: str) -> str:
    def first(m: re.Match) -> str:
        start, step = float(m.group(1)), float(m.group(3))
        return f"{m.group(1)},{round(start + step, 6):g},{m.group(3)}"

    return re.sub(r"(?<![\d.,])(\d+(?:\.\d+)?),(\d+(?:\.\d+)?),(\d+(?:\.\d+)?)(?![\d.,])", first, text)


def _sub_epochs(text: str) -> str:
    return re.sub(r"--(start|end)-epoch \d+", lambda m: f"--{m.group(1)}-epoch {TRAIN_EPOCHS}", text)


def _sub_training(text: str) -> str:
    def shorten(m: re.Match) -> str:
        cmd = m.group(0).rstrip()
        return cmd + (" " if "--opts" in cmd else " --opts ") + TRAIN_OPTS

    return re.sub(r"(siamkpn-train|tools/train\.py)\b[^\n;&|#]*", shorten, text)


def _sub_synthetic(text: str) -> str:
    return re.sub(r"(siamkpn-synthetic|scripts/make_synthetic\.py)\b[^\n;&|#]*",
                  lambda m: m.group(0).rstrip() + " " + SYNTHETIC_SIZES, text)


def _sub_names(text: str, names: Dict[str, str]) -> str:
    for doc_name, tiny_name in names.items():
        text = re.sub(rf"(?<![\w.-]){re.escape(doc_name)}(?![\w.-])", tiny_name, text)
    return text


def substitute(command: Command, data: str, names: Dict[str, str]) -> str:
    """The command as the test runs it: every rule of the module docstring of test_docs_commands, in order."""
    text = re.sub(r"[ \t]+#[^\n]*", "", command.flat)  # trailing comments (their `# = CMD` ran separately)
    text = _sub_data(text, data)
    text = _sub_optional(text)
    text = _sub_device(text)
    text = _sub_nproc(text)
    text = _sub_loop(text)
    text = _sub_background(text)
    text = _sub_ranges(text)
    text = _sub_epochs(text)
    text = _sub_training(text)
    text = _sub_synthetic(text)
    return _sub_names(text, names)


def option(text: str, *names: str) -> Optional[str]:
    """The value of the first of `names` (e.g. --config, --cfg) in a command line, else None."""
    words = shlex.split(re.sub(r"\s#.*", "", text))
    for i, word in enumerate(words):
        for name in names:
            if word == name and i + 1 < len(words):
                return words[i + 1]
            if word.startswith(name + "="):
                return word.split("=", 1)[1]
    return None
