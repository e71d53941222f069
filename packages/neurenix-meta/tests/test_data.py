"""Few-shot data: class-disjoint splits, the N-way K-shot sampler, and the Omniglot-layout image loader."""

import numpy as np
import pytest
from PIL import Image

import neurenix as nx
from neurenix.meta import PrototypicalNetworks, TaskSampler, load_image_folder, rotate_classes, split_classes
from neurenix.nn import Linear


def labelled(classes=8, per_class=12, dim=3):
    """Rows whose features record their class and their index, so tasks can be traced back to the data."""
    y = np.repeat(np.arange(classes) * 10, per_class)  # labels 0, 10, 20, ...: not already 0..N-1
    x = np.stack([y, np.arange(len(y)), np.zeros(len(y))], axis=1)[:, :dim].astype(np.float64)
    return x, y


def test_split_classes_is_class_disjoint_seeded_and_complete():
    x, y = labelled()
    parts = split_classes(x, y, (4, 2, 2), seed=3)
    classes = [set(py.tolist()) for _, py in parts]
    assert [len(c) for c in classes] == [4, 2, 2] and set.union(*classes) == set(y.tolist())
    assert not (classes[0] & classes[1] or classes[0] & classes[2] or classes[1] & classes[2])
    for px, py in parts:
        np.testing.assert_array_equal(px[:, 0], py)  # rows stay with their labels
    assert [set(p[1].tolist()) for p in split_classes(x, y, (4, 2, 2), seed=3)] == classes
    assert [set(p[1].tolist()) for p in split_classes(x, y, (4, 2, 2), seed=4)] != classes
    with pytest.raises(ValueError, match=r"ask for 9 classes, the data has 8"):
        split_classes(x, y, (5, 2, 2))


def test_rotate_classes_adds_each_rotation_as_a_new_class():
    x = np.arange(6 * 1 * 3 * 3, dtype=np.float32).reshape(6, 1, 3, 3)
    y = np.array([0, 0, 1, 1, 2, 2])
    rx, ry = rotate_classes(x, y, skip={2: (2,)})
    np.testing.assert_array_equal(rx[:6], x)
    np.testing.assert_array_equal(ry, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 9, 9, 10, 10, 11, 11])
    np.testing.assert_array_equal(rx[6], np.rot90(x[0, 0])[None])  # class 3: class 0 turned 90 degrees
    np.testing.assert_array_equal(rx[12], x[0, :, ::-1, ::-1])  # class 6: turned 180 degrees
    np.testing.assert_array_equal(rx[16], np.rot90(x[0, 0], 3)[None])  # class 9: 270 (class 8 skipped)
    assert len(set(ry.tolist())) == 11
    with pytest.raises(ValueError, match=r"quarters must be 1, 2 or 3"):
        rotate_classes(x, y, (4,))
    with pytest.raises(ValueError, match=r"must be images \(rows, ..., height, width\)"):
        rotate_classes(x.reshape(6, 9), y)
    wide = np.zeros((6, 1, 2, 3))
    with pytest.raises(ValueError, match=r"images of 2x3 turned by 90 or 270 degrees change shape"):
        rotate_classes(wide, y)
    assert rotate_classes(wide, y, (2,))[0].shape == (12, 1, 2, 3)


def test_rotated_labels_stay_unique_for_any_label_range():
    y = np.array([-3, 5])  # rotated copies: 6 and 14, 15 and 23, 24 and 32
    ry = rotate_classes(np.zeros((2, 1, 2, 2)), y)[1]
    np.testing.assert_array_equal(ry, [-3, 5, 6, 14, 15, 23, 24, 32])


