"""Behaviour of the StyleGAN2 and PGGAN networks and their building blocks."""
import numpy as np
import pytest
import torch

from conftest import tiny_config
from gan.models.config import ConfigError, ModelConfig
from gan.models.layers import MinibatchStdLayer, downsample2d, make_fir_filter, modulated_conv2d, upsample2d
from gan.models.networks import build_discriminator, build_generator, count_params
from gan.seeds import parse_seeds, z_from_seeds


def meta_counts(cfg):
    with torch.device("meta"):
        G, D = build_generator(cfg), build_discriminator(cfg)
    return count_params(G), count_params(D), count_params(G.mapping), G


def test_stylegan2_config_f_parameter_counts_match_the_official_network():
    cfg = ModelConfig(arch="stylegan2", img_resolution=1024, channel_base=32768, channel_max=512, mapping_layers=8)
    g, d, mapping, G = meta_counts(cfg)
    assert g == pytest.approx(30.37e6, rel=0.005)
    assert d == pytest.approx(29.01e6, rel=0.005)
    assert mapping == pytest.approx(2.10e6, rel=0.005)
    assert G.num_ws == 18


def test_pggan_1024_parameter_count_matches_the_paper():
    g, d, _, G = meta_counts(ModelConfig(arch="pggan", img_resolution=1024))
    assert g == pytest.approx(23.1e6, rel=0.01)
    assert d == pytest.approx(23.1e6, rel=0.01)
    assert G.num_ws == 1


@pytest.mark.parametrize("res", [48, 2, 4, 4096, 0])
def test_bad_resolution_is_refused_with_one_line(res):
    with pytest.raises(ConfigError) as e:
        ModelConfig(img_resolution=res).validate()
    assert "power of two" in str(e.value) and "\n" not in str(e.value)


def test_fir_resampling_preserves_constant_images_and_doubles_or_halves_size():
    f = make_fir_filter()
    x = torch.full([2, 3, 8, 8], 0.7)
    up, down = upsample2d(x, f), downsample2d(x, f)
    assert up.shape == (2, 3, 16, 16) and down.shape == (2, 3, 4, 4)
    # away from the zero-padded border the output equals the constant input
    assert torch.allclose(up[..., 3:-3, 3:-3], torch.tensor(0.7))
    assert torch.allclose(down[..., 1:-1, 1:-1], torch.tensor(0.7))


@pytest.mark.parametrize("up", [1, 2])
def test_fused_and_unfused_modulated_conv_agree(up):
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 8, 8, 8), torch.randn(6, 8, 3, 3), torch.randn(3, 8)
    f = make_fir_filter()
    a = modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, fused=True)
    b = modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, fused=False)
    assert a.shape == (3, 6, 8 * up, 8 * up)
    assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("fused", [True, False])
