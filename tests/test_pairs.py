"""Edit pairs with a known answer (neuedit.synth.pairs), on real images."""
import cv2
import numpy as np
import pytest

from neuedit.synth import pairs as P
from neuedit.data.datasets import DataConfig, load_dataset
from neuedit.runtime.schema import anime_faces, empty
from neuedit.synth.strokes import edge_map


@pytest.fixture(scope="module")
def faces(data_dir):
    return load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), 64, limit=40, flip=False), empty()).images


@pytest.fixture(scope="module")
def shoes(data_dir):
    s = load_dataset(DataConfig(str(data_dir / "shoes" / "train"), 64, limit=12, layout="pair", flip=False), empty())
    return s


def _components(mask: np.ndarray) -> int:
    return cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1


def test_recolour_region_is_connected_and_its_colour_really_changed(faces):
    for i in range(12):
        rng = np.random.default_rng(i)
        p = P.recolour_pair(faces[i], faces[20:], 3, rng)
        region = P.colour_region(faces[i], np.random.default_rng(i))
        assert _components(region) == 1, "one connected region"
        assert region.mean() >= 0.02
        lab_s, lab_t = P.to_lab(p.source), P.to_lab(p.target)
        shift = np.linalg.norm(lab_s[region].mean(0) - lab_t[region].mean(0))
        assert shift > 0.5 * P.PairConfig().min_shift, f"region colour moved by {shift:.1f} only"
        assert np.array_equal(p.source[~p.region], p.target[~p.region]), "nothing outside the region changes"
        assert np.array_equal(p.target, faces[i]), "the target is the real image"
        painted = p.sketch[..., 3] > 0
        assert painted.any() and not (painted & ~region).any(), "strokes lie inside the region"
        # every stroke colour is a colour of the target's region (later strokes may cover the pixel it came from)
        for colour in np.unique(p.sketch[painted][:, :3], axis=0):
            assert (p.target[region] == colour).all(-1).any()


def test_reshape_strokes_are_thin_lines_of_the_target_inside_the_region(shoes):
    from neuedit.synth.strokes import edges_from_pair_half
    cfg = P.PairConfig(p_line_colour=0.0)
    for i in range(8):
        edges = edges_from_pair_half(shoes.edges[i], 64)
        rng = np.random.default_rng(i)
        p = P.reshape_pair(shoes.images[i], edges, 3, rng, cfg, donor=shoes.images[(i + 1) % 8], fill="donor")
        painted = p.sketch[..., 3] > 0
        assert painted.any() and np.array_equal(painted, p.lines)
        assert not (p.lines & ~edges).any(), "only the target's own edge pixels"
        assert (p.sketch[painted][:, :3] == 0).all(), "black lines"
        # 1-2 px wide: a 3x3 cross erosion removes every line pixel
        cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
        assert not cv2.erode(painted.astype(np.uint8), cross).any()
        assert _components(p.lines) <= 3, "at most n = 3 fragments"
        assert (p.source[p.region] != p.target[p.region]).any(), "the region's content was replaced"


def test_reshape_fills(faces):
    e = edge_map(faces[0])
    blur = P.reshape_pair(faces[0], e, 2, np.random.default_rng(0), fill="blur")
    given = P.reshape_pair(faces[0], e, 2, np.random.default_rng(0), fill="given", given=faces[5])
    inside = cv2.erode(given.region.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0  # past the feathered border
    assert inside.any() and np.array_equal(given.source[inside], faces[5][inside])
    assert np.abs(blur.source.astype(int) - faces[0]).sum() > 0
    with pytest.raises(P.UsageError):
        P.reshape_pair(faces[0], e, 2, np.random.default_rng(0), fill="paint")


def test_empty_pair_target_equals_source(faces):
    p = P.empty_pair(faces[3])
    assert np.array_equal(p.source, p.target) and not p.sketch.any() and not p.region.any()


def test_differ_strokes_lie_where_the_images_differ(faces):
    a = faces[0].copy()
    b = a.copy()
    b[:20, :30] = (200, 30, 30)  # the top-left block changed
    p = P.differ_pair(a, b, 4, np.random.default_rng(0))
    painted = p.sketch[..., 3] > 0
    assert painted.any()
    assert painted[:22, :32].sum() == painted.sum(), "strokes only where the images differ"
    assert (p.sketch[painted][:, :3] == (200, 30, 30)).all(), "in the target's colour"


def test_pairs_are_reproducible(faces):
    def draw(seed):
        p = P.recolour_pair(faces[7], faces[20:], 3, np.random.default_rng(seed))
        return p.source, p.sketch
    for x, y in zip(draw(4), draw(4)):
        assert np.array_equal(x, y)
    assert not np.array_equal(draw(4)[1], draw(5)[1])


def test_changed_attribute_switches_one_exclusive_group():
    schema = anime_faces()
    rng = np.random.default_rng(0)
    c = schema.sample(50, rng)
    c2 = np.stack([P.changed_attribute(schema, row, rng)[0] for row in c])
    for row, row2 in zip(c, c2):
        changed = [g.name for g, s in schema.slices() if not np.array_equal(row[s], row2[s])]
        assert len(changed) == 1
        g, s = next((g, s) for g, s in schema.slices() if g.name == changed[0])
        assert row2[s].sum() <= 1 and g.exclusive


def test_kmeans_separates_clear_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 0.1, (200, 3)), rng.normal(5, 0.1, (200, 3))])
    labels = P.kmeans(x, 2, rng)
    assert len(set(labels[:200])) == 1 and len(set(labels[200:])) == 1 and labels[0] != labels[-1]


def test_differ_with_edges_gives_the_targets_lines_where_they_differ(faces):
    a, b = faces[0], faces[1]
    e = edge_map(b)
    p = P.differ_pair(a, b, 3, np.random.default_rng(0), edges=e)
    painted = p.sketch[..., 3] > 0
    assert painted.any() and np.array_equal(painted, p.lines)
    assert not (painted & ~e).any() and not (painted & ~p.region).any()
