"""ONNX Runtime sessions: one per model per process, checked against the shapes our code feeds and reads.

A session's `run` is safe to call from several threads at once (ONNX Runtime guarantees it), so one
session serves every `asyncio.to_thread` call of a worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from shared.cpu import available_cpus
from shared.ml import ModelLoadError

# Dimension spec: an int must match exactly; None accepts anything (a dynamic axis such as the batch).
Dims = tuple[int | None, ...]


@dataclass(frozen=True)
class TensorSpec:
    name: str | None  # None: match by position
    dims: Dims
    dtype: str | tuple[str, ...] = "tensor(float)"

    @property
    def dtypes(self) -> tuple[str, ...]:
        return (self.dtype,) if isinstance(self.dtype, str) else self.dtype


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # 0: one thread per CPU this process may use (a container's quota, not the host's cores, which ONNX
    # Runtime would count); one inter-op thread because our graphs are sequential and callers parallelise
    # across requests themselves.
    options.intra_op_num_threads = intra_op_threads or available_cpus()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle pool threads sleep instead of spinning: a worker also decodes and resizes images between runs,
    # and spinning threads would burn the cores that work needs (measured with bench/ml.py, per CPU second).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def load_session(
    path: Path,
    *,
    what: str,
    setting: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    intra_op_threads: int = 0,
) -> ort.InferenceSession:
    """Open `path` and check its first inputs/outputs against the specs; a mismatch names the file and setting."""
    if not Path(path).is_file():
        raise ModelLoadError(f"{what}: model file {path} does not exist (setting {setting})")
    try:
        session = ort.InferenceSession(str(path), session_options(intra_op_threads), providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable graphs
        raise ModelLoadError(f"{what}: {path} is not a loadable ONNX model (setting {setting}): {exc}") from exc
    check_io(session, path=path, what=what, setting=setting, inputs=inputs, outputs=outputs)
    return session


def check_io(
    session: ort.InferenceSession,
    *,
    path: Path,
    what: str,
    setting: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
) -> None:
    for kind, specs, actual in (
        ("input", inputs, session.get_inputs()),
        ("output", outputs, session.get_outputs()),
    ):
        by_name = {a.name: a for a in actual}
        for position, spec in enumerate(specs):
            if spec.name is not None:
                node = by_name.get(spec.name)
                if node is None:
                    raise ModelLoadError(
                        f"{what}: {path} has no {kind} named {spec.name!r} (it has {sorted(by_name)}); "
                        f"check setting {setting}"
                    )
            elif position < len(actual):
                node = actual[position]
            else:
                raise ModelLoadError(f"{what}: {path} has {len(actual)} {kind}s, expected at least {len(specs)}")
            if not _dims_match(node.shape, spec.dims) or node.type not in spec.dtypes:
                wanted = [d if d is not None else "any" for d in spec.dims]
                raise ModelLoadError(
                    f"{what}: {kind} {node.name!r} of {path} is {node.type} {list(node.shape)}, expected "
                    f"{' or '.join(spec.dtypes)} {wanted}; check setting {setting}"
                )


def _dims_match(actual: list[int | str | None], expected: Dims) -> bool:
    if len(actual) != len(expected):
        return False
    # A named (symbolic) dimension in the model is dynamic: it accepts the size we will feed.
    return all(e is None or not isinstance(a, int) or a == e for a, e in zip(actual, expected, strict=True))


def fixed_dim(session: ort.InferenceSession, *, output: bool, index: int, axis: int) -> int | None:
    """The static size of one axis of an input/output, or None when the model leaves it dynamic."""
    nodes = session.get_outputs() if output else session.get_inputs()
    dim = nodes[index].shape[axis]
    return dim if isinstance(dim, int) else None
