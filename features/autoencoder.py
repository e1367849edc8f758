"""Deep undercomplete autoencoder with optionally tied weights (thesis section 3.2).

The thesis reduces the 1001- or 2048-dimensional Inception-V3 activations of
the SEM images to 10-18 codings with a six-layer autoencoder (its
``autoencoder_3MPL``, section 3.2.3)::

    x ─ L1 (h1) ─ L2 (h2) ─ L3 (code) ─ L4 (h2) ─ L5 (h1) ─ L6 (n_features) ─ x'
        └──────── encoder ─────────┘   └──────────── decoder ─────────────┘

:class:`TiedAutoencoder` is that network as a scikit-learn transformer:
``fit`` trains it, ``transform`` gives the codings (L3's output),
``inverse_transform`` decodes codings back to feature space.

Layer pairs and tying (section 3.2.1)
-------------------------------------
Encoder layer :math:`L_i` and decoder layer :math:`L_{7-i}` form a pair:
"outer" = (L1, L6), "middle" = (L2, L5), "inner" = (L3, L4).  Tying a pair
imposes :math:`W_{7-i} = W_i^T`: the decoder layer (a :class:`DenseTranspose`)
multiplies by the transpose of its partner's kernel and owns only its bias,
which removes ``units_in * units_out`` parameters per tied pair.  The thesis'
best models (Table 3.3) tie the outer pair or nothing.

Training phases (section 3.2.2, Table 3.2)
------------------------------------------
The table of hidden layers per phase is garbled in the text we have; this is
our reading, the one that fits its sixteen marks, the example
``('1_a', '1_b', '2')`` = "stacked autoencoder fashion" and the text ("the
layers are trained pairwise from the outer to the inner ones, each pair as a
single autoencoder on the codings of the layers before it"):

=====  ====================  ==================================================
phase  layers trained        input and reconstruction target
=====  ====================  ==================================================
1_a    L1, L6   (outer)      x
1_b    L2, L5   (middle)     x2 = L1(x), computed once with L1 as it is then
1      L1, L2, L5, L6        x (the inner pair is bypassed)
2      L3, L4   (inner)      x3 = L2(L1(x)), computed once
g      L1 ... L6 (global)    x
=====  ====================  ==================================================

In every phase only the listed layers change (the layers that compute the
input are not part of the phase's network); the loss is the mean squared
reconstruction error plus the L2 penalty of the phase's kernels, minimised
with a fresh Adam optimiser.  Phases run in the order given and may repeat.
The thesis found global training (``g``) the most accurate (section 3.2.4),
hence the default.

Activations: ELU on every layer but the output, which is linear (section
3.2.4, "the best performing was applying the elu function on all layers but
the output"); the codings layer L3 is therefore ELU too, so codings are
greater than -1.
"""

from __future__ import annotations

import functools
import json
import numbers
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from semcurate.features.quiet_tensorflow import quiet_tensorflow

#: Layer pairs, outermost first; pair ``i`` couples encoder layer ``L(i+1)`` with decoder layer ``L(6-i)``.
PAIRS = ("outer", "middle", "inner")

#: Phase label -> (first, last + 1) encoder layer index trained, with their decoder partners (Table 3.2).
PHASES: dict[str, tuple[int, int]] = {"1_a": (0, 1), "1_b": (1, 2), "1": (0, 2), "2": (2, 3), "g": (0, 3)}

_NETWORK_FILE = "network.keras"
_ESTIMATOR_FILE = "estimator.json"
_FORMAT = "semcurate.TiedAutoencoder/1"
#: File of a :func:`grid_search` model's folder holding its codes of every row (``numpy.save``, float64).
GRID_CODES_FILE = "codes.npy"
_CHUNK = 8192  # rows per eager forward pass


