#!/usr/bin/env python
"""Leave-one-out evaluation and throughput of the resolution-level classifier.

Reads the shipped catalogue (errorcodes/catalog/status_codes.json) directly: no database.
For every curated code, a classifier is built from all the other curated codes and asked
to classify the one left out, so the figures say how the classifier does on codes nobody
has curated yet.

    .venv/bin/python bench/classifier_eval.py
    .venv/bin/python bench/classifier_eval.py --mistakes 20      # show the disagreements, with reasons
    .venv/bin/python bench/classifier_eval.py --catalog other.json --calls 20000

Figures printed: overall agreement, per-level precision/recall, the confusion matrix, the
share of level-1 predictions on codes curated 2 or 3 (automatic where a person should decide),
agreement by confidence band (is the confidence honest?), category agreement, and
classifications per second (by the clock and in CPU time: on a busy machine they differ).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import django  # noqa: E402
from django.conf import settings  # noqa: E402

if not settings.configured:
    # The classifier only needs translation machinery; no apps, no database.
    settings.configure(USE_I18N=False)
    django.setup()

from errorcodes.classifier import Classifier, Example  # noqa: E402

DEFAULT_CATALOG = ROOT / "errorcodes" / "catalog" / "status_codes.json"
LEVELS = (0, 1, 2, 3)


def load_examples(path: Path) -> list[Example]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SystemExit(f"catalogue not found: {path}")
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}")
    examples = []
    for index, entry in enumerate(entries):
        if entry.get("level") in (None, ""):
            continue
        try:
            examples.append(Example.from_mapping(entry))
        except (KeyError, TypeError, ValueError) as exc:
            raise SystemExit(f"{path}: entry {index}: {exc!r}")
    return examples


def leave_one_out(examples: list[Example]) -> list[tuple[Example, object]]:
    results = []
    for index, example in enumerate(examples):
        classifier = Classifier(examples[:index] + examples[index + 1 :])
        result = classifier.classify(
            family=example.family,
            code=example.code,
            message=example.message,
            explanation=example.explanation,
            recommended_action=example.recommended_action,
        )
        results.append((example, result))
    return results


def throughput(examples: list[Example], calls: int) -> tuple[float, float, float]:
    """(calls per second by the wall clock, µs per call by the wall clock, µs of CPU per call).

    On a shared machine the wall clock includes waiting for a CPU; the CPU figure does not."""
    classifier = Classifier(examples)
    inputs = [
        {
            "family": e.family,
            "code": e.code,
            "message": e.message,
            "explanation": e.explanation,
            "recommended_action": e.recommended_action,
        }
        for e in examples
    ]
    for item in inputs:  # warm the token cache, as a long import would
        classifier.classify(**item)
    start, cpu_start = time.perf_counter(), time.process_time()
    for i in range(calls):
        classifier.classify(**inputs[i % len(inputs)])
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return calls / elapsed, elapsed / calls * 1e6, cpu / calls * 1e6


def percent(part: int, whole: int) -> str:
    return f"{100.0 * part / whole:5.1f}%" if whole else "    -"


def report(results, *, mistakes: int) -> None:
    total = len(results)
    agree = sum(1 for ex, r in results if r.level == ex.level)
    print(f"curated codes: {total}")
    print(f"overall agreement: {agree}/{total} = {percent(agree, total).strip()}")
    print()
    print("level  curated  predicted  precision  recall")
    for level in LEVELS:
        curated = sum(1 for ex, _ in results if ex.level == level)
        predicted = sum(1 for _, r in results if r.level == level)
        hits = sum(1 for ex, r in results if ex.level == level and r.level == level)
        print(f"  {level}    {curated:7d}  {predicted:9d}  {percent(hits, predicted):>9}  {percent(hits, curated):>6}")
    print()
    print("confusion (rows: curated, columns: predicted)")
    print("         " + "".join(f"{level:>6}" for level in LEVELS))
    for curated in LEVELS:
        row = [sum(1 for ex, r in results if ex.level == curated and r.level == p) for p in LEVELS]
        print(f"  {curated}      " + "".join(f"{n:>6}" for n in row))
    print()
    serious = [(ex, r) for ex, r in results if ex.level >= 2]
    automatic = sum(1 for _, r in serious if r.level == 1)
    print(
        f"safety: level 1 predicted for codes curated 2 or 3: {automatic}/{len(serious)} "
        f"= {percent(automatic, len(serious)).strip()}"
    )
    under = sum(1 for ex, r in results if r.level < ex.level)
    over = sum(1 for ex, r in results if r.level > ex.level)
    print(f"predicted below the curated level: {under}, above: {over}")
    print("confidence   codes  agreement")
    bounds = (0.0, 0.5, 0.7, 0.85, 1.01)
    for low, high in zip(bounds, bounds[1:], strict=False):
        band = [(ex, r) for ex, r in results if low <= r.confidence < high]
        band_agree = sum(1 for ex, r in band if r.level == ex.level)
        print(f"  {low:.2f}-{min(high, 1.0):.2f}  {len(band):6d}  {percent(band_agree, len(band)):>9}")
    with_category = [(ex, r) for ex, r in results if ex.category]
    category_agree = sum(1 for ex, r in with_category if ex.category == r.category)
    print(
        f"category agreement: {category_agree}/{len(with_category)} = {percent(category_agree, len(with_category)).strip()}"
    )
    if mistakes:
        print()
        print(f"disagreements (first {mistakes}):")
        shown = 0
        for ex, r in results:
            if r.level == ex.level:
                continue
            print(
                f"- {ex.family} {ex.code} '{ex.message}': curated {ex.level}, predicted {r.level} ({r.confidence:.2f})"
            )
            print(f"    {r.reason}")
            shown += 1
            if shown >= mistakes:
                break


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--catalog", type=Path, default=DEFAULT_CATALOG, help="catalogue JSON (default: the shipped one)"
    )
    parser.add_argument("--calls", type=int, default=10_000, help="classifications for the throughput figure")
    parser.add_argument("--mistakes", type=int, default=0, help="print this many disagreements with their reasons")
    args = parser.parse_args(argv)

    examples = load_examples(args.catalog)
    if len(examples) < 2:
        raise SystemExit(f"{args.catalog}: needs at least two curated codes, found {len(examples)}")
    start = time.perf_counter()
    results = leave_one_out(examples)
    print(f"leave-one-out over {args.catalog.name} ({time.perf_counter() - start:.1f} s)")
    report(results, mistakes=args.mistakes)
    per_second, micros, cpu_micros = throughput(examples, args.calls)
    print()
    print(
        f"throughput: {per_second:,.0f} classifications/s ({micros:.0f} µs per call by the clock, "
        f"{cpu_micros:.0f} µs of CPU; {args.calls} calls, {len(examples)} curated examples)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
