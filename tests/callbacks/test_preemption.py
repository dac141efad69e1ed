import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from toolkit.checkpoint.checkpointer import Checkpointer
from toolkit.callbacks.preemption import Preemption


def make_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4), keras.layers.Dense(1)])
    model.compile("adam", "mse")
    return model


def arrays(n=80):
    x = np.random.default_rng(0).normal(size=(n, 4)).astype("float32")
    return x, x.sum(axis=1, keepdims=True)


class SignalAt(keras.callbacks.Callback):
    def __init__(self, batch, signum=signal.SIGTERM):
        super().__init__()
        self.batch, self.signum = batch, signum

    def on_train_batch_end(self, batch, logs=None):
        if batch == self.batch:
            signal.raise_signal(self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_checkpoints_at_the_next_step_and_stops(tmp_path, signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    model = make_model()
    checkpointer = Checkpointer(tmp_path, model=model)
    preemption = Preemption(checkpointer, resume_hint="run `train.py` again")
    model.fit(*arrays(), batch_size=8, epochs=3, shuffle=False, verbose=0,
              callbacks=[SignalAt(3, signum), preemption])
    # Signal after step 4; checkpoint at the boundary before step 5; Keras finishes that step.
    assert [info.step for info in checkpointer.checkpoints()] == [4]
    assert int(model.optimizer.iterations) == 5
    name = signal.Signals(signum).name
    assert preemption.message == (
        f"Training stopped by {name}: checkpoint of step 4 saved in "
        f"`{checkpointer.checkpoints()[0].path}`. To resume, run `train.py` again."
    )
    assert preemption.exit_code == 128 + signum
    assert {s: signal.getsignal(s) for s in before} == before


def test_context_manager_catches_a_signal_between_fit_calls(tmp_path):
    previous = signal.getsignal(signal.SIGTERM)
    model = make_model()
    checkpointer = Checkpointer(tmp_path, model=model)
    with Preemption(checkpointer) as preemption:
        for _ in range(3):
            model.fit(*arrays(16), batch_size=8, verbose=0, callbacks=[preemption])
            signal.raise_signal(signal.SIGTERM)  # E.g. during evaluation between intervals.
            if preemption.requested:
                break
    assert int(model.optimizer.iterations) == 2
    assert [info.step for info in checkpointer.checkpoints()] == [2]
    assert "toolkit.checkpoint.restore(model," in preemption.message
    assert signal.getsignal(signal.SIGTERM) is previous


def test_a_second_signal_interrupts_at_once(tmp_path):
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        preemption = Preemption(Checkpointer(tmp_path, model=make_model()))
        with pytest.raises(KeyboardInterrupt):
            with preemption:
                signal.raise_signal(signal.SIGINT)
                assert preemption.requested == signal.SIGINT
                signal.raise_signal(signal.SIGINT)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_rejects_anything_but_a_checkpointer_or_a_directory():
    with pytest.raises(TypeError, match="must be a `toolkit.checkpoint.Checkpointer` or a "
                       "directory. Received: int"):
        Preemption(3)


TRAIN_SCRIPT = textwrap.dedent(
    """
    import sys, time
    import keras, numpy as np, tensorflow as tf
    from toolkit.callbacks.checkpoint import Checkpoint
    from toolkit.data.endless import endless
    from toolkit.checkpoint.checkpointer import Checkpointer
    from toolkit.callbacks.preemption import Preemption

    directory, out, slow = sys.argv[1], sys.argv[2], sys.argv[3] == "slow"
    tf.config.experimental.enable_op_determinism()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dropout(0.1), keras.layers.Dense(1)])
    model.compile(keras.optimizers.Adam(1e-2), "mse")
    checkpointer = Checkpointer(directory, model=model)
    step = checkpointer.restore()
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    data = endless((x, x.sum(axis=1, keepdims=True)), 8, seed=1, start_step=step)

    class Report(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            print("step", batch, flush=True)
            # "slow": wait at step 4 until the test's SIGTERM has arrived (no timing window).
            while slow and batch == 4 and preemption.requested is None:
                time.sleep(0.01)

    with Preemption(checkpointer, resume_hint="run the same command") as preemption:
        model.fit(data, steps_per_epoch=30 - step, epochs=1, verbose=0,
                  callbacks=[Checkpoint(checkpointer, every_steps=1000), preemption, Report()])
    np.savez(out, *[np.asarray(v) for v in model.variables + model.optimizer.variables])
    sys.exit(preemption.exit_code)
    """
)


def run(script, *args, **kwargs):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, str(script), *map(str, args)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_sigterm_in_a_real_process_saves_exits_cleanly_and_resumes_exactly(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    reference = run(script, tmp_path / "reference", tmp_path / "reference.npz", "fast")

    child = run(script, tmp_path / "run", tmp_path / "stopped.npz", "slow")
    for line in child.stdout:
        if line.startswith("step 4"):
            child.send_signal(signal.SIGTERM)
            break
    _, stderr = child.communicate(timeout=300)
    assert child.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert "Training stopped by SIGTERM: checkpoint of step" in stderr
    assert "To resume, run the same command." in stderr
    stopped = Checkpointer(tmp_path / "run", model=make_model()).latest().step
    assert stopped == 5  # The first step boundary after the signal.

    resumed = run(script, tmp_path / "run", tmp_path / "resumed.npz", "fast")
    for process in (resumed, reference):
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    expected, actual = np.load(tmp_path / "reference.npz"), np.load(tmp_path / "resumed.npz")
    assert len(expected.files) == len(actual.files) == 4 + 1 + 2 + 8  # With Dropout's seed.
    for name in expected.files:
        np.testing.assert_array_equal(expected[name], actual[name])
