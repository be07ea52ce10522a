"""tensors.tsv text: every float32 parses back bit for bit, in the projector's row layout."""

from __future__ import annotations

import numpy as np

from tracker_sdk.export.tensorboard import _write_tensor_tsv, float32_text


def parse(data: bytes) -> np.ndarray:
    return np.array([[float(v) for v in line.split("\t")] for line in data.decode("ascii").split("\n")[:-1]],
                    dtype=np.float32)


def test_special_and_extreme_values_round_trip():
    values = np.array([[0.0, -0.0, np.nan, np.inf, -np.inf, 1e-45, -3.4028235e38, 1e-8, 1.0, 0.1, 1e9, 123456789.0]],
                      dtype=np.float32)
    text = float32_text(values)
    assert text.split(b"\t")[:5] == [b"0", b"-0", b"nan", b"inf", b"-inf"]
    assert text.endswith(b"\n") and text.count(b"\n") == 1
    back = parse(text)
    np.testing.assert_array_equal(back, values)
    assert np.array_equal(np.signbit(back), np.signbit(values))


def test_a_sweep_of_bit_patterns_round_trips_exactly():
    bits = np.arange(0, 2**32, 104_729, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = values[np.isfinite(values)].reshape(-1, 1)
    back = parse(float32_text(values))
    np.testing.assert_array_equal(back.view(np.uint32), values.view(np.uint32))


def test_written_file_has_one_line_per_row(tmp_path):
    vectors = np.random.default_rng(0).standard_normal((1000, 7)).astype(np.float32) * 1e3
    path = tmp_path / "tensors.tsv"
    _write_tensor_tsv(path, vectors, values_per_chunk=500)  # several chunks
    np.testing.assert_array_equal(parse(path.read_bytes()), vectors)
    assert not list(tmp_path.glob("*.tmp"))