@pytest.mark.parametrize("one_hot", [False, True], ids=["indices", "one-hot"])
def test_tasks_are_n_way_k_shot_with_labels_remapped_per_task(one_hot):
    x, y = labelled()
    tasks = TaskSampler(x, y, ways=3, shots=2, queries=4, seed=0, one_hot=one_hot, dtype=nx.float64).sample(20)
    mappings = set()
    for sx, sy, qx, qy in tasks:
        assert sx.shape == (6, 3) and qx.shape == (12, 3)
        s_lab, q_lab = (sy.argmax(dim=1), qy.argmax(dim=1)) if one_hot else (sy, qy)
        assert sy.dtype == (nx.float64 if one_hot else nx.int64)
        assert sorted(s_lab.tolist()) == [0, 0, 1, 1, 2, 2] and sorted(q_lab.tolist()) == sorted([0, 1, 2] * 4)
        rows = np.concatenate([sx.numpy(), qx.numpy()])
        assert len(set(rows[:, 1].tolist())) == 18  # support and query rows are distinct examples
        mapping = {}
        for label, original in zip(np.concatenate([s_lab.numpy(), q_lab.numpy()]), rows[:, 0]):
            assert mapping.setdefault(int(label), original) == original  # one original class per label
        mappings.add(tuple(mapping[i] for i in range(3)))
    assert len(mappings) > 10  # classes and their order vary from task to task


def test_sampling_is_seeded():
    x, y = labelled()
    a, b = (TaskSampler(x, y, 3, 2, 2, seed=5).sample(3) for _ in range(2))
    c = TaskSampler(x, y, 3, 2, 2, seed=6).sample(3)
    same = [np.array_equal(s.numpy(), t.numpy()) for ta, tb in zip(a, b) for s, t in zip(ta, tb)]
    assert all(same) and not np.array_equal(a[0][0].numpy(), c[0][0].numpy())
    nx.manual_seed(1)
    d = TaskSampler(x, y, 3, 2, 2).sample(2)  # no seed: neurenix's generator
    nx.manual_seed(1)
    e = TaskSampler(x, y, 3, 2, 2).sample(2)
    assert np.array_equal(d[1][2].numpy(), e[1][2].numpy())


def test_sampler_errors_name_the_problem():
    x, y = labelled(classes=4)
    with pytest.raises(ValueError, match="5-way tasks need 5 classes, the data has 4"):
        TaskSampler(x, y, ways=5, shots=1, queries=1)
    y = y.copy()
    y[:9] = 10  # class 0 keeps 3 rows
    with pytest.raises(ValueError, match=r"need 5 examples per class; class 0 \(3\) has fewer"):
        TaskSampler(x, y, ways=2, shots=2, queries=3)
    with pytest.raises(ValueError, match="shots must be an int >= 1"):
        TaskSampler(x, y, ways=2, shots=0, queries=3)
    y[:9] = 7  # a short class whose label is past the number of classes (it used to raise an IndexError)
    y[9:13] = 12
    with pytest.raises(ValueError, match=r"need 5 examples per class; class 12 \(4\) has fewer"):
        TaskSampler(x, y, ways=2, shots=2, queries=3)
    with pytest.raises(ValueError, match="class_names has 2 names, so y must hold class indices 0 to 1; it holds 7 to"):
        TaskSampler(x, y, ways=2, shots=1, queries=1, class_names=["a", "b"])


def write_omniglot(root, counts, size=(6, 5)):
    """alphabet/character/*.png greyscale images whose first pixel encodes (class, image)."""
    names = []
    for c, n in enumerate(counts):
        d = root / f"alphabet{c % 2}" / f"character{c:02d}"
        d.mkdir(parents=True)
        names.append(f"alphabet{c % 2}/character{c:02d}")
        for i in range(n):
            a = np.full(size, 255, np.uint8)
            a[0, 0], a[0, 1] = 10 * c, 10 * i
            Image.fromarray(a).save(d / f"{i:02d}.png")
    return names


