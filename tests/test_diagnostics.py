"""The Figure 1 arithmetic: cosines of whole-model gradient vectors, exact and through the count sketch."""

import torch

from fslib.engine.diagnostics import cosine_matrix, count_sketch


def test_cosine_matrix_by_hand():
    vectors = torch.tensor([[3.0, 4.0], [4.0, 3.0], [-3.0, -4.0]])
    expected = torch.tensor([[1.0, 24 / 25, -1.0], [24 / 25, 1.0, -24 / 25], [-1.0, -24 / 25, 1.0]],
                            dtype=torch.float64)
    assert torch.allclose(cosine_matrix(vectors, chunk=1), expected, atol=1e-15)


def test_long_vectors_have_self_cosine_one():
    """Gradients span many orders of magnitude over ~10^8 coordinates; summed in fp32 a vector's cosine with
    itself drifts off 1 (seen on CUDA: 1.0001). Chunks summed in float64 keep it at 1."""
    generator = torch.Generator().manual_seed(0)
    vectors = torch.randn(3, 3_000_000, generator=generator) * torch.logspace(-4, 2, 3_000_000)
    cosines = cosine_matrix(vectors, chunk=1 << 20)
    assert torch.allclose(cosines.diagonal(), torch.ones(3, dtype=torch.float64), atol=1e-12)
    assert torch.equal(cosines, cosines.T) and cosines.abs().max() <= 1.0


def test_count_sketch_preserves_cosines():
    generator = torch.Generator().manual_seed(1)
    a = torch.randn(1_000_000, generator=generator)
    b = 0.6 * a + 0.8 * torch.randn(1_000_000, generator=generator)  # cosine ~0.6
    exact = cosine_matrix(torch.stack([a, b]))[0, 1]
    sketched = cosine_matrix(torch.stack([count_sketch(a, 1 << 16, seed=3), count_sketch(b, 1 << 16, seed=3)]))
    assert abs(sketched[0, 1] - exact) < 0.02  # error ~ 1/sqrt(dim) = 0.004
    other_hashing = count_sketch(b, 1 << 16, seed=4)  # different seeds hash differently: no longer comparable
    assert abs(cosine_matrix(torch.stack([count_sketch(a, 1 << 16, seed=3), other_hashing]))[0, 1]) < 0.05
