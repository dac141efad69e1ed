import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from toolkit.data import ArraySource, TfdsSource, endless, tfds_source, tfds_stream
from toolkit.errors import DataError

NUM_TRAIN = 20


class ToolkitTinyImages(tfds.core.GeneratorBasedBuilder):
    """A real (not mocked) TFDS dataset, prepared locally in either file format."""

    VERSION = tfds.core.Version("1.0.0")

    def _info(self):
        features = tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(4, 4, 1)),
            "label": tfds.features.ClassLabel(num_classes=3),
        })
        return tfds.core.DatasetInfo(builder=self, features=features, supervised_keys=("image", "label"))

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(NUM_TRAIN), "test": self._generate_examples(6)}

    def _generate_examples(self, count):
        for i in range(count):
            image = np.full((4, 4, 1), 10 * i, np.uint8)  # example i is recognizable
            yield i, {"image": image, "label": i % 3}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    directories = {}
    for file_format in ("array_record", "tfrecord"):
        directory = str(tmp_path_factory.mktemp(file_format))
        ToolkitTinyImages(data_dir=directory, file_format=file_format).download_and_prepare()
        directories[file_format] = directory
    return directories


def _ids(x):
    return (np.asarray(x)[:, 0, 0, 0] // 10).tolist()


def test_mocked_mnist_loads_into_memory_as_x_y():
    with tfds.testing.mock_data(num_examples=12):
        source = tfds_source("mnist", "train")
        prefixed = tfds_source("tfds:mnist", "train")
    assert isinstance(source, ArraySource) and source.num_examples == 12
    x_spec, y_spec = source.element_spec
    assert (x_spec.shape, x_spec.dtype, y_spec.shape, y_spec.dtype) == (
        (28, 28, 1), tf.uint8, (), tf.int64)
    np.testing.assert_array_equal(source.tensors[0], prefixed.tensors[0])
    x, y = next(iter(endless(source, 5, seed=0)))
    assert x.shape == (5, 28, 28, 1) and y.shape == (5,)


def test_keys_select_features_and_bad_keys_list_them():
    with tfds.testing.mock_data(num_examples=3):
        (x,) = tfds_source("mnist", "test", keys=("image",)).element_spec
        assert x.shape == (28, 28, 1)
        with pytest.raises(DataError, match=r"among \['image', 'label'\]. Received: keys=\('pixels',\)"):
            tfds_source("mnist", keys=("pixels",))


def test_unknown_dataset_and_bad_mode_are_errors():
    with pytest.raises(DataError, match=r"Unknown TFDS dataset 'no_such_dataset_xyz'"):
        tfds_source("tfds:no_such_dataset_xyz")
    with pytest.raises(DataError, match=r'`in_memory` must be True, False or "auto"'):
        tfds_source("mnist", in_memory="yes")


def test_unprepared_dataset_says_how_to_prepare_it(tmp_path):
    with pytest.raises(DataError, match=r"Prepare it once with `tfds build toolkit_tiny_images`"):
        tfds_source("toolkit_tiny_images", data_dir=str(tmp_path))


def test_random_access_reads_the_same_examples_as_memory(prepared):
    directory = prepared["array_record"]
    in_memory = tfds_source("toolkit_tiny_images", data_dir=directory)
    random_access = tfds_source("toolkit_tiny_images", data_dir=directory, in_memory=False)
    assert isinstance(in_memory, ArraySource) and isinstance(random_access, TfdsSource)
    assert random_access.num_examples == NUM_TRAIN
    assert random_access.element_spec == in_memory.element_spec
    indices = tf.constant([19, 0, 7, 7, 3], tf.int64)
    x, y = random_access.gather(indices)
    ids = _ids(x)  # TFDS stores examples in a hashed order, not the generation order
    assert y.numpy().tolist() == [i % 3 for i in ids] and ids[2] == ids[3]
    assert ids == _ids(in_memory.tensors[0].numpy()[indices.numpy()])
    assert sorted(_ids(in_memory.tensors[0])) == list(range(NUM_TRAIN))


def test_auto_switches_to_random_access_for_large_splits(prepared):
    large = tfds_source("toolkit_tiny_images", data_dir=prepared["array_record"], max_memory_bytes=10)
    assert isinstance(large, TfdsSource)
    with pytest.raises(DataError, match=r"'tfrecord', which has no random access, and its decoded "
                                        r"split .* exceeds max_memory_bytes=10. Prepare it as "
                                        r"ArrayRecord .*--file_format=array_record.*tfds_stream"):
        tfds_source("toolkit_tiny_images", data_dir=prepared["tfrecord"], max_memory_bytes=10)
    with pytest.raises(DataError, match=r"no random access, and in_memory=False asks"):
        tfds_source("toolkit_tiny_images", data_dir=prepared["tfrecord"], in_memory=False)


def test_endless_over_random_access_resumes_exactly(prepared):
    source = tfds_source("toolkit_tiny_images", data_dir=prepared["array_record"], in_memory=False)
    run = [_ids(x) for x, _ in endless(source, 8, seed=4, sampling="passes").take(6)]
    resumed = [_ids(x) for x, _ in endless(source, 8, seed=4, sampling="passes", start_step=4).take(2)]
    assert resumed == run[4:]
    assert sorted(sum(run, [])[:NUM_TRAIN]) == list(range(NUM_TRAIN))  # one pass, each once


def test_stream_reads_reshuffled_passes_and_resumes_exactly(prepared):
    directory = prepared["tfrecord"]
    stream = tfds_stream("toolkit_tiny_images", "train", 5, seed=1, data_dir=directory)
    run = [_ids(x) for x, _ in stream.take(12)]
    flat = sum(run, [])
    first, second = flat[:NUM_TRAIN], flat[NUM_TRAIN:2 * NUM_TRAIN]
    assert sorted(first) == sorted(second) == list(range(NUM_TRAIN))  # every example once a pass
    assert first != second  # each pass is reshuffled
    tf.random.set_seed(123)  # the global seed (set by Keras users) must not matter
    for start in (3, 5, 9):  # inside a pass, at a pass boundary, in a later pass
        again = tfds_stream("toolkit_tiny_images", "train", 5, seed=1, start_step=start,
                            data_dir=directory)
        assert [_ids(x) for x, _ in again.take(3)] == run[start:start + 3]
    other = tfds_stream("toolkit_tiny_images", "train", 5, seed=2, data_dir=directory)
    assert [_ids(x) for x, _ in other.take(4)] != run[:4]
    small = tfds_stream("toolkit_tiny_images", "train", 5, shuffle_buffer_size=8, data_dir=directory)
    blocks = sum([_ids(x) for x, _ in small.take(8)], [])
    assert sorted(blocks[:NUM_TRAIN]) == sorted(blocks[NUM_TRAIN:]) == list(range(NUM_TRAIN))
    assert sorted(blocks[:8]) == sorted(blocks[NUM_TRAIN:NUM_TRAIN + 8])  # same block, new order
