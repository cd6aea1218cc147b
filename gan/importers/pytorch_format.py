"""stylegan2-ada-pytorch and stylegan3 (`--cfg stylegan2`) network pickles -> ImportedModel.

The unpickled file is a dict {G, D, G_ema, augment_pipe, training_set_kwargs} of PersistentObjects. The
architecture is read from the modules' own attributes (what the official __init__ stored: `conv_clamp`,
`architecture`, `use_noise`, `w_avg_beta`, ...), falling back to `_init_kwargs` where no attribute holds a
value (channel_base / channel_max), and finally checked tensor by tensor against the network our
ModelConfig builds. Our parameter names are the official ones, so tensors map name for name;
`resample_filter` buffers (persistent there, derived here) are checked to be the [1,3,3,1] filter and
dropped. fp16 layers (num_fp16_res) need nothing: their weights are stored in fp32 and we run in fp32.
"""
from __future__ import annotations

import dataclasses
import re

import torch

from .errors import UnsupportedNetworkError
from .model import ImportedModel, as_float32, check_generator, is_default_filter, make_config, shape_mismatch
from .unpickler import PersistentObject, brief, one_line, plain

_STYLEGAN3_LAYER = re.compile(r"L\d+_\d+_\d+\Z")


def describe(data) -> str:
    if isinstance(data, dict):
        keys = ", ".join(one_line(k, 40) for k in sorted(map(str, data))[:8])
        return f"a dict with keys {keys}" if keys else "an empty dict"
    if isinstance(data, PersistentObject):
        return f"a {data.class_name} network"
    return f"a {type(data).__name__}"


def _number(x, what: str) -> float | None:
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise UnsupportedNetworkError(f"{what} is {brief(x)}, not a number")
    return float(x)


def _int(x, what: str) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise UnsupportedNetworkError(f"{what} is {brief(x)}, not an integer")
    return x


def refuse_stylegan3(G: PersistentObject) -> None:
    synthesis = G.module("synthesis")
    names = set(synthesis.modules) if synthesis is not None else set()
    if synthesis is None or not ("input" in names or any(_STYLEGAN3_LAYER.match(n) for n in names)
                                 or "SynthesisInput" in synthesis.defines):
        return
    kwargs = plain(G.attr("_init_kwargs", {}))
    kind = "StyleGAN3-R" if isinstance(kwargs, dict) and kwargs.get("conv_kernel") == 1 else "StyleGAN3-T"
    raise UnsupportedNetworkError(f"a {kind} (alias-free) generator: StyleGAN3 is not supported yet "
                                  "(StyleGAN2 pickles, also those of stylegan3's --cfg=stylegan2, are)")


def _synthesis_kwargs(kwargs: dict) -> dict:
    """stylegan2-ada nests them under synthesis_kwargs; stylegan3's stylegan2 passes them flat."""
    nested = kwargs.get("synthesis_kwargs")
    return nested if isinstance(nested, dict) else kwargs


def _filters_ok(module: PersistentObject, what: str) -> None:
    for name, sub in module.walk():
        f = sub.own_tensors().get("resample_filter")
        if f is not None and not is_default_filter(f):
            raise UnsupportedNetworkError(f"{what}: {one_line(name or module.class_name, 120)}.resample_filter is not "
                                          "the [1,3,3,1] filter of every official config: not supported yet")


