"""Reading run directories back: scalars on the four axes of S0.3, and PNG plots of them.

A run directory written by `toolkit.fit(run_dir=...)` or `toolkit train` is a TensorBoard logdir.
`read_run` reads its events with TensorBoard's own reader and places every point on the four axes
of a loss curve (optimizer steps, examples seen, training wall time, epoch-equivalents), across
resumed runs. `write_run_plots` draws the run's loss, metrics and learning rate into `plots/`;
`plot_runs` overlays several runs to compare them, and `compare_runs` (`toolkit compare`) puts
runs side by side in a table and one figure per axis. `toolkit.report.hparams` declares
TensorBoard HParams experiments whose columns are the hyperparameters that matter and the final
results; `read_hparams` reads them back through TensorBoard's own HParams plugin. The figures
are drawn with matplotlib's Agg canvas directly, so no GUI backend is needed and pyplot's state
is left alone.

Example, end to end:

>>> import tempfile
>>> import keras
>>> import numpy as np
>>> import toolkit
>>> from toolkit import report
>>> x, y = np.random.rand(64, 4).astype("float32"), np.random.randint(0, 3, 64)
>>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
>>> model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True),
...               metrics=["accuracy"])
>>> run_dir = tempfile.mkdtemp()
>>> history = toolkit.fit(model, (x, y), steps=20, batch_size=8, eval_data=(x, y),
...                       eval_every_steps=10, run_dir=run_dir, verbose=0)
>>> run = report.read_run(run_dir)
>>> run.series("loss", "validation").steps.tolist(), run.dataset_size
([10, 20], 64.0)
>>> [path.name for path in report.write_run_plots(run_dir)]
['loss.png', 'metrics.png', 'learning_rate.png']
"""

from toolkit.report.compare import Comparison, compare_runs
from toolkit.report.run_dirs import find_run_dirs
from toolkit.report.events import RunScalars, Series, read_run
from toolkit.report.hparams import (
    recipe_hparams,
    write_experiment,
    write_final_metrics,
    write_run_experiment,
)
from toolkit.report.hparams_view import HParamsView, read_hparams
from toolkit.report.plots import plot_runs, write_run_plots

__all__ = [
    "Comparison",
    "HParamsView",
    "RunScalars",
    "Series",
    "compare_runs",
    "find_run_dirs",
    "plot_runs",
    "read_hparams",
    "read_run",
    "recipe_hparams",
    "write_experiment",
    "write_final_metrics",
    "write_run_experiment",
    "write_run_plots",
]
