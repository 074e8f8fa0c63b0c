import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from neuedit.nn.weights import load_module
from neuedit.runtime import bundle as bundle_mod
from neuedit.data.datasets import DataConfig, load_dataset
from neuedit.runtime.schema import anime_faces
from neuedit.training import RunConfig
from neuedit.stage1.train import Stage1Config, fit, train


def tiny_cfg(out, data_dir, iterations=6, limit=64, batch=8, **run_kw):
    return Stage1Config(
        data=DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=limit,
                        labels=str(data_dir / "anime-faces" / "labels.csv")),
        run=RunConfig(out=str(out), iterations=iterations, batch=batch, seed=3, log_every=2, sample_every=3,
                      ckpt_every=100, progress=False, tensorboard=False, **run_kw),
        preset="tiny", z_dim=16)


@pytest.fixture(scope="module")
def faces64(data_dir):
    return load_dataset(DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=64,
                                   labels=str(data_dir / "anime-faces" / "labels.csv")), anime_faces())


def _weights(run_dir):
    state = torch.load(Path(run_dir) / "checkpoint.pt", weights_only=True)
    return state["modules"], state["optimizers"]


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path, data_dir, faces64):
    straight = tiny_cfg(tmp_path / "straight", data_dir)
    train(straight, faces64)
    resumed = tiny_cfg(tmp_path / "resumed", data_dir)
    train(resumed, faces64, stop_at=3)          # "killed" after step 3's checkpoint
    assert torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["step"] == 3
    train(resumed, faces64)                     # resumes at 3, same schedule, same batches
    (ma, oa), (mb, ob) = _weights(tmp_path / "straight"), _weights(tmp_path / "resumed")
    for net in ("G", "D", "G_ema"):
        for k in ma[net]:
            assert torch.equal(ma[net][k], mb[net][k]), f"{net}.{k} differs after resume"
    assert torch.equal(oa["G"]["state"][0]["exp_avg"], ob["G"]["state"][0]["exp_avg"])
    # the log has one row per logged step, no duplicates from the first attempt
    steps = [int(line.split(",")[0]) for line in (tmp_path / "resumed" / "log.csv").read_text().splitlines()[1:]]
    assert steps == [2, 4, 6]


def test_resume_refuses_a_different_configuration(tmp_path, data_dir, faces64):
    train(tiny_cfg(tmp_path / "run", data_dir), faces64, stop_at=2)
    other = replace(tiny_cfg(tmp_path / "run", data_dir), z_dim=8)
    with pytest.raises(ValueError, match="different configuration"):
        train(other, faces64)


def test_outputs_bundle_grid_plot_and_rebuilds_g_without_retyping(tmp_path, data_dir, faces64):
    out = tmp_path / "run"
    b = train(tiny_cfg(out, data_dir), faces64)
    assert (out / "samples" / "samples_latest.png").is_file() and (out / "losses.png").is_file()
    assert {"step", "L_D", "L_G", "L_gp", "L_cls_D", "lr"} <= set((out / "log.csv").read_text().splitlines()[0].split(","))
    meta = bundle_mod.read(out / "bundle").meta
    assert meta["c_dim"] == 25 and meta["resolution"] == 16 and meta["g1"]["kwargs"]["z_dim"] == 16
    G = load_module(b, "g1")
    ema = torch.load(out / "checkpoint.pt", weights_only=True)["modules"]["G_ema"]
    for k, v in G.named_parameters():
        assert torch.equal(v, ema[k])
    # BatchNorm statistics are the serving prior's standing statistics, not the training copy's
    bn = [k for k in ema if k.endswith("running_var")]
    assert bn and all(not torch.equal(G.state_dict()[k], ema[k]) for k in bn)
    with torch.no_grad():
        x = G(torch.zeros(2, 16), torch.zeros(2, 25))
    assert x.shape == (2, 3, 16, 16)


