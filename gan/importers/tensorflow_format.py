"""TensorFlow StyleGAN2 network pickles (NVlabs/stylegan2, stylegan2-ada's TF code) -> ImportedModel.

The unpickled file is a tuple (G, D, Gs) of TFNetwork records (or Gs alone). Gs is imported as the
generator, D when it maps onto ours. Hyperparameters come from Gs.static_kwargs with the defaults of the
TensorFlow code; an unknown kwarg is refused rather than guessed. Variable names and layouts follow the
public mapping in stylegan2-ada-pytorch's legacy.py: dense weights [in, out] are transposed, conv weights
[k, k, in, out] become [out, in, k, k] (the up-sampling convs also flipped spatially), the modulation
biases gain the +1 TF adds at run time, and noise inputs noise0, noise1, ... go to the layers in order.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from .errors import UnsupportedNetworkError
from .model import ImportedModel, check_generator, make_config, shape_mismatch
from .unpickler import TFNetwork, brief, one_line, plain

_UNSUPPORTED_BUILDERS = {
    "G_style": "a StyleGAN (v1) TensorFlow generator",
    "G_paper": "a Progressive GAN TensorFlow generator",
    "G_synthesis_stylegan_revised": "a StyleGAN2 config A-D generator (revised StyleGAN synthesis)",
    "G_synthesis_stylegan": "a StyleGAN (v1) TensorFlow generator",
}
_SYNTHESIS_BUILDERS = ("G_synthesis_stylegan2", "G_synthesis")  # NVlabs/stylegan2, stylegan2-ada (TF)
_DISCRIMINATOR_BUILDERS = ("D_stylegan2", "D_main")
_IGNORED_VARIABLES = ("lod",)  # progressive-growing level of detail: always 0 in StyleGAN2


class _Kwargs:
    """static_kwargs with the TF code's defaults; remembers which names were read, to refuse the rest."""

    def __init__(self, kwargs: dict, what: str):
        self.kwargs, self.what, self.known = plain(kwargs), what, set()

    def __call__(self, name: str, default=None, none=None):
        self.known.add(name)
        value = self.kwargs.get(name, default)
        return none if value is None else value

    def ignore(self, *names: str) -> None:
        self.known.update(names)

    def refuse_unknown(self) -> None:
        unknown = sorted(set(self.kwargs) - self.known)
        if unknown:
            raise UnsupportedNetworkError(f"{self.what}: unknown TensorFlow kwarg {one_line(unknown[0], 60)}="
                                          f"{brief(self.kwargs[unknown[0]])}: not supported yet")

    def require(self, name: str, value, allowed: tuple) -> None:
        if value not in allowed:
            raise UnsupportedNetworkError(f"{self.what}: {name}={brief(value)} is not supported yet "
                                          f"(supported: {', '.join(map(repr, allowed))})")


class _Variables:
    """TF variables by name, each converted at most once; the leftovers are refused at the end."""

    def __init__(self, variables: dict[str, np.ndarray], what: str):
        self.variables, self.what, self.used = variables, what, set()

    def __contains__(self, name: str) -> bool:
        return name in self.variables

    def __call__(self, name: str) -> np.ndarray:
        """The variable, handed out once: it is dropped here, so its memory goes as soon as it is converted."""
        if name not in self.variables:
            raise UnsupportedNetworkError(f"{self.what}: TensorFlow variable {name} is missing: not a StyleGAN2 "
                                          "network this importer supports yet")
        self.used.add(name)
        return self.variables.pop(name)

    def leftovers(self) -> list[str]:
        return sorted(n for n in self.variables if n.rsplit("/", 1)[-1] not in _IGNORED_VARIABLES)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float32, order="C"))


def _conv(w: np.ndarray, flip: bool = False) -> torch.Tensor:
    """TF [k, k, in, out] -> [out, in, k, k]; flip for the transposed (up-sampling) convs."""
    if w.ndim != 4:
        raise UnsupportedNetworkError(f"a TensorFlow conv weight of shape {list(w.shape)}")
    return _t((w[::-1, ::-1] if flip else w).transpose(3, 2, 0, 1))


def _dense(w: np.ndarray) -> torch.Tensor:
    if w.ndim != 2:
        raise UnsupportedNetworkError(f"a TensorFlow dense weight of shape {list(w.shape)}")
    return _t(w.T)


