import warnings

import numpy as np
import pytest

from toolkit.data import ArraySource, ShardDirectory, check, write_shard
from toolkit.data.check import check_labels, check_values
from toolkit.errors import DataError


def _clean(n=200, features=4, classes=3):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, features)).astype("float32"), np.arange(n) % classes


def _codes(findings):
    return [finding.code for finding in findings]


def test_clean_data_has_no_findings():
    assert check(_clean(), num_classes=3) == []
    assert check(ArraySource(_clean()), num_classes=3) == []


def test_empty_data_is_an_error():
    findings = check((np.zeros((0, 3)), np.zeros(0)), num_classes=2)
    assert _codes(findings) == ["empty"]
    assert findings[0].severity == "error" and findings[0].feature == "x"
    with pytest.raises(DataError, match=r"`x` holds no examples \(shape \(0, 3\)\)"):
        check(np.zeros((0, 3)), raise_on_errors=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_are_errors(bad):
    x, y = _clean()
    x[17, 2] = bad
    x[40, 0] = bad
    findings = check((x, y), num_classes=3)
    assert _codes(findings) == ["non-finite"]
    assert findings[0].feature == "x" and findings[0].severity == "error"
    assert f"`x` holds {bad} at row 17 (flat column 2) and 1 other rows;" in findings[0].message
    targets = np.linspace(0, 1, 200)
    targets[5] = bad
    assert _codes(check((x[:1].repeat(200, 0) * 0 + 1, targets))) == ["non-finite", "constant-feature"]


def test_labels_outside_the_head_range_are_errors():
    x, y = _clean()
    y[3], y[9] = 3, -1
    findings = check((x, y), num_classes=3)
    assert _codes(findings) == ["label-range"]
    assert "2 of 200 examples" in findings[0].message and "[-1, 3]" in findings[0].message
    with pytest.raises(DataError, match=r"`y`: label -1 is out of range for a head of 3 outputs "
                                        r"\(labels must lie in \[0, 2\].*Remap the labels"):
        check((x, y), num_classes=3, raise_on_errors=True)
    assert check((x, y)) == []  # no head size given: regression, no range check


def test_non_integer_labels_and_wrong_label_shapes_are_errors():
    x, _ = _clean()
    assert _codes(check((x, np.full(200, 0.5)), num_classes=2)) == ["label-not-integer"]
    assert _codes(check((x, np.zeros((200, 3))), num_classes=2)) == ["label-range"]


def test_one_hot_labels_are_understood():
    x, y = _clean()
    assert check((x, np.eye(3)[y]), num_classes=3) == []


def test_negative_sample_weights_are_errors():
    x, y = _clean()
    weights = np.ones(200)
    weights[7] = -0.5
    findings = check((x, y, weights), num_classes=3)
    assert _codes(findings) == ["negative-weight"]
    assert findings[0].feature == "sample_weight"


def test_constant_features_are_warnings_naming_them():
    x, y = _clean()
    x[:, 1] = 7.0
    findings = check((x, y), num_classes=3)
    assert _codes(findings) == ["constant-feature"]
    assert findings[0].severity == "warning" and findings[0].feature == "x[:, 1]"
    assert "always 7" in findings[0].message
    images = np.random.default_rng(0).uniform(size=(50, 4, 4, 1))
    images[:, 0, 3, 0] = 0.0
    assert check(images)[0].feature == "x[:, 0, 3, 0]"


def test_large_scale_features_call_for_input_scaling():
    x, y = _clean()
    x[:, 2] = np.linspace(0, 1.4e8, 200)  # S2.8: values in [0, 140,000,000]
    x[:, 3] += 5000.0  # large magnitude, small spread
    findings = check((x, y), num_classes=3)
    assert _codes(findings) == ["feature-scale"]
    finding = findings[0]
    assert finding.feature == "x[:, 2]" and finding.severity == "warning"
    assert "2 features" in finding.message and "[0, 1.4e+08]" in finding.message
    assert "InputScaling" in finding.message
    assert check((x, y), num_classes=3, scale_threshold=1e9) == []


def test_class_imbalance_and_missing_classes_are_warnings():
    x, _ = _clean()
    y = np.zeros(200, "int64")
    y[:5] = 1
    y[5:100] = 2
    findings = check((x, y), num_classes=3)
    assert _codes(findings) == ["class-imbalance"]
    assert "Class 0 has 20.0x more examples than class 1 (100 vs 5)" in findings[0].message
    assert check((x, y), num_classes=3, imbalance_ratio=50) == []
    missing = check((x, np.arange(200) % 2), num_classes=3)
    assert _codes(missing) == ["missing-class"] and "(2)" in missing[0].message


def test_errors_come_first_and_raise_mode_counts_the_rest():
    x, y = _clean()
    x[0, 0] = np.nan
    x[:, 1] = 1.0
    y[0] = 9
    findings = check((x, y), num_classes=3)
    assert [f.severity for f in findings] == ["error", "error", "warning"]
    with pytest.raises(DataError, match=r"holds nan .* \(1 more errors: run `check` to list"):
        check((x, y), num_classes=3, raise_on_errors=True)


def test_multi_input_features_are_named_by_key():
    x, y = _clean()
    inputs = {"age": x[:, 0], "income": np.linspace(0, 1e6, 200)}
    findings = check((inputs, y), num_classes=3)
    assert [(f.code, f.feature) for f in findings] == [("feature-scale", "x['income']")]


def test_large_data_has_its_values_checked_everywhere_and_statistics_on_a_fixed_sample():
    x = np.random.default_rng(0).normal(size=(5000, 2))
    x[4321, 1] = np.nan
    assert _codes(check(x)) == ["non-finite"]
    sampled = check(x, max_examples=100)
    assert sampled == check(x, max_examples=100)  # the sample is fixed
    assert "at row 4321" in sampled[0].message  # every row's values are checked, not a sample's
    x[:, 0] = 1e5
    assert "(in a sample)" in check(x, max_examples=100)[-1].message


def test_a_sampled_source_names_rows_of_the_whole_data(tmp_path):
    x, y = _clean(n=600)
    x[::10, 1] = np.nan
    write_shard(str(tmp_path / "a.npz"), (x, y))
    source = ShardDirectory(str(tmp_path), min_age_seconds=0)
    (finding,) = check(source, num_classes=3, max_examples=50)
    row = int(finding.message.split(" at row ")[1].split(" ")[0])
    assert row % 10 == 0 and np.isnan(x[row, 1])  # a row of the directory, not of the sample
    assert "(in a sample)" in finding.message


def test_a_source_without_arrays_is_read_through_gather(tmp_path):
    x, y = _clean()
    x[:, 0] = 3.0
    write_shard(str(tmp_path / "a.npz"), (x, y))
    source = ShardDirectory(str(tmp_path), min_age_seconds=0)
    assert _codes(check(source, num_classes=3)) == ["constant-feature"]
    assert _codes(check(source, num_classes=2)) == ["label-range", "constant-feature"]


# --- check_values: the one value check sources run, under a policy ----------------------------

def _nan_data():
    x, y = _clean(20)
    x[3, 1] = np.nan
    weights = np.ones(20)
    weights[5] = -1.0
    return x, y, weights


def test_check_values_error_raises_one_line_naming_array_row_and_fix():
    with pytest.raises(DataError) as raised:
        check_values(_nan_data(), "error")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("`x` holds nan at row 3 (flat column 1); expected finite numbers.")
    assert "np.isfinite(x)" in message and "(1 more errors" in message


def test_check_values_messages_are_the_messages_of_check():
    x, y, weights = _nan_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = check_values((x, y, weights), "warn")
    errors = [f for f in check((x, y, weights), num_classes=3) if f.severity == "error"]
    assert found == errors
    assert [f.code for f in found] == ["non-finite", "negative-weight"]
    assert found[1].message.startswith("`sample_weight` holds 1 negative weights, e.g. -1 at row 5")


def test_check_values_warn_gives_one_warning_per_fault_and_off_gives_none():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        findings = check_values(_nan_data(), "warn")
    assert [str(w.message) for w in caught] == [f.message for f in findings]
    assert len(caught) == 2  # NaN in x, a negative weight
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert check_values(_nan_data(), "off") == []
    assert caught == []
    assert check_values(_clean(), "error") == []


def test_check_values_rejects_an_unknown_policy():
    with pytest.raises(ValueError, match=r"policy must be one of \('error', 'warn', 'off'\)\. "
                                         r"Received: 'strict'"):
        check_values(_clean(), "strict")


# --- check_labels: labels against a head's width -------------------------------------------

def test_check_labels_names_the_label_the_head_and_the_fix():
    (finding,) = check_labels(np.arange(40) % 10, 4)
    assert finding.code == "label-range" and finding.severity == "error"
    assert finding.message.startswith(
        "`y`: label 9 is out of range for a head of 4 outputs (labels must lie in [0, 3]; 24 of "
        "40 examples do not, labels span [0, 9]). Remap the labels to 0..3, or set num_classes "
        "to at least 10.")
    (named,) = check_labels(np.arange(40) % 10, 4, width_name="`model.num_outputs`")
    assert named.message.endswith("or set `model.num_outputs` to at least 10.")
    (negative,) = check_labels(np.array([0, 1, -2]), 2)
    assert "label -2 is out of range" in negative.message and "at least" not in negative.message
    assert check_labels(np.array([0.0, 1.0, 2.0]), 3) == []  # integral floats are labels


def test_check_labels_refuses_strings_and_nan_labels_once():
    (strings,) = check_labels(np.array(["cat", "dog"]), 2)
    assert strings.code == "label-not-integer" and "np.unique" in strings.message
    (nan,) = check_labels(np.array([0.0, np.nan, 1.0]), 2)  # a NaN label indexes no class
    assert (nan.code, nan.feature) == ("non-finite", "y") and "holds nan at row 1" in nan.message
    data = (np.ones((3, 1)), np.array([0.0, np.nan, 1.0]))
    assert check(data, num_classes=2) == [nan, check(data)[1]]  # one finding for the NaN label
    assert [f.code for f in check(data)] == ["non-finite", "constant-feature"]
