"""The memory bound: preallocation, growth, and spilling to disk past the bound."""

import numpy as np
import pytest
import torch

from tracker_sdk import InvalidArgumentError
from tracker_sdk.collect import ActivationBuffer, ActivationCollector, collect_embeddings


def test_capacity_preallocates_once():
    buffer = ActivationBuffer("fc", capacity=100)
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal((32, 8), dtype=np.float32) for _ in range(3)] + [rng.standard_normal((4, 8), dtype=np.float32)]
    buffer.append(rows[0])
    allocated = buffer._data
    for r in rows[1:]:
        buffer.append(r)
    assert buffer._data is allocated and buffer.nbytes_in_memory == 100 * 8 * 4
    np.testing.assert_array_equal(buffer.array(), np.concatenate(rows))
    assert not buffer.spilled


def test_rows_spill_to_disk_past_the_bound_and_read_back_exactly(tmp_path):
    bound = 64 * 1024                                       # 64 KiB = 512 rows of 32 float32
    buffer = ActivationBuffer("layer", max_memory_bytes=bound, spill_dir=tmp_path)
    rng = np.random.default_rng(1)
    chunks = []
    for _ in range(40):                                     # 40 x 50 rows = 2,000 rows = 250 KiB
        chunk = rng.standard_normal((50, 32)).astype(np.float32)
        chunks.append(chunk)
        buffer.append(chunk)
        assert buffer.nbytes_in_memory <= bound
    assert buffer.spilled and buffer.nbytes_in_memory == 0
    out = buffer.array()
    assert isinstance(out, np.memmap) and out.shape == (2000, 32) and not out.flags.writeable
    np.testing.assert_array_equal(out, np.concatenate(chunks))
    assert list(tmp_path.iterdir()) == []                   # an anonymous file: nothing left behind


def test_buffer_rejects_rows_of_another_width():
    buffer = ActivationBuffer("enc")
    buffer.append(np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(InvalidArgumentError, match="layer 'enc' gave 5 values per sample in this batch but 4 before"):
        buffer.append(np.zeros((2, 5), dtype=np.float32))


def test_collector_holds_no_more_than_its_bound(cnn, tmp_path):
    cnn.eval()
    bound = 16 * 1024                                       # shared by 2 layers: 8 KiB each
    collector = ActivationCollector(cnn, ["fc", "head"], max_memory_bytes=bound, spill_dir=tmp_path)
    expected = []
    with collector, torch.no_grad():
        for seed in range(20):
            x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(seed))
            expected.append(cnn(x).numpy())
            assert sum(b.nbytes_in_memory for b in collector._buffers.values()) <= bound
    assert collector._buffers["fc"].spilled                # 320 x 16 x 4 = 20 KiB > 8 KiB
    np.testing.assert_allclose(collector["head"], np.concatenate(expected), rtol=1e-6)


def test_collect_embeddings_preallocates_the_data_set_length(cnn):
    dataset = torch.utils.data.TensorDataset(torch.randn(70, 1, 8, 8))
    loader = torch.utils.data.DataLoader(dataset, batch_size=16)
    acts = collect_embeddings(cnn, loader, ["fc"], progress=False)
    assert acts["fc"].shape == (70, 16)
    assert acts["fc"].base is not None and acts["fc"].base.shape == (70, 16)   # one exact allocation
