"""read_hparams: what TensorBoard's HParams dashboard shows for a logdir, as plain Python.

The answer comes from TensorBoard's own HParams plugin, run in this process: a TensorBoard
application is built over the logdir exactly as `tensorboard --logdir <logdir> --load_fast=false`
builds it (its event multiplexer, data provider and plugins), and the two requests the
dashboard sends (`/data/plugin/hparams/experiment` and `/data/plugin/hparams/session_groups`,
see the plugin's `http_api.md`) are answered through the WSGI application, without a server or
a port. What the dashboard would show (which columns, which sessions, which values, including
its quirks) is therefore what `read_hparams` returns.

Building the application uses two non-public TensorBoard modules; `_tensorboard_app` is the one
place that touches them, and tests/report/test_hparams.py pins it:
- `tensorboard.backend.event_processing.data_ingester.LocalDataIngester(flags)`, with
  `start()`, `data_provider` and `deprecated_multiplexer` (what `program.TensorBoard` uses for
  `--load_fast=false`);
- `tensorboard.backend.application.TensorBoardWSGIApp(flags, plugins, data_provider,
  assets_zip_provider, deprecated_multiplexer)`.
Checked on TensorBoard 2.21.0.

Example:

>>> import tempfile
>>> from toolkit.report.hparams import write_experiment, write_final_metrics
>>> log_dir = tempfile.mkdtemp()
>>> _ = write_experiment(log_dir, {"optimizer.name": ["adam", "sgd"]}, ["final/objective"])
>>> view = read_hparams(log_dir)
>>> view.hparams, view.domains, view.metrics, view.sessions
(['optimizer.name'], {'optimizer.name': ['adam', 'sgd']}, ['final/objective'], [])
"""

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Dict, List, Union

from toolkit.errors import DataError

__all__ = ["HParamsView", "read_hparams"]

_PLUGIN_ROUTE = "/data/plugin/hparams"
_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


@dataclasses.dataclass(frozen=True)
class HParamsView:
    """The HParams dashboard of a logdir: its columns and its rows.

    Args:
        hparams: The hyperparameter columns, in the dashboard's order.
        domains: Hyperparameter name -> its declared domain: a list of values, a `(low, high)`
            tuple, or `None` when it has none.
        metrics: The metric columns, each `tag` (a scalar of the session's own directory) or
            `group/tag` (of its subdirectory `group`).
        sessions: One dict per session, sorted by name: `name` (the run, relative to the
            logdir; `"."` for the logdir itself), `group` (its session group), `hparams`
            (name -> value; TensorBoard returns numbers as floats) and `metrics` (metric column
            -> last value; a metric without a value is absent).

    Example:

    >>> HParamsView(["seed"], {"seed": None}, ["final/objective"], []).hparams
    ['seed']
    """

    hparams: List[str]
    domains: Dict[str, Any]
    metrics: List[str]
    sessions: List[dict]


def read_hparams(logdir: Union[str, os.PathLike]) -> HParamsView:
    """Asks TensorBoard's HParams plugin what its dashboard shows for `logdir`.

    Point it where you would point `tensorboard --logdir`: a run directory, a search directory,
    or a folder of runs. Every event file is read once; nothing is left running.

    Args:
        logdir: The logdir.

    Returns:
        An `HParamsView`. A logdir without HParams data gives one with no columns and no rows.

    Raises:
        DataError: If `logdir` is not a directory, or the plugin rejects the request.

    Example:

    >>> import tempfile
    >>> read_hparams(tempfile.mkdtemp())
    HParamsView(hparams=[], domains={}, metrics=[], sessions=[])
    """
    logdir = Path(logdir)
    if not logdir.is_dir():
        raise DataError(
            f"Logdir {str(logdir)!r} is not a directory. Pass a run or search directory "
            f"(the one you would give `tensorboard --logdir`)."
        )
    post = _tensorboard_app(logdir)
    experiment = post("experiment", {"includeMetrics": True})
    infos = experiment.get("hparamInfos", [])
    metric_infos = experiment.get("metricInfos", [])
    # The dashboard's own request: one column per declared hyperparameter and metric (so a
    # session's other hyperparameters are left out), every status, every row.
    columns = [{"hparam": info["name"], "includeInResult": True} for info in infos] + [
        {"metric": info["name"], "includeInResult": True} for info in metric_infos]
    groups = post("session_groups", {
        "allowedStatuses": _STATUSES, "colParams": columns, "startIndex": 0,
        "sliceSize": 2**31 - 1, "includeMetrics": True,
    })
    sessions = [
        {
            "name": session["name"],
            "group": group["name"],
            "hparams": dict(group.get("hparams", {})),  # the columns' values only
            "metrics": {_metric_name(m["name"]): m["value"]
                        for m in session.get("metricValues", []) if "value" in m},
        }
        for group in groups.get("sessionGroups", [])
        for session in group.get("sessions", [])
    ]
    return HParamsView(
        hparams=[info["name"] for info in infos],
        domains={info["name"]: _domain(info) for info in infos},
        metrics=[_metric_name(info["name"]) for info in metric_infos],
        sessions=sorted(sessions, key=lambda session: session["name"]),
    )


def _metric_name(name: dict) -> str:
    group, tag = name.get("group", ""), name["tag"]
    return f"{group}/{tag}" if group else tag


def _domain(info: dict) -> Any:
    if "domainDiscrete" in info:
        return list(info["domainDiscrete"])
    if "domainInterval" in info:
        interval = info["domainInterval"]
        return (interval.get("minValue"), interval.get("maxValue"))
    return None


def _tensorboard_app(logdir: Path):
    """A function `post(route, request) -> dict` answered by TensorBoard's HParams plugin.

    Non-public TensorBoard (checked on 2.21.0; see the module doc): `LocalDataIngester` and
    `TensorBoardWSGIApp`, built as `program.TensorBoard._make_server` builds them.
    """
    from tensorboard import program
    from tensorboard.backend import application
    from tensorboard.backend.event_processing import data_ingester
    from tensorboard.plugins.core import core_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from tensorboard.plugins.scalar import scalars_plugin
    from werkzeug import test as werkzeug_test

    plugins = [
        core_plugin.CorePluginLoader(include_debug_info=False),
        scalars_plugin.ScalarsPlugin,
        hparams_plugin.HParamsPlugin,
    ]
    board = program.TensorBoard(plugins=plugins)
    # One blocking load of every event file: no reload thread is left behind.
    board.configure(logdir=str(logdir), reload_interval=0, reload_task="blocking",
                    load_fast="false")
    ingester = data_ingester.LocalDataIngester(board.flags)
    ingester.start()
    app = application.TensorBoardWSGIApp(
        board.flags, board.plugin_loaders, ingester.data_provider, None,
        ingester.deprecated_multiplexer)
    client = werkzeug_test.Client(app)

    def post(route: str, request: dict) -> dict:
        response = client.post(f"{_PLUGIN_ROUTE}/{route}", data=json.dumps(request))
        text = response.get_data(as_text=True)
        if response.status_code != 200:
            raise DataError(
                f"TensorBoard's HParams plugin answered {response.status_code} to `{route}` for "
                f"{str(logdir)!r}: {text[:300]}. Check that the event files there are intact."
            )
        return json.loads(text)

    return post