def _check_generator_kind(Gs: TFNetwork) -> None:
    func = Gs.build_func_name
    if func in _UNSUPPORTED_BUILDERS:
        raise UnsupportedNetworkError(f"{_UNSUPPORTED_BUILDERS[func]} ({func}): not supported yet")
    if func != "G_main":
        raise UnsupportedNetworkError(f"a TensorFlow network built by {one_line(func, 60)}, not a StyleGAN2 generator "
                                      "(G_main): not supported yet")
    if Gs.version < 4:
        raise UnsupportedNetworkError(f"a TensorFlow network pickle of version {brief(Gs.version)} (StyleGAN2's are "
                                      "4): not supported")
    for name in ("mapping", "synthesis"):
        if name not in Gs.components:
            raise UnsupportedNetworkError(f"a TensorFlow G_main without a {name} network: not supported yet")
    mapping_func = Gs.components["mapping"].build_func_name
    synthesis_func = Gs.components["synthesis"].build_func_name
    if synthesis_func in _UNSUPPORTED_BUILDERS:
        raise UnsupportedNetworkError(f"{_UNSUPPORTED_BUILDERS[synthesis_func]} ({synthesis_func}): not supported yet")
    if mapping_func != "G_mapping" or synthesis_func not in _SYNTHESIS_BUILDERS:
        raise UnsupportedNetworkError(f"a TensorFlow generator with {one_line(mapping_func, 60)} / "
                                      f"{one_line(synthesis_func, 60)}: not supported yet")


