import json

import numpy as np
import pytest

from neuedit.runtime.schema import Schema, anime34, anime_faces, empty


def test_builtin_sizes():
    assert anime34().c_dim == 34
    s = anime_faces()
    assert [len(g.attributes) for g in s.groups] == [12, 2, 11]
    assert empty().c_dim == 0


def test_sampler_never_two_in_an_exclusive_group():
    s = anime34()
    c = s.sample(5000, np.random.default_rng(0))
    for g, sl in s.slices():
        on = c[:, sl].sum(1)
        if g.exclusive:
            assert on.max() <= 1
            # one attribute or none, uniformly: "none" has probability 1 / (k + 1)
            assert abs((on == 0).mean() - 1 / (len(g.attributes) + 1)) < 0.03
        else:
            assert abs(on.mean() - 0.5) < 0.03


def test_empirical_sampling_follows_frequencies():
    s = anime_faces()
    freqs = np.zeros(s.c_dim, np.float32)
    freqs[0] = 0.8  # blonde 80 %, no other hair colour, "none" 20 %
    c = s.sample(4000, np.random.default_rng(1), freqs)
    assert abs(c[:, 0].mean() - 0.8) < 0.03
    assert c[:, 1:12].sum() == 0


def test_conflicting_tags_leave_the_group_empty_and_are_counted():
    s = anime_faces()
    cs, report = s.encode_rows([["blonde_hair", "blue_hair", "long_hair", "red_eyes"], ["weird_tag", "short_hair"]])
    hair = slice(0, 12)
    assert cs[0, hair].sum() == 0
    assert s.decode(cs[0]) == ["long", "red"]
    assert report.conflicts == {"hair_colour": 1}
    assert report.unknown_tags == {"weird_tag": 1}
    assert "conflicting" in report.summary() and "weird_tag" in report.summary()


def test_real_labels_slice(data_dir):
    from neuedit.data.datasets import read_labels
    labels = read_labels(data_dir / "anime-faces" / "labels.csv")
    s = anime_faces()
    c, _, unknown = s.encode(labels["2.jpg"])  # 2.jpg,blonde_hair pink_eyes
    assert s.decode(c) == ["blonde", "pink"] and unknown == []
    c, _, _ = s.encode(labels["3.jpg"])  # 3.jpg,blonde_hair long_hair purple_eyes
    assert s.decode(c) == ["blonde", "long", "purple"]


def test_json_round_trip_and_user_schema(tmp_path):
    d = {"name": "shoes", "groups": [{"name": "colour", "attributes": ["black", "brown"]},
                                     {"name": "heel", "attributes": ["heel"], "exclusive": False}]}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(d))
    s = Schema.load(p)
    assert s.c_dim == 3 and Schema.from_dict(s.to_dict()) == s
    with pytest.raises(ValueError):
        Schema.from_dict({"groups": []})


def test_project_keeps_the_largest_per_exclusive_group():
    s = anime_faces()
    c = np.full(s.c_dim, 0.3, np.float32)
    c[4] = 0.9
    p = s.project(c)
    assert p[:12].tolist().count(0.0) == 11 and p[4] == pytest.approx(0.9)
