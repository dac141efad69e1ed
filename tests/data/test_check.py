import numpy as np
import pytest

from toolkit.data import ArraySource, ShardDirectory, check, write_shard
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
    assert "2 of 200 examples, first at row 17" in findings[0].message
    targets = np.linspace(0, 1, 200)
    targets[5] = bad
    assert _codes(check((x[:1].repeat(200, 0) * 0 + 1, targets))) == ["non-finite", "constant-feature"]


def test_labels_outside_the_head_range_are_errors():
    x, y = _clean()
    y[3], y[9] = 3, -1
    findings = check((x, y), num_classes=3)
    assert _codes(findings) == ["label-range"]
    assert "2 of 200 examples" in findings[0].message and "[-1, 3]" in findings[0].message
    with pytest.raises(DataError, match=r"`y` holds labels outside \[0, 3\).*Remap the labels"):
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
    with pytest.raises(DataError, match=r"NaN/Inf .* \(1 more errors: run `check` to list them\)"):
        check((x, y), num_classes=3, raise_on_errors=True)


def test_multi_input_features_are_named_by_key():
    x, y = _clean()
    inputs = {"age": x[:, 0], "income": np.linspace(0, 1e6, 200)}
    findings = check((inputs, y), num_classes=3)
    assert [(f.code, f.feature) for f in findings] == [("feature-scale", "x['income']")]


def test_large_data_is_checked_on_a_fixed_sample():
    x = np.random.default_rng(0).normal(size=(5000, 2))
    x[4321, 1] = np.nan
    assert _codes(check(x)) == ["non-finite"]  # below max_examples: every row is read
    sampled = check(x, max_examples=100)
    assert sampled == check(x, max_examples=100)  # the sample is fixed
    x[:, 0] = 1e5
    assert "(in a sample)" in check(x, max_examples=100)[-1].message


def test_a_source_without_arrays_is_read_through_gather(tmp_path):
    x, y = _clean()
    x[:, 0] = 3.0
    write_shard(str(tmp_path / "a.npz"), (x, y))
    source = ShardDirectory(str(tmp_path), min_age_seconds=0)
    assert _codes(check(source, num_classes=3)) == ["constant-feature"]
    assert _codes(check(source, num_classes=2)) == ["label-range", "constant-feature"]
