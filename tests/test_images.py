"""gan/io/images.py: the one quantisation (float [-1, 1] -> uint8), the NCHW -> NHWC layout and the
one grid builder. References are the documented formula (computed with numpy, not torch) and
pixels read back with PIL / numpy at offsets computed here from the documented geometry."""

import numpy as np
import pytest
import torch
from PIL import Image

from gan.io.images import image_grid, quantise, save_image_grid, to_pil, to_uint8, uint8_to_pil

# ---- quantise ---------------------------------------------------------------------------------


def _formula(x: np.ndarray) -> np.ndarray:
    """The documented rounding, in numpy: x * 127.5 + 128 in float32, clamped to [0, 255], truncated."""
    x = np.asarray(x, np.float32)
    return np.floor(np.clip(x * np.float32(127.5) + np.float32(128), 0, 255)).astype(np.uint8)


@pytest.mark.parametrize("x, code", [
    (-1.0, 0),         # -1 * 127.5 + 128 = 0.5: truncated to 0 (round-half-up would give 1)
    (1.0, 255),        # 255.5: truncated (and clamped) to 255
    (-1.01, 0),        # out of range: clamped, not wrapped round to 255
    (1.01, 255),       # 256.8: clamped, not wrapped round to 0
    (0.0, 128),        # exactly on a code
    (-2.0 ** -20, 127),  # 127.99988: just below 128 stays 127 (rounding would give 128)
    (2.0 ** -7, 128),  # 128.996: truncated to 128 (rounding would give 129)
    (0.5, 191),        # 191.75
    (-0.5, 64),        # 64.25
])
def test_quantise_truncates_and_clamps_edge_values(x, code):
    out = quantise(torch.tensor([x]))
    assert out.dtype == torch.uint8 and out.item() == code
    assert _formula([x])[0] == code  # the hand-worked code agrees with the formula


def test_quantise_follows_the_formula_everywhere_and_keeps_the_shape():
    # Every float32 step across [-1.02, 1.02], so every code boundary is crossed many times.
    x = np.linspace(-1.02, 1.02, 200_001, dtype=np.float32)
    np.testing.assert_array_equal(quantise(torch.from_numpy(x)).numpy(), _formula(x))
    img = torch.from_numpy(x[:2 * 3 * 5 * 7].reshape(2, 3, 5, 7))
    assert quantise(img).shape == (2, 3, 5, 7)
    # float64 / float16 input quantises as the float32 it is converted to
    assert torch.equal(quantise(img.double()), quantise(img))
    assert torch.equal(quantise(img.half()), quantise(img.half().float()))


# ---- to_uint8 / PIL -----------------------------------------------------------------------------

def test_to_uint8_moves_channels_last():
    img = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * 2 - 1   # [N, C, H, W]
    out = to_uint8(img)
    assert isinstance(out, np.ndarray) and out.dtype == np.uint8 and out.shape == (2, 4, 5, 3)  # [N, H, W, C]
    want = _formula(img.numpy())
    for n, c, h, w in [(0, 0, 0, 0), (1, 2, 3, 4), (0, 1, 2, 3), (1, 0, 3, 1)]:
        assert out[n, h, w, c] == want[n, c, h, w]
    np.testing.assert_array_equal(out, want.transpose(0, 2, 3, 1))


def test_to_uint8_keeps_greyscale_as_one_channel():
    out = to_uint8(torch.full((1, 1, 3, 2), 0.5))
    assert out.shape == (1, 3, 2, 1) and (out == 191).all()
    pil = uint8_to_pil(out[0])
    assert pil.mode == "L" and pil.size == (2, 3)     # PIL size is (W, H)
    assert [p.mode for p in to_pil(torch.zeros(2, 3, 4, 4))] == ["RGB", "RGB"]


@pytest.mark.parametrize("bad", [torch.zeros(3, 4, 4), torch.zeros(1, 1, 1, 4, 4), np.zeros((1, 3, 4, 4))],
                         ids=["3-d", "5-d", "numpy"])
def test_to_uint8_refuses_anything_but_an_nchw_tensor(bad):
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        to_uint8(bad)


# ---- image_grid: geometry -----------------------------------------------------------------------

W, H = 5, 3  # tile width and height differ, so a swapped x/y shows up


def _tiles(n, mode="RGB", seed=0):
    """n random tiles W x H (random content: any misplaced pixel shows)."""
    rng = np.random.default_rng(seed)
    shape = (H, W) if mode == "L" else (H, W, 3)
    return [Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode) for _ in range(n)]


def _origin(i, cols, gap, cell_w=W, cell_h=H):
    """Top-left corner of cell i (row-major), from the documented layout."""
    r, c = divmod(i, cols)
    return gap + c * (cell_w + gap), gap + r * (cell_h + gap)


