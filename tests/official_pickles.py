"""Write NVIDIA's on-disk network pickle formats from a project network (for tests and bench/importer.py).

The files have the structure and the globals of the real ones:
- stylegan2-ada-pytorch / stylegan3 (`--cfg stylegan2`): a dict G, D, G_ema, augment_pipe,
  training_set_kwargs; each network a `torch_utils.persistence._reconstruct_persistent_obj(meta)`, meta =
  {type, version, module_src, class_name, state}, state the module's __dict__ (`_parameters`, `_buffers`,
  `_modules`, hooks, attributes, `_init_args`, `_init_kwargs`); parameters as
  `torch._utils._rebuild_parameter(_rebuild_tensor_v2(torch.storage._load_from_bytes(<torch.save archive>), ...))`;
  numpy scalars as `numpy._core.multiarray.scalar(numpy.dtype('f8'), bytes)`.
  The "legacy" flavour is what 2020-2021 files hold: protocol 3, OrderedDict module tables,
  `numpy.core.multiarray.scalar`, `dnnlib.util.EasyDict` kwargs, CUDA storages in the nested archives.
- TensorFlow StyleGAN2: a tuple (G, D, Gs) of `dnnlib.tflib.network.Network` objects (NEWOBJ + BUILD)
  whose state holds version, name, static_kwargs, components, build_module_src, build_func_name and
  variables, the arrays as `numpy.core.multiarray._reconstruct(numpy.ndarray, ...)` + raw bytes, in TF
  layouts (the inverse of the mapping in stylegan2-ada-pytorch's legacy.py); 0-d variables (lod, every
  noise_strength) as numpy scalars `numpy.core.multiarray.scalar(numpy.dtype('f4'), bytes)`, since
  Network.__getstate__ stores what tflib.run returns, and TF's session.run returns np.float32 for them.

Those globals are not importable here, so the pickles are written at the protocol level: `Global`, `Call`
and `NewObj` markers become GLOBAL / STACK_GLOBAL, REDUCE and NEWOBJ (+ SETITEMS, BUILD) opcodes, and
`Raw` opcodes (for hostile files) are written as they are.
"""
from __future__ import annotations

import io
import math
import pickle
import struct
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

# Source text stored as module_src / build_module_src. NVIDIA's loader would execute it; the importer must
# not: it would create the file named by MODULE_SRC_MARKER in the current folder.
MODULE_SRC_MARKER = "module_src_was_executed.txt"
MODULE_SRC = (f"import pathlib\npathlib.Path({MODULE_SRC_MARKER!r}).write_text('ran')\n\n"
              "class Generator:\n    pass\n\nclass MappingNetwork:\n    pass\n")

_STORAGE_TYPES = {torch.float32: "FloatStorage", torch.float16: "HalfStorage", torch.float64: "DoubleStorage",
                  torch.int64: "LongStorage", torch.int32: "IntStorage", torch.uint8: "ByteStorage",
                  torch.bool: "BoolStorage"}


# ---- protocol-level markers ---------------------------------------------------------------------------

class Global:
    """A reference to module.name, written as GLOBAL (protocol < 4) or STACK_GLOBAL."""
    _cache: dict = {}

    def __new__(cls, module: str, name: str):
        key = (module, name)
        if key not in cls._cache:
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._cache[key] = obj
        return cls._cache[key]


class Call:
    """func(*args) (REDUCE), then optional dict items (SETITEMS) and state (BUILD)."""

    def __init__(self, func: Global, args: tuple, state=None, items=None):
        self.func, self.args, self.state, self.items = func, args, state, items


class NewObj:
    """cls.__new__(cls) (NEWOBJ), then optional dict items and state, as pickle writes plain objects."""

    def __init__(self, cls: Global, state=None, items=None):
        self.cls, self.state, self.items = cls, state, items


class Raw:
    """Opcodes written as they are, that push one object (for hostile files: `Raw(b")" + b"2\x86" * 22)` is
    a tuple sharing each level twice). They must not use the memo."""

    def __init__(self, opcodes: bytes):
        self.opcodes = opcodes


