"""`neuedit evaluate`: the evaluation classifier learns real attributes, the diversity numbers
mean what they say, and the command writes its report for a bundle."""
import json

import numpy as np
import pytest

from neuedit.evaluation import classifier as clf
from neuedit.data.datasets import DataConfig, load_dataset
from neuedit.evaluation.evaluate import diversity, one_per_group
from neuedit.runtime.schema import anime_faces

N_TRAIN, N_TEST = 1500, 400
MARGIN = 0.15  # hair colour: at least 15 points over always answering the most frequent colour


@pytest.fixture(scope="module")
def faces(data_dir):
    return load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=32, limit=N_TRAIN + N_TEST,
                                   labels=str(data_dir / "anime-faces" / "labels.csv")), anime_faces())


@pytest.fixture(scope="module")
def net(faces):
    cfg = clf.ClassifierConfig(steps=250, batch=32, width=16, lr=2e-3)
    return clf.train_classifier(faces.images[:N_TRAIN], faces.c[:N_TRAIN], anime_faces(), cfg)


def test_classifier_beats_chance_on_held_out_real_faces(faces, net):
    x = faces.images[N_TRAIN:].transpose(0, 3, 1, 2).astype(np.float32) / 127.5 - 1
    _, logits = clf.embed(net, x)
    c = faces.c[N_TRAIN:]
    hair = slice(0, 12)
    lab = c[:, hair].sum(1) == 1
    truth = c[lab, hair].argmax(1)
    acc = (clf.group_predictions(logits, anime_faces())["hair_colour"][lab] == truth).mean()
    majority = np.bincount(truth, minlength=12).max() / len(truth)
    assert acc > majority + MARGIN, f"hair colour accuracy {acc:.2f}, majority class {majority:.2f}"


def test_duplicate_share_is_one_percent_for_real_and_all_for_a_collapsed_set():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((400, 16))
    fresh = rng.standard_normal((400, 16))  # another draw of the same distribution
    d = diversity(fresh, real, 400, np.random.default_rng(1))
    assert d["real_duplicate_share"] == pytest.approx(0.01, abs=0.002)
    assert d["duplicate_share"] < 0.03 and d["pairwise_ratio"] == pytest.approx(1.0, abs=0.05)
    collapsed = np.repeat(fresh[:1], 400, 0) + 1e-3 * rng.standard_normal((400, 16))
    d = diversity(collapsed, real, 400, np.random.default_rng(1))
    assert d["duplicate_share"] == 1.0 and d["pairwise_ratio"] < 0.01


def test_one_per_group_asks_every_exclusive_group_once():
    c = one_per_group(500, anime_faces(), np.random.default_rng(0))
    for g, s in anime_faces().slices():
        assert (c[:, s].sum(1) == 1).all()
        assert len(np.unique(c[:, s].argmax(1))) == len(g.attributes)


def test_evaluate_command_writes_json_markdown_and_grid(tmp_path, data_dir, tiny_exported):
    from neuedit.cli.main import main
    out = tmp_path / "eval"
    rc = main(["evaluate", str(tiny_exported.path), "--label", "tiny",
               "--data", str(data_dir / "anime-faces" / "images"), "--labels", str(data_dir / "anime-faces" / "labels.csv"),
               "--skip", "300", "--limit", "100", "--train-limit", "300", "--samples", "100", "--attr-samples", "60",
               "--classifier-steps", "5", "--out", str(out)])
    assert rc == 0
    report = json.loads((out / "evaluate.json").read_text())
    r = report["results"][0]
    assert r["label"] == "tiny" and set(r["agreement"]) == {"hair_colour", "hair_length", "eye_colour"}
    assert np.isfinite(r["kid_handcrafted"]) and np.isfinite(r["kid_learned"]) and 0 <= r["duplicate_share"] <= 1
    assert report["reference"]["real_images"] == 100 and report["reference"]["classifier_train_images"] == 240
    assert "| tiny |" in (out / "evaluate.md").read_text() and (out / r["grid"]).is_file()
    assert (out / "classifier.safetensors").is_file()
    # the floor row: a fifth of the training images, held back from the classifier and scored
    # like samples, are far closer to the held-out set than an untrained generator's blotches
    floor = report["floor"]
    assert floor["samples"] == 60 and report["reference"]["floor_images"] == 60 and "| real training images (the floor) | - |" in (out / "evaluate.md").read_text()
    assert floor["kid_handcrafted"] < r["kid_handcrafted"] / 5


def test_evaluate_refuses_overlapping_held_out_and_classifier_sets(tmp_path, data_dir, tiny_exported):
    from neuedit.cli.main import main
    rc = main(["evaluate", str(tiny_exported.path), "--data", str(data_dir / "anime-faces" / "images"),
               "--labels", str(data_dir / "anime-faces" / "labels.csv"), "--limit", "50",
               "--train-data", str(data_dir / "anime-faces" / "images"), "--train-limit", "50",
               "--out", str(tmp_path)])
    assert rc == 1