def parse_tying(tying: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Normalise a ``tying`` specification to the tied pairs, outermost first.

    Parameters
    ----------
    tying : str, sequence of str or None
        ``"outer"``, ``"middle"``, ``"inner"``, any of them joined with ``+``
        (``"outer+inner"``), ``"all"``, ``"none"`` (or ``""`` / None), or a
        tuple or list of pair names.

    Returns
    -------
    tuple of str
        Subset of :data:`PAIRS` in the order of :data:`PAIRS`.

    Raises
    ------
    ValueError
        For an unknown pair name.

    Examples
    --------
    >>> parse_tying("inner+outer")
    ('outer', 'inner')
    >>> parse_tying("all")
    ('outer', 'middle', 'inner')
    >>> parse_tying(None)
    ()
    """
    if tying is None:
        names: list[str] = []
    elif isinstance(tying, str):
        key = tying.strip().lower()
        if key == "all":
            return PAIRS
        names = [] if key in ("", "none") else [part.strip() for part in key.split("+")]
    else:
        names = [str(name).strip().lower() for name in tying]
    unknown = sorted(set(names) - set(PAIRS))
    if unknown:
        raise ValueError(f"tying: unknown pair(s) {unknown}; use any of {list(PAIRS)}, 'all' or 'none'")
    return tuple(pair for pair in PAIRS if pair in names)


def tying_label(tied: tuple[str, ...]) -> str:
    """Canonical string of tied pairs: ``"none"``, ``"outer"``, ``"outer+inner"``, ``"all"``.

    Examples
    --------
    >>> tying_label(("outer", "inner"))
    'outer+inner'
    >>> tying_label(parse_tying("outer+middle+inner"))
    'all'
    >>> tying_label(())
    'none'
    """
    if tied == PAIRS:
        return "all"
    return "+".join(tied) if tied else "none"


def _parse_phases(phases: Any) -> list[tuple[str, int]]:
    """Validate ``phases``: a non-empty sequence of ``(label, n_epochs)`` pairs."""
    if isinstance(phases, (str, bytes)) or not hasattr(phases, "__iter__"):
        raise ValueError(f"phases must be a sequence of (label, n_epochs) pairs, got {phases!r}")
    parsed = []
    for item in phases:
        if isinstance(item, (str, bytes)) or not hasattr(item, "__len__") or len(item) != 2:
            raise ValueError(f"phases: each entry must be a (label, n_epochs) pair, got {item!r}")
        label, epochs = item
        if label not in PHASES:
            raise ValueError(f"phases: unknown phase {label!r}; use any of {list(PHASES)} (thesis Table 3.2)")
        if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
            raise ValueError(f"phases: phase {label!r} needs a positive integer number of epochs, got {epochs!r}")
        parsed.append((label, int(epochs)))
    if not parsed:
        raise ValueError("phases must name at least one training phase")
    return parsed


@functools.cache
def _keras_objects() -> Any:
    """Import Keras (several seconds) and define the Keras classes on first use."""
    quiet_tensorflow()
    import keras
    from keras import ops

    @keras.saving.register_keras_serializable(package="semcurate")
    class DenseTranspose(keras.layers.Layer):
        """Dense layer whose kernel is the transpose of a partner ``Dense`` layer's kernel.

        ``y = activation(x @ partner.kernel.T + bias)``; only ``bias`` (shape
        ``(partner.kernel.shape[0],)``) belongs to this layer, so training it
        also trains the partner's kernel (tied weights, thesis section 3.2.1).
        """

        def __init__(self, partner: keras.layers.Dense, activation: Any = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.partner = partner
            self.activation = keras.activations.get(activation)

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            units = self.partner.kernel.shape[0]
            self.bias = self.add_weight(shape=(units,), initializer="zeros", name="bias")

        def call(self, inputs: Any) -> Any:
            return self.activation(ops.matmul(inputs, ops.transpose(self.partner.kernel)) + self.bias)

        def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
            return (*input_shape[:-1], self.partner.kernel.shape[0])

        def get_config(self) -> dict[str, Any]:
            config = super().get_config()
            config["activation"] = keras.activations.serialize(self.activation)
            config["partner"] = keras.saving.serialize_keras_object(self.partner)
            return config

        @classmethod
        def from_config(cls, config: dict[str, Any]) -> DenseTranspose:
            config = dict(config)
            config["partner"] = keras.saving.deserialize_keras_object(config["partner"])
            return cls(**config)

    @keras.saving.register_keras_serializable(package="semcurate")
    class TiedNetwork(keras.Model):
        """The six-layer autoencoder L1 ... L6; layers in ``encoder_layers`` and ``decoder_layers``.

        ``decoder_layers[j]`` is the partner of ``encoder_layers[2 - j]``.  The
        configuration (not the layers) is what gets serialised, so a loaded
        network re-creates the tying between its layers.
        """

        def __init__(
            self, n_features: int, n_hidden: tuple[int, int, int], tied: tuple[str, ...], l2: float, **kwargs: Any
        ) -> None:
            super().__init__(**kwargs)
            self.n_features = int(n_features)
            self.n_hidden = tuple(int(h) for h in n_hidden)
            self.tied = tuple(tied)
            self.l2 = float(l2)
            regularizer = keras.regularizers.L2(self.l2) if self.l2 > 0 else None

            def dense(units: int, activation: str | None, name: str) -> keras.layers.Dense:
                initializer = "he_normal" if activation else "glorot_uniform"  # He for ELU, Glorot for linear
                return keras.layers.Dense(
                    units,
                    activation=activation,
                    kernel_initializer=initializer,
                    kernel_regularizer=regularizer,
                    name=name,
                )

            self.encoder_layers = [dense(units, "elu", f"L{i + 1}") for i, units in enumerate(self.n_hidden)]
            decoder = []
            for j, units in enumerate((self.n_hidden[1], self.n_hidden[0], self.n_features)):
                activation, name, partner = ("elu" if j < 2 else None), f"L{j + 4}", self.encoder_layers[2 - j]
                if PAIRS[2 - j] in self.tied:
                    decoder.append(DenseTranspose(partner, activation=activation, name=name))
                else:
                    decoder.append(dense(units, activation, name))
            self.decoder_layers = decoder

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            shape = tuple(input_shape)
            for layer in [*self.encoder_layers, *self.decoder_layers]:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)

        def call(self, inputs: Any) -> Any:
            outputs = inputs
            for layer in [*self.encoder_layers, *self.decoder_layers]:
                outputs = layer(outputs)
            return outputs

        def phase_layers(self, label: str) -> tuple[list[Any], list[Any]]:
            """``(layers computing the phase input, layers trained)`` for a phase of Table 3.2."""
            start, stop = PHASES[label]
            trained = self.encoder_layers[start:stop] + self.decoder_layers[3 - stop : 3 - start]
            return self.encoder_layers[:start], trained

        def get_config(self) -> dict[str, Any]:
            return {
                "name": self.name,
                "n_features": self.n_features,
                "n_hidden": list(self.n_hidden),
                "tied": list(self.tied),
                "l2": self.l2,
            }

    return keras, DenseTranspose, TiedNetwork


def __getattr__(name: str) -> Any:
    """Expose the Keras classes ``DenseTranspose`` and ``TiedNetwork`` without importing Keras at module import."""
    if name == "DenseTranspose":
        return _keras_objects()[1]
    if name == "TiedNetwork":
        return _keras_objects()[2]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _forward(layers: list[Any], X: np.ndarray) -> np.ndarray:
    """Apply ``layers`` in order to float32 rows ``X``, in chunks, eagerly; float32 result."""
    keras = _keras_objects()[0]
    if not layers:
        return X
    parts = []
    for start in range(0, X.shape[0], _CHUNK):
        h = X[start : start + _CHUNK]
        for layer in layers:
            h = layer(h)
        parts.append(keras.ops.convert_to_numpy(h))
    return np.concatenate(parts).astype(np.float32, copy=False)


def _layer_parameters(layer: Any) -> tuple[int, int]:
    """``(kernel, bias)`` parameters owned by a layer; a tied layer owns no kernel."""
    bias = int(np.prod(layer.bias.shape))
    if hasattr(layer, "partner"):
        return 0, bias
    return int(np.prod(layer.kernel.shape)), bias


def _count_parameters(network: Any) -> int:
    """Trainable parameters of a ``TiedNetwork``, a shared kernel counted once."""
    return sum(sum(_layer_parameters(layer)) for layer in [*network.encoder_layers, *network.decoder_layers])


class TiedAutoencoder(TransformerMixin, BaseEstimator):
    """Six-layer undercomplete autoencoder with optional weight tying (thesis section 3.2).

    Parameters
    ----------
    n_hidden : tuple of 3 int, default=(400, 100, 13)
        Units in hidden 1, hidden 2 and the codings layer (``h1, h2, code``);
        the decoder mirrors them.  The thesis searched h1 in 200-600, h2 in
        50-200 and took the code size from the intrinsic dimension (10, 13 or
        18; section 3.2.4).
    tying : str or tuple of str, default="outer"
        Pairs whose decoder layer uses the transpose of its encoder partner's
        kernel: any combination of ``"outer"`` (L1/L6), ``"middle"`` (L2/L5)
        and ``"inner"`` (L3/L4), as ``"outer+inner"`` or ``("outer", "inner")``;
        ``"all"`` and ``"none"`` also work.  See :func:`parse_tying`.
    l2 : float, default=1e-4
        L2 penalty factor on every kernel (``l2 * sum(W ** 2)`` per kernel, a
        tied kernel counted once), added to the loss.
    learning_rate : float, default=1e-3
        Adam learning rate (the thesis' 0.001: slower rates converge slowly,
        faster ones risk collapsing all points onto their centre).
    batch_size : int, default=300
        Mini-batch size (the thesis' choice).
    phases : sequence of (str, int), default=(("g", 50),)
        Training phases and their epochs, run in order; labels ``"1_a"``,
        ``"1_b"``, ``"1"``, ``"2"``, ``"g"`` as in the module docstring (thesis
        Table 3.2).  ``(("1_a", 20), ("1_b", 20), ("2", 20))`` is greedy
        layer-wise (stacked) training, ``(("g", 50),)`` global training.  A
        schedule that never trains a pair leaves it at its random initial
        weights.
    standardize : bool, default=True
        Train on per-feature z-scores (training mean subtracted, divided by
        the training standard deviation; constant features only centred).
        Otherwise the few features with the largest spread dominate the
        squared error.  The thesis does not say whether it scaled its inputs.
        ``inverse_transform``, ``reconstruct`` and ``score`` work in the
        original units either way.
    validation_fraction : float, default=0.0
        Fraction of the rows of ``fit``'s ``X`` held out (at random) to report
        a validation loss per epoch in ``history_``; 0 trains on all rows.
    random_state : int, RandomState or None, default=None
        Seeds Keras' weight initialisation and shuffling (through
        ``keras.utils.set_random_seed``, which seeds Python's, NumPy's and
        TensorFlow's global generators) and the validation split.  None
        leaves the global generators alone.
    verbose : int, default=0
        Keras ``fit`` verbosity: 0 silent, 1 progress bar, 2 one line per epoch.

    Attributes
    ----------
    n_features_in_ : int
        Number of input features.
    mean_, scale_ : ndarray of shape (n_features_in_,)
        Standardisation (zeros and ones when ``standardize=False``).
    model_ : keras.Model
        The trained network (a ``TiedNetwork``).
    tied_ : tuple of str
        Tied pairs, outermost first.
    history_ : list of dict
        One entry per phase: ``phase``, ``epochs``, ``loss`` and ``val_loss``
        (per-epoch lists of the training objective, MSE on standardised data
        plus the L2 penalty; ``val_loss`` is None without a validation split).
    n_parameters_ : int
        Trainable parameters (kernels and biases; a tied kernel counted once).

    Notes
    -----
    A forward pass costs about ``2 * (n_features * h1 + h1 * h2 + h2 * code)``
    multiply-adds per row (encoder and decoder together).  Measured on a shared 2-core CPU with
    50 000 x 2048 inputs and ``n_hidden=(400, 150, 18)``: about 3.5 s per
    epoch of phase ``g`` after about 25 s of set-up (validation, scaling,
    graph tracing), so the default 50 epochs take about 3.5 minutes.  Memory
    is the input as float64 and as float32 plus one phase input of at most
    the same size.

    References
    ----------
    Thesis section 3.2 (autoencoders, tied weights, training phases, grid
    search); A. Géron, *Hands-On Machine Learning with Scikit-Learn and
    TensorFlow*, chapter 15 (stacked autoencoders, tying weights).

    Examples
    --------
    Training loads TensorFlow (about 10 s), so the doctest run skips the fit.
    Eight columns coded in two; with the outer pair tied the network has
    54 + 28 + 10 parameters in the encoder and 12 + 30 + 8 in the decoder:

    >>> X = np.random.default_rng(0).normal(size=(200, 8))
    >>> ae = TiedAutoencoder(n_hidden=(6, 4, 2), phases=(("g", 2),), random_state=0)
    >>> ae.fit_transform(X).shape  # doctest: +SKIP
    (200, 2)
    >>> ae.info()["n_parameters"]  # doctest: +SKIP
    142
    """

    def __init__(
        self,
        *,
        n_hidden: tuple[int, int, int] = (400, 100, 13),
        tying: str | tuple[str, ...] = "outer",
        l2: float = 1e-4,
        learning_rate: float = 1e-3,
        batch_size: int = 300,
        phases: tuple[tuple[str, int], ...] = (("g", 50),),
        standardize: bool = True,
        validation_fraction: float = 0.0,
        random_state: int | np.random.RandomState | None = None,
        verbose: int = 0,
    ) -> None:
        self.n_hidden = n_hidden
        self.tying = tying
        self.l2 = l2
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.phases = phases
        self.standardize = standardize
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.verbose = verbose

    def _validate_params(self) -> tuple[tuple[int, int, int], tuple[str, ...], list[tuple[str, int]]]:
        n_hidden = tuple(self.n_hidden)
        if len(n_hidden) != 3 or any(
            isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 1 for h in n_hidden
        ):
            raise ValueError(f"n_hidden must be three positive integers (h1, h2, code), got {self.n_hidden!r}")
        if not self.l2 >= 0:
            raise ValueError(f"l2 must be >= 0, got {self.l2!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if (
            isinstance(self.batch_size, bool)
            or not isinstance(self.batch_size, numbers.Integral)
            or self.batch_size < 1
        ):
            raise ValueError(f"batch_size must be a positive integer, got {self.batch_size!r}")
        if not 0 <= self.validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {self.validation_fraction!r}")
        return tuple(int(h) for h in n_hidden), parse_tying(self.tying), _parse_phases(self.phases)

    def fit(self, X: Any, y: Any = None) -> TiedAutoencoder:
        """Train the autoencoder to reconstruct ``X``, phase by phase.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training rows, finite, at least 2.
        y : ignored

        Returns
        -------
        self : TiedAutoencoder
        """
        n_hidden, tied, phases = self._validate_params()
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2, reset=True)
        keras, _, network_class = _keras_objects()
        rng = check_random_state(self.random_state)
        if self.random_state is not None:
            keras.utils.set_random_seed(int(rng.randint(np.iinfo(np.int32).max)))

        if self.standardize:
            self.mean_ = X.mean(axis=0)
            std = X.std(axis=0)
            self.scale_ = np.where(std > 0, std, 1.0)
        else:
            self.mean_, self.scale_ = np.zeros(X.shape[1]), np.ones(X.shape[1])
        Z = ((X - self.mean_) / self.scale_).astype(np.float32)
        n_val = round(self.validation_fraction * Z.shape[0])
        if n_val and Z.shape[0] - n_val < 1:
            raise ValueError("validation_fraction leaves no training rows")
        order = rng.permutation(Z.shape[0])
        Z_train, Z_val = Z[order[n_val:]], (Z[order[:n_val]] if n_val else None)

        network = network_class(X.shape[1], n_hidden, tied, float(self.l2), name="tied_autoencoder")
        network.build((None, X.shape[1]))
        history: list[dict[str, Any]] = []
        for label, epochs in phases:
            before, trained = network.phase_layers(label)
            inputs = _forward(before, Z_train)
            validation = None
            if Z_val is not None:
                val_inputs = _forward(before, Z_val)
                validation = (val_inputs, val_inputs)
            # XLA (jit_compile) made small fits 2-6x slower on a CPU, compilation included.
            phase_model = keras.Sequential([keras.Input((inputs.shape[1],)), *trained], name=f"phase_{label}")
            phase_model.compile(
                optimizer=keras.optimizers.Adam(float(self.learning_rate)), loss="mse", jit_compile=False
            )
            fitted = phase_model.fit(
                inputs,
                inputs,
                batch_size=int(self.batch_size),
                epochs=epochs,
                validation_data=validation,
                shuffle=True,
                verbose=self.verbose,
            )
            history.append(
                {
                    "phase": label,
                    "epochs": epochs,
                    "loss": [float(v) for v in fitted.history["loss"]],
                    "val_loss": [float(v) for v in fitted.history["val_loss"]] if validation else None,
                }
            )
        self.model_ = network
        self.tied_ = tied
        self.history_ = history
        self.n_parameters_ = _count_parameters(network)
        return self

    def _check_input(self, X: Any, n_columns: int, what: str) -> np.ndarray:
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != n_columns:
            raise ValueError(f"{what} has {X.shape[1]} columns, but this autoencoder expects {n_columns}")
        return X

    def transform(self, X: Any) -> np.ndarray:
        """Encode rows into codings (output of the codings layer L3).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features_in_)

        Returns
        -------
        codes : ndarray of shape (n_samples, n_hidden[2]), float64
        """
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        Z = ((X - self.mean_) / self.scale_).astype(np.float32)
        return _forward(self.model_.encoder_layers, Z).astype(np.float64)

    def inverse_transform(self, X: Any) -> np.ndarray:
        """Decode codings back to feature space, in the original units of the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_hidden[2])
            Codings, e.g. from :meth:`transform`.

        Returns
        -------
        decoded : ndarray of shape (n_samples, n_features_in_), float64
        """
        check_is_fitted(self, "model_")
        codes = self._check_input(X, self.model_.n_hidden[2], "codings").astype(np.float32)
        decoded = _forward(self.model_.decoder_layers, codes).astype(np.float64)
        return decoded * self.scale_ + self.mean_

    def reconstruct(self, X: Any) -> np.ndarray:
        """Encode then decode: ``inverse_transform(transform(X))``, shape (n_samples, n_features_in_)."""
        return self.inverse_transform(self.transform(X))

    def score(self, X: Any, y: Any = None) -> float:
        """Negative mean squared reconstruction error over all entries of ``X``, in its original units.

        Higher is better (scikit-learn convention), so ``-score(X)`` is the
        thesis' criterion MSE(x, x') (section 3.2.4).
        """
        X = check_array(X, dtype=np.float64)
        return -float(np.mean((X - self.reconstruct(X)) ** 2))

    def info(self) -> dict[str, Any]:
        """Architecture, parameter counts and training history of the fitted model.

        Returns
        -------
        dict
            ``n_features_in``, ``n_hidden``, ``tied_pairs`` (list of pair
            names), ``layers`` (one dict per layer L1-L6: ``name``, ``units_in``,
            ``units_out``, ``activation``, ``tied_to`` (partner's name or None),
            ``kernel_parameters``, ``bias_parameters``), ``n_parameters``,
            ``standardize``, ``history`` (one dict per phase: ``phase``,
            ``epochs``, ``final_loss``, ``final_val_loss``).
        """
        check_is_fitted(self, "model_")
        layers, units_in = [], self.n_features_in_
        for layer in [*self.model_.encoder_layers, *self.model_.decoder_layers]:
            kernel, bias = _layer_parameters(layer)
            partner = getattr(layer, "partner", None)
            layers.append(
                {
                    "name": layer.name,
                    "units_in": units_in,
                    "units_out": bias,
                    "activation": getattr(layer.activation, "__name__", str(layer.activation)),
                    "tied_to": partner.name if partner is not None else None,
                    "kernel_parameters": kernel,
                    "bias_parameters": bias,
                }
            )
            units_in = bias
        return {
            "n_features_in": self.n_features_in_,
            "n_hidden": list(self.model_.n_hidden),
            "tied_pairs": list(self.tied_),
            "layers": layers,
            "n_parameters": self.n_parameters_,
            "standardize": bool(self.standardize),
            "history": [
                {
                    "phase": entry["phase"],
                    "epochs": entry["epochs"],
                    "final_loss": entry["loss"][-1],
                    "final_val_loss": entry["val_loss"][-1] if entry["val_loss"] else None,
                }
                for entry in self.history_
            ],
        }

    def save(self, path: str | Path) -> Path:
        """Write the fitted autoencoder to folder ``path`` (created if missing).

        The folder holds ``network.keras`` (the Keras model: configuration and
        weights) and ``estimator.json`` (parameters, standardisation, history).
        Existing files of those names are replaced.

        Returns
        -------
        Path
            The folder.
        """
        check_is_fitted(self, "model_")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        self.model_.save(folder / _NETWORK_FILE)
        params = self.get_params()
        if not isinstance(params["random_state"], (numbers.Integral, type(None))):
            params["random_state"] = None
        state = {
            "format": _FORMAT,
            "params": params,
            "n_features_in_": int(self.n_features_in_),
            "mean_": self.mean_.tolist(),
            "scale_": self.scale_.tolist(),
            "history_": self.history_,
        }
        (folder / _ESTIMATOR_FILE).write_text(json.dumps(state, indent=1))
        return folder

    @classmethod
    def load(cls, path: str | Path) -> TiedAutoencoder:
        """Read an autoencoder written by :meth:`save`.

        Sequences in the parameters come back as tuples; a ``random_state``
        that was a RandomState instance comes back as None.

        Raises
        ------
        ValueError
            If the folder does not hold a saved autoencoder.
        """
        folder = Path(path)
        try:
            state = json.loads((folder / _ESTIMATOR_FILE).read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"{folder} does not hold a saved TiedAutoencoder ({error})") from error
        if state.get("format") != _FORMAT:
            raise ValueError(f"{folder / _ESTIMATOR_FILE} is not a {_FORMAT} file")
        params = state["params"]
        params["n_hidden"] = tuple(params["n_hidden"])
        params["phases"] = tuple(tuple(phase) for phase in params["phases"])
        if isinstance(params["tying"], list):
            params["tying"] = tuple(params["tying"])
        estimator = cls(**params)
        keras = _keras_objects()[0]
        estimator.model_ = keras.saving.load_model(folder / _NETWORK_FILE, compile=False)
        estimator.n_features_in_ = state["n_features_in_"]
        estimator.mean_ = np.asarray(state["mean_"], dtype=np.float64)
        estimator.scale_ = np.asarray(state["scale_"], dtype=np.float64)
        estimator.history_ = state["history_"]
        estimator.tied_ = tuple(estimator.model_.tied)
        estimator.n_parameters_ = _count_parameters(estimator.model_)
        return estimator


def _tensorflow_on_one_thread() -> None:
    """Worker initializer of :func:`grid_search`: TensorFlow runs each model on one thread."""
    _keras_objects()
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)


def _grid_row(job: tuple) -> dict[str, Any]:
    """One configuration of :func:`grid_search` trained on its training rows and scored on its held-out rows;
    with a ``models_dir``, the model saved there with its codes of every row (``order``: the rows' shuffle)."""
    X_train, X_heldout, n_hidden, tying, phases, estimator_params, random_state, models_dir, order = job
    tied = parse_tying(tying)
    model = TiedAutoencoder(
        **estimator_params, n_hidden=n_hidden, tying=tying, phases=phases, random_state=random_state
    ).fit(X_train)
    architecture = "-".join(f"{'T' * (pair in tied)}{units}" for pair, units in zip(PAIRS, n_hidden, strict=True))
    h1, h2, code_size = n_hidden
    row: dict[str, Any] = {
        "h1": int(h1),
        "h2": int(h2),
        "code": int(code_size),
        "tying": tying_label(tied),
        "architecture": architecture,
        "n_parameters": model.n_parameters_,
        "train_mse": -model.score(X_train),
        "heldout_mse": -model.score(X_heldout),
        "train_rows": len(X_train),
        "heldout_rows": len(X_heldout),
    }
    if models_dir is not None:
        folder = model.save(Path(models_dir) / architecture)
        codes = np.empty((len(order), code_size))
        codes[order[: len(X_heldout)]] = model.transform(X_heldout)
        codes[order[len(X_heldout) :]] = model.transform(X_train)
        np.save(folder / GRID_CODES_FILE, codes)
        row["model"] = str(folder)
    return row


def grid_search(
    X: Any,
    h1_values: Any,
    h2_values: Any,
    tyings: Any,
    code_size: int,
    *,
    validation_fraction: float = 0.1,
    phases: tuple[tuple[str, int], ...] = (("g", 50),),
    estimator_params: dict[str, Any] | None = None,
    random_state: int | None = None,
    n_jobs: int = 1,
    models_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Grid search over hidden sizes and tying by held-out reconstruction error (thesis section 3.2.4).

    Holds out ``validation_fraction`` of the rows at random, trains one
    :class:`TiedAutoencoder` per ``(h1, h2, tying)`` on the rest, and scores
    each by its mean squared reconstruction error on the held-out rows.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    h1_values, h2_values : iterable of int
        Units in hidden 1 and hidden 2 (thesis: 600-200 and 200-50).
    tyings : iterable of str or tuple
        Tying specifications (see :func:`parse_tying`); the thesis compared
        ``"none"`` and ``"outer"``.
    code_size : int
        Codings dimension (from the intrinsic dimension, section 3.3).
    validation_fraction : float, default=0.1
        Fraction of rows held out, in (0, 1).
    phases : sequence of (str, int), default=(("g", 50),)
        Training phases of every model.
    estimator_params : dict, optional
        Further :class:`TiedAutoencoder` parameters (``l2``, ``batch_size``, ...).
    random_state : int or None
        Seeds the split and every model.
    n_jobs : int, default=1
        Processes training the configurations (started afresh, each running
        TensorFlow on one thread).  Every model sees the same split and
        seed, so the rows do not depend on it.
    models_dir : str or Path, optional
        Folder in which every configuration's fitted model is saved
        (:meth:`TiedAutoencoder.save`, in a sub-folder named by its
        ``architecture``) with its codes of every row of ``X``, in ``X``'s
        order (:data:`GRID_CODES_FILE`).  The thesis applied the grid's best
        models themselves (section 3.2.4); so can the caller, without
        training the best again or loading TensorFlow in its own process.

    Returns
    -------
    list of dict
        One row per configuration, best (lowest ``heldout_mse``) first:
        ``h1``, ``h2``, ``code``, ``tying`` (canonical string),
        ``architecture`` (Table 3.3 notation, ``T`` marking a tied pair, e.g.
        ``"T400-150-18"``), ``n_parameters``, ``train_mse``, ``heldout_mse``
        (both in the original units of ``X``), ``train_rows`` and
        ``heldout_rows`` (how many rows each error is the mean over); with
        ``models_dir``, ``model`` (the folder the configuration's model was
        saved in).

    Notes
    -----
    Trains ``len(h1_values) * len(h2_values) * len(tyings)`` models; the
    cost of each is that of :meth:`TiedAutoencoder.fit`.  The thesis' 18
    configurations on 1,296 × 160 rows, 30 epochs of batches of 64, took
    94 s in one process and 55 s in two (``n_jobs=2``, two cores, the same
    rows): models this small keep one core busy each better than two
    TensorFlow threads share one model.  The processes are spawned, not
    forked, because TensorFlow may already be running in this one.
    """
    X = check_array(X, dtype=np.float64, ensure_min_samples=2)
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction!r}")
    n_heldout = round(validation_fraction * X.shape[0])
    if not 1 <= n_heldout <= X.shape[0] - 2:
        raise ValueError(f"validation_fraction={validation_fraction} of {X.shape[0]} rows leaves no held-out set")
    order = check_random_state(random_state).permutation(X.shape[0])
    X_heldout, X_train = X[order[:n_heldout]], X[order[n_heldout:]]
    settings = (phases, estimator_params or {}, random_state, models_dir, order)
    jobs = [
        (X_train, X_heldout, (h1, h2, code_size), tying, *settings)
        for h1 in h1_values
        for h2 in h2_values
        for tying in tyings
    ]
    if n_jobs > 1 and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(
            min(n_jobs, len(jobs)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_tensorflow_on_one_thread,
        ) as pool:
            rows = list(pool.map(_grid_row, jobs))
    else:
        rows = [_grid_row(job) for job in jobs]
    return sorted(rows, key=lambda row: row["heldout_mse"])
