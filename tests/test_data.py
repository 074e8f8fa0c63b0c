import numpy as np
import pytest
from PIL import Image

from neuedit.data.datasets import DataConfig, DataError, load_dataset, to_uint8, to_unit_range
from neuedit.runtime.schema import anime_faces, empty


def _write(folder, name, mode, size=(20, 20), colour=128):
    img = Image.new(mode, size, colour if mode in ("L", "CMYK") or isinstance(colour, tuple) else colour)
    img.save(folder / name)


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(DataConfig(str(tmp_path / "nope"), resolution=16), empty())


def test_mixed_sizes_and_modes_and_broken_files(tmp_path):
    _write(tmp_path, "gray.png", "L", (30, 20), 100)
    _write(tmp_path, "rgba.png", "RGBA", (16, 16), (255, 0, 0, 0))   # fully transparent -> white
    _write(tmp_path, "cmyk.jpg", "CMYK", (40, 40), (0, 255, 255, 0))
    _write(tmp_path, "rgb.png", "RGB", (16, 16), (0, 0, 255))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    data = load_dataset(DataConfig(str(tmp_path), resolution=16), empty())
    assert data.images.shape == (4, 16, 16, 3) and data.images.dtype == np.uint8
    assert [f for f, _ in data.skipped] == ["broken.jpg"]
    by_name = dict(zip(data.files, data.images))
    assert (by_name["rgba.png"] == 255).all()
    assert (by_name["gray.png"] == 100).all()
    assert by_name["cmyk.jpg"][..., 0].mean() > 200 and by_name["cmyk.jpg"][..., 1].mean() < 60
    assert "1 unreadable" in data.summary()


def test_all_unreadable_is_an_error(tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="could be read"):
        load_dataset(DataConfig(str(tmp_path), resolution=16), empty())


def test_labels_missing_files_unknown_tags_and_missing_labels_file(tmp_path):
    _write(tmp_path, "a.png", "RGB", colour=(1, 2, 3))
    _write(tmp_path, "b.png", "RGB", colour=(1, 2, 3))
    with pytest.raises(DataError, match="no labels file"):
        load_dataset(DataConfig(str(tmp_path), resolution=8), anime_faces())
    (tmp_path / "labels.csv").write_text("file,tags\na.png,red_hair cat_ears\nghost.png,blue_hair\n")
    data = load_dataset(DataConfig(str(tmp_path), resolution=8), anime_faces())
    assert data.missing_labelled == 1 and data.unlabelled == 1
    assert data.label_report.unknown_tags == {"cat_ears": 1}
    assert anime_faces().decode(data.c[data.files.index("a.png")]) == ["red"]
    s = data.summary()
    assert "missing" in s and "cat_ears" in s and "no label row" in s
    (tmp_path / "labels.csv").write_text("name,labels\na.png,x\n")
    with pytest.raises(DataError, match="header"):
        load_dataset(DataConfig(str(tmp_path), resolution=8), anime_faces())


def test_real_pairs_photo_on_the_left(data_dir):
    data = load_dataset(DataConfig(str(data_dir / "shoes" / "train"), resolution=32, layout="pair", limit=8), empty())
    assert data.images.shape == (8, 32, 32, 3) and data.edges.shape == (8, 32, 32, 3)
    # the edge half is mostly white paper; the photo half is not
    assert data.edges.mean() > data.images.mean()
    swapped = load_dataset(DataConfig(str(data_dir / "shoes" / "train"), resolution=32, layout="pair",
                                      pair_image="right", limit=8), empty())
    assert np.array_equal(swapped.images, data.edges)


def test_value_range_round_trip():
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3), dtype=np.uint8)
    y = to_unit_range(x)
    assert y.shape == (2, 3, 5, 5) and y.min() >= -1 and y.max() <= 1
    assert np.array_equal(to_uint8(y), x)