def _read_generator(G: PersistentObject, what: str) -> tuple[ImportedModel, dict]:
    if G.class_name != "Generator":
        raise UnsupportedNetworkError(f"{what} is a {G.class_name}, not a StyleGAN2 Generator: not supported yet")
    refuse_stylegan3(G)
    synthesis, mapping = G.module("synthesis"), G.module("mapping")
    if synthesis is None or mapping is None or synthesis.class_name != "SynthesisNetwork" \
            or mapping.class_name != "MappingNetwork":
        raise UnsupportedNetworkError(f"{what} has no StyleGAN2 synthesis and mapping networks: not supported yet")
    kwargs = plain(G.attr("_init_kwargs", {}))
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    syn_kwargs = _synthesis_kwargs(kwargs)
    map_kwargs = kwargs.get("mapping_kwargs") if isinstance(kwargs.get("mapping_kwargs"), dict) else {}
    res = _int(G.attr("img_resolution", kwargs.get("img_resolution")), f"{what}.img_resolution")
    notes: list[str] = []

    # Blocks: every official config uses the 'skip' generator (toRGB at every resolution, no residual skips).
    blocks = {}
    for name, block in synthesis.modules.items():
        if not re.fullmatch(r"b\d+", name) or block.class_name != "SynthesisBlock":
            raise UnsupportedNetworkError(f"{what}: synthesis.{name} is a {block.class_name}, not a StyleGAN2 "
                                          "synthesis block: not supported yet")
        blocks[int(name[1:])] = block
    conv_clamps, use_noise = set(), set()
    for r, block in blocks.items():
        arch = block.attr("architecture", "resnet" if "skip" in block.modules else
                          ("skip" if "torgb" in block.modules else "orig"))
        if arch != "skip" or "skip" in block.modules or "torgb" not in block.modules:
            raise UnsupportedNetworkError(f"{what}: a generator with synthesis architecture {brief(arch)}: not "
                                          "supported yet (only 'skip', which every official config uses)")
        for layer_name in ("conv0", "conv1", "torgb"):
            layer = block.module(layer_name)
            if layer is None:
                continue
            conv_clamps.add(_number(layer.attr("conv_clamp"), f"{what}: b{r}.{layer_name}.conv_clamp"))
            if layer_name != "torgb":
                if layer.class_name != "SynthesisLayer" or layer.attr("activation", "lrelu") != "lrelu":
                    raise UnsupportedNetworkError(f"{what}: synthesis.b{r}.{layer_name} is not an lrelu StyleGAN2 "
                                                  "synthesis layer: not supported yet")
                use_noise.add(bool(layer.attr("use_noise", True)))
    if len(conv_clamps) > 1:
        raise UnsupportedNetworkError(f"{what}: layers with different conv_clamp values {sorted(map(str, conv_clamps))}")
    _filters_ok(G, what)

    # Mapping: lrelu layers of w_dim features; the label embedding (conditional models) of w_dim features.
    num_layers = _int(mapping.attr("num_layers", map_kwargs.get("num_layers", 8)),
                      f"{what}: mapping.num_layers")
    fc0 = mapping.module("fc0")
    if fc0 is None or any(mapping.module(f"fc{i}") is None or mapping.module(f"fc{i}").attr("activation") != "lrelu"
                          for i in range(num_layers)):
        raise UnsupportedNetworkError(f"{what}: the mapping network is not {num_layers} lrelu layers: not supported yet")
    lr_multiplier = _number(fc0.attr("bias_gain", map_kwargs.get("lr_multiplier", 0.01)),
                            f"{what}: mapping lr_multiplier")
    w_avg_beta = _number(mapping.attr("w_avg_beta", 0.995), f"{what}: mapping.w_avg_beta")
    if w_avg_beta is None or "w_avg" not in mapping.own_tensors():
        raise UnsupportedNetworkError(f"{what}: the mapping network tracks no w_avg (w_avg_beta=None): "
                                      "truncation is impossible; not supported yet")

    cfg = make_config(
        what,
        img_resolution=res,
        img_channels=_int(G.attr("img_channels", kwargs.get("img_channels")), f"{what}.img_channels"),
        z_dim=_int(G.attr("z_dim", kwargs.get("z_dim")), f"{what}.z_dim"),
        w_dim=_int(G.attr("w_dim", kwargs.get("w_dim")), f"{what}.w_dim"),
        c_dim=_int(G.attr("c_dim", kwargs.get("c_dim", 0)), f"{what}.c_dim"),
        mapping_layers=num_layers,
        mapping_lr_multiplier=lr_multiplier,
        channel_base=_int(syn_kwargs.get("channel_base", 32768), f"{what}: channel_base"),
        channel_max=_int(syn_kwargs.get("channel_max", 512), f"{what}: channel_max"),
        conv_clamp=next(iter(conv_clamps)) if conv_clamps else None,
        w_avg_beta=w_avg_beta,
    )
    tensors = {k: v for k, v in G.tensors().items() if not k.endswith(".resample_filter")}
    if use_noise == {False}:  # no noise inputs: ours with zero strength computes the same
        for r in cfg.resolutions:
            for layer in ("conv0", "conv1") if r > 4 else ("conv1",):
                tensors[f"synthesis.b{r}.{layer}.noise_const"] = torch.zeros(r, r)
                tensors[f"synthesis.b{r}.{layer}.noise_strength"] = torch.zeros([])
        notes.append("use_noise=False: noise inputs set to zero strength")
    elif len(use_noise) > 1:
        raise UnsupportedNetworkError(f"{what}: noise inputs in some layers only: not supported yet")
    check_generator(tensors, cfg, what)  # before any float32 copy: only tensors that map onto ours are converted
    tensors = as_float32(tensors)
    sg3 = "fused_modconv_default" in kwargs or any(b.attr("fused_modconv_default") is not None for b in blocks.values())
    fmt = "stylegan3 (--cfg stylegan2)" if sg3 else "stylegan2-ada-pytorch"
    return ImportedModel(cfg=cfg, G=tensors, D=None, format=fmt, init_kwargs=kwargs, notes=notes), syn_kwargs


