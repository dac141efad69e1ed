"""Lanczos iteration: the largest eigenvalue of a symmetric operator known only by its products.

Plain power iteration converges to the eigenvalue of largest *magnitude*: on an indefinite
Hessian whose most negative eigenvalue is larger in size than its largest positive one it returns
that negative eigenvalue. Lanczos builds an orthonormal basis of the Krylov space
{v, Av, A²v, ...} and the tridiagonal matrix T of the operator in that basis; the eigenvalues of T
(Ritz values) approach *both* ends of the spectrum, and the largest Ritz value approaches the
largest *algebraic* eigenvalue from below, usually in far fewer products than power iteration
needs (its rate depends on the square root of the relative gap). The basis is fully
re-orthogonalized (modified Gram–Schmidt, in float64 on the host), which keeps the Ritz values
free of the "ghost" copies that rounding errors cause: memory is one float64 vector of the
operator's size per iteration.
"""

import dataclasses
from typing import Callable, List, Tuple

import numpy as np

__all__ = ["LanczosResult", "largest_eigenvalue"]

# Below this (relative to the largest Ritz value seen) the next Krylov vector is zero up to
# float64 rounding: the basis spans an invariant subspace and the Ritz values are exact.
_BREAKDOWN = 1e-12


@dataclasses.dataclass(frozen=True)
class LanczosResult:
    """The largest Ritz value after each iteration and whether it settled.

    Args:
        eigenvalue: The largest Ritz value at the last iteration.
        converged: Whether its relative change fell below the tolerance (or the Krylov space
            became invariant, which makes it exact).
        iterations: Operator products done.
        relative_change: |θ_k − θ_{k−1}| / max(|θ_k|, |θ_{k−1}|) at the last iteration (`0.0`
            when the space became invariant, `inf` after a single iteration).
        eigenvalues_history: The largest Ritz value after each iteration.
    """

    eigenvalue: float
    converged: bool
    iterations: int
    relative_change: float
    eigenvalues_history: Tuple[float, ...]


def largest_eigenvalue(
    matvec: Callable[[np.ndarray], np.ndarray],
    dimension: int,
    *,
    num_iterations: int,
    tolerance: float,
    seed: int = 0,
) -> LanczosResult:
    """The largest algebraic eigenvalue of a symmetric operator, by Lanczos iteration.

    Args:
        matvec: `v -> A v` for a float64 vector of length `dimension`; `A` must be symmetric.
        dimension: The operator's size.
        num_iterations: Most products to compute (each adds one Krylov vector).
        tolerance: Stop when the largest Ritz value changes by less than this, relatively,
            between two iterations.
        seed: Seed of the random start vector.

    Returns:
        A `LanczosResult` (not converged when `num_iterations` ran out first).

    Example:

    >>> a = np.diag([-5.0, 1.0, 2.0])  # Power iteration would find -5.
    >>> result = largest_eigenvalue(lambda v: a @ v, 3, num_iterations=10, tolerance=1e-6)
    >>> round(result.eigenvalue, 6), result.converged
    (2.0, True)
    """
    rng = np.random.default_rng(seed)
    vector = rng.normal(size=dimension)
    vector /= np.linalg.norm(vector)
    basis: List[np.ndarray] = []
    alphas: List[float] = []
    betas: List[float] = []
    history: List[float] = []
    relative_change = float("inf")
    converged = False
    for _ in range(num_iterations):
        basis.append(vector)
        product = np.asarray(matvec(vector), dtype=np.float64)
        alphas.append(float(vector @ product))
        # Full re-orthogonalization (it also removes the alpha and beta components); twice,
        # since one pass of Gram-Schmidt leaves rounding-size components behind.
        for _ in range(2):
            for direction in basis:
                product -= (direction @ product) * direction
        theta = float(np.linalg.eigvalsh(_tridiagonal(alphas, betas))[-1])
        if history:
            scale = max(abs(theta), abs(history[-1]))
            relative_change = abs(theta - history[-1]) / scale if scale > 0 else 0.0
        history.append(theta)
        beta = float(np.linalg.norm(product))
        invariant = len(basis) == dimension or beta <= _BREAKDOWN * max(
            max(abs(h) for h in history), float(np.max(np.abs(alphas))))
        if invariant:
            relative_change, converged = 0.0, True
            break
        if relative_change < tolerance:
            converged = True
            break
        betas.append(beta)
        vector = product / beta
    return LanczosResult(
        eigenvalue=history[-1], converged=converged, iterations=len(history),
        relative_change=relative_change, eigenvalues_history=tuple(history))


def _tridiagonal(alphas: List[float], betas: List[float]) -> np.ndarray:
    size = len(alphas)
    matrix = np.diag(alphas)
    if size > 1:
        off = np.asarray(betas[: size - 1])
        matrix += np.diag(off, 1) + np.diag(off, -1)
    return matrix
