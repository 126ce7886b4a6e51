"""Transforms (resize, flip, normalise, erasing) and the torch image data set over real crops."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from conftest import shared_path
from core.errors import UserError
from reid.data import Sample, build_dataset
from reid.data.image_dataset import ImageDataset, check_train_set
from reid.data.sampler import PKSampler
from reid.data.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform, preprocess, read_image


def _halves() -> np.ndarray:
    """RGB (8, 4, 3): left half black, right half white."""
    img = np.zeros((8, 4, 3), np.uint8)
    img[:, 2:] = 255
    return img


def test_preprocess_normalises_and_resizes():
    x = preprocess(_halves(), (16, 8))
    assert x.shape == (3, 16, 8)
    assert x.dtype == np.float32
    for c in range(3):  # black -> -mean/std, white -> (1-mean)/std
        assert x[c, 5, 0] == pytest.approx(-IMAGENET_MEAN[c] / IMAGENET_STD[c], abs=1e-5)
        assert x[c, 5, 7] == pytest.approx((1 - IMAGENET_MEAN[c]) / IMAGENET_STD[c], abs=1e-5)
    rgb = np.random.default_rng(0).integers(0, 256, (20, 10, 3), dtype=np.uint8)
    assert np.array_equal(preprocess(rgb[:, :, ::-1], (16, 8), bgr=True), preprocess(rgb, (16, 8)))


def test_train_transform_flip_pad_and_erasing():
    img = _halves()
    plain = EvalTransform((8, 4))(img)
    flipped = TrainTransform((8, 4), flip=1.0)(img)
    assert torch.equal(flipped, torch.flip(plain, dims=[2]))
    assert flipped[0, 0, 0] > 0 > plain[0, 0, 0]
    assert torch.equal(TrainTransform((8, 4), flip=0.0)(img), plain)
    torch.manual_seed(0)
    big = np.full((64, 32, 3), 200, np.uint8)
    erased = TrainTransform((64, 32), flip=0.0, random_erasing=1.0)(big)
    ref = EvalTransform((64, 32))(big)
    zero = (erased == 0).all(0)
    assert 0 < int(zero.sum()) < 64 * 32
    assert torch.equal(erased[:, ~zero], ref[:, ~zero])
    padded = TrainTransform((64, 32), flip=0.0, pad=4)(big)
    assert padded.shape == (3, 64, 32)
    with pytest.raises(UserError, match="probabilities"):
        TrainTransform(flip=1.5)


def _stripes(h=128, w=48) -> np.ndarray:
    """RGB with one-pixel vertical stripes: fine detail that a low-resolution copy loses."""
    img = np.zeros((h, w, 3), np.uint8)
    img[:, ::2] = 255
    return img


def test_low_resolution_simulation_shrinks_then_resizes_back():
    img = _stripes()
    t = TrainTransform((64, 32), flip=0.0, low_resolution=1.0, low_heights=(40, 40))
    assert t.shrink(img).shape == (40, 15, 3)                       # aspect kept
    sharp, soft = EvalTransform((64, 32))(img), t(img)
    assert soft.shape == sharp.shape
    detail = lambda x: float(x[:, :, 1:].sub(x[:, :, :-1]).abs().mean())   # noqa: E731
    assert detail(soft) < 0.5 * detail(sharp)                         # the stripes are blurred away
    small = _stripes(30, 12)                                          # already smaller than any target
    assert t.shrink(small) is small
    assert TrainTransform((64, 32), low_resolution=0.0).shrink(img) is img
    torch.manual_seed(1)
    heights = {TrainTransform((64, 32), low_resolution=1.0, low_heights=(40, 96)).shrink(img).shape[0]
               for _ in range(40)}
    assert min(heights) >= 40 and max(heights) <= 96 and len(heights) > 5
    with pytest.raises(UserError, match="probabilities"):
        TrainTransform(low_resolution=2.0)
    with pytest.raises(UserError, match="heights"):
        TrainTransform(low_resolution=0.5, low_heights=(50, 20))


def test_image_dataset_on_market_mini_with_pk_loader():
    data = build_dataset("market1501", shared_path("data", "market1501-mini"))
    check_train_set(data.train, data.schema)
    ds = ImageDataset(data.train, EvalTransform((32, 16)), data.schema.num_groups)
    assert ds.num_ids == 16
    assert sorted(set(ds.labels.tolist())) == list(range(16))
    img, label, camid, attrs = ds[0]
    assert img.shape == (3, 32, 16)
    assert (label, camid) == (0, 1)  # pid 2 is the smallest -> label 0
    assert attrs.dtype == torch.int64
    assert attrs.tolist() == data.train[0].attrs.tolist()
    sampler = PKSampler(ds.labels, p=4, k=2, seed=0)
    imgs, labels, cams, targets = next(iter(DataLoader(ds, batch_size=sampler.batch_size, sampler=sampler)))
    assert imgs.shape == (8, 3, 32, 16)
    assert targets.shape == (8, 12)
    assert labels.dtype == torch.int64
    assert len(set(labels.tolist())) == 4
    assert (labels.view(4, 2) == labels.view(4, 2)[:, :1]).all()
    bgr = cv2.imread(data.train[0].path)  # what ReIDEncoder gets from OpenCV: same pixels as training
    assert np.array_equal(img.numpy(), preprocess(bgr, (32, 16), bgr=True))


def test_dataset_errors(tmp_path):
    with pytest.raises(UserError, match="empty"):
        check_train_set([], None)
    one = [Sample("a.jpg", 1, 1), Sample("b.jpg", 1, 2)]
    with pytest.raises(UserError, match="single identity"):
        check_train_set(one, None)
    with pytest.raises(UserError, match="junk"):
        check_train_set(one + [Sample("c.jpg", -1, 1)], None)
    ds = ImageDataset([Sample(str(tmp_path / "missing.jpg"), 5, 1)], EvalTransform((8, 4)), num_groups=3)
    assert ds.attr_targets(0).tolist() == [-1, -1, -1]
    with pytest.raises(UserError, match="cannot read image"):
        ds[0]


def test_training_and_inference_preprocessing_agree():
    """The eval transform (training side) and reid.preprocess (ReIDEncoder side) give the same tensor."""
    from reid import preprocess as preprocess_mod

    path = str(shared_path("data", "market1501-mini", "query", "0004_c2s3_059152_00.jpg"))
    ours = EvalTransform((64, 32))(read_image(path)).numpy()
    pp = preprocess_mod.Preprocess((64, 32))
    theirs = preprocess_mod.normalize_numpy(preprocess_mod.resize_crops([cv2.imread(path)], (64, 32), pp.rgb), pp)[0]
    assert np.array_equal(ours, theirs)
