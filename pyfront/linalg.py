"""pf.linalg: torch.linalg's functions under torch.linalg's names (the ops live in
pyfront.ops.decompositions; torch's top-level names, pf.inverse, pf.det, pf.svd, ..., are
pyfront's too). Computed on the host by numpy.linalg (LAPACK); gradients written with ops."""
from .errors import LinAlgError
from .ops.decompositions import (cholesky, cond, det, eigh, eigvalsh, inv, logdet, lstsq,
                                 matrix_exp, matrix_norm, matrix_power, matrix_rank, multi_dot,
                                 pinv, slogdet, solve, solve_triangular, svdvals, vector_norm)
from .ops.decompositions import linalg_cross as cross
from .ops.decompositions import linalg_norm as norm
from .ops.decompositions import linalg_qr as qr
from .ops.decompositions import linalg_svd as svd
from .ops.linalg import matmul

__all__ = ["LinAlgError", "cholesky", "cond", "cross", "det", "eigh", "eigvalsh", "inv",
           "logdet", "lstsq", "matmul", "matrix_exp", "matrix_norm", "matrix_power",
           "matrix_rank", "multi_dot", "norm", "pinv", "qr", "slogdet", "solve",
           "solve_triangular", "svd", "svdvals", "vector_norm"]