def test_image_folder_loads_the_omniglot_layout(tmp_path):
    names = write_omniglot(tmp_path, [3, 4, 2])
    x, y, found = load_image_folder(tmp_path)
    assert sorted(found) == sorted(names) and x.shape == (9, 1, 6, 5) and x.dtype == np.float32
    for image, label in zip(x, y):
        assert found[label] == names[round(image[0, 0, 0] * 255 / 10)]
    assert x.max() == 1.0 and sorted(np.round(x[y == found.index(names[1]), 0, 0, 1] * 255 / 10)) == [0, 1, 2, 3]
    small, _, _ = load_image_folder(tmp_path, size=(4, 3))
    assert small.shape == (9, 1, 4, 3)


def test_image_folder_errors(tmp_path):
    write_omniglot(tmp_path / "short", [5, 5, 2])
    x, y, names = load_image_folder(tmp_path / "short")
    with pytest.raises(ValueError, match=r"class alphabet0/character02 \(2\) has fewer"):
        TaskSampler(x, y, ways=2, shots=1, queries=2, class_names=names)
    with pytest.raises(ValueError, match="3-way tasks need 3 classes, the data has 2"):
        TaskSampler(x[y < 2], y[y < 2], ways=3, shots=1, queries=1)
    (tmp_path / "empty" / "a" / "b").mkdir(parents=True)
    with pytest.raises(ValueError, match="class a/b has no"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_image_folder(tmp_path / "missing")
    write_omniglot(tmp_path / "mixed", [1], size=(4, 4))
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "mixed" / "alphabet0" / "character00" / "z.png")
    with pytest.raises(ValueError, match="images differ in size"):
        load_image_folder(tmp_path / "mixed")
    (tmp_path / "mixed" / "alphabet0" / "character00" / "z.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read"):
        load_image_folder(tmp_path / "mixed")
    for size, error, match in (((0, 4), ValueError, r"size\[0\] \(height\) must be an int >= 1, got 0"),
                               ((4, 2.5), TypeError, r"size\[1\] \(width\) must be an int >= 1, got 2.5"),
                               ("28", TypeError, "size must be \\(height, width\\) or None, got '28'")):
        with pytest.raises(error, match=match):
            load_image_folder(tmp_path / "mixed", size=size)
    with pytest.raises(TypeError, match="pattern must be a glob pattern string, got 3"):
        load_image_folder(tmp_path / "mixed", pattern=3)


@pytest.mark.parametrize("call, error, match", [
    (lambda x, y: split_classes(x, y, (2, -1)), ValueError, r"sizes\[1\] must be an int >= 0, got -1"),
    (lambda x, y: split_classes(x, y, "ab"), TypeError, "sizes must be a sequence of class counts, got 'ab'"),
    (lambda x, y: split_classes(x, y, (2,), seed=-1), ValueError, "seed must be an int >= 0, got -1"),
    (lambda x, y: TaskSampler(x, y, 2, 1, 1).sample(-1), ValueError, "num_tasks must be an int >= 0, got -1"),
    (lambda x, y: TaskSampler(x, y, 2, 1, 1, one_hot="yes"), TypeError, "one_hot must be True or False"),
    (lambda x, y: rotate_classes(x.reshape(-1, 1, 3, 1).repeat(3, -1), y, skip={1: 2}), TypeError,
     r"skip\[1\] must be a sequence of quarter turns"),
], ids=["negative-size", "sizes-string", "seed", "sample-negative", "one_hot-string", "skip-not-a-sequence"])
def test_data_helpers_name_bad_arguments(call, error, match):
    x, y = labelled(classes=4)
    with pytest.raises(error, match=match):
        call(x, y)


def test_sampled_image_tasks_train_a_learner(tmp_path):
    write_omniglot(tmp_path, [4] * 4, size=(3, 3))
    x, y, names = load_image_folder(tmp_path)
    sampler = TaskSampler(x.reshape(len(x), -1), y, ways=2, shots=1, queries=3, seed=0, class_names=names)
    history = PrototypicalNetworks(Linear(9, 4)).meta_learn(lambda epoch: sampler.sample(2), epochs=3)
    assert len(history["accuracy"]) == 3
