"""The onnxruntime session: loaded once per process, checked against its card, warmed up.

``InferenceSession.run`` is thread-safe, so one session serves every worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from authenticator.errors import ModelError
from authenticator.vision.card import ModelCard, SelfTest

SELF_TEST_PREFIX = 32
#: onnxruntime's session key for exact INT8 products on x86 CPUs without VNNI (``OnnxModel``).
X64_QUANT_PRECISION = "session.x64quantprecision"


def session_options(
    intra_op_threads: int = 0, inter_op_threads: int = 1, *, exact_int8: bool = True
) -> ort.SessionOptions:
    """The options every onnxruntime session of this project uses, serving and training alike.

    A graph's self-test is recorded by training and checked by serving: both must compute the same
    numbers, so both must run the same kernels (see the INT8 precision note below).
    """
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = intra_op_threads
    opts.inter_op_num_threads = inter_op_threads
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Busy-waiting worker threads steal the core that decoding and the other requests need.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # x86 CPUs without VNNI (AVX2, AVX-512 without VNNI) run the INT8 convolutions' U8S8 products
    # through a 16-bit saturating add: on such a CPU the shipped graph's self-test logit is off by
    # 3.6 and the model refuses to serve. ``exact_int8`` makes onnxruntime use its exact U8U8
    # kernels everywhere (the card's figures to 6 digits). That is not free where the default
    # kernels are exact too: on an AMD EPYC with AVX-512 VNNI it made an inference 2.6x slower
    # (20.5 against 7.9 ms) for bit-identical outputs, so serving picks per machine (OnnxModel).
    if exact_int8:
        opts.add_session_config_entry(X64_QUANT_PRECISION, "1")
    return opts


def inference_session(graph: Path | bytes, threads: int = 0) -> ort.InferenceSession:
    """A CPU session on ``graph`` (a path or serialized bytes) with :func:`session_options`."""
    source = str(graph) if isinstance(graph, Path) else graph
    return ort.InferenceSession(source, sess_options=session_options(threads), providers=["CPUExecutionProvider"])


def self_test_input(size: int) -> np.ndarray:
    """Two fixed (3, size, size) inputs in [-1, 1] for :class:`SelfTest`: smooth sinusoids, so
    every machine builds the same float32 tensor, with detail at several scales so every layer
    sees non-trivial activations."""
    i = np.arange(size, dtype=np.float64)[:, None] / size
    j = np.arange(size, dtype=np.float64)[None, :] / size
    first = [np.sin(2 * np.pi * ((c + 1) * 3 * i + 2 * j)) for c in range(3)]
    second = [np.cos(2 * np.pi * (5 * i * j + (c + 1) * j)) * np.sin(7 * np.pi * i) for c in range(3)]
    return np.stack([np.stack(first), np.stack(second)]).astype(np.float32)


def record_self_test(outputs: ModelOutputs) -> SelfTest:
    """The card's record of what this graph computes on :func:`self_test_input` (training side)."""
    if outputs.embeddings is None:
        raise ModelError("the graph has no embedding output to record a self-test from")
    return SelfTest(
        logits=[round(float(z), 6) for z in outputs.logits],
        embedding_prefix=[[round(float(v), 6) for v in e[:SELF_TEST_PREFIX]] for e in outputs.embeddings],
    )


def check_self_test(expected: SelfTest, outputs: ModelOutputs) -> None:
    """Raise :class:`ModelError` when this machine's outputs on the probe differ from the card's."""
    if len(expected.logits) != len(outputs.logits):
        raise ModelError(
            f"the card's self-test has {len(expected.logits)} probes, the graph gave {len(outputs.logits)}"
        )
    logit_diff = float(np.abs(np.asarray(expected.logits) - outputs.logits).max())
    cosines = [1.0]
    if outputs.embeddings is not None:
        want = np.asarray(expected.embedding_prefix, dtype=np.float64)
        got = outputs.embeddings[:, : want.shape[1]].astype(np.float64)
        cosines = [
            float(w @ g / (np.linalg.norm(w) * np.linalg.norm(g) + 1e-12)) for w, g in zip(want, got, strict=True)
        ]
    if logit_diff > expected.logit_tolerance or min(cosines) < expected.min_cosine:
        raise ModelError(
            "the model computes different outputs on this machine than when it was trained and measured "
            f"(self-test logit difference {logit_diff:.4f}, tolerance {expected.logit_tolerance}; embedding "
            f"cosine {min(cosines):.5f}, minimum {expected.min_cosine}); refusing to serve its verdicts. "
            f"Check the onnxruntime version ({ort.__version__}) and the CPU's instruction set."
        )


