"""A small neural network over sparse n-gram features, in numpy: one hidden layer.

Used by the Chinese sentiment model (``sentiment.ChineseSentimentModel``) beside its two
logistic regressions: a linear model weighs each n-gram on its own, the hidden layer lets
n-grams combine (不 with 错, 但是 with what follows), and the average of the two is right
more often than either (cross-validation figures in ``sentiment``'s docstring).

scikit-learn's ``MLPClassifier`` takes sparse input but updates every weight of the first
layer on every batch (330,000 n-grams x the hidden units): about two minutes on the corpus.
Here a batch updates only the rows of the n-grams it contains (Adam with lazy moments, as
in embedding layers), which trains the same network in seconds.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["SparseMLP"]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30.0, 30.0)))


class SparseMLP:
    """Binary classifier: sparse input, ``hidden`` ReLU units, a logistic output.

    Trained by Adam (``learning_rate``) on the cross-entropy for ``epochs`` passes over
    shuffled batches of ``batch_size`` rows; the rows of the first layer's weights that a
    batch does not touch are left alone, their moments too. Seeded: the same data give
    the same weights.
    """

    def __init__(
        self,
        *,
        hidden: int = 32,
        epochs: int = 8,
        learning_rate: float = 1e-3,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        self.hidden = hidden
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.seed = seed

    def fit(self, features: sparse.csr_matrix, labels: np.ndarray) -> SparseMLP:
        x = sparse.csr_matrix(features, dtype=np.float32)
        y = np.asarray(labels, dtype=np.float32)
        rng = np.random.default_rng(self.seed)
        n, d = x.shape
        h = self.hidden
        # He initialisation for the mean number of features in a row, halved.
        mean_nnz = max(1.0, x.nnz / max(n, 1))
        w1 = (rng.standard_normal((d, h)) * (0.5 * np.sqrt(2.0 / mean_nnz))).astype(np.float32)
        b1 = np.zeros(h, np.float32)
        w2 = (rng.standard_normal(h) * np.sqrt(1.0 / h)).astype(np.float32)
        b2 = np.zeros(1, np.float32)
        m1, v1 = np.zeros_like(w1), np.zeros_like(w1)
        # the small parameters (b1, w2, b2), each with its Adam moments
        small = [(p, np.zeros_like(p), np.zeros_like(p)) for p in (b1, w2, b2)]
        beta1, beta2, eps, rate = 0.9, 0.999, 1e-8, self.learning_rate
        step = 0
        for _ in range(self.epochs):
            order = rng.permutation(n)
            for start in range(0, n, self.batch_size):
                rows = order[start : start + self.batch_size]
                batch = x[rows]
                step += 1
                # the batch's columns only, renumbered 0..k-1
                cols, local = np.unique(batch.indices, return_inverse=True)
                xs = sparse.csr_matrix(
                    (batch.data, local.ravel(), batch.indptr), shape=(len(rows), len(cols))
                )
                w1_rows = w1[cols]
                z = xs @ w1_rows + b1
                hidden = np.maximum(z, 0.0)
                g = (_sigmoid(hidden @ w2 + b2[0]) - y[rows]) / len(rows)
                d_hidden = np.outer(g, w2) * (z > 0)
                grads = [d_hidden.sum(axis=0), hidden.T @ g, np.array([g.sum()], np.float32)]
                g1 = np.asarray(xs.T @ d_hidden)
                c1, c2 = 1.0 - beta1**step, 1.0 - beta2**step
                m = beta1 * m1[cols] + (1.0 - beta1) * g1
                v = beta2 * v1[cols] + (1.0 - beta2) * g1 * g1
                m1[cols], v1[cols] = m, v
                w1[cols] = w1_rows - rate * (m / c1) / (np.sqrt(v / c2) + eps)
                for (param, mp, vp), grad in zip(small, grads, strict=True):
                    mp *= beta1
                    mp += (1.0 - beta1) * grad
                    vp *= beta2
                    vp += (1.0 - beta2) * grad * grad
                    param -= (rate * (mp / c1) / (np.sqrt(vp / c2) + eps)).astype(np.float32)
        self.w1_, self.b1_, self.w2_, self.b2_ = w1, b1, w2, float(b2[0])
        return self

    def predict_proba(self, features: sparse.csr_matrix) -> np.ndarray:
        """P(class 1) of each row."""
        x = sparse.csr_matrix(features, dtype=np.float32)
        hidden = np.maximum(x @ self.w1_ + self.b1_, 0.0)
        return _sigmoid((hidden @ self.w2_ + self.b2_).astype(np.float64))
