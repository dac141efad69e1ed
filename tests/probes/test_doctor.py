"""`toolkit.probes.doctor` on the broken-model zoo (tests/probes/zoo.py) and `toolkit doctor`."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from toolkit.cli import main
from toolkit.errors import DataError, ModelError
from toolkit.probes import ModelSnapshot
from toolkit.probes.doctor import DoctorReport, doctor
from toolkit.probes.doctor_findings import CODES, PROBLEM_SEVERITIES

import zoo

SMALL_DIGITS = ["digits_mlp", "--set", "data.max_train_examples=256"]


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_doctor_names_each_fault_and_only_its_consequences(name):
    case = zoo.ZOO[name]()
    report = doctor(case.model, case.data)
    problems = {f.code for f in report.findings if f.severity in PROBLEM_SEVERITIES}
    assert set(case.expected) <= set(report.codes), report.format()
    assert problems <= set(case.expected) | set(case.allowed), report.format()
    if case.layer is not None:
        named = {f.layer for f in report.findings if f.code in case.expected}
        assert case.layer in named, report.format()
    if case.expected == ("healthy",):
        assert report.codes == ["healthy"] and report.healthy


def test_every_finding_has_a_known_code_evidence_and_fix():
    report = doctor(*_case("exploding_init"))
    for finding in report.findings:
        assert finding.code in CODES and finding.evidence and finding.fix
        assert finding.severity in ("error", "warning", "info")
    assert not report.healthy
    text = report.format()
    assert "exploding-gradients [dense_0]" in text and "fix:" in text
    with pytest.raises(dataclasses.FrozenInstanceError):
        report.seconds = 0.0


def _case(name):
    case = zoo.ZOO[name]()
    return case.model, case.data


def test_doctor_leaves_model_and_optimizer_bit_identical():
    model, (x, y) = _case("batchnorm_hides_exploding_gradients")
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)  # Adam moments, iterations and BN stats.
    before = ModelSnapshot.take(model)
    report = doctor(model, (x, y))
    assert "batchnorm-hides-exploding-gradients" in report.codes
    assert before.matches(model)
    assert int(model.optimizer.iterations) == 2


def test_doctor_does_not_build_an_unbuilt_optimizer():
    model, data = _case("healthy")
    doctor(model, data)
    assert not model.optimizer.built


def test_doctor_reads_a_dataset_of_batches():
    import tensorflow as tf

    model, (x, y) = _case("dead_relu")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(8)
    report = doctor(model, dataset)
    assert "dead-relu" in report.codes


def test_data_errors_stop_the_checklist():
    model, (x, y) = _case("healthy")
    x = x.copy()
    x[3, 2] = np.nan
    report = doctor(model, (x, y))
    assert report.codes == ["non-finite"]
    assert [step.status for step in report.steps[1:]] == ["skipped"] * 4


def test_bad_input_raises_toolkit_errors():
    model, (x, y) = _case("healthy")
    with pytest.raises(DataError, match="labelled data"):
        doctor(model, x)
    with pytest.raises(DataError, match="at least 2"):
        doctor(model, (x[:1], y[:1]))
    uncompiled = keras.Sequential([keras.Input((8,)), keras.layers.Dense(2)])
    with pytest.raises(ModelError, match="compile"):
        doctor(uncompiled, (x, y))


def test_report_to_dict_is_json():
    report = doctor(*_case("healthy"))
    assert isinstance(report, DoctorReport)
    loaded = json.loads(json.dumps(report.to_dict()))
    assert loaded["healthy"] is True and loaded["findings"][0]["code"] == "healthy"
    assert len(loaded["steps"]) == 5 and len(loaded["overfit_losses"]) == 2


def test_cli_exit_status_healthy_problems_and_bad_input(capsys):
    assert main(["doctor", *SMALL_DIGITS]) == 0
    assert "Doctor: healthy" in capsys.readouterr().out
    assert main(["doctor", *SMALL_DIGITS, "--set", "optimizer.learning_rate=10"]) == 1
    assert "learning-rate-too-high" in capsys.readouterr().out
    assert main(["doctor", "no_such_recipe"]) == 2


def test_cli_json(capsys):
    assert main(["doctor", *SMALL_DIGITS, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["recipe"] == "digits_mlp" and report["healthy"] is True
    assert [f["code"] for f in report["findings"]][-1] == "healthy"


def test_doctor_on_a_sequential_model():
    from toolkit.layers import DenseBlock, LinearHead

    _, (x, y) = _case("healthy")
    model = keras.Sequential([keras.Input((8,)), DenseBlock(16, seed=0, name="hidden"),
                              DenseBlock(16, seed=1, bias_initializer=keras.initializers.Constant(
                                  -10.0), name="dead"), LinearHead(4, seed=2)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    report = doctor(model, (x, y))
    assert ("dead-relu", "dead") in [(f.code, f.layer) for f in report.findings]