class OfficialPickler(pickle._Pickler):
    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file, protocol: int, persistent_ids: dict | None = None):
        super().__init__(file, protocol=protocol)
        self._pids = persistent_ids or {}

    def persistent_id(self, obj):
        return self._pids.get(id(obj))

    def _save_global_marker(self, obj: Global) -> None:
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    def _finish(self, obj) -> None:
        self.memoize(obj)
        if obj.items:
            self._batch_setitems(iter(obj.items))
        if obj.state is not None:
            self.save(obj.state)
            self.write(pickle.BUILD)

    def _save_call(self, obj: Call) -> None:
        self.save(obj.func)
        self.save(tuple(obj.args))
        self.write(pickle.REDUCE)
        self._finish(obj)

    def _save_newobj(self, obj: NewObj) -> None:
        self.save(obj.cls)
        self.save(())
        self.write(pickle.NEWOBJ)
        self._finish(obj)

    def _save_raw(self, obj: Raw) -> None:
        self.write(obj.opcodes)

    dispatch[Global] = _save_global_marker
    dispatch[Call] = _save_call
    dispatch[NewObj] = _save_newobj
    dispatch[Raw] = _save_raw


def dump(obj, path_or_file, protocol: int = 4, persistent_ids: dict | None = None) -> None:
    if isinstance(path_or_file, (str, Path)):
        with open(path_or_file, "wb") as fh:
            OfficialPickler(fh, protocol, persistent_ids).dump(obj)
    else:
        OfficialPickler(path_or_file, protocol, persistent_ids).dump(obj)


def dumps(obj, protocol: int = 4) -> bytes:
    buf = io.BytesIO()
    dump(obj, buf, protocol)
    return buf.getvalue()


ODICT = Global("collections", "OrderedDict")
EASYDICT = Global("dnnlib.util", "EasyDict")


def ordered_dict(items: dict | None = None) -> Call:
    return Call(ODICT, (), items=list((items or {}).items()))


def easydict(**items) -> NewObj:
    return NewObj(EASYDICT, items=list(items.items()))


# ---- tensors and storages -----------------------------------------------------------------------------

def legacy_storage_archive(t: torch.Tensor, location: str = "cpu", declared: int | None = None) -> bytes:
    """torch.save(storage, _use_new_zipfile_serialization=False) as written by torch 1.x, with the storage's
    device tag (`cuda:0` for the CUDA storages of 2020-2021 files). declared: a hostile file's element count
    in place of the real one (the data written stays t's)."""
    t = t.detach().cpu().contiguous()
    numel = t.numel() if declared is None else declared
    module = "torch.cuda" if location.startswith("cuda") else "torch"
    sentinel = object()
    key = "94000000000000"
    pid = ("storage", Global(module, _STORAGE_TYPES[t.dtype]), key, location, numel, None)
    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001,
                   {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, buf, protocol=2)
    dump(sentinel, buf, protocol=2, persistent_ids={id(sentinel): pid})
    pickle.dump([key], buf, protocol=2)
    buf.write(struct.pack("<q", numel))
    buf.write(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes())
    return buf.getvalue()


