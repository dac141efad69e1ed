"""Keskar et al. (2017) on MNIST-1D: a small and a large batch at the same examples budget.

Run:  python benchmarks/reproduce_keskar2017.py [--seeds 0 1 2] [--small 64] [--large 1024]
      [--examples 256000]

"On large-batch training for deep learning: generalization gap and sharp minima" (Keskar,
Mudigere, Nocedal, Smelyanskiy, Tang; ICLR 2017): at the same number of epochs, a large batch
ends in a sharper minimum (a larger top eigenvalue of the Hessian of the training loss) and
generalizes worse than a small one. This trains the default recipe, `mnist1d_cnn` (Adam at 5e-3,
constant), with `data.batch_size` small and large for the same examples seen (so the large
batch takes `large / small` times fewer steps), then measures `toolkit.probes.sharpness` (Lanczos
on exact Hessian-vector products) on the same fixed 1,000 training examples for both, and the
test accuracy. It prints both per seed and the ratios of their means.
"""

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from toolkit.probes import sharpness  # noqa: E402
from toolkit.recipe import load_recipe  # noqa: E402
from toolkit.recipe.run import run_recipe  # noqa: E402

PROBE_EXAMPLES = 1000


def train(batch_size, examples, seed, root):
    steps = examples // batch_size
    recipe = load_recipe("mnist1d_cnn", [
        f"data.batch_size={batch_size}", f"train.steps={steps}", f"train.seed={seed}",
        f"train.eval_every_steps={max(1, steps // 4)}"])
    result = run_recipe(recipe, tempfile.mkdtemp(dir=root), verbose=0, plots=False)
    return result, result.model


def draw(results, path):
    """Test accuracy against the top Hessian eigenvalue, one point per run."""
    from toolkit.report.figures import new_figure, save_png

    figure, (panel,) = new_figure(1, 1)
    for (batch_size, (accuracies, tops)), color in zip(results.items(), ("C0", "C3")):
        panel.scatter(tops, accuracies, color=color, label=f"batch {batch_size}", s=40)
    panel.set_xscale("log")
    panel.set_xlabel("top Hessian eigenvalue (sharpness), log scale")
    panel.set_ylabel("test accuracy (%)")
    panel.set_title("same examples seen", fontsize="medium")
    panel.legend()
    save_png(figure, path)
    print(f"Figure: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--small", type=int, default=64)
    parser.add_argument("--large", type=int, default=1024)
    parser.add_argument("--examples", type=int, default=256_000)
    parser.add_argument("--figure", default="docs/figures/keskar2017.png",
                        help="where to draw test accuracy against sharpness; empty: none")
    args = parser.parse_args()
    from toolkit.data import load

    mnist = load("mnist1d")
    probe = (mnist.x_train[:PROBE_EXAMPLES], mnist.y_train[:PROBE_EXAMPLES])
    print(f"mnist1d_cnn, {args.examples:,} examples; sharpness on the first {PROBE_EXAMPLES} "
          f"training examples")
    print("| seed | batch | steps | test accuracy | top Hessian eigenvalue | converged |")
    print("|---|---|---|---|---|---|")
    results = {args.small: ([], []), args.large: ([], [])}
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            for batch_size in (args.small, args.large):
                result, model = train(batch_size, args.examples, seed, root)
                top = sharpness(model, probe)
                accuracy = 100 * result.summary["eval"]["accuracy"]
                results[batch_size][0].append(accuracy)
                results[batch_size][1].append(top.eigenvalue)
                print(f"| {seed} | {batch_size} | {result.summary['steps']:,} | {accuracy:.1f}% "
                      f"| {top.eigenvalue:.4g} | {top.converged} |", flush=True)
    (small_accuracy, small_top), (large_accuracy, large_top) = results.values()
    if args.figure:
        draw(results, args.figure)
    print(f"mean test accuracy: {statistics.mean(small_accuracy):.2f}% (batch {args.small}), "
          f"{statistics.mean(large_accuracy):.2f}% (batch {args.large})")
    print(f"mean top eigenvalue: {statistics.mean(small_top):.4g} (batch {args.small}), "
          f"{statistics.mean(large_top):.4g} (batch {args.large}); ratio large/small "
          f"{statistics.mean(large_top) / statistics.mean(small_top):.2f}")


if __name__ == "__main__":
    main()
