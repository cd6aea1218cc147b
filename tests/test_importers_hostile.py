"""Hostile network pickles that once crashed the process (SIGSEGV), took time exponential in their size,
escaped as tracebacks or made tiny storages into gigabyte tensors: each is written for real
(tests/official_pickles.py writers, raw opcodes where no writer would go) and must be refused with one
short line, in well under a second. Real layouts (channels-last strides, tensors packed in one storage,
the numpy scalars TensorFlow stores its 0-d variables as, plain dict keys) still load.
"""
from __future__ import annotations

import json
import multiprocessing
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import official_pickles as op
from gan.importers import PickleImportError, UnsafePickleError, read_network_pickle
from gan.importers import unpickler
from gan.importers.unpickler import load_pickle
from gan.models.config import ModelConfig
from gan.models.networks import build_generator

PROTO4 = pickle.PROTO + b"\x04"
SHARED_TUPLE = op.Raw(pickle.EMPTY_TUPLE + (pickle.DUP + pickle.TUPLE2) * 22)  # 2**22 paths to ()


def write(tmp_path: Path, data, protocol: int = 4) -> Path:
    """data: raw opcodes (a whole pickle) or objects for op.dump."""
    path = tmp_path / "hostile.pkl"
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        op.dump(data, path, protocol=protocol)
    return path


def refusal(path: Path, reader=load_pickle, kind=PickleImportError) -> str:
    """The one-line message `reader` refuses `path` with, checked to be short."""
    with pytest.raises(kind) as e:
        reader(path)
    message = str(e.value)
    assert "\n" not in message and len(message) < len(str(path)) + 300, message
    return message


def timed_refusal(path: Path, reader=load_pickle, kind=PickleImportError) -> str:
    start = time.perf_counter()
    message = refusal(path, reader, kind)
    assert time.perf_counter() - start < 1.0, "the refusal took too long"
    return message


def tiny_generator():
    cfg = ModelConfig(img_resolution=8, z_dim=8, w_dim=8, mapping_layers=1, channel_base=64, channel_max=8).validate()
    torch.manual_seed(0)
    return cfg, build_generator(cfg).eval()


def ada_tree(mutate) -> op.Call:
    """A tiny G_ema as the official code writes it, after mutate(state of G, state of G.mapping)."""
    cfg, G = tiny_generator()
    tree = op.module_tree(G, op.Flavour("ada"), cfg)
    state = tree.args[0]["state"]
    mutate(state, state["_modules"]["mapping"].args[0]["state"])
    return tree


# ---- 1. nesting: hash() of a deeply nested tuple overflowed the C stack (SIGSEGV) ---------------------------

DEEP = pickle.EMPTY_TUPLE + pickle.TUPLE1 * 10 ** 6  # hashing it recursed a million levels deep in C
DEEP_KEYS = {
    "SETITEM": pickle.EMPTY_DICT + DEEP + pickle.NONE + pickle.SETITEM,
    "SETITEMS": pickle.EMPTY_DICT + pickle.MARK + DEEP + pickle.NONE + pickle.SETITEMS,
    "DICT": pickle.MARK + DEEP + pickle.NONE + pickle.DICT,
    "FROZENSET": pickle.MARK + DEEP + pickle.FROZENSET,
    "ADDITEMS": pickle.EMPTY_SET + pickle.MARK + DEEP + pickle.ADDITEMS,
    "OrderedDict()": (pickle.GLOBAL + b"collections\nOrderedDict\n" + pickle.EMPTY_LIST + DEEP + pickle.NONE
                      + pickle.TUPLE2 + pickle.APPEND + pickle.TUPLE1 + pickle.REDUCE),
    "set()": (pickle.GLOBAL + b"builtins\nset\n" + pickle.EMPTY_LIST + DEEP + pickle.APPEND + pickle.TUPLE1
              + pickle.REDUCE),
}


def _load_each(paths: list[str], out: str) -> None:
    messages = []
    for path in paths:
        try:
            load_pickle(path)
            messages.append("loaded")
        except PickleImportError as e:
            messages.append(str(e))
    Path(out).write_text(json.dumps(messages))