def torch2_storage_archive(t: torch.Tensor) -> bytes:
    """What TypedStorage.__reduce__ of torch 2.x writes: torch.save(storage, legacy format)."""
    t = t.detach().cpu().clone()
    storage = torch.storage.TypedStorage(wrap_storage=t.untyped_storage(), dtype=t.dtype, _internal=True)
    buf = io.BytesIO()
    torch.save(storage, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


class Flavour:
    """Which era of the official code wrote the file."""

    def __init__(self, name: str):
        assert name in ("ada", "stylegan3", "legacy")
        self.name = name
        self.protocol = 3 if name == "legacy" else 4
        self.numpy_module = "numpy.core.multiarray" if name == "legacy" else "numpy._core.multiarray"
        self._dtypes = {}

    def storage(self, t: torch.Tensor) -> Call:
        data = legacy_storage_archive(t, "cuda:0") if self.name == "legacy" else torch2_storage_archive(t)
        return Call(Global("torch.storage", "_load_from_bytes"), (data,))

    def tensor(self, t: torch.Tensor) -> Call:
        t = t.detach().cpu().contiguous()
        return Call(Global("torch._utils", "_rebuild_tensor_v2"),
                    (self.storage(t), 0, tuple(t.shape), t.stride(), False, ordered_dict()))

    def parameter(self, t: torch.Tensor) -> Call:
        return Call(Global("torch._utils", "_rebuild_parameter"), (self.tensor(t), False, ordered_dict()))

    def dtype(self, name: str) -> Call:
        if name not in self._dtypes:  # one object per dtype, so the pickle memoizes it as numpy does
            self._dtypes[name] = Call(Global("numpy", "dtype"), (name, False, True),
                                      state=(3, "|" if name in ("b1", "i1", "u1") else "<", None, None, None, -1, -1, 0))
        return self._dtypes[name]

    def scalar(self, x: float) -> Call:
        return Call(Global(self.numpy_module, "scalar"), (self.dtype("f8"), struct.pack("<d", float(x))))

    def kwargs(self, **items):
        return easydict(**items)

    def table(self, items: dict):
        """_parameters / _buffers / _modules: plain dicts in torch 2.x, OrderedDicts before."""
        return ordered_dict(items) if self.name == "legacy" else dict(items)


_HOOK_TABLES_TORCH2 = ("_backward_pre_hooks", "_backward_hooks", "_forward_hooks", "_forward_hooks_with_kwargs",
                       "_forward_hooks_always_called", "_forward_pre_hooks", "_forward_pre_hooks_with_kwargs",
                       "_state_dict_hooks", "_state_dict_pre_hooks", "_load_state_dict_pre_hooks",
                       "_load_state_dict_post_hooks")
_HOOK_TABLES_LEGACY = ("_backward_hooks", "_forward_hooks", "_forward_pre_hooks", "_state_dict_hooks",
                       "_load_state_dict_pre_hooks")


def persistent(flavour: Flavour, class_name: str, params: dict, buffers: dict, modules: dict, attrs: dict,
               init_kwargs: dict, module_src: str = MODULE_SRC) -> Call:
    """A torch_utils.persistence object: _reconstruct_persistent_obj(meta) with the module's __dict__ as state."""
    state = {"training": False,
             "_parameters": flavour.table({k: None if v is None else flavour.parameter(v) for k, v in params.items()}),
             "_buffers": flavour.table({k: flavour.tensor(v) for k, v in buffers.items()}),
             "_non_persistent_buffers_set": set()}
    legacy = flavour.name == "legacy"
    for hook in (_HOOK_TABLES_LEGACY if legacy else _HOOK_TABLES_TORCH2):
        state[hook] = ordered_dict()
    if not legacy:
        state["_is_full_backward_hook"] = None
    state["_modules"] = flavour.table(modules)
    state.update(attrs)
    state["_init_args"] = ()
    state["_init_kwargs"] = init_kwargs
    meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": class_name, "state": state}
    return Call(Global("torch_utils.persistence", "_reconstruct_persistent_obj"), (meta,))


# ---- our networks as NVIDIA's module trees --------------------------------------------------------------

def _filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = torch.outer(f, f)
    return f / f.sum()


def _module_attrs(m: nn.Module, flavour: Flavour, cfg) -> tuple[dict, dict, dict]:
    """(attributes, extra persistent buffers, _init_kwargs) that NVIDIA's class of the same name sets."""
    from gan.models import layers, stylegan2
    sg3 = flavour.name == "stylegan3"
    sqrt2 = flavour.scalar(math.sqrt(2))
    if isinstance(m, layers.FullyConnectedLayer):
        lr = m.bias_gain
        attrs = {"activation": m.activation, "weight_gain": flavour.scalar(m.weight_gain), "bias_gain": lr}
        if sg3:
            attrs.update(in_features=m.in_features, out_features=m.out_features)
        kw = {"in_features": m.in_features, "out_features": m.out_features}
        if m.activation != "linear":
            kw["activation"] = m.activation
        if lr != 1:
            kw["lr_multiplier"] = lr
        return attrs, {}, kw
    if isinstance(m, layers.Conv2dLayer):
        attrs = {"activation": m.activation, "up": m.up, "down": m.down, "conv_clamp": m.conv_clamp,
                 "padding": m.padding, "weight_gain": flavour.scalar(m.weight_gain),
                 "act_gain": sqrt2 if m.activation == "lrelu" else 1}
        return attrs, {"resample_filter": _filter()}, {"in_channels": m.weight.shape[1],
                                                       "out_channels": m.weight.shape[0],
                                                       "kernel_size": m.weight.shape[-1]}
    if isinstance(m, stylegan2.SynthesisLayer):
        attrs = {"resolution": m.resolution, "up": m.up, "use_noise": True, "activation": "lrelu",
                 "conv_clamp": m.conv_clamp, "padding": 1, "act_gain": sqrt2}
        if sg3:
            attrs.update(in_channels=m.weight.shape[1], out_channels=m.weight.shape[0], w_dim=cfg.w_dim)
        return attrs, {}, {"in_channels": m.weight.shape[1], "out_channels": m.weight.shape[0],
                           "w_dim": cfg.w_dim, "resolution": m.resolution, "up": m.up, "conv_clamp": m.conv_clamp}
    if isinstance(m, stylegan2.ToRGBLayer):
        return ({"conv_clamp": m.conv_clamp, "weight_gain": flavour.scalar(m.weight_gain)}, {},
                {"in_channels": m.weight.shape[1], "out_channels": m.weight.shape[0], "w_dim": cfg.w_dim,
                 "conv_clamp": m.conv_clamp})
    if isinstance(m, stylegan2.SynthesisBlock):
        fp16_res = max(2 ** (int(math.log2(cfg.img_resolution)) + 1 - 4), 8)
        attrs = {"in_channels": m.in_channels, "w_dim": cfg.w_dim, "resolution": m.resolution,
                 "img_channels": cfg.img_channels, "is_last": m.resolution == cfg.img_resolution,
                 "architecture": "skip", "use_fp16": m.resolution >= fp16_res, "channels_last": False,
                 "num_conv": m.num_conv, "num_torgb": m.num_torgb}
        if sg3:
            attrs["fused_modconv_default"] = "inference_only"
        return attrs, {}, {"in_channels": m.in_channels, "resolution": m.resolution}
    if isinstance(m, stylegan2.SynthesisNetwork):
        return ({"w_dim": cfg.w_dim, "img_resolution": cfg.img_resolution,
                 "img_resolution_log2": int(math.log2(cfg.img_resolution)), "img_channels": cfg.img_channels,
                 "block_resolutions": list(m.block_resolutions), "num_ws": m.num_ws}, {},
                {"w_dim": cfg.w_dim, "img_resolution": cfg.img_resolution, "img_channels": cfg.img_channels})
    if isinstance(m, stylegan2.MappingNetwork):
        return ({"z_dim": m.z_dim, "c_dim": m.c_dim, "w_dim": m.w_dim, "num_ws": m.num_ws,
                 "num_layers": m.num_layers, "w_avg_beta": m.w_avg_beta}, {},
                {"z_dim": m.z_dim, "c_dim": m.c_dim, "w_dim": m.w_dim, "num_ws": m.num_ws,
                 "num_layers": m.num_layers})
    if isinstance(m, stylegan2.Generator):
        synthesis = {"channel_base": cfg.channel_base, "channel_max": cfg.channel_max, "num_fp16_res": 4,
                     "conv_clamp": cfg.conv_clamp}
        mapping = {"num_layers": cfg.mapping_layers}
        if cfg.mapping_lr_multiplier != 0.01:
            mapping["lr_multiplier"] = cfg.mapping_lr_multiplier
        if cfg.w_avg_beta != (0.998 if sg3 else 0.995):
            mapping["w_avg_beta"] = cfg.w_avg_beta
        kw = {"z_dim": cfg.z_dim, "w_dim": cfg.w_dim, "mapping_kwargs": flavour.kwargs(**mapping),
              "c_dim": cfg.c_dim, "img_resolution": cfg.img_resolution, "img_channels": cfg.img_channels}
        if sg3:  # stylegan3's train.py passes the synthesis kwargs flat
            kw.update(synthesis, fused_modconv_default="inference_only")
        else:
            kw["synthesis_kwargs"] = flavour.kwargs(**synthesis)
        return ({"z_dim": cfg.z_dim, "c_dim": cfg.c_dim, "w_dim": cfg.w_dim, "img_resolution": cfg.img_resolution,
                 "img_channels": cfg.img_channels, "num_ws": m.num_ws}, {}, kw)
    if isinstance(m, stylegan2.DiscriminatorBlock):
        return ({"in_channels": m.in_channels, "architecture": "resnet", "use_fp16": False, "channels_last": False,
                 "num_layers": 4 if m.in_channels == 0 else 3}, {"resample_filter": _filter()},
                {"in_channels": m.in_channels, "tmp_channels": m.conv0.weight.shape[0],
                 "out_channels": m.conv1.weight.shape[0]})
    if isinstance(m, stylegan2.DiscriminatorEpilogue):
        return ({"in_channels": m.conv.weight.shape[0], "cmap_dim": 0, "resolution": 4,
                 "img_channels": cfg.img_channels, "architecture": "resnet"}, {},
                {"in_channels": m.conv.weight.shape[0], "cmap_dim": 0, "resolution": 4,
                 "img_channels": cfg.img_channels, "mbstd_group_size": m.mbstd.group_size,
                 "mbstd_num_channels": m.mbstd.num_channels, "conv_clamp": cfg.conv_clamp})
    if isinstance(m, layers.MinibatchStdLayer):
        return {"group_size": m.group_size, "num_channels": m.num_channels}, {}, {
            "group_size": m.group_size, "num_channels": m.num_channels}
    if isinstance(m, stylegan2.Discriminator):
        return ({"c_dim": cfg.c_dim, "img_resolution": cfg.img_resolution,
                 "img_resolution_log2": int(math.log2(cfg.img_resolution)), "img_channels": cfg.img_channels,
                 "block_resolutions": list(m.block_resolutions)}, {},
                {"c_dim": cfg.c_dim, "img_resolution": cfg.img_resolution, "img_channels": cfg.img_channels,
                 "architecture": "resnet", "channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                 "num_fp16_res": 4, "conv_clamp": cfg.conv_clamp,
                 "epilogue_kwargs": flavour.kwargs(mbstd_group_size=cfg.mbstd_group_size)})
    raise TypeError(f"no official counterpart for {type(m).__name__}")


def module_tree(m: nn.Module, flavour: Flavour, cfg, module_src: str = MODULE_SRC) -> Call:
    """Our module (same class and attribute names as NVIDIA's) as a persistent object of NVIDIA's code."""
    attrs, extra_buffers, init_kwargs = _module_attrs(m, flavour, cfg)
    params = dict(m._parameters)
    buffers = {k: v for k, v in m._buffers.items() if v is not None}  # resample_filter is persistent there
    buffers.update(extra_buffers)
    modules = {name: module_tree(child, flavour, cfg, module_src) for name, child in m._modules.items()}
    return persistent(flavour, type(m).__name__, params, buffers, modules, attrs, init_kwargs, module_src)


def perturbed(net: nn.Module, scale: float = 0.05, seed: int = 0) -> nn.Module:
    """A copy of `net` with every parameter and buffer moved by scale * N(0, 1) (a 'training' copy)."""
    import copy
    out = copy.deepcopy(net)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in out.state_dict().items():
            if t.is_floating_point():
                t.add_(torch.randn(t.shape, generator=g) * scale)
    return out


def write_ada_pickle(path, G_ema: nn.Module, cfg, D: nn.Module | None = None, G: nn.Module | None = None,
                     flavour: str = "ada", module_src: str = MODULE_SRC, extra: dict | None = None) -> Path:
    """A stylegan2-ada-pytorch (flavour "ada" or "legacy") or stylegan3-repo (flavour "stylegan3") snapshot
    pickle: {training_set_kwargs, G, D, G_ema, augment_pipe}. G defaults to a perturbed copy of G_ema."""
    fl = Flavour(flavour)
    data = {"training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "ffhq.zip",
                                    "use_labels": cfg.c_dim > 0, "max_size": 70000, "xflip": True,
                                    "resolution": cfg.img_resolution}}
    data["G"] = module_tree(G if G is not None else perturbed(G_ema), fl, cfg, module_src)
    data["D"] = module_tree(D, fl, cfg, module_src) if D is not None else None
    data["G_ema"] = module_tree(G_ema, fl, cfg, module_src)
    data["augment_pipe"] = persistent(fl, "AugmentPipe", {}, {"p": torch.tensor(0.25)}, {},
                                      {"xflip": 1.0, "rotate90": 1.0}, {"xflip": 1, "rotate90": 1}, module_src)
    data.update(extra or {})
    dump(data, path, protocol=fl.protocol)
    return Path(path)