# cols=None: near-square, ceil(sqrt(n)) columns (5 tiles -> 3 columns, 10 -> 4)
@pytest.mark.parametrize("n, cols, gap, rows, expect_cols", [
    (5, 3, 2, 2, 3), (6, 2, 1, 3, 2), (1, None, 0, 1, 1), (5, None, 1, 2, 3), (10, None, 3, 3, 4)])
def test_grid_size_is_cells_plus_gaps(n, cols, gap, rows, expect_cols):
    out = image_grid(_tiles(n), cols=cols, gap=gap)
    assert out.size == (expect_cols * (W + gap) + gap, rows * (H + gap) + gap)


def test_each_tile_is_pasted_at_its_cell_and_gaps_are_background():
    tiles, cols, gap = _tiles(5), 3, 2
    out = np.asarray(image_grid(tiles, cols=cols, gap=gap, background="black"))
    covered = np.zeros(out.shape[:2], bool)
    for i, tile in enumerate(tiles):
        x, y = _origin(i, cols, gap)
        np.testing.assert_array_equal(out[y:y + H, x:x + W], np.asarray(tile), err_msg=f"tile {i}")
        covered[y:y + H, x:x + W] = True
    assert (out[~covered] == 0).all()                 # everything else: the background colour


def test_a_none_tile_leaves_its_cell_blank_and_the_others_in_place():
    tiles, cols, gap = _tiles(4), 2, 1
    out = np.asarray(image_grid([None] + tiles[1:], cols=cols, gap=gap))   # the mixing grid's corner
    x, y = _origin(0, cols, gap)
    assert (out[y:y + H, x:x + W] == 255).all()       # white, the default background
    for i in (1, 2, 3):
        x, y = _origin(i, cols, gap)
        np.testing.assert_array_equal(out[y:y + H, x:x + W], np.asarray(tiles[i]))


# ---- image_grid: labels ---------------------------------------------------------------------------

def test_labels_make_rows_taller_and_sit_centred_under_their_tiles():
    # Tiles wider than the labels, so cells keep the tile width; white tiles, so only text is dark.
    w, h, cols, gap = 60, 20, 2, 2
    tiles = [Image.new("RGB", (w, h), "white") for _ in range(4)]
    labels = ["seed 1", "", "ab", "psi 0.7"]
    plain, out = image_grid(tiles, cols=cols, gap=gap), image_grid(tiles, cols=cols, gap=gap, labels=labels)
    assert out.mode == "RGB" and out.width == plain.width and out.height > plain.height
    cell_h = (out.height - gap) // 2 - gap            # two rows: tile, then the label band
    assert out.height == 2 * (cell_h + gap) + gap and cell_h > h
    dark = np.asarray(out.convert("L")) < 128
    for i, label in enumerate(labels):
        x, y = _origin(i, cols, gap, w, cell_h)
        assert not dark[y:y + h, x:x + w].any()       # the tile itself is untouched
        band = dark[y + h:y + cell_h, x:x + w]
        assert band.any() == bool(label), f"label {i} {label!r}"
        if label:
            ink = np.nonzero(band.any(axis=0))[0]
            centre = (ink[0] + ink[-1]) / 2               # middle of the text's extent
            assert abs(centre - (w - 1) / 2) <= 1.5, f"label {i} is off-centre at {centre:.1f}"


# ---- image_grid: modes and errors -------------------------------------------------------------------

def test_grid_is_greyscale_only_when_every_tile_is_and_nothing_is_written():
    grey = _tiles(2, "L")
    assert image_grid(grey).mode == "L"
    assert image_grid(grey, labels=["a", "b"]).mode == "RGB"     # black text on white needs RGB
    mixed = image_grid([grey[0], _tiles(1)[0]], cols=2, gap=0)
    assert mixed.mode == "RGB"
    np.testing.assert_array_equal(np.asarray(mixed)[:, :W], np.asarray(grey[0].convert("RGB")))


def test_tiles_of_different_sizes_are_refused():
    with pytest.raises(ValueError, match="5x3"):
        image_grid(_tiles(2) + [Image.new("RGB", (W + 1, H))])


def test_a_label_count_that_differs_from_the_tile_count_is_refused():
    with pytest.raises(ValueError, match="2 labels for 3 tiles"):
        image_grid(_tiles(3), labels=["a", "b"])


def test_a_grid_of_nothing_is_refused():
    with pytest.raises(ValueError, match="no images"):
        image_grid([None, None])


def test_save_image_grid_writes_the_grid_as_png(tmp_path):
    img = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1   # greyscale [N, C, H, W]
    path = save_image_grid(img, tmp_path / "grid.png", cols=3)
    with Image.open(path) as read:
        assert read.mode == "L" and read.size == (3 * 5 + 1, 4 + 2)
        np.testing.assert_array_equal(np.asarray(read)[1:5, 1:5], _formula(img[0, 0].numpy()))