def test_a_tuple_nested_a_million_deep_as_a_key_is_refused_without_crashing(tmp_path):
    """In a child process, so that a regression shows as a crash (exit code -11), not a dead test runner."""
    paths = []
    for name, body in DEEP_KEYS.items():
        paths.append(str(tmp_path / f"{name}.pkl"))
        Path(paths[-1]).write_bytes(PROTO4 + body + pickle.STOP)
    child = multiprocessing.get_context("fork").Process(target=_load_each, args=(paths, str(tmp_path / "out.json")))
    child.start()
    child.join(60)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0
    for name, message in zip(DEEP_KEYS, json.loads((tmp_path / "out.json").read_text())):
        assert "containers nested more than 64 deep" in message and "\n" not in message, (name, message)


@pytest.mark.parametrize("wrap", ["TUPLE1", "TUPLE2", "TUPLE3", "TUPLE", "LIST", "DICT", "DUP+TUPLE2"])
def test_containers_nested_past_64_levels_are_refused_and_64_load(tmp_path, wrap):
    def nested(levels: int) -> bytes:  # an empty tuple (one level) wrapped `levels` times
        if wrap in ("TUPLE", "LIST", "DICT"):
            opcode = {"TUPLE": pickle.TUPLE, "LIST": pickle.LIST, "DICT": pickle.DICT}[wrap]
            mark = pickle.MARK + (pickle.NONE if wrap == "DICT" else b"")
            return mark * levels + pickle.EMPTY_TUPLE + opcode * levels
        step = {"TUPLE1": pickle.TUPLE1, "TUPLE2": pickle.NONE + pickle.TUPLE2,
                "TUPLE3": pickle.NONE * 2 + pickle.TUPLE3, "DUP+TUPLE2": pickle.DUP + pickle.TUPLE2}[wrap]
        return pickle.EMPTY_TUPLE + step * levels
    assert load_pickle(write(tmp_path, PROTO4 + nested(63) + pickle.STOP)) is not None
    assert "nested more than 64 deep" in timed_refusal(write(tmp_path, PROTO4 + nested(64) + pickle.STOP))


@pytest.mark.parametrize("container", ["SETITEM", "SETITEMS", "DICT", "FROZENSET", "ADDITEMS", "OrderedDict()",
                                       "set()", "frozenset()"])
def test_dict_keys_and_set_members_must_be_plain_values(tmp_path, container):
    key = (1,)
    data = {"SETITEM": {key: 0}, "SETITEMS": {key: 0, "b": 1}, "FROZENSET": frozenset([key]), "ADDITEMS": {key},
            "OrderedDict()": op.Call(op.ODICT, ([(key, 0)],)),
            "set()": op.Call(op.Global("builtins", "set"), ([key],)),
            "frozenset()": op.Call(op.Global("builtins", "frozenset"), ([key],)),
            "DICT": op.Raw(pickle.MARK + pickle.EMPTY_TUPLE + pickle.NONE + pickle.DICT)}[container]
    assert "with a tuple key or member" in refusal(write(tmp_path, data))


def test_plain_dict_keys_and_set_members_load(tmp_path):
    data = {"a": 1, 2: 2, 1.5: 3, None: 4, b"k": 5, True: 6, "set": {"x", 1, None}, "frozen": frozenset([b"y"])}
    assert load_pickle(write(tmp_path, data)) == data


# ---- 2. messages: repr() of shared tuples was exponential (and could raise MemoryError) ---------------------

NUMPY_ARRAY = op.Global("numpy.core.multiarray", "_reconstruct"), (op.Global("numpy", "ndarray"), (0,), b"b")


@pytest.mark.parametrize("case,message", [
    ("REDUCE", "refusing a call of ((((...), (...)),"),
    ("NEWOBJ", "refusing to construct ((((...)"),
    ("dtype state", "unexpected numpy dtype state ((((...)"),
    ("dtype name", "refusing numpy dtype ((((..."),
    ("array shape", "a numpy array with shape ((((...)"),
    ("class name", "a persistent object with class name ((((...)"),
    ("TF component name", "component <16610-bit int> is not a network"),
])
def test_refusals_describe_what_the_file_holds_briefly(tmp_path, case, message):
    fl = op.Flavour("legacy")
    if case == "REDUCE":
        data = op.Call(SHARED_TUPLE, ())
    elif case == "NEWOBJ":
        data = op.NewObj(SHARED_TUPLE)
    elif case == "dtype state":
        data = op.Call(op.Global("numpy", "dtype"), ("f4", False, True), state=SHARED_TUPLE)
    elif case == "dtype name":
        data = op.Call(op.Global("numpy", "dtype"), (SHARED_TUPLE, False, True))
    elif case == "array shape":
        data = op.Call(*NUMPY_ARRAY, state=(1, SHARED_TUPLE, fl.dtype("f4"), False, b""))
    elif case == "class name":
        data = op.persistent(fl, "Generator", {}, {}, {}, {}, {})
        data.args[0]["class_name"] = SHARED_TUPLE
    else:
        data = op.NewObj(op.NETWORK, state={"version": 4, "name": "Gs", "build_func_name": "G_main",
                                            "components": {10 ** 5000: 1}})
    assert message in timed_refusal(write(tmp_path, data))


