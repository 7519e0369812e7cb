#!/usr/bin/env python3
"""spaCy NER trained from scratch on gp's data: the baseline of issue #7.

    python scripts/spacy_baseline.py --train T.jsonl --dev D.jsonl --lang zh|en --out DIR \
        [--max-minutes 60] [--gpu -1] [--max-steps N] [--eval-frequency N]

T and D are canonical JSONL as scripts/export-jsonl.ts writes it from any corpus gp reads
({"text", "entities": [{"start", "end", "label"}]}, offsets in UTF-16 code units, end exclusive), so spaCy
sees exactly the texts and spans gp trains and is scored on.

What it does:
 1. `python -m spacy init config DIR/config.cfg --pipeline ner --optimize efficiency --lang LANG`, untouched
    (for zh, spaCy's default tokenizer: `spacy.zh.ChineseTokenizer` with `segmenter = "char"`, one token per
    character; a whitespace character is trailing space of the token before it, or a token of its own in a run).
 2. DIR/train.spacy and DIR/dev.spacy. spaCy's `doc.ents` holds only non-overlapping spans on token boundaries:
    spans whose boundaries fall inside a token (misaligned) or on a whitespace token are dropped, then of
    overlapping or nested spans the longest are kept (then the leftmost). Every drop is counted and reported.
 3. `python -m spacy train` with the config's own stopping rules (max_steps, patience) plus a wall-clock cap of
    --max-minutes: at the cap the run is interrupted (SIGINT; spaCy then writes model-last) and model-best, the
    checkpoint with the best dev ents_f that spaCy saved on the way, is used. The dev file is spaCy's dev corpus
    for that selection, as gp picks its best epoch on dev.
 4. model-best predicts every dev text; DIR/dev.pred.jsonl is canonical JSONL (UTF-16 offsets), one line per dev
    record, to be scored with gp's own metric code:
        node --import tsx scripts/score-jsonl.ts GOLD DIR/dev.pred.jsonl [read options of GOLD]
 5. DIR/summary.json: versions, config, span counts, training and prediction time, how training stopped.

Python strings index code points and JavaScript strings UTF-16 code units; the offsets are converted both ways here
(they differ when a text has characters outside the BMP, such as emoji).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

# Seconds spaCy gets to write model-last after the interrupt before it is killed.
GRACE_SECONDS = 300


def fail(message: str, code: int = 1) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


# ---------------------------------------------------------------------------------------------- offsets


def utf16_to_codepoint(text: str) -> list[int]:
    """result[u] = the code-point index at UTF-16 offset u (u = 0 .. UTF-16 length); -1 inside a surrogate pair."""
    table: list[int] = []
    for i, ch in enumerate(text):
        table.append(i)
        if ord(ch) > 0xFFFF:
            table.append(-1)
    table.append(len(text))
    return table


def codepoint_to_utf16(text: str) -> list[int]:
    """result[i] = the UTF-16 offset of code point i (i = 0 .. len(text))."""
    table = [0]
    for ch in text:
        table.append(table[-1] + (2 if ord(ch) > 0xFFFF else 1))
    return table


# ---------------------------------------------------------------------------------------------- JSONL


def read_jsonl(path: Path) -> list[dict]:
    """Canonical JSONL records as {text, spans: [(start, end, label)] in code points, line}. Blank lines are skipped
    (as gp's reader skips them), so record k is gp's example k."""
    records = []
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as error:
        fail(f"cannot read {path}: {error}", 66)
    content = content.removeprefix("\ufeff")
    for number, raw in enumerate(content.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(raw)
        except json.JSONDecodeError as error:
            fail(f"{where}: malformed JSON: {error}", 65)
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            fail(f'{where}: expected an object with a string "text"', 65)
        text = record["text"]
        if "entities" not in record:
            fail(f'{where}: no "entities": write the file with scripts/export-jsonl.ts', 65)
        if not isinstance(record["entities"], list):
            fail(f'{where}: "entities" must be a list', 65)
        to_cp = utf16_to_codepoint(text)
        length16 = len(to_cp) - 1
        spans = []
        for k, entity in enumerate(record["entities"]):
            if not isinstance(entity, dict):
                fail(f"{where}: entities[{k}] must be an object {{start, end, label}}", 65)
            start, end, label = entity.get("start"), entity.get("end"), entity.get("label")
            if not (isinstance(start, int) and isinstance(end, int) and isinstance(label, str) and label):
                fail(f"{where}: entities[{k}] needs integer start, end and a label", 65)
            if not 0 <= start < end <= length16:
                fail(f"{where}: entities[{k}] = [{start}, {end}) is out of range for {length16} UTF-16 code units", 65)
            s, e = to_cp[start], to_cp[end]
            if s < 0 or e < 0:
                fail(f"{where}: entities[{k}] = [{start}, {end}) splits a surrogate pair", 65)
            if "text" in entity and entity["text"] != text[s:e]:
                fail(f"{where}: entities[{k}].text {entity['text']!r} is not the slice {text[s:e]!r}", 65)
            spans.append((s, e, label))
        records.append({"text": text, "spans": spans, "line": number})
    if not records:
        fail(f"{path}: no records", 65)
    return records


def jsonl_line(text: str, spans: list[tuple[int, int, str]]) -> str:
    """One canonical JSONL line, offsets converted to UTF-16 code units."""
    to16 = codepoint_to_utf16(text)
    entities = [{"start": to16[s], "end": to16[e], "label": label, "text": text[s:e]} for s, e, label in spans]
    line = json.dumps({"text": text, "entities": entities}, ensure_ascii=False, separators=(",", ":"))
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON allows it escaped): keep it escaped
        line = json.dumps({"text": text, "entities": entities}, ensure_ascii=True, separators=(",", ":"))
    return line


# ---------------------------------------------------------------------------------------------- DocBins


def new_counts() -> dict:
    return {"records": 0, "empty_texts_skipped": 0, "spans": 0, "kept": 0, "dropped_misaligned": 0,
            "dropped_whitespace_edge": 0, "dropped_overlap": 0, "tokens": 0}


def make_docbin(nlp, records: list[dict], counts: dict, examples: list):
    """Docs with `ents` = the representable spans; fills `counts`; `examples` gets a few dropped spans for the log."""
    from spacy.tokens import DocBin

    docbin = DocBin(store_user_data=False)
    for record in records:
        counts["records"] += 1
        unique = sorted(set(record["spans"]))  # gp's reader drops exact duplicates too: not counted as drops
        counts["spans"] += len(unique)
        text = record["text"]
        if text == "":
            counts["empty_texts_skipped"] += 1
            continue
        doc = nlp.make_doc(text)
        counts["tokens"] += len(doc)
        aligned = []
        for s, e, label in unique:
            span = doc.char_span(s, e, label=label, alignment_mode="strict")
            if span is None:
                counts["dropped_misaligned"] += 1
                if len(examples) < 5:
                    examples.append(("misaligned", record["line"], text[s:e], label))
            elif span[0].is_space or span[-1].is_space:
                counts["dropped_whitespace_edge"] += 1
                if len(examples) < 5:
                    examples.append(("whitespace edge", record["line"], text[s:e], label))
            else:
                aligned.append(span)
        # Longest first, then leftmost, then by label: deterministic.
        aligned.sort(key=lambda sp: (-(sp.end - sp.start), sp.start, sp.label_))
        kept = []
        for span in aligned:
            if all(span.end <= other.start or other.end <= span.start for other in kept):
                kept.append(span)
            else:
                counts["dropped_overlap"] += 1
        doc.ents = sorted(kept, key=lambda sp: sp.start)
        counts["kept"] += len(kept)
        docbin.add(doc)
    return docbin


# ---------------------------------------------------------------------------------------------- training


def run_training(cmd: list[str], log_path: Path, limit_seconds: float) -> dict:
    """Runs `spacy train`, copying its output to the terminal and to log_path; interrupts it at the wall-clock limit."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.setdefault("ANSI_COLORS_DISABLED", "1")  # a plain log file
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                text=True, encoding="utf-8", errors="replace", bufsize=1)

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                log.write(ANSI.sub("", line))
                log.flush()

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        stopped_by = "spaCy's own stopping rule (max_steps, patience or max_epochs)"
        try:
            proc.wait(timeout=limit_seconds)
        except subprocess.TimeoutExpired:
            stopped_by = f"wall-clock limit ({limit_seconds / 60:g} min)"
            print(f"\n[spacy_baseline] time limit reached after {time.monotonic() - started:.0f} s: interrupting spaCy "
                  "(it saves model-last; model-best is kept)", flush=True)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            raise
        training_seconds = time.monotonic() - started
        reader.join(timeout=10)
    return {"returncode": proc.returncode, "seconds": training_seconds, "stopped_by": stopped_by,
            "timed_out": stopped_by.startswith("wall-clock")}


