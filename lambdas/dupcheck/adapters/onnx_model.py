"""EmbeddingModel on onnxruntime: the product model file (dupcheck_tools/product_model.py builds it).

One session per process, one thread inside it: a picture is one small network run (~19 ms on one
core here), requests run in parallel on the server's threads (or Lambda's processes), and a
second intra-op thread only contends with them (the same reasoning as bootstrap.one_blas_thread).
The session is made once and shared: onnxruntime's `run` is safe to call from many threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dupcheck.core.models import PRODUCT_MODEL


class OnnxEmbeddingModel:
    def __init__(self, path: Path | str) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # warnings about unused initialisers are not ours to act on
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        props = self._session.get_modelmeta().custom_metadata_map
        self.name = props.get("dupcheck.model", "")
        if self.name != PRODUCT_MODEL:
            raise ValueError(f"{path} is model {self.name or 'unnamed'!r}, not {PRODUCT_MODEL!r}: rebuild it "
                             "with `python -m dupcheck_tools.product_model`")  # fmt: skip
        self.source = props.get("dupcheck.source", "")

    def run(self, pictures: np.ndarray) -> np.ndarray:
        (vectors,) = self._session.run(["embedding"], {"image": np.ascontiguousarray(pictures, dtype=np.uint8)})
        return np.asarray(vectors)
