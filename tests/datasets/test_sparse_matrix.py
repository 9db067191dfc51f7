import scipy.sparse as sp

from convncf_kedro.datasets import SparseMatrixDataset


def test_csr_round_trip_with_sorted_indices_and_readable_permissions(tmp_path):
    matrix = sp.csr_matrix(([1.0, 1.0, 1.0], ([0, 0, 2], [3, 1, 0])), shape=(3, 4))
    dataset = SparseMatrixDataset(str(tmp_path / "m.npz"))
    dataset.save(matrix)
    loaded = dataset.load()
    assert loaded.format == "csr" and loaded.has_sorted_indices
    assert (loaded != matrix).nnz == 0
    assert (tmp_path / "m.npz").stat().st_mode & 0o044  # group/other can read it, like any other output
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]  # no temp file left over
