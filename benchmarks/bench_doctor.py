"""Time per `toolkit.probes.doctor` run: the shipped recipes and every model of the zoo.

Each target is prepared once (recipe: `prepare_recipe`, full training data unless
`--max-train-examples`; zoo: its builder), then `doctor` runs `--repeats` times on it in the same
process (the first run includes tracing the probes' train functions, as a user's run does). The
median wall time and the codes found are reported. Time to import TensorFlow and load the data is
not included; `toolkit doctor` adds about 5 s of it.

Run:
    python benchmarks/bench_doctor.py                      # about a minute on 2 CPU cores
    python benchmarks/bench_doctor.py --repeats 5 --recipes digits_mlp
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "probes"))

import zoo  # noqa: E402

from toolkit.probes.doctor import doctor  # noqa: E402
from toolkit.recipe.load import load_recipe  # noqa: E402
from toolkit.recipe.prepare import prepare_recipe  # noqa: E402


def _time(model, data, repeats: int):
    seconds, report = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        report = doctor(model, data)
        seconds.append(time.perf_counter() - start)
    return statistics.median(seconds), report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--recipes", nargs="*", default=["digits_mlp", "mnist1d_cnn"])
    parser.add_argument("--max-train-examples", type=int, default=None)
    args = parser.parse_args()
    rows = []
    for name in args.recipes:
        overrides = ([f"data.max_train_examples={args.max_train_examples}"]
                     if args.max_train_examples else [])
        prepared = prepare_recipe(load_recipe(name, overrides))
        rows.append((f"recipe {name}", *_time(prepared.model, prepared.train_data(),
                                               args.repeats)))
    for name, build in zoo.ZOO.items():
        case = build()
        rows.append((f"zoo {name}", *_time(case.model, case.data, args.repeats)))
    print(f"| target | median s ({args.repeats} runs) | codes |")
    print("|---|---|---|")
    for target, seconds, report in rows:
        codes = ", ".join(sorted({f.code for f in report.findings if f.severity != "info"}
                                 or {"healthy"}))
        print(f"| {target} | {seconds:.2f} | {codes} |")


if __name__ == "__main__":
    main()
