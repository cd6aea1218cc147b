"""Sizes a hostile network pickle declares cost nothing: a nested storage archive that declares far more
elements than it holds is refused with one line, and the process's peak memory does not grow by the
declared size (torch reserves the storage lazily and stops at the archive's end)."""
from __future__ import annotations

import resource

import pytest
import torch

import official_pickles as op
from gan.importers import PickleImportError, import_pickle


@pytest.mark.parametrize("declared", [3 * 10 ** 9, 10 ** 12])   # 12 GB and 4 TB of float32
def test_a_storage_declaring_more_than_it_holds_is_refused_without_using_the_memory(tmp_path, declared):
    storage = op.Call(op.Global("torch.storage", "_load_from_bytes"),
                      (op.legacy_storage_archive(torch.ones(4), declared=declared),))
    tensor = op.Call(op.Global("torch._utils", "_rebuild_tensor_v2"), (storage, 0, (4,), (1,), False, op.ordered_dict()))
    op.dump({"G_ema": tensor}, tmp_path / "huge.pkl")
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with pytest.raises(PickleImportError) as e:
        import_pickle(tmp_path / "huge.pkl", tmp_path / "model", progress=False)
    assert "unreadable tensor storage archive" in str(e.value) and "\n" not in str(e.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - before_mb < 100
    assert not (tmp_path / "model").exists()
