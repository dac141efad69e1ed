"""McCandlish et al. (2018) on MNIST-1D: steps and examples to a target loss per batch size.

Run:  python benchmarks/reproduce_mccandlish2018.py [--batches 16 32 64 128 256 512 1024]
      [--target 0.3] [--seed 0]

"An Empirical Model of Large-Batch Training" (McCandlish, Kaplan, Amodei et al. 2018): the
optimizer steps S and the training examples E needed to reach a given loss trade off as
(S / S_min - 1)(E / E_min - 1) = 1, and the critical batch size B_crit = E_min / S_min is about
the simple noise scale B_simple = tr(Σ) / |G|², which `toolkit.callbacks.GradientNoiseScale`
measures during training.

For each batch size this trains the default recipe's model (`mnist1d_cnn`, Adam at 5e-3, the
same for every batch: the paper tunes the learning rate per batch size, which this does not),
evaluates on 500 held-out training examples every `--eval-every` examples' worth of steps and
records the first step at which the validation loss reaches `--target`. It fits S_min and E_min
to the (S, E) pairs, prints B_crit next to B_simple measured by `GradientNoiseScale` in the
batch-64 run (its smoothed value when that run reached the target), and their ratio.
"""

import argparse
import os
import tempfile

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from toolkit.callbacks import GradientNoiseScale  # noqa: E402
from toolkit.recipe import load_recipe  # noqa: E402
from toolkit.recipe.prepare import prepare_recipe  # noqa: E402
from toolkit.train import fit  # noqa: E402

MAX_EXAMPLES = 400_000


class TargetReached(keras.callbacks.Callback):
    """Stops training at the first evaluation whose validation loss is at most `target`."""

    def __init__(self, target, noise=None):
        super().__init__()
        self.target, self.noise = target, noise
        self.step, self.noise_scale = None, None

    def on_epoch_end(self, epoch, logs=None):
        if logs and logs.get("val_loss", np.inf) <= self.target and self.step is None:
            self.step = int(self.model.optimizer.iterations.numpy())
            self.noise_scale = self.noise.noise_scale if self.noise is not None else None
            self.model.stop_training = True


def steps_to_target(batch_size, target, seed, eval_examples, root):
    recipe = load_recipe("mnist1d_cnn_tune", [f"data.batch_size={batch_size}",
                                              f"train.seed={seed}"])
    prepared = prepare_recipe(recipe)
    every = max(1, eval_examples // batch_size)
    data = prepared.inputs.heads[""]
    noise = (GradientNoiseScale((data.x_train, data.y_train), batch_size=batch_size,
                                every_steps=max(every, 50), seed=seed)
             if batch_size == 64 else None)
    reached = TargetReached(target, noise)
    callbacks = [reached] + ([noise] if noise is not None else [])
    fit(prepared.model, prepared.train_data(), steps=max(every, MAX_EXAMPLES // batch_size),
        eval_data=prepared.inputs.validation_data, eval_every_steps=every,
        callbacks=callbacks, run_dir=tempfile.mkdtemp(dir=root), verbose=0)
    return reached.step, reached.noise_scale


def fit_tradeoff(steps, examples):
    """S_min and E_min of (S/S_min - 1)(E/E_min - 1) = 1, by least squares on a log grid."""
    steps, examples = np.asarray(steps, float), np.asarray(examples, float)
    best = (np.inf, None, None)
    for s_min in np.geomspace(steps.min() / 20, steps.min() * 0.999, 400):
        for e_min in np.geomspace(examples.min() / 20, examples.min() * 0.999, 400):
            predicted = s_min * (1 + 1 / (examples / e_min - 1))
            error = np.sum(np.log(predicted / steps) ** 2)
            if error < best[0]:
                best = (error, s_min, e_min)
    return best[1], best[2]


def draw(pairs, s_min, e_min, path):
    """Steps against examples to the target, each batch size labelled, with the fitted curve."""
    from toolkit.report.figures import new_figure, save_png

    figure, (panel,) = new_figure(1, 1)
    examples = np.geomspace(e_min * 1.01, max(p[2] for p in pairs) * 1.5, 200)
    panel.plot(examples, s_min * (1 + 1 / (examples / e_min - 1)), color="C7",
               label=f"(S/S_min - 1)(E/E_min - 1) = 1, B_crit = {e_min / s_min:,.0f}")
    panel.scatter([p[2] for p in pairs], [p[1] for p in pairs], color="C0", zorder=3)
    for batch_size, steps, examples_seen in pairs:
        panel.annotate(f"B={batch_size}", (examples_seen, steps), textcoords="offset points",
                       xytext=(5, 5), fontsize="small")
    panel.set_xscale("log")
    panel.set_yscale("log")
    panel.set_xlabel("examples to the target loss")
    panel.set_ylabel("optimizer steps to the target loss")
    panel.legend(fontsize="small")
    save_png(figure, path)
    print(f"Figure: {path}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", nargs="+", type=int,
                        default=[16, 32, 64, 128, 256, 512, 1024])
    parser.add_argument("--target", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=6400,
                        help="examples between evaluations (the resolution of E)")
    parser.add_argument("--figure", default="docs/figures/mccandlish2018.png",
                        help="where to draw steps against examples to the target; empty: none")
    args = parser.parse_args()
    print(f"mnist1d_cnn_tune's model and split, Adam 5e-3, target validation loss {args.target}")
    print("| batch | steps to target | examples to target |")
    print("|---|---|---|")
    pairs, noise_scale = [], None
    with tempfile.TemporaryDirectory() as root:
        for batch_size in args.batches:
            step, measured = steps_to_target(batch_size, args.target, args.seed,
                                             args.eval_every, root)
            if measured is not None:
                noise_scale = measured
            if step is None:
                print(f"| {batch_size} | not reached in {MAX_EXAMPLES:,} examples | |",
                      flush=True)
                continue
            pairs.append((batch_size, step, step * batch_size))
            print(f"| {batch_size} | {step:,} | {step * batch_size:,} |", flush=True)
    if len(pairs) < 3:
        print("Too few batch sizes reached the target to fit the trade-off.")
        return
    s_min, e_min = fit_tradeoff([p[1] for p in pairs], [p[2] for p in pairs])
    critical = e_min / s_min
    if args.figure:
        draw(pairs, s_min, e_min, args.figure)
    print(f"fit: S_min = {s_min:,.0f} steps, E_min = {e_min:,.0f} examples, "
          f"B_crit = E_min / S_min = {critical:,.0f}")
    if noise_scale is not None:
        print(f"B_simple (GradientNoiseScale, batch 64, when it reached the target) = "
              f"{noise_scale:,.0f}; B_crit / B_simple = {critical / noise_scale:.2f}")


if __name__ == "__main__":
    main()