def test_a_shared_tuple_as_a_network_attribute_is_named_briefly(tmp_path):
    def mutate(G, mapping):
        mapping["w_avg_beta"] = SHARED_TUPLE
    path = write(tmp_path, {"G_ema": ada_tree(mutate)})
    assert "mapping.w_avg_beta is ((((...), (...))," in timed_refusal(path, read_network_pickle)


def test_running_out_of_memory_mid_file_is_one_line(tmp_path, monkeypatch):
    def out_of_memory(*args):
        raise MemoryError
    monkeypatch.setattr(unpickler, "_numpy_scalar", out_of_memory)
    path = write(tmp_path, {"G_ema": op.Flavour("ada").scalar(1.0)})
    assert "out of memory reading the pickle" in refusal(path)


# ---- 3. tensors: zero or overlapping strides made a 1-element storage a 2**31-element tensor ------------------

def tensor(storage, size: tuple, stride: tuple, offset: int = 0) -> op.Call:
    return op.Call(op.Global("torch._utils", "_rebuild_tensor_v2"),
                   (storage, offset, size, stride, False, op.ordered_dict()))


@pytest.mark.parametrize("numel,size,stride", [(1, (2 ** 31,), (0,)), (5, (3, 3), (1, 1)), (4, (2, 2, 2), (0, 2, 1))])
def test_a_tensor_holding_more_elements_than_its_storage_is_refused(tmp_path, numel, size, stride):
    storage = op.Flavour("ada").storage(torch.ones(numel, dtype=torch.float16))
    message = timed_refusal(write(tmp_path, {"G_ema": tensor(storage, size, stride)}))
    assert f"holds more elements than its storage of {numel} has (zero or overlapping strides)" in message


def test_tensors_sharing_one_storage_are_refused(tmp_path):
    storage = op.Flavour("ada").storage(torch.ones(4))
    data = {"a": tensor(storage, (4,), (1,)), "b": tensor(storage, (2, 2), (2, 1))}
    assert "tensors holding 8 elements share a storage of 4" in refusal(write(tmp_path, data))


def test_channels_last_and_offset_tensors_load(tmp_path):
    x = torch.randn(2, 3, 2, 2).to(memory_format=torch.channels_last)
    fl = op.Flavour("ada")
    packed = fl.storage(torch.arange(6.0))
    data = {"x": tensor(fl.storage(x), tuple(x.shape), x.stride()),
            "head": tensor(packed, (2,), (1,)), "tail": tensor(packed, (2, 2), (2, 1), offset=2)}
    loaded = load_pickle(write(tmp_path, data))
    assert torch.equal(loaded["x"], x) and loaded["x"].stride() == x.stride()
    assert loaded["head"].tolist() == [0, 1] and loaded["tail"].tolist() == [[2, 3], [4, 5]]


# ---- 4. shared references: walks and plain() visited each path --------------------------------------------

def test_a_submodule_shared_across_the_tree_is_refused(tmp_path):
    fl = op.Flavour("ada")
    chain = op.persistent(fl, "Leaf", {}, {}, {}, {}, {})
    for _ in range(20):  # 2**20 paths through the tree
        chain = op.persistent(fl, "Node", {}, {}, {"a": chain, "b": chain}, {}, {})

    def mutate(G, mapping):
        mapping["_modules"]["extra"] = chain
    message = timed_refusal(write(tmp_path, {"G_ema": ada_tree(mutate)}), read_network_pickle)
    assert "module mapping.extra" in message and "is also a submodule elsewhere (shared, not a tree)" in message


