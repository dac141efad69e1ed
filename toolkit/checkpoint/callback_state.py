"""The callback-state protocol: what a `Checkpointer` saves of the callbacks it is given.

A callback whose future behaviour depends on its past (patience counters, best values, retry
counts, logging positions) implements

    def get_state(self) -> dict: ...        # JSON-able values only
    def set_state(self, state: dict): ...   # called once, after on_train_begin

`Checkpointer.restore` reads the states; `Checkpointer.apply_callback_states` calls `set_state`
once, after the callbacks' `on_train_begin` (where Keras callbacks reset their run state) and
before the first training step: `toolkit.fit` calls it right after `on_train_begin`, the
`Checkpoint` callback at the first batch of a plain `model.fit`. Keras's `EarlyStopping` and
`ReduceLROnPlateau` are handled by attribute adapters (their counters and best value;
`EarlyStopping`'s `best_weights` are not saved). Other callbacks are stateless as far as the
checkpoint knows.

Example:

>>> import keras
>>> stopping = keras.callbacks.EarlyStopping(patience=3)
>>> stopping.on_train_begin()
>>> stopping.wait, stopping.best = 2, 0.5
>>> get_state, set_state = adapters([stopping])["EarlyStopping"]
>>> get_state()
{'wait': 2, 'stopped_epoch': 0, 'best': 0.5, 'best_epoch': 0}
"""

import json
from typing import Any, Callable, Dict, Sequence, Tuple

from toolkit.keras_compat import keras_callback_state, set_keras_callback_state

__all__ = ["adapters"]

Adapter = Tuple[Callable[[], Dict[str, Any]], Callable[[Dict[str, Any]], None]]


def adapters(callbacks: Sequence[Any]) -> Dict[str, Adapter]:
    """Returns `{key: (get_state, set_state)}` for the callbacks that have state.

    Keys are class names, numbered from the second of a class on (`"Counter"`, `"Counter-1"`),
    so the same list of callbacks in a resumed run finds its states again.
    """
    found, seen = {}, {}
    for callback in callbacks:
        adapter = _adapter(callback)
        if adapter is None:
            continue
        name = type(callback).__name__
        seen[name] = seen.get(name, -1) + 1
        key = name if seen[name] == 0 else f"{name}-{seen[name]}"
        found[key] = (_checked(key, adapter[0]), adapter[1])
    return found


def _checked(key: str, get_state):
    def get():
        state = get_state()
        try:
            json.dumps(state)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"Callback `{key}`.get_state() must return JSON-able values (numbers, strings, "
                f"lists, dicts). Received: {state!r} ({error}). Convert arrays and tensors with "
                f"`.tolist()` or `float()`."
            ) from error
        return state

    return get


def _adapter(callback):
    if callable(getattr(callback, "get_state", None)) and callable(
        getattr(callback, "set_state", None)
    ):
        return callback.get_state, callback.set_state
    if keras_callback_state(callback) is not None:  # Keras's own counters, saved by attribute.
        return (
            lambda: keras_callback_state(callback),
            lambda state: set_keras_callback_state(callback, state),
        )
    return None