def _session(path: Path, intra: int, inter: int, *, exact_int8: bool) -> ort.InferenceSession:
    opts = session_options(intra, inter, exact_int8=exact_int8)
    # Memory patterns pre-plan one big block per input shape: measured here at 448 px batch 1,
    # turning them off saves ~50 MB of resident memory at the same latency.
    opts.enable_mem_pattern = False
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors
        raise ModelError(f"onnxruntime cannot load {path}: {exc}") from exc


def _same_outputs(a: ort.InferenceSession, b: ort.InferenceSession, input_name: str, probe: np.ndarray) -> bool:
    """Whether two sessions of one graph give bit-identical outputs on every image of ``probe``
    (the self-test's inputs: smooth patterns with detail at every scale, so every layer works)."""
    if input_name not in {i.name for i in a.get_inputs()}:
        return False  # the caller reports the missing input; serve with the exact kernels meanwhile
    for x in probe:
        feed = {input_name: x[None]}
        if not all(np.array_equal(p, q) for p, q in zip(a.run(None, feed), b.run(None, feed), strict=True)):
            return False
    return True


@dataclass(frozen=True)
class ModelOutputs:
    logits: np.ndarray  # (N,) authenticity logit, positive = authentic
    imagenet_logits: np.ndarray | None  # (N, 1000)
    embeddings: np.ndarray | None  # (N, D)


class OnnxModel:
    """A checked ONNX graph with the card's input and output names."""

    def __init__(
        self,
        card: ModelCard,
        card_path: Path,
        *,
        intra_op_threads: int = 0,
        inter_op_threads: int = 1,
        max_batch: int = 1,
    ):
        card.verify_files(card_path)  # refuses a file whose sha256 differs from the card
        self.card = card
        path = card.onnx_path(card_path)
        exact = _session(path, intra_op_threads, inter_op_threads, exact_int8=True)
        fast = _session(path, intra_op_threads, inter_op_threads, exact_int8=False)
        probe = self_test_input(card.preprocessing.input_size)
        self.exact_kernels_only = not _same_outputs(exact, fast, card.input_name, probe)
        """True where this CPU's default INT8 kernels compute other numbers than the exact ones
        (no VNNI): the exact ones serve. Elsewhere the default ones do, faster, to the bit."""
        self.session = exact if self.exact_kernels_only else fast
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if card.input_name not in inputs:
            raise ModelError(f"the ONNX graph has no input {card.input_name!r} (has {sorted(inputs)})")
        if not card.output_names or card.output_names[0] not in outputs:
            raise ModelError(f"the ONNX graph lacks output {card.output_names[:1]} (has {sorted(outputs)})")
        self._outputs = [n for n in ("authenticity_logit", "imagenet_logits", "embedding") if n in outputs]
        if card.output_names[0] not in self._outputs:
            self._outputs.insert(0, card.output_names[0])
        self.input_size = card.preprocessing.input_size
        # onnxruntime's memory arena keeps its high-water mark for the life of the process:
        # at 448 px each image of a batch pins ~100 MB, so large batches are split (bench/vision.py).
        self.max_batch = max(1, max_batch)

    def warm_up(self) -> None:
        """Run once so the first request does not pay for allocation and kernel selection, and
        check the card's self-test where it has one."""
        if self.card.self_test is None:
            self.run(np.zeros((1, 3, self.input_size, self.input_size), dtype=np.float32))
            return
        check_self_test(self.card.self_test, self.run(self_test_input(self.input_size)))

    def run(self, batch: np.ndarray, options: ort.RunOptions | None = None) -> ModelOutputs:
        """``batch``: (N, 3, S, S) float32, preprocessed with the card's spec; run in chunks of
        ``max_batch`` images. ``options``: onnxruntime's run options (a run stopped through them
        raises)."""
        parts: dict[str, list[np.ndarray]] = {n: [] for n in self._outputs}
        for i in range(0, len(batch), self.max_batch):
            out = self.session.run(self._outputs, {self.card.input_name: batch[i : i + self.max_batch]}, options)
            for name, value in zip(self._outputs, out, strict=True):
                parts[name].append(np.asarray(value))
        logit_name = self.card.output_names[0]
        res = {n: np.concatenate(vs) for n, vs in parts.items() if n != logit_name}
        return ModelOutputs(
            logits=np.concatenate([v.reshape(-1) for v in parts[logit_name]]).astype(np.float32),
            imagenet_logits=res.get("imagenet_logits"),
            embeddings=res.get("embedding"),
        )

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Authenticity logits only, in chunks of ``max_batch`` (used by the occlusion heat maps)."""
        name = self.card.output_names[0]
        parts = [
            np.asarray(self.session.run([name], {self.card.input_name: batch[i : i + self.max_batch]})[0]).reshape(-1)
            for i in range(0, len(batch), self.max_batch)
        ]
        return np.concatenate(parts).astype(np.float32)