def _read_discriminator(D: PersistentObject, cfg) -> tuple[dict | None, object, str | None]:
    """(tensors, cfg with D's minibatch-stddev settings, None) or (None, cfg, why D is not imported)."""
    if D.class_name != "Discriminator":
        return None, cfg, f"D is a {D.class_name}, not a StyleGAN2 Discriminator"
    if D.attr("c_dim", 0):
        return None, cfg, "conditional discriminators (label mapping + projection) are not supported yet"
    kwargs = plain(D.attr("_init_kwargs", {}))
    kwargs = kwargs if isinstance(kwargs, dict) else {}
    for name, module in D.walk():
        arch = module.attr("architecture")
        if arch is not None and arch != "resnet":
            return None, cfg, f"D architecture {brief(arch)} is not supported yet (only 'resnet', the official default)"
        where = one_line(name, 120)
        if module.class_name == "Conv2dLayer" and module.attr("activation", "lrelu") not in ("lrelu", "linear"):
            return None, cfg, f"D layer {where} uses {brief(module.attr('activation'))}, not lrelu"
        if module.class_name == "Conv2dLayer":
            clamp = module.attr("conv_clamp")
            want = None if name.endswith(".skip") else cfg.conv_clamp  # residual skips are never clamped
            if _number(clamp, f"D layer {where}: conv_clamp") != want:
                return None, cfg, (f"D layer {where} has conv_clamp {brief(clamp)}, G {cfg.conv_clamp} "
                                   "(one value per model here)")
        f = module.own_tensors().get("resample_filter")
        if f is not None and not is_default_filter(f):
            return None, cfg, "D's resample_filter is not the [1,3,3,1] filter"
    epilogue = D.module("b4")
    mbstd = epilogue.module("mbstd") if epilogue is not None else None
    if mbstd is None:
        return None, cfg, "D has no minibatch-stddev layer (mbstd_num_channels=0), which ours always has"
    group, channels = mbstd.attr("group_size"), mbstd.attr("num_channels", 1)
    if not isinstance(group, int) or isinstance(group, bool) or group < 1 or not isinstance(channels, int) or channels < 1:
        return None, cfg, f"D's minibatch-stddev group size {brief(group)} (None = whole batch) is not supported yet"
    d_cfg = dataclasses.replace(cfg, mbstd_group_size=group, mbstd_num_channels=channels)
    if kwargs.get("channel_base", 32768) != cfg.channel_base or kwargs.get("channel_max", 512) != cfg.channel_max:
        return None, cfg, "D's channel_base / channel_max differ from G's (one value per model here)"
    tensors = {k: v for k, v in D.tensors().items() if not k.endswith(".resample_filter")}
    problem = shape_mismatch("D", tensors, d_cfg)
    if problem:
        return None, cfg, f"D does not map onto ours: {problem}"
    return as_float32(tensors), d_cfg, None


def read_pytorch_pickle(box: list) -> ImportedModel:
    """The unpickled content of a stylegan2-ada-pytorch / stylegan3 network pickle, passed in a one-item list
    that is emptied here (so the training copy G can be freed) -> ImportedModel."""
    data = box.pop()
    nets = {"G_ema": data} if isinstance(data, PersistentObject) else (
        {k: v for k, v in data.items() if isinstance(v, PersistentObject)} if isinstance(data, dict) else {})
    which = "G_ema" if "G_ema" in nets else "G"
    if which == "G_ema" and isinstance(data, dict):  # the training copy is not imported: free it now
        data.pop("G", None)
        nets.pop("G", None)
    if which not in nets:
        raise UnsupportedNetworkError(f"{describe(data)}, with no G_ema or G network: not a StyleGAN2 network pickle")
    model, _ = _read_generator(nets[which], which)
    if which == "G":
        model.notes.append("no G_ema in the file: imported G (the training copy)")
    D = nets.get("D")
    if D is None:
        model.notes.append("D not imported: the file has none")
    else:
        try:
            model.D, model.cfg, why = _read_discriminator(D, model.cfg)
        except UnsupportedNetworkError as e:
            why = str(e)
        if why:
            model.notes.append(f"D not imported: {why}")
    tsk = data.get("training_set_kwargs") if isinstance(data, dict) else None
    model.dataset = plain(tsk) if isinstance(tsk, dict) else {}
    return model