def _read_generator(Gs: TFNetwork, what: str = "Gs") -> ImportedModel:
    _check_generator_kind(Gs)
    kw = _Kwargs(Gs.static_kwargs, what)
    z_dim, c_dim, w_dim = kw("latent_size", 512), kw("label_size", 0), kw("dlatent_size", 512)
    res, channels = kw("resolution", 1024), kw("num_channels", 3)
    num_layers = kw("mapping_layers", 8)
    kw.require("label_fmaps", kw("label_fmaps", None), (None, w_dim))
    kw.require("mapping_fmaps", kw("mapping_fmaps", None), (None, w_dim))
    kw.require("mapping_nonlinearity", kw("mapping_nonlinearity", "lrelu"), ("lrelu",))
    kw.require("nonlinearity", kw("nonlinearity", "lrelu"), ("lrelu",))
    kw.require("architecture", kw("architecture", "skip"), ("skip",))
    kw.require("resample_kernel", kw("resample_kernel", [1, 3, 3, 1]), ([1, 3, 3, 1],))
    kw.require("fmap_decay", kw("fmap_decay", 1.0), (1, 1.0))
    kw.require("fmap_min", kw("fmap_min", 1), (1,))
    kw.require("normalize_latents", kw("normalize_latents", True), (True,))
    kw.require("mapping_func", kw("mapping_func", "G_mapping"), ("G_mapping",))
    kw.require("synthesis_func", kw("synthesis_func", "G_synthesis_stylegan2"), _SYNTHESIS_BUILDERS)
    use_noise = kw("use_noise", True)
    w_avg_beta = kw("w_avg_beta", kw("dlatent_avg_beta", 0.995), none=1.0)
    # Run-time switches of the TF code that do not change the arithmetic of inference in fp32.
    kw.ignore("truncation_psi", "truncation_cutoff", "truncation_psi_val", "truncation_cutoff_val",
              "style_mixing_prob", "structure", "num_fp16_res", "dtype", "fused_modconv", "randomize_noise",
              "is_template_graph", "dlatent_broadcast")
    fmap_base, fmap_max = kw("fmap_base", 16 << 10), kw("fmap_max", 512)
    lrmul, conv_clamp = kw("mapping_lrmul", 0.01), kw("conv_clamp", None)
    kw.refuse_unknown()
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (z_dim, c_dim, w_dim, res, channels,
                                                                        num_layers, fmap_base, fmap_max)):
        raise UnsupportedNetworkError(f"{what}: non-integer sizes in static_kwargs {brief(Gs.static_kwargs, 120)}")
    cfg = make_config(what, img_resolution=res, img_channels=channels, z_dim=z_dim, w_dim=w_dim, c_dim=c_dim,
                      mapping_layers=num_layers, mapping_lr_multiplier=float(lrmul), channel_base=2 * fmap_base,
                      channel_max=fmap_max, conv_clamp=None if conv_clamp is None else float(conv_clamp),
                      w_avg_beta=float(w_avg_beta))

    p = _Variables(Gs.take_variables(), what)
    if any(name.startswith("synthesis/ToRGB_lod") for name in p.variables):
        raise UnsupportedNetworkError(f"{what}: a generator with synthesis architecture 'orig': not supported yet")
    if "mapping/LabelConcat/weight" in p:
        raise UnsupportedNetworkError(f"{what}: a conditional StyleGAN2 (TF LabelConcat labels): not supported yet "
                                      "(stylegan2-ada's LabelEmbed is)")
    t = {"mapping.w_avg": _t(p("dlatent_avg"))}
    if c_dim:
        t["mapping.embed.weight"] = _dense(p("mapping/LabelEmbed/weight"))
        t["mapping.embed.bias"] = _t(p("mapping/LabelEmbed/bias"))
    for i in range(num_layers):
        t[f"mapping.fc{i}.weight"] = _dense(p(f"mapping/Dense{i}/weight"))
        t[f"mapping.fc{i}.bias"] = _t(p(f"mapping/Dense{i}/bias"))
    t["synthesis.b4.const"] = _t(p("synthesis/4x4/Const/const")[0])
    for r in cfg.resolutions:
        log2 = int(math.log2(r))
        layers = [("conv1", "Conv", 0)] if r == 4 else [("conv0", "Conv0_up", 2 * log2 - 5), ("conv1", "Conv1", 2 * log2 - 4)]
        for ours, theirs, noise_idx in layers:
            b, tf = f"synthesis.b{r}.{ours}.", f"synthesis/{r}x{r}/{theirs}/"
            t[b + "weight"] = _conv(p(tf + "weight"), flip=(ours == "conv0"))
            t[b + "bias"] = _t(p(tf + "bias"))
            t[b + "affine.weight"] = _dense(p(tf + "mod_weight"))
            t[b + "affine.bias"] = _t(p(tf + "mod_bias") + np.float32(1))
            noise = p(f"synthesis/noise{noise_idx}") if f"synthesis/noise{noise_idx}" in p or use_noise else None
            t[b + "noise_const"] = _t(noise[0, 0]) if noise is not None else torch.zeros(r, r)
            t[b + "noise_strength"] = _t(p(tf + "noise_strength")) if use_noise else torch.zeros([])
        b, tf = f"synthesis.b{r}.torgb.", f"synthesis/{r}x{r}/ToRGB/"
        t[b + "weight"] = _conv(p(tf + "weight"))
        t[b + "bias"] = _t(p(tf + "bias"))
        t[b + "affine.weight"] = _dense(p(tf + "mod_weight"))
        t[b + "affine.bias"] = _t(p(tf + "mod_bias") + np.float32(1))
    left = p.leftovers()
    if left:
        shape = list(p.variables[left[0]].shape)
        raise UnsupportedNetworkError(f"{what}: TensorFlow variable {one_line(left[0], 80)} {shape} has no counterpart "
                                      "here: an architecture not supported yet")
    check_generator(t, cfg, what)
    notes = [] if use_noise else ["use_noise=False: noise inputs set to zero strength"]
    return ImportedModel(cfg=cfg, G=t, D=None, format="stylegan2-tensorflow", init_kwargs=plain(Gs.static_kwargs),
                         notes=notes)