# ---- TensorFlow ------------------------------------------------------------------------------------------

NETWORK = Global("dnnlib.tflib.network", "Network")


def tf_array(fl: Flavour, a) -> Call:
    """A TF variable's value as session.run returned it: an ndarray, or a numpy scalar when it is 0-d."""
    a = np.array(a, dtype=np.float32, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    if a.ndim == 0:
        return Call(Global("numpy.core.multiarray", "scalar"), (fl.dtype("f4"), a.tobytes()))
    return Call(Global("numpy.core.multiarray", "_reconstruct"), (Global("numpy", "ndarray"), (0,), b"b"),
                state=(1, tuple(a.shape), fl.dtype("f4"), False, a.tobytes()))


def tf_network(fl: Flavour, name: str, func: str, static_kwargs: dict, variables: dict, components: dict | None = None,
               module_src: str = MODULE_SRC) -> NewObj:
    state = {"version": 4, "name": name, "static_kwargs": dict(static_kwargs), "components": dict(components or {}),
             "build_module_src": module_src, "build_func_name": func,
             "variables": [(k, tf_array(fl, v)) for k, v in variables.items()]}
    return NewObj(NETWORK, state=state)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy()


def tf_conv(w: torch.Tensor, flip: bool = False) -> np.ndarray:
    """[out, in, k, k] -> TF [k, k, in, out] (spatially flipped for the up-sampling convs)."""
    a = _np(w).transpose(2, 3, 1, 0)
    return a[::-1, ::-1] if flip else a


def tf_generator_variables(G: nn.Module) -> tuple[dict, dict, dict]:
    """(G_main, mapping, synthesis) variables in TF names and layouts."""
    sd = G.state_dict()
    main = {"lod": np.float32(0), "dlatent_avg": _np(sd["mapping.w_avg"])}
    mapping = {}
    if "mapping.embed.weight" in sd:
        mapping["LabelEmbed/weight"] = _np(sd["mapping.embed.weight"]).T
        mapping["LabelEmbed/bias"] = _np(sd["mapping.embed.bias"])
    for i in range(G.mapping.num_layers):
        mapping[f"Dense{i}/weight"] = _np(sd[f"mapping.fc{i}.weight"]).T
        mapping[f"Dense{i}/bias"] = _np(sd[f"mapping.fc{i}.bias"])
    synthesis = {}
    noise = 0
    for res in G.synthesis.block_resolutions:
        for conv in ("conv0", "conv1"):
            key = f"synthesis.b{res}.{conv}.noise_const"
            if key in sd:
                synthesis[f"noise{noise}"] = _np(sd[key])[None, None]
                noise += 1
    for res in G.synthesis.block_resolutions:
        b, tf = f"synthesis.b{res}.", f"{res}x{res}/"
        layers = [("conv1", "Conv")] if res == 4 else [("conv0", "Conv0_up"), ("conv1", "Conv1")]
        if res == 4:
            synthesis["4x4/Const/const"] = _np(sd[b + "const"])[None]
        for ours, theirs in layers:
            synthesis[tf + theirs + "/weight"] = tf_conv(sd[b + ours + ".weight"], flip=(ours == "conv0"))
            synthesis[tf + theirs + "/mod_weight"] = _np(sd[b + ours + ".affine.weight"]).T
            synthesis[tf + theirs + "/mod_bias"] = _np(sd[b + ours + ".affine.bias"]) - np.float32(1)
            synthesis[tf + theirs + "/noise_strength"] = _np(sd[b + ours + ".noise_strength"])
            synthesis[tf + theirs + "/bias"] = _np(sd[b + ours + ".bias"])
        synthesis[tf + "ToRGB/weight"] = tf_conv(sd[b + "torgb.weight"])
        synthesis[tf + "ToRGB/mod_weight"] = _np(sd[b + "torgb.affine.weight"]).T
        synthesis[tf + "ToRGB/mod_bias"] = _np(sd[b + "torgb.affine.bias"]) - np.float32(1)
        synthesis[tf + "ToRGB/bias"] = _np(sd[b + "torgb.bias"])
    return main, mapping, synthesis


def tf_discriminator_variables(D: nn.Module) -> dict:
    sd = D.state_dict()
    out = {}
    for res in D.block_resolutions:
        b, tf = f"b{res}.", f"{res}x{res}/"
        if b + "fromrgb.weight" in sd:
            out[tf + "FromRGB/weight"] = tf_conv(sd[b + "fromrgb.weight"])
            out[tf + "FromRGB/bias"] = _np(sd[b + "fromrgb.bias"])
        out[tf + "Conv0/weight"] = tf_conv(sd[b + "conv0.weight"])
        out[tf + "Conv0/bias"] = _np(sd[b + "conv0.bias"])
        out[tf + "Conv1_down/weight"] = tf_conv(sd[b + "conv1.weight"])
        out[tf + "Conv1_down/bias"] = _np(sd[b + "conv1.bias"])
        out[tf + "Skip/weight"] = tf_conv(sd[b + "skip.weight"])
    out["4x4/Conv/weight"] = tf_conv(sd["b4.conv.weight"])
    out["4x4/Conv/bias"] = _np(sd["b4.conv.bias"])
    out["4x4/Dense0/weight"] = _np(sd["b4.fc.weight"]).T
    out["4x4/Dense0/bias"] = _np(sd["b4.fc.bias"])
    out["Output/weight"] = _np(sd["b4.out.weight"]).T
    out["Output/bias"] = _np(sd["b4.out.bias"])
    return out


def tf_static_kwargs(cfg, **extra) -> dict:
    kw = {"num_channels": cfg.img_channels, "resolution": cfg.img_resolution, "label_size": cfg.c_dim,
          "fmap_base": cfg.channel_base // 2, "fmap_max": cfg.channel_max}
    if cfg.z_dim != 512:
        kw["latent_size"] = cfg.z_dim
    if cfg.w_dim != 512:
        kw["dlatent_size"] = cfg.w_dim
    if cfg.mapping_layers != 8:
        kw["mapping_layers"] = cfg.mapping_layers
    if cfg.conv_clamp is not None:  # stylegan2-ada's TensorFlow code has conv_clamp; StyleGAN2's has not
        kw["conv_clamp"] = cfg.conv_clamp
    kw.update(extra)
    return kw


def tf_generator(fl: Flavour, G: nn.Module, cfg, name: str = "G", synthesis_func: str = "G_synthesis_stylegan2",
                 module_src: str = MODULE_SRC, **extra_kwargs) -> NewObj:
    main, mapping, synthesis = tf_generator_variables(G)
    kw = tf_static_kwargs(cfg, **extra_kwargs)
    components = {
        "synthesis": tf_network(fl, "G_synthesis", synthesis_func, kw, synthesis, module_src=module_src),
        "mapping": tf_network(fl, "G_mapping", "G_mapping", dict(kw, dlatent_broadcast=G.num_ws), mapping,
                              module_src=module_src),
    }
    return tf_network(fl, name, "G_main", kw, main, components, module_src=module_src)


def write_tf_pickle(path, Gs: nn.Module, cfg, D: nn.Module | None = None, G: nn.Module | None = None,
                    only_Gs: bool = False, module_src: str = MODULE_SRC, synthesis_func: str = "G_synthesis_stylegan2",
                    **extra_kwargs) -> Path:
    """A TensorFlow StyleGAN2 pickle: (G, D, Gs) (protocol 3, as Python 3.6 wrote them), or Gs alone."""
    fl = Flavour("legacy")
    Gs_net = tf_generator(fl, Gs, cfg, "Gs", synthesis_func, module_src, **extra_kwargs)
    if only_Gs:
        data = Gs_net
    else:
        G_net = tf_generator(fl, G if G is not None else perturbed(Gs), cfg, "G", synthesis_func, module_src,
                             **extra_kwargs)
        d_kw = {k: v for k, v in tf_static_kwargs(cfg).items() if k in ("num_channels", "resolution", "label_size",
                                                                         "fmap_base", "fmap_max", "conv_clamp")}
        d_kw["mbstd_group_size"] = cfg.mbstd_group_size
        D_net = tf_network(fl, "D", "D_stylegan2", d_kw, tf_discriminator_variables(D), module_src=module_src)
        data = (G_net, D_net, Gs_net)
    dump(data, path, protocol=3)
    return Path(path)


if __name__ == "__main__":  # python tests/official_pickles.py OUT.pkl: a tiny ADA pickle, to try by hand
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from gan.models.config import ModelConfig
    from gan.models.networks import build_discriminator, build_generator
    cfg = ModelConfig(img_resolution=32, z_dim=32, w_dim=32, mapping_layers=2, channel_base=256, channel_max=32)
    write_ada_pickle(sys.argv[1], build_generator(cfg), cfg, D=build_discriminator(cfg))