ANSI = re.compile(r"\x1b\[[0-9;]*m")
ROW = re.compile(r"^\s*(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$")


def parse_log(log_path: Path) -> dict:
    """The evaluation rows of spaCy's console log: E, #, LOSS TOK2VEC, LOSS NER, ENTS_F, ENTS_P, ENTS_R, SCORE."""
    rows = []
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = ROW.match(line)
        if match:
            epoch, step = int(match.group(1)), int(match.group(2))
            ents_f, score = float(match.group(5)), float(match.group(8))
            rows.append({"epoch": epoch, "step": step, "ents_f": ents_f, "score": score})
    if not rows:
        return {"evaluations": 0}
    best = max(rows, key=lambda r: (r["score"], -r["step"]))
    return {"evaluations": len(rows), "last_epoch": rows[-1]["epoch"], "last_step": rows[-1]["step"],
            "best_step": best["step"], "best_epoch": best["epoch"], "best_spacy_dev_ents_f_percent": best["ents_f"]}


# ---------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", required=True, type=Path, help="canonical JSONL (scripts/export-jsonl.ts)")
    parser.add_argument("--dev", required=True, type=Path, help="canonical JSONL (scripts/export-jsonl.ts)")
    parser.add_argument("--lang", required=True, choices=["zh", "en"])
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="wall-clock cap on `spacy train` (default 60)")
    parser.add_argument("--gpu", type=int, default=-1, help="GPU id for training and prediction; -1: CPU (default)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="override training.max_steps (the config's is 20000; 0 = no step limit)")
    parser.add_argument("--eval-frequency", type=int, default=None,
                        help="override training.eval_frequency (the config's is 200 steps)")
    args = parser.parse_args()
    if args.max_minutes <= 0:
        fail("--max-minutes must be positive", 2)

    try:
        import spacy
        from spacy.util import load_config, load_model_from_config
    except ImportError:
        fail(f"{sys.executable} has no spaCy: install spaCy 3.8 in a virtual environment (docs/baselines.md)", 69)

    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    print(f"[spacy_baseline] spaCy {spacy.__version__}, Python {platform.python_version()}, lang {args.lang}", flush=True)

    train_records = read_jsonl(args.train)
    dev_records = read_jsonl(args.dev)

    # 1. The config: spaCy's own, as `init config` writes it.
    config_path = out / "config.cfg"
    init_cmd = [sys.executable, "-m", "spacy", "init", "config", str(config_path), "--pipeline", "ner",
                "--optimize", "efficiency", "--lang", args.lang, "--force"]
    subprocess.run(init_cmd, check=True, stdout=subprocess.DEVNULL)
    config = load_config(config_path)
    nlp = load_model_from_config(config, auto_fill=True, validate=True)
    tokenizer_cfg = dict(config["nlp"].get("tokenizer", {}))
    print(f"[spacy_baseline] config {config_path}: pipeline {nlp.pipe_names}, tokenizer {tokenizer_cfg}", flush=True)

    # 2. DocBins.
    counts = {}
    dropped_examples: list = []
    for split, records in (("train", train_records), ("dev", dev_records)):
        counts[split] = new_counts()
        make_docbin(nlp, records, counts[split], dropped_examples).to_disk(out / f"{split}.spacy")
        c = counts[split]
        print(f"[spacy_baseline] {split}: {c['records']} records, {c['tokens']} spaCy tokens, {c['spans']} spans -> "
              f"{c['kept']} kept; dropped: {c['dropped_overlap']} overlapping/nested, {c['dropped_misaligned']} "
              f"misaligned with spaCy tokens, {c['dropped_whitespace_edge']} with a whitespace edge; "
              f"{c['empty_texts_skipped']} empty texts skipped", flush=True)
    for why, line, surface, label in dropped_examples:
        print(f"[spacy_baseline]   e.g. {why}: line {line} {surface!r} ({label})", flush=True)

    # 3. Training.
    train_dir = out / "train"
    train_cmd = [sys.executable, "-m", "spacy", "train", str(config_path), "--output", str(train_dir),
                 "--paths.train", str(out / "train.spacy"), "--paths.dev", str(out / "dev.spacy"),
                 "--gpu-id", str(args.gpu)]
    if args.max_steps is not None:
        train_cmd += ["--training.max_steps", str(args.max_steps)]
    if args.eval_frequency is not None:
        train_cmd += ["--training.eval_frequency", str(args.eval_frequency)]
    training = run_training(train_cmd, out / "train.log", args.max_minutes * 60)
    if training["returncode"] != 0 and not training["timed_out"]:
        fail(f"spacy train exited with {training['returncode']}; see {out / 'train.log'}")
    training.update(parse_log(out / "train.log"))
    model_dir = train_dir / "model-best"
    if not (model_dir / "meta.json").exists():
        model_dir = train_dir / "model-last"
        if not (model_dir / "meta.json").exists():
            fail(f"no model-best or model-last in {train_dir}: training stopped before its first evaluation?")
        print(f"[spacy_baseline] warning: no model-best (no evaluation ran); using {model_dir}", flush=True)
    training["model"] = str(model_dir)
    print(f"[spacy_baseline] training: {training['seconds']:.1f} s, stopped by {training['stopped_by']}; "
          f"{training.get('evaluations', 0)} evaluations, last step {training.get('last_step')}, "
          f"best step {training.get('best_step')}; model {model_dir}", flush=True)

    # 4. Dev predictions (every record, empty texts included, so that lines pair with gp's examples).
    if args.gpu >= 0:
        spacy.require_gpu(args.gpu)
    started = time.monotonic()
    trained = spacy.load(model_dir)
    texts = [r["text"] for r in dev_records]
    lines = []
    predicted = 0
    for text, doc in zip(texts, trained.pipe(texts)):
        spans = [(ent.start_char, ent.end_char, ent.label_) for ent in doc.ents]
        predicted += len(spans)
        lines.append(jsonl_line(text, spans))
    predict_seconds = time.monotonic() - started
    pred_path = out / "dev.pred.jsonl"
    temp = pred_path.with_name(f".{pred_path.name}.{os.getpid()}.tmp")
    temp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    temp.replace(pred_path)
    print(f"[spacy_baseline] predicted {len(texts)} dev texts in {predict_seconds:.1f} s: {predicted} entities -> {pred_path}",
          flush=True)

    # 5. Summary.
    summary = {
        "spacy": spacy.__version__,
        "python": platform.python_version(),
        "lang": args.lang,
        "tokenizer": tokenizer_cfg,
        "config": str(config_path),
        "train_file": str(args.train),
        "dev_file": str(args.dev),
        "gpu": args.gpu,
        "max_minutes": args.max_minutes,
        "overrides": {k: v for k, v in (("training.max_steps", args.max_steps),
                                          ("training.eval_frequency", args.eval_frequency)) if v is not None},
        "counts": counts,
        "training": training,
        "predict_seconds": predict_seconds,
        "predictions": str(pred_path),
        "predicted_entities": predicted,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"[spacy_baseline] wrote {out / 'summary.json'}; score with:\n"
          f"  node --import tsx scripts/score-jsonl.ts {args.dev} {pred_path}", flush=True)


if __name__ == "__main__":
    main()