def test_bundle_metadata_reads_without_torch(tiny_bundle):
    code = ("import sys; from neuedit.runtime import bundle; b = bundle.read(sys.argv[1]); "
            "assert b.c_dim == 25 and b.schema.c_dim == 25; assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code, str(tiny_bundle.path)], check=True)


def _ddp_worker(rank, world, port, out, data_dir, result_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    cfg = tiny_cfg(out, Path(data_dir), iterations=2, batch=4)
    run, modules = fit(cfg)
    flat = torch.cat([p.detach().flatten() for p in modules["G"].parameters()])
    torch.save(flat, Path(result_dir) / f"rank{rank}.pt")


def test_two_process_gloo_ddp_step(tmp_path, data_dir):
    import socket
    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path / "run"), str(data_dir), str(tmp_path)), nprocs=2, join=True)
    w0, w1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    assert torch.equal(w0, w1), "DDP ranks diverged: gradients were not synchronised"
    torch.manual_seed(3)
    from neuedit.stage1.train import build_networks
    G0 = build_networks(tiny_cfg(tmp_path / "x", data_dir), 25, "cpu")[0]
    assert not torch.equal(w0, torch.cat([p.flatten() for p in G0.parameters()])), "no step was taken"
    assert (tmp_path / "run" / "bundle" / "bundle.json").is_file()  # rank 0 wrote it
    assert not (tmp_path / "run" / "samples" / "rank1").exists()


@pytest.mark.slow
def test_acgan_head_beats_chance_on_held_out_faces(tmp_path, data_dir):
    """After a short run on real faces, D's hair-colour head classifies held-out images
    better than always answering the most frequent colour."""
    schema = anime_faces()
    cfg = Stage1Config(
        data=DataConfig(str(data_dir / "anime-faces" / "images"), resolution=16, limit=1800,
                        labels=str(data_dir / "anime-faces" / "labels.csv")),
        run=RunConfig(out=str(tmp_path / "run"), iterations=250, batch=32, seed=0, log_every=50,
                      sample_every=1000, ckpt_every=1000, progress=False, tensorboard=False),
        preset="tiny", z_dim=16)
    data = load_dataset(cfg.data, schema)
    train_set = replace(data)
    n_train = 1500
    train_set.images, train_set.c = data.images[:n_train], data.c[:n_train]
    _, modules = fit(cfg, train_set)
    D = modules["D"].eval()
    x = torch.from_numpy(data.images[n_train:]).permute(0, 3, 1, 2).float() / 127.5 - 1
    c = data.c[n_train:]
    hair = slice(0, 12)
    labelled = c[:, hair].sum(1) == 1
    with torch.no_grad():
        _, logits = D(x)
    pred = logits[:, hair].argmax(1).numpy()[labelled]
    truth = c[labelled][:, hair].argmax(1)
    acc = (pred == truth).mean()
    chance = np.bincount(truth, minlength=12).max() / len(truth)
    assert acc > chance + 0.1, f"hair-colour accuracy {acc:.2f} vs majority {chance:.2f}"


@pytest.mark.parametrize("flip", [True, False])
def test_real_batches_are_mirrored_only_when_flips_are_on(tmp_path, data_dir, faces64, flip):
    """`flip = false` (one-pose photo sets such as the shoes) must feed D every photo as stored."""
    from neuedit.stage1.train import sample_batch
    from neuedit.training import Run, TensorData
    cfg = tiny_cfg(tmp_path, data_dir, batch=32)
    cfg = replace(cfg, data=replace(cfg.data, flip=flip))
    run = Run(cfg.run, {})
    data = TensorData(faces64, run.device)
    x_real = sample_batch(run, data, anime_faces(), cfg, 1, None)["x_real"]
    stored = data.get(run.batch_indices(len(data), 1), None)[0]
    mirrored = (x_real == stored.flip(3)).all(3).all(2).all(1) & (x_real != stored).any(3).any(2).any(1)
    assert bool(mirrored.any()) == flip
    if not flip:
        assert torch.equal(x_real, stored)