def test_a_tensorflow_component_shared_across_the_tree_is_refused(tmp_path):
    cfg, G = tiny_generator()
    fl = op.Flavour("legacy")
    Gs = op.tf_generator(fl, G, cfg, "Gs")
    chain = op.tf_network(fl, "leaf", "leaf", {}, {})
    for i in range(6):  # 10**6 paths
        chain = op.tf_network(fl, f"n{i}", "node", {}, {}, {f"c{j}": chain for j in range(10)})
    Gs.state["components"]["synthesis"].state["components"] = {"extra": chain}
    message = timed_refusal(write(tmp_path, Gs, protocol=3), read_network_pickle)
    assert "is also a component elsewhere (shared, not a tree)" in message


@pytest.mark.parametrize("fmt", ["ada", "tf"])
def test_kwargs_of_more_than_100k_values_are_refused(tmp_path, fmt):
    shared = [0] * 30
    for _ in range(3):  # 30**4 leaves, each list written once
        shared = [shared] * 30
    if fmt == "ada":
        data = {"G_ema": ada_tree(lambda G, mapping: G["_init_kwargs"].update(evil=shared))}
        protocol = 4
    else:
        cfg, G = tiny_generator()
        data, protocol = op.tf_generator(op.Flavour("legacy"), G, cfg, "Gs", evil=shared), 3
    assert "kwargs of more than 100000 values" in timed_refusal(write(tmp_path, data, protocol), read_network_pickle)


# ---- 5. TensorFlow's 0-d variables are numpy scalars --------------------------------------------------------

def test_tensorflow_0d_variables_load_from_numpy_scalars_as_tf_writes_them(tmp_path):
    fl = op.Flavour("legacy")
    net = op.tf_network(fl, "G_synthesis", "G_synthesis_stylegan2", {},
                        {"lod": np.float32(0), "4x4/Conv/noise_strength": np.float32(-0.25), "w": np.ones((2, 3))})
    path = write(tmp_path, net, protocol=3)
    assert path.read_bytes().count(b"cnumpy.core.multiarray\nscalar\n") == 1  # a memoized global, used twice
    variables = load_pickle(path).variables
    assert variables["4x4/Conv/noise_strength"].shape == () and variables["4x4/Conv/noise_strength"] == -0.25
    assert variables["lod"].dtype == np.float32 and variables["w"].shape == (2, 3)


def test_a_tensorflow_variable_that_is_not_numeric_data_is_refused(tmp_path):
    net = op.NewObj(op.NETWORK, state={"version": 4, "name": "Gs", "build_func_name": "G_main",
                                       "variables": [("lod", "zero")]})
    assert "TensorFlow network Gs: variable 'lod' is a str, not an array" in refusal(write(tmp_path, net))


# ---- 6. names from the file are one bounded line ---------------------------------------------------------------

@pytest.mark.parametrize("case", ["STACK_GLOBAL", "GLOBAL", "TF name", "TF component name", "module name",
                                  "TF build function"])
def test_names_from_the_file_are_folded_onto_one_bounded_line(tmp_path, case):
    long = "evil\nline " * 20000
    reader, protocol, kind = load_pickle, 4, PickleImportError
    if case == "STACK_GLOBAL":
        data, kind = op.Global(long, long), UnsafePickleError
    elif case == "GLOBAL":
        data, protocol, kind = op.Global("os" * 50000, "system"), 2, UnsafePickleError
    elif case == "TF name":
        data = op.NewObj(op.NETWORK, state={"version": 4, "name": long, "build_func_name": "G_main",
                                            "static_kwargs": []})
    elif case == "TF component name":
        data = op.NewObj(op.NETWORK, state={"version": 4, "name": "Gs", "build_func_name": "G_main",
                                            "components": {long: 1}})
    elif case == "module name":
        data = op.persistent(op.Flavour("ada"), "Generator", {}, {}, {long: None}, {}, {})
    else:
        data, protocol, reader = op.tf_network(op.Flavour("legacy"), "Gs", long, {}, {}), 3, read_network_pickle
    refusal(write(tmp_path, data, protocol), reader, kind)


# ---- 7. a storage archive refused with an empty message ---------------------------------------------------

def test_a_storage_archive_refused_with_an_empty_message_is_one_line(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise pickle.UnpicklingError("")
    monkeypatch.setattr(unpickler.torch, "load", refuse)
    path = write(tmp_path, {"G_ema": op.Flavour("ada").tensor(torch.ones(2))})
    assert "refusing a tensor storage archive: UnpicklingError" in refusal(path, kind=UnsafePickleError)
