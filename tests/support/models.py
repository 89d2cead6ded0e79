"""Small real models with several inputs and outputs (and integer, recurrent ones), trained briefly on
learnable synthetic data, with their data saved in the studio's data contract (arrays named after the inputs,
labels ``y_<output name>``). Built by the tests themselves: no downloads."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

SAMPLES = 240


@dataclass(frozen=True)
class Built:
    model: Path
    data: Path


def _fit(model, inputs, labels, losses, epochs: int = 12) -> None:
    model.compile(optimizer="adam", loss=losses)
    model.fit(inputs, labels, epochs=epochs, batch_size=32, verbose=0)


def image_and_table(folder: Path, seed: int = 0) -> Built:
    """Inputs ``stats`` (3 numbers) and ``image`` (8x8x1), declared in that order (the converter orders them
    by name: image, stats); one 4-class softmax ``kind``. The class depends on both inputs."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    image = rng.uniform(0, 1, (SAMPLES, 8, 8, 1)).astype(np.float32)
    stats = rng.normal(0, 1, (SAMPLES, 3)).astype(np.float32)
    bright = rng.integers(0, 2, SAMPLES)
    image[bright == 1] += 0.5
    kind = bright * 2 + (stats[:, 0] > 0).astype(np.int64)
    stats_in = keras.Input((3,), name="stats")
    image_in = keras.Input((8, 8, 1), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(image_in)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Concatenate()([x, keras.layers.Dense(8, activation="relu")(stats_in)])
    out = keras.layers.Dense(4, activation="softmax", name="kind")(keras.layers.Dense(16, activation="relu")(x))
    model = keras.Model([stats_in, image_in], out)
    _fit(model, {"stats": stats, "image": image}, kind, "sparse_categorical_crossentropy", epochs=40)
    path = folder / "image_and_table.keras"
    model.save(path)
    np.savez(folder / "image_and_table.npz", stats=stats, image=image, y=kind)
    return Built(path, folder / "image_and_table.npz")


def two_heads(folder: Path, seed: int = 0) -> Built:
    """One 8x8x1 ``pixels`` input; outputs ``digit`` (3-class softmax) and ``ink`` (regression: mean pixel)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0, 1, (SAMPLES, 8, 8, 1)).astype(np.float32)
    digit = rng.integers(0, 3, SAMPLES)
    for cls in range(3):
        pixels[digit == cls, cls * 2:cls * 2 + 2, :, 0] += 0.8
    ink = pixels.mean(axis=(1, 2, 3)).astype(np.float32)
    inputs = keras.Input((8, 8, 1), name="pixels")
    x = keras.layers.Conv2D(8, 3, activation="relu", padding="same")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    model = keras.Model(inputs, [keras.layers.Dense(3, activation="softmax", name="digit")(x),
                                 keras.layers.Dense(1, name="ink")(x)])
    _fit(model, pixels, {"digit": digit, "ink": ink}, {"digit": "sparse_categorical_crossentropy", "ink": "mse"})
    path = folder / "two_heads.keras"
    model.save(path)
    np.savez(folder / "two_heads.npz", x=pixels, y_digit=digit, y_ink=ink)
    return Built(path, folder / "two_heads.npz")


def bert_shaped(folder: Path, seed: int = 0, vocab: int = 50, length: int = 12) -> Built:
    """Three int32 inputs ``input_ids``, ``attention_mask``, ``token_type_ids``; Embedding + MultiHeadAttention
    with the mask; a 2-class head ``label`` (does token 7 occur among the unmasked tokens?)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    ids = rng.integers(1, vocab, (SAMPLES, length)).astype(np.int32)
    lengths = rng.integers(6, length + 1, SAMPLES)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int32)
    ids = ids * mask
    types = np.zeros_like(ids)
    types[:, length // 2:] = 1
    label = np.any((ids == 7) | (ids == 8), axis=1).astype(np.int64)
    ids_in = keras.Input((length,), dtype="int32", name="input_ids")
    mask_in = keras.Input((length,), dtype="int32", name="attention_mask")
    types_in = keras.Input((length,), dtype="int32", name="token_type_ids")
    x = keras.layers.Add()([keras.layers.Embedding(vocab, 16)(ids_in), keras.layers.Embedding(2, 16)(types_in)])
    attention_mask = keras.layers.Reshape((1, length))(mask_in)
    x = keras.layers.MultiHeadAttention(num_heads=2, key_dim=8)(x, x, attention_mask=attention_mask)
    x = keras.layers.GlobalMaxPooling1D()(x)
    out = keras.layers.Dense(2, activation="softmax", name="label")(x)
    model = keras.Model([ids_in, mask_in, types_in], out)
    _fit(model, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}, label,
         "sparse_categorical_crossentropy", epochs=15)
    path = folder / "bert_shaped.keras"
    model.save(path)
    np.savez(folder / "bert_shaped.npz", input_ids=ids, attention_mask=mask, token_type_ids=types, y=label)
    return Built(path, folder / "bert_shaped.npz")


def text_embedding(folder: Path, seed: int = 0, vocab: int = 40, length: int = 10) -> Built:
    """One int32 ``tokens`` input -> Embedding -> pooling -> 2 classes (is token 3 present?)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, vocab, (SAMPLES, length)).astype(np.int32)
    label = np.any(tokens == 3, axis=1).astype(np.int64)
    inputs = keras.Input((length,), dtype="int32", name="tokens")
    x = keras.layers.GlobalMaxPooling1D()(keras.layers.Embedding(vocab, 8)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="present")(
        keras.layers.Dense(16, activation="relu")(x)))
    _fit(model, tokens, label, "sparse_categorical_crossentropy", epochs=25)
    path = folder / "text_embedding.keras"
    model.save(path)
    np.savez(folder / "text_embedding.npz", x=tokens, y=label)
    return Built(path, folder / "text_embedding.npz")


def uint8_images(folder: Path, seed: int = 0) -> Built:
    """A uint8 8x8x1 input scaled inside the model (Rescaling), 2 classes (bright top half or bottom half)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 2, SAMPLES)
    pixels = rng.integers(0, 120, (SAMPLES, 8, 8, 1))
    for i, cls in enumerate(label):
        pixels[i, cls * 4:cls * 4 + 4] += 130
    pixels = pixels.astype(np.uint8)
    inputs = keras.Input((8, 8, 1), dtype="uint8", name="pixels")
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="half")(x))
    _fit(model, pixels, label, "sparse_categorical_crossentropy", epochs=20)
    path = folder / "uint8_images.keras"
    model.save(path)
    np.savez(folder / "uint8_images.npz", x=pixels, y=label)
    return Built(path, folder / "uint8_images.npz")


def lstm_sequence(folder: Path, seed: int = 0, steps: int = 10) -> Built:
    """A (10 steps, 3 features) float sequence -> LSTM(8) -> 2 classes (is the first feature's sum positive?)."""
    import keras

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (SAMPLES, steps, 3)).astype(np.float32)
    label = (x[:, :, 0].sum(axis=1) > 0).astype(np.int64)
    inputs = keras.Input((steps, 3), name="sequence")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax", name="sign")(
        keras.layers.LSTM(8)(inputs)))
    _fit(model, x, label, "sparse_categorical_crossentropy", epochs=10)
    path = folder / "lstm_sequence.keras"
    model.save(path)
    np.savez(folder / "lstm_sequence.npz", x=x, y=label)
    return Built(path, folder / "lstm_sequence.npz")
