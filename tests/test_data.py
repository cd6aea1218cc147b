"""gan.data: image folders, zips and the built-in offline datasets, on real files."""

import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan.data import builtin, sources
from gan.data import DatasetError, load_dataset

RED, GREEN, BLUE = (255, 0, 0), (0, 200, 0), (0, 0, 255)


def _save(path: Path, image: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **kwargs)
    return path


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _three_bands(size: tuple[int, int], horizontal: bool) -> Image.Image:
    """Red | green | blue bands along the long side; the centre square is all green."""
    w, h = size
    img = Image.new("RGB", size, GREEN)
    long_side, short = (w, h) if horizontal else (h, w)
    edge = (long_side - short) // 2 - 10  # green covers the centre square and 10 px more
    for start, colour in ((0, RED), (long_side - edge, BLUE)):
        box = (start, 0, start + edge, h) if horizontal else (0, start, w, start + edge)
        img.paste(colour, box)
    return img


def _write_corrupt_files(folder: Path) -> list[Path]:
    good_png = _png_bytes(Image.new("RGB", (20, 20), RED))
    truncated = folder / "truncated.png"
    random_jpg = folder / "noise.jpg"
    empty = folder / "sub" / "empty.png"
    empty.parent.mkdir(parents=True, exist_ok=True)
    truncated.write_bytes(good_png[: len(good_png) // 2])
    random_jpg.write_bytes(np.random.RandomState(0).bytes(500))
    empty.write_bytes(b"")
    return [truncated, random_jpg, empty]


@pytest.fixture
def mixed_folder(tmp_path: Path) -> Path:
    """Six images of different sizes, modes and formats, one in a nested folder, plus clutter."""
    root = tmp_path / "images"
    _save(root / "a_wide.png", Image.new("RGB", (60, 20), RED))
    _save(root / "b_tall.jpg", Image.new("RGB", (30, 90), BLUE), quality=95)
    _save(root / "c_alpha.png", Image.new("RGBA", (16, 16), (0, 0, 0, 0)))
    _save(root / "d_grey.png", Image.new("L", (40, 40), 128))
    _save(root / "nested" / "deeper" / "e_small.webp", Image.new("RGB", (5, 7), GREEN))
    _save(root / "nested" / "F_UPPER.BMP", Image.new("RGB", (33, 33), (10, 20, 30)))
    (root / "notes.txt").write_text("not an image")
    _save(root / ".hidden" / "ignored.png", Image.new("RGB", (8, 8)))
    return root


def test_folder_loads_every_image_recursively_as_uint8_squares(mixed_folder):
    ds = load_dataset(mixed_folder, 16)
    assert len(ds) == ds.num_images == 6
    assert ds.skipped == []
    for i in range(len(ds)):
        img = ds[i]
        assert img.dtype == torch.uint8 and img.shape == (3, 16, 16)
    assert ds.in_memory and ds.as_tensor().shape == (6, 3, 16, 16)


def test_files_are_taken_in_sorted_path_order(mixed_folder):
    ds = load_dataset(mixed_folder, 8)
    assert ds[0][:, 4, 4].tolist() == list(RED)  # a_wide.png
    assert ds[3][:, 4, 4].tolist() == [128, 128, 128]  # d_grey.png
    assert ds[4][:, 4, 4].tolist() == [10, 20, 30]  # nested/F_UPPER.BMP


def test_max_images_keeps_the_first_files_in_sorted_order(mixed_folder):
    ds = load_dataset(mixed_folder, 8, max_images=2)
    assert ds.num_images == 2
    assert ds[0][:, 4, 4].tolist() == list(RED)


@pytest.mark.parametrize("size, horizontal", [((200, 80), True), ((50, 170), False)])
def test_centre_crop_keeps_the_middle_square(tmp_path, size, horizontal):
    _save(tmp_path / "banded.png", _three_bands(size, horizontal))
    img = load_dataset(tmp_path, 24)[0]
    assert (img - torch.tensor(GREEN, dtype=torch.uint8)[:, None, None]).abs().max() <= 2


def test_image_larger_than_resolution_is_downscaled_without_aliasing(tmp_path):
    checker = (np.indices((256, 256)).sum(0) % 2 * 255).astype(np.uint8)  # 1 px checkerboard
    _save(tmp_path / "checker.png", Image.fromarray(checker))
    img = load_dataset(tmp_path, 16, channels=1)[0].float()
    assert abs(img.mean().item() - 127.5) < 3 and img.std().item() < 10


def test_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (5, 5, 15, 15))
    _save(tmp_path / "sprite.png", img)
    out = load_dataset(tmp_path, 20)[0]
    assert out[:, 0, 0].tolist() == [255, 255, 255]
    assert out[:, 10, 10].tolist() == list(RED)


def test_channels_1_gives_greyscale(mixed_folder):
    ds = load_dataset(mixed_folder, 12, channels=1)
    assert ds[0].shape == (1, 12, 12)
    assert ds[3][0, 6, 6].item() == 128  # d_grey.png stays mid-grey
    assert ds.summary()["channels"] == 1


def test_greyscale_image_is_replicated_to_rgb(mixed_folder):
    img = load_dataset(mixed_folder, 12)[3]
    assert img[:, 6, 6].tolist() == [128, 128, 128]


def test_corrupt_files_are_skipped_counted_and_reported(mixed_folder, capsys):
    bad = _write_corrupt_files(mixed_folder)
    ds = load_dataset(mixed_folder, 8)
    assert ds.num_images == 6
    assert sorted(Path(p) for p, _ in ds.skipped) == sorted(bad)
    assert all(reason for _, reason in ds.skipped)
    assert ds.summary()["skipped"] == 3
    err = capsys.readouterr().err
    assert "skipped 3 unreadable image(s)" in err and "truncated.png" in err


def test_max_images_counts_readable_images_only(mixed_folder):
    _write_corrupt_files(mixed_folder)  # noise.jpg sorts before the good ones
    assert load_dataset(mixed_folder, 8, max_images=5).num_images == 5


def _error(spec, **kwargs) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(spec, 16, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_empty_folder_is_refused_with_a_fix(tmp_path):
    message = _error(tmp_path)
    assert str(tmp_path) in message and "is empty" in message and "put images" in message


def test_folder_without_images_is_refused(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    message = _error(tmp_path)
    assert "no images" in message and ".png" in message


def test_folder_of_only_corrupt_images_is_refused(tmp_path):
    _write_corrupt_files(tmp_path)
    message = _error(tmp_path)
    assert "none of the 3 images" in message and "corrupt" in message


def test_missing_path_is_refused(tmp_path):
    message = _error(tmp_path / "nope")
    assert "not found" in message and "fashion-mnist" in message


def test_file_that_is_not_a_zip_is_refused(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"tar?")
    assert "neither a folder nor a .zip" in _error(tmp_path / "x.tar")


@pytest.mark.parametrize("kwargs, words", [
    (dict(channels=2), "channels"), (dict(max_images=0), "max_images")])
def test_bad_arguments_are_refused(tmp_path, kwargs, words):
    assert words in _error(tmp_path, **kwargs)


def test_zip_of_images_loads_and_skips_corrupt_members(tmp_path, capsys):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("imgs/b.png", _png_bytes(Image.new("RGB", (30, 20), BLUE)))
        zf.writestr("imgs/a.png", _png_bytes(Image.new("RGB", (20, 30), RED)))
        zf.writestr("imgs/broken.jpg", b"\xff\xd8 not really a jpeg")
        zf.writestr("__MACOSX/imgs/._a.png", b"resource fork")
        zf.writestr("imgs/readme.md", "text")
    ds = load_dataset(path, 8)
    assert ds.num_images == 2 and ds.kind == "zip" and ds.name == "set"
    assert ds[0][:, 4, 4].tolist() == list(RED) and ds[1][:, 4, 4].tolist() == list(BLUE)
    assert [p for p, _ in ds.skipped] == [f"{path}/imgs/broken.jpg"]
    assert "skipped 1" in capsys.readouterr().err


def test_zip_without_images_is_refused(tmp_path):
    path = tmp_path / "empty.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("notes.txt", "x")
    assert "no images" in _error(path)


def test_xflip_doubles_the_length_and_mirrors_the_second_half(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, :2] = 255  # white stripe on the left
    _save(tmp_path / "stripe.png", Image.fromarray(img))
    ds = load_dataset(tmp_path, 8, xflip=True)
    assert len(ds) == 2 and ds.num_images == 1
    assert torch.equal(ds[1], ds[0].flip(-1))
    assert ds[1][:, :, -1].min() == 255 and ds[1][:, :, 0].max() == 0
    assert ds.summary()["length"] == 2


def test_get_batch_gathers_images_and_mirrors(mixed_folder):
    ds = load_dataset(mixed_folder, 8, xflip=True)
    batch = ds.get_batch(torch.tensor([0, 7, 3, 11]))
    assert batch.dtype == torch.uint8 and batch.shape == (4, 3, 8, 8)
    for row, i in zip(batch, [0, 7, 3, 11]):
        assert torch.equal(row, ds[i])
    with pytest.raises(IndexError):
        ds.get_batch([12])


def test_big_dataset_is_decoded_per_item_with_the_same_images(mixed_folder, monkeypatch):
    eager = load_dataset(mixed_folder, 8, xflip=True)
    monkeypatch.setattr(sources, "MAX_IN_MEMORY_BYTES", 0)
    lazy = load_dataset(mixed_folder, 8, xflip=True)
    assert not lazy.in_memory and len(lazy) == len(eager)
    for i in range(len(eager)):
        assert torch.equal(lazy[i], eager[i])
    assert torch.equal(lazy.get_batch([1, 8]), eager.get_batch([1, 8]))
    with pytest.raises(RuntimeError):
        lazy.as_tensor()


def test_per_item_zip_dataset_survives_pickling_for_dataloader_workers(tmp_path, monkeypatch):
    path = tmp_path / "set.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.png", _png_bytes(Image.new("RGB", (10, 10), GREEN)))
    monkeypatch.setattr(sources, "MAX_IN_MEMORY_BYTES", 0)
    ds = load_dataset(path, 4)
    ds[0]  # opens the zip
    copy = pickle.loads(pickle.dumps(ds))
    assert copy[0][:, 2, 2].tolist() == list(GREEN)


def test_per_item_dataset_reports_a_file_that_fails_late_and_uses_the_next(tmp_path, monkeypatch,
                                                                            capsys):
    good = _png_bytes(Image.new("RGB", (10, 10), BLUE))
    (tmp_path / "a.png").write_bytes(good[:-30])  # header fine, pixel data cut short
    (tmp_path / "b.png").write_bytes(good)
    monkeypatch.setattr(sources, "MAX_IN_MEMORY_BYTES", 0)
    ds = load_dataset(tmp_path, 4)
    assert ds.num_images == 2 and ds.skipped == []
    assert ds[0][:, 1, 1].tolist() == list(BLUE)
    assert [Path(p).name for p, _ in ds.skipped] == ["a.png"]
    assert "a.png" in capsys.readouterr().err


def test_summary_round_trips_through_json(mixed_folder):
    _write_corrupt_files(mixed_folder)
    summary = load_dataset(mixed_folder, 8, channels=1, xflip=True).summary()
    assert json.loads(json.dumps(summary)) == summary
    assert summary["num_images"] == 6 and summary["skipped"] == 3 and summary["kind"] == "folder"
    assert summary["resolution"] == 8 and summary["xflip"] is True


# --- built-in datasets ------------------------------------------------------------------------


def test_digits_builtin_is_1797_white_on_black_digits():
    ds = load_dataset("digits", 16, channels=1)
    images = ds.as_tensor()
    assert images.shape == (1797, 1, 16, 16) and images.dtype == torch.uint8
    assert images.max() >= 250 and images.float().mean() < 100  # bright ink on dark ground
    assert ds.summary()["licence"].startswith("BSD")
    assert json.loads(json.dumps(ds.summary()))["num_images"] == 1797


def _need(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path} not installed")


def test_fashion_mnist_builtin_pads_28_to_32_on_black():
    _need(builtin.FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz")
    ds = load_dataset("fashion-mnist", 32, channels=1, max_images=200)
    images = ds.as_tensor()
    assert images.shape == (200, 1, 32, 32)
    assert images[:, :, :2].max() == 0 and images[:, :, :, -2:].max() == 0  # 2 px border
    assert images[:, :, 2:30, 2:30].float().mean() > 40
    assert ds.licence == "MIT"


def test_fashion_mnist_rgb_replicates_grey_and_resizes():
    _need(builtin.FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz")
    images = load_dataset("fashion-mnist", 16, max_images=10).as_tensor()
    assert images.shape == (10, 3, 16, 16)
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 0], images[:, 2])


def test_fashion_mnist_missing_files_say_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "FASHION_MNIST_DIR", tmp_path / "absent")
    assert "sudo apt-get install -y dataset-fashion-mnist" in _error("fashion-mnist")


def test_emoji_builtin_reads_thousands_of_colour_bitmaps_on_white():
    _need(builtin.NOTO_EMOJI_FONT)
    ds = load_dataset("emoji", 16)
    images = ds.as_tensor()
    assert len(ds) > 3000 and images.shape[1:] == (3, 16, 16)
    per_image_std = images.reshape(len(images), -1).float().std(1)
    assert (per_image_std > 5).all()  # none blank
    corners = images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]].float()
    assert corners.mean() > 240  # white background
    assert (images[:, 0].float() - images[:, 2].float()).abs().mean() > 5  # in colour
    assert ds.licence == "OFL-1.1"


def test_emoji_missing_font_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "NOTO_EMOJI_FONT", tmp_path / "absent.ttf")
    assert "sudo apt-get install -y fonts-noto-color-emoji" in _error("emoji")


def test_builtin_names_ignore_case():
    assert load_dataset("Digits", 8, max_images=3).num_images == 3


@pytest.mark.parametrize("level", [200, 40000])
def test_a_16_bit_greyscale_png_is_scaled_from_its_full_range(tmp_path, level):
    """65535 is white: a dark 16-bit image (every value below 256) stays dark instead of being read as 8-bit."""
    Image.fromarray(np.full((8, 8), level, np.uint16)).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I")
    img = load_dataset(tmp_path, 8, channels=1)[0]
    assert int(img.max()) == int(img.min()) == round(level * 255 / 65535)