def test_modulated_conv_matches_the_per_sample_definition(fused):
    # Karras et al. 2020, eq. 1 and 3: w' = w * s_i, w'' = w' / sqrt(sum_{i,k} w'^2 + eps), one conv per sample.
    torch.manual_seed(0)
    x, w, s = torch.randn(3, 8, 8, 8), torch.randn(6, 8, 3, 3), torch.randn(3, 8) * 3
    expected = []
    for n in range(3):
        wn = w * s[n].reshape(1, 8, 1, 1)
        wn = wn / (wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        expected.append(torch.nn.functional.conv2d(x[n:n + 1], wn, padding=1))
    got = modulated_conv2d(x, w, s, padding=1, fused=fused)
    assert torch.allclose(got, torch.cat(expected), atol=1e-5)


def official_bias_act(x, b, gain, clamp):
    """The official bias_act's reference path: leaky ReLU 0.2 of x + b, times gain, clamped."""
    x = torch.nn.functional.leaky_relu(x + b.reshape(1, -1, 1, 1), 0.2) * gain
    return x.clamp(-clamp, clamp) if clamp is not None else x


@pytest.mark.parametrize("fused", [True, False])
def test_a_synthesis_layer_is_the_official_formula_with_its_gains(fused):
    # networks.py SynthesisLayer.forward: modulated conv, then + noise * strength, then bias_act(lrelu, gain
    # sqrt(2) * gain, clamp conv_clamp * gain); written out per sample here (ours folds the gains elsewhere)
    from gan.models.stylegan2 import SynthesisLayer
    torch.manual_seed(0)
    layer = SynthesisLayer(8, 6, 16, resolution=8, conv_clamp=1.5)
    with torch.no_grad():
        layer.bias.normal_(0, 0.5)
        layer.noise_strength.fill_(0.3)
    x, w = torch.randn(3, 8, 8, 8), torch.randn(3, 16)
    for gain in (1.0, 0.5 ** 0.5):
        styles = layer.affine(w)
        expected = []
        for n in range(3):
            wn = layer.weight * styles[n].reshape(1, 8, 1, 1)
            wn = wn / (wn.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
            expected.append(torch.nn.functional.conv2d(x[n:n + 1], wn, padding=1))
        v = torch.cat(expected) + layer.noise_const * layer.noise_strength
        want = official_bias_act(v, layer.bias, 2 ** 0.5 * gain, 1.5 * gain)
        assert (want.abs() == 1.5 * gain).any() and (want < 0).any()  # both the clamp and the kink are reached
        got = layer(x, w, noise_mode="const", fused=fused, gain=gain)
        assert (got - want).abs().max() < 1e-5


@pytest.mark.parametrize("down", [1, 2])
def test_a_conv_layer_is_the_official_formula_with_its_gains(down):
    # networks.py Conv2dLayer.forward: w * weight_gain, conv2d_resample, bias_act(act gain * gain, clamp * gain)
    from gan.models.layers import Conv2dLayer, conv2d_resample
    torch.manual_seed(0)
    layer = Conv2dLayer(8, 6, 3, activation="lrelu", down=down, conv_clamp=1.0)
    with torch.no_grad():
        layer.bias.normal_(0, 0.5)
    x = torch.randn(3, 8, 8, 8)
    for gain in (1.0, 0.5 ** 0.5):
        v = conv2d_resample(x, layer.weight / (8 * 9) ** 0.5, make_fir_filter(), down=down, padding=1)
        want = official_bias_act(v, layer.bias, 2 ** 0.5 * gain, 1.0 * gain)
        assert (want.abs() == gain).any() and (want < 0).any()
        assert (layer(x, gain=gain) - want).abs().max() < 1e-5


def test_a_conv_layers_gain_costs_no_pass_over_its_output():
    # The activation gain rides on the weight and bias: forward and backward, no op multiplies an output-sized
    # tensor by a number (that was one pass each way per layer in training)
    from torch.utils._python_dispatch import TorchDispatchMode
    from gan.models.layers import Conv2dLayer

    class ScalarMuls(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.found = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if func.overloadpacket in (torch.ops.aten.mul, torch.ops.aten.mul_) and out.shape == (4, 6, 8, 8):
                if not all(isinstance(a, torch.Tensor) and a.numel() > 1 for a in args[:2]):
                    self.found.append(func)
            return out

    layer = Conv2dLayer(8, 6, 3, activation="lrelu", conv_clamp=256.0)
    x, v = torch.randn(4, 8, 8, 8, requires_grad=True), torch.randn(4, 6, 8, 8)
    with ScalarMuls() as rec:
        (layer(x, gain=0.5 ** 0.5) * v).sum().backward()
    assert x.grad is not None and layer.weight.grad is not None
    assert rec.found == []


def test_demodulation_gives_unit_variance_outputs_for_unit_inputs():
    torch.manual_seed(0)
    x = torch.randn(4, 64, 16, 16)
    y = modulated_conv2d(x, torch.randn(32, 64, 3, 3), torch.randn(4, 64) * 5, padding=1)
    assert y[..., 2:-2, 2:-2].std().item() == pytest.approx(1.0, rel=0.1)


def test_minibatch_stddev_appends_one_channel_that_is_zero_for_identical_samples():
    layer = MinibatchStdLayer(group_size=4)
    x = torch.randn(1, 5, 4, 4).repeat(8, 1, 1, 1)
    y = layer(x)
    assert y.shape == (8, 6, 4, 4)
    assert y[:, -1].abs().max() < 1e-3
    assert layer(torch.randn(6, 5, 4, 4)).shape == (6, 6, 4, 4)  # batch not divisible by 4


@pytest.mark.parametrize("arch", ["stylegan2", "pggan"])
def test_generator_interface_shapes_and_stages(arch):
    torch.manual_seed(0)
    G = build_generator(tiny_config(arch)).eval()
    z = z_from_seeds([0, 1, 2], G.z_dim)
    ws = G.mapping(z)
    assert ws.shape == (3, G.num_ws, G.w_dim)
    img, stages = G.synthesis(ws, noise_mode="const", return_stages=True)
    assert img.shape == (3, 3, 32, 32) and torch.isfinite(img).all()
    assert G.stage_resolutions == [4, 8, 16, 32]
    assert [s.shape[-1] for s in stages] == [4, 8, 16, 32]
    assert torch.equal(stages[-1], img)
    assert torch.equal(G(z), img)


@pytest.mark.parametrize("arch", ["stylegan2", "pggan"])
def test_generator_and_discriminator_train_end_to_end(arch):
    torch.manual_seed(0)
    cfg = tiny_config(arch)
    G, D = build_generator(cfg), build_discriminator(cfg)
    logits = D(G(torch.randn(4, G.z_dim), noise_mode="random"))
    assert logits.shape == (4, 1)
    logits.mean().backward()
    no_grad = {n for n, p in G.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}
    d_no_grad = {n for n, p in D.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}
    if arch == "stylegan2":  # every weight, noise strengths included, receives gradient
        assert no_grad == set() and d_no_grad == set()
    else:  # at full depth the smaller stages' toRGB / fromRGB layers are unused
        assert no_grad == {f"torgb{r}.{k}" for r in (4, 8, 16) for k in ("weight", "bias")}
        assert d_no_grad == {f"fromrgb{r}.{k}" for r in (4, 8, 16) for k in ("weight", "bias")}


def test_truncation_psi_zero_gives_w_avg_and_cutoff_limits_it():
    G = build_generator(tiny_config("stylegan2"))
    G.mapping.w_avg.copy_(torch.randn(G.w_dim))
    z = torch.randn(2, G.z_dim)
    ws = G.mapping(z, truncation_psi=0.0)
    assert torch.allclose(ws, G.mapping.w_avg.expand_as(ws))
    ws_cut = G.mapping(z, truncation_psi=0.0, truncation_cutoff=2)
    full = G.mapping(z)
    assert torch.allclose(ws_cut[:, :2], G.mapping.w_avg.expand(2, 2, -1))
    assert torch.equal(ws_cut[:, 2:], full[:, 2:])


def test_mapping_tracks_w_avg_only_when_asked():
    G = build_generator(tiny_config("stylegan2"))
    G.mapping(torch.randn(8, G.z_dim))
    assert G.mapping.w_avg.abs().sum() == 0
    G.mapping(torch.randn(8, G.z_dim), update_emas=True)
    assert G.mapping.w_avg.abs().sum() > 0


def test_noise_modes():
    torch.manual_seed(0)
    G = build_generator(tiny_config("stylegan2")).eval()
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.5)
    ws = G.mapping(torch.randn(1, G.z_dim))
    const = [G.synthesis(ws, noise_mode="const") for _ in range(2)]
    rand = [G.synthesis(ws, noise_mode="random") for _ in range(2)]
    none = G.synthesis(ws, noise_mode="none")
    assert torch.equal(const[0], const[1])
    assert not torch.equal(rand[0], rand[1])
    assert not torch.equal(none, const[0])
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="loud")


def test_block_ws_layers_cover_every_w_once():
    G = build_generator(tiny_config("stylegan2"))
    groups = G.block_ws_layers()
    assert [r for r, _ in groups] == [4, 8, 16, 32]
    assert sorted(i for _, idx in groups for i in idx) == list(range(G.num_ws))


def test_changing_one_w_changes_the_image_only_through_that_layer():
    """Style mixing relies on ws being per-layer: replacing the fine ws must keep coarse structure."""
    torch.manual_seed(0)
    G = build_generator(tiny_config("stylegan2")).eval()
    ws = G.mapping(torch.randn(2, G.z_dim))
    mixed = ws[:1].clone()
    mixed[:, -1] = ws[1, -1]  # final toRGB style only
    a, stages_a = G.synthesis(ws[:1], return_stages=True)
    b, stages_b = G.synthesis(mixed, return_stages=True)
    assert not torch.equal(a, b)
    assert all(torch.equal(x, y) for x, y in zip(stages_a[:-1], stages_b[:-1]))


def test_pggan_fade_in_blends_previous_stage_and_new_block():
    torch.manual_seed(0)
    G = build_generator(tiny_config("pggan")).eval()
    ws = G.mapping(torch.randn(2, G.z_dim))
    G.set_stage(1, 1.0)
    _, (s4, s8) = G.synthesis(ws, return_stages=True)
    G.set_stage(1, 0.0)
    old_only = G.synthesis(ws)
    assert old_only.shape[-1] == 8
    assert torch.allclose(old_only, torch.nn.functional.interpolate(s4, scale_factor=2, mode="nearest"))
    G.set_stage(1, 0.25)
    blended = G.synthesis(ws)
    assert torch.allclose(blended, 0.75 * old_only + 0.25 * s8, atol=1e-6)
    assert G.stage_resolutions == [4, 8] and G.current_resolution == 8
    D = build_discriminator(tiny_config("pggan"))
    D.set_stage(1, 0.25)
    assert D(blended).shape == (2, 1)
    with pytest.raises(ValueError, match="expects 8x8"):
        D(torch.zeros(2, 3, 16, 16))
    with pytest.raises(ValueError, match="depth"):
        G.set_stage(9, 1.0)


def test_seeds_follow_the_official_rule_and_ranges_parse():
    z = z_from_seeds([3, 42], 16)
    assert z.dtype == torch.float32 and z.shape == (2, 16)
    assert np.allclose(z[1].numpy(), np.random.RandomState(42).randn(16).astype(np.float32))
    assert parse_seeds("0-3,42") == [0, 1, 2, 3, 42]
    assert parse_seeds(" 7 ") == [7]
    for bad in ["5-3", "a", "", "1-2-3", "-4"]:
        with pytest.raises(ValueError):
            parse_seeds(bad)


def test_mapping_inference_path_equals_the_equalised_lr_definition():
    """Without autograd the FC layers take a folded fast path; it must compute the same w as the
    definition written out here: lrelu(x @ (W * lr_mul / sqrt(in))^T + b * lr_mul) * sqrt(2)."""
    torch.manual_seed(0)
    G = build_generator(tiny_config()).eval()
    with torch.no_grad():
        for p in G.mapping.parameters():  # non-trivial biases, so bias handling is exercised
            p.add_(torch.randn_like(p) * 0.1)
    z = torch.randn(64, G.z_dim)
    x = z / z.square().mean(dim=1, keepdim=True).add(1e-8).sqrt()
    for i in range(G.mapping.num_layers):
        fc = getattr(G.mapping, f"fc{i}")
        lr_mul = fc.bias_gain
        y = x @ (fc.weight * lr_mul / np.sqrt(fc.in_features)).T + fc.bias * lr_mul
        x = torch.where(y >= 0, y, 0.2 * y) * np.sqrt(2)
    with torch.no_grad():
        fast = G.mapping.to_w(z)
        ws = G.mapping(z)
    with torch.enable_grad():
        slow = G.mapping.to_w(z)
    torch.testing.assert_close(fast, x.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(slow.detach(), x.detach(), rtol=1e-5, atol=1e-5)
    assert torch.equal(ws, fast.unsqueeze(1).expand(-1, G.num_ws, -1))
