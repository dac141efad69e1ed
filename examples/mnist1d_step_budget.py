"""Train a 1-D convnet on MNIST-1D for a step budget, with the toolkit's Python API.

Run top to bottom: `python examples/mnist1d_step_budget.py` (about a minute on 2 CPU cores).
Set `TOOLKIT_EXAMPLE_STEPS=60` for a quick check. Then `tensorboard --logdir runs/example`.
"""

import os

import keras

import toolkit

STEPS = int(os.environ.get("TOOLKIT_EXAMPLE_STEPS", "3000"))
RUN_DIR = os.environ.get("TOOLKIT_EXAMPLE_RUN_DIR", "runs/example/mnist1d_step_budget")

# Offline data: MNIST-1D is generated locally (4000 train / 1000 test signals of length 40).
data = toolkit.data.load("mnist1d")

# Conventions built in: ReLU blocks with biases and He init, max pooling, a linear head.
model = toolkit.models.convnet(
    (40,),
    data.num_classes,
    filters=(32, 64, 64, 64),
    dense_units=(),
    input_scaling="standardize",
    adapt_data=data.x_train,
    seed=0,
)
model.compile(
    keras.optimizers.Adam(5e-3),
    keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)
for finding in toolkit.lint(model):
    print(finding)

# Every batch is drawn IID by step from an endless pipeline; there are no epochs to choose.
train = toolkit.data.endless((data.x_train, data.y_train), batch_size=64, seed=0)
history = toolkit.fit(
    model,
    train,
    steps=STEPS,
    eval_data=(data.x_test, data.y_test),
    eval_every_steps=max(STEPS // 6, 1),
    run_dir=RUN_DIR,
)
print("steps:", history.steps)
print("final:", history.final())
print(f"TensorBoard: tensorboard --logdir {RUN_DIR}")
