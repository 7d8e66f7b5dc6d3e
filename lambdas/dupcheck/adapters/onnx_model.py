"""EmbeddingModel on onnxruntime: the product model file (dupcheck_tools/product_model.py builds it).

One session per process, one thread inside it: a picture is one small network run (~19 ms on one
core here), requests run in parallel on the server's threads (or Lambda's processes), and a
second intra-op thread only contends with them (the same reasoning as bootstrap.one_blas_thread).
The session is made once and shared: onnxruntime's `run` is safe to call from many threads.

Each run gives its working memory back when it ends (onnxruntime's arena shrinkage, a run option):
the arena otherwise keeps what the most runs at once ever took, ~7.5 MB a run (8 threads at once
left the server 60 MB above idle for good; docs/lab/benchmarks.md, memory after a load). Its
cost is within a run's noise here, where the arena's first chunk holds one run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dupcheck.core.models import PRODUCT_MODEL

# onnxruntime's run option (onnxruntime_run_options_config_keys.h): the named arenas give back what
# a run took beyond their first chunk when the run ends.
ARENA_SHRINKAGE = "memory.enable_memory_arena_shrinkage"


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
        self._run_options = ort.RunOptions()
        self._run_options.add_run_config_entry(ARENA_SHRINKAGE, "cpu:0")

    def run(self, pictures: np.ndarray) -> np.ndarray:
        inputs = {"image": np.ascontiguousarray(pictures, dtype=np.uint8)}
        (vectors,) = self._session.run(["embedding"], inputs, self._run_options)
        return np.asarray(vectors)