def _read_discriminator(D: TFNetwork, cfg):
    """(tensors, cfg with D's minibatch-stddev settings, None) or (None, cfg, why D is not imported)."""
    import dataclasses
    if D.build_func_name not in _DISCRIMINATOR_BUILDERS:
        return None, cfg, f"D is built by {one_line(D.build_func_name, 60)}, not a StyleGAN2 discriminator"
    kw = _Kwargs(D.static_kwargs, "D")
    if kw("label_size", 0):
        return None, cfg, "conditional discriminators are not supported yet"
    checks = [("architecture", kw("architecture", "resnet"), "resnet"), ("nonlinearity", kw("nonlinearity", "lrelu"), "lrelu"),
              ("resample_kernel", kw("resample_kernel", [1, 3, 3, 1]), [1, 3, 3, 1]),
              ("resolution", kw("resolution", 1024), cfg.img_resolution),
              ("num_channels", kw("num_channels", 3), cfg.img_channels),
              ("fmap_base", 2 * kw("fmap_base", 16 << 10), cfg.channel_base), ("fmap_max", kw("fmap_max", 512), cfg.channel_max),
              ("conv_clamp", kw("conv_clamp", None), cfg.conv_clamp), ("fmap_decay", kw("fmap_decay", 1.0), 1.0),
              ("fmap_min", kw("fmap_min", 1), 1), ("mapping_layers", kw("mapping_layers", 0), 0)]
    for name, value, want in checks:
        if value != want:
            return None, cfg, f"D's {name}={brief(value)} does not map onto ours (needs {want!r})"
    group, channels = kw("mbstd_group_size", 4), kw("mbstd_num_features", 1)
    kw.ignore("structure", "num_fp16_res", "dtype", "is_template_graph", "mapping_fmaps", "mapping_lrmul", "freeze_layers")
    try:
        kw.refuse_unknown()
    except UnsupportedNetworkError as e:
        return None, cfg, str(e)
    if not isinstance(group, int) or group <= 1 or not isinstance(channels, int) or channels < 1:
        return None, cfg, (f"D's minibatch-stddev settings ({brief(group)}, {brief(channels)}) are not supported "
                           "(ours always has one)")
    d_cfg = dataclasses.replace(cfg, mbstd_group_size=group, mbstd_num_channels=channels)
    p = _Variables(D.take_variables(), "D")
    t = {}
    try:
        for r in cfg.resolutions[::-1][:-1]:
            b, tf = f"b{r}.", f"{r}x{r}/"
            if r == cfg.img_resolution:
                t[b + "fromrgb.weight"] = _conv(p(tf + "FromRGB/weight"))
                t[b + "fromrgb.bias"] = _t(p(tf + "FromRGB/bias"))
            for i, theirs in ((0, "Conv0"), (1, "Conv1_down")):
                t[f"{b}conv{i}.weight"] = _conv(p(f"{tf}{theirs}/weight"))
                t[f"{b}conv{i}.bias"] = _t(p(f"{tf}{theirs}/bias"))
            t[b + "skip.weight"] = _conv(p(tf + "Skip/weight"))
        t["b4.conv.weight"] = _conv(p("4x4/Conv/weight"))
        t["b4.conv.bias"] = _t(p("4x4/Conv/bias"))
        t["b4.fc.weight"] = _dense(p("4x4/Dense0/weight"))
        t["b4.fc.bias"] = _t(p("4x4/Dense0/bias"))
        t["b4.out.weight"] = _dense(p("Output/weight"))
        t["b4.out.bias"] = _t(p("Output/bias"))
    except UnsupportedNetworkError as e:
        return None, cfg, str(e)
    left = p.leftovers()
    if left:
        return None, cfg, f"TensorFlow variable {one_line(left[0], 80)} has no counterpart in ours"
    problem = shape_mismatch("D", t, d_cfg)
    if problem:
        return None, cfg, f"D does not map onto ours: {problem}"
    return t, d_cfg, None


def read_tensorflow_pickle(box: list) -> ImportedModel:
    """The unpickled content of a TensorFlow StyleGAN2 pickle ((G, D, Gs) or Gs), passed in a one-item list
    that is emptied here, so that the training copy G is freed before Gs is converted -> ImportedModel."""
    data = box.pop()
    if isinstance(data, TFNetwork):
        D, Gs = None, data
    elif isinstance(data, (tuple, list)) and len(data) == 3 and all(isinstance(n, TFNetwork) for n in data):
        D, Gs = data[1], data[2]  # not the training copy data[0]
    else:
        raise UnsupportedNetworkError("TensorFlow networks, but not the (G, D, Gs) tuple of a network pickle")
    del data
    model = _read_generator(Gs)
    del Gs
    if D is None:
        model.notes.append("D not imported: the file has none")
    else:
        model.D, model.cfg, why = _read_discriminator(D, model.cfg)
        if why:
            model.notes.append(f"D not imported: {why}")
    return model
