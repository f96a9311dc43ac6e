"""The assessment service: photos of one item in, a calibrated and explained decision out.

Pipeline (issue 4): per photo, safe decode -> quality gate -> preprocessing -> one forward pass
(the photos of a request in parallel on the assessor's thread pool of ``vision_threads``, at
most ``ort_max_concurrent_runs`` forward passes at once); then the category / unfamiliar-photo
check of all scored photos at once -> aggregation of the usable photos -> temperature -> the
card's two thresholds -> evidence (per-photo scores, reuse flags, optional occlusion heat maps).
The result is the same, to the bit, whatever the number of threads.

Costs (issue 11): before any pixel is decoded, every photo's header is read
(:func:`~authenticator.vision.decode.read_header`) and a request whose photos together would
decode more than ``vision_max_request_megapixels`` is refused with
:class:`~authenticator.errors.PixelBudgetExceeded`. The photos then run on the assessor's
:class:`~authenticator.vision.fairness.FairExecutor` (through
:class:`~authenticator.vision.photo_scheduler.PhotoScheduler`): one queue per ``principal``, at most
``vision_threads`` photos of one principal at once out of twice that many workers, the queues
served by deficit round robin on each photo's decoded megapixels, so one platform's costly
uploads cannot starve another's assessment (``bench/fairness.py`` measures it).

Failure rule (one rule, everywhere): :meth:`Assessor.assess` raises **only when no photo of the
request can be decoded** (there is nothing to assess: the API answers 4xx, the CLI exits
non-zero): a single photo's own typed :class:`~authenticator.errors.ImageError`, or for several
:class:`~authenticator.errors.NoUsablePhoto` naming each photo and its error code.
Otherwise an undecodable photo becomes a per-photo result whose reasons carry the error code
(``corrupt_image``, ``unsupported_format``, ...) and the other photos are assessed.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import Counter
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, Field

from authenticator.config import Settings
from authenticator.errors import ImageError, InvalidInput, NoUsablePhoto, PixelBudgetExceeded
from authenticator.vision.capture_guides import Framing, gate_thresholds
from authenticator.vision.card import ModelCard, Thresholds
from authenticator.vision.category import (
    CategoryConfig,
    CategoryResult,
    ReferenceBank,
    bank_similarities,
    categorize,
)
from authenticator.vision.decision import Decision, aggregate_logits, calibrate, decide
from authenticator.vision.decode import DecodeLimits, decode_image, model_decode_size, read_header
from authenticator.vision.heap import release_freed_heap
from authenticator.vision.heatmap import occlusion_maps, overlay_png
from authenticator.vision.line_check import (
    OperatingPoint,
    ProductLineUse,
    contradiction,
    load_bank_lines,
    operating_point,
)
from authenticator.vision.live_work import LIVE_WORK
from authenticator.vision.phash import MAX_REUSE_MATCHES, PhotoReuseIndex, phash, phash_hex
from authenticator.vision.photo_scheduler import PhotoScheduler, photo_cost
from authenticator.vision.preprocess import composite_alpha, normalize, resize_to_input
from authenticator.vision.product_lines import DeclaredLine
from authenticator.vision.quality import gate, measure_quality
from authenticator.vision.reasons import Reason, reason
from authenticator.vision.runtime import OnnxModel

__all__ = [
    "Assessment",
    "Assessor",
    "ModelInfo",
    "PhotoInput",
    "PhotoResult",
    "Reason",
    "ReusedFrom",
]


@dataclass(frozen=True)
class PhotoInput:
    """One uploaded photo: the name the user gave it, its bytes and, when the uploader said, the
    view of the capture guide it shows (``framing`` sets what the quality gate asks of it:
    :mod:`authenticator.vision.capture_guides`)."""

    filename: str
    data: bytes
    view: str | None = None
    framing: Framing = "whole"


class ModelInfo(BaseModel):
    name: str
    version: str
    sha256: str


class ReusedFrom(BaseModel):
    """A photo of another item with (almost) the same perceptual hash."""

    item_id: str
    photo_sha256: str
    distance: int


class PhotoResult(BaseModel):
    file: str
    sha256: str
    width: int | None = None
    height: int | None = None
    probability_authentic: float | None = Field(
        default=None, description="Calibrated, from this photo alone; null when the photo was not scored."
    )
    logit: float | None = None
    category: str | None = None
    category_evidence: dict[str, Any] | None = None
    quality: dict[str, float] | None = None
    reasons: list[Reason] = Field(default_factory=list)
    phash: str | None = Field(default=None, description="64-bit DCT pHash, 16 hex digits.")
    reused_from: list[ReusedFrom] = Field(default_factory=list)
    view: str | None = Field(default=None, description="The capture guide's view the uploader declared.")


class Assessment(BaseModel):
    decision: Decision
    probability_authentic: float | None
    category: str | None
    reasons: list[Reason]
    thresholds: Thresholds
    aggregation: str
    temperature: float
    model: ModelInfo
    photos: list[PhotoResult]
    product_line: ProductLineUse | None = Field(
        default=None, description="The line the item was judged as and whose operating point the verdict used."
    )
    #: PNG overlays keyed by photo sha256 (only with ``heatmaps=True``); not part of the JSON.
    heatmaps: dict[str, bytes] = Field(default_factory=dict, exclude=True)


@dataclass
class _Work:
    """Per-photo state while a request is assessed (the decoded pixels are not kept, and the
    network input only for heat maps, so many large photos do not pile up in memory)."""

    result: PhotoResult
    usable: bool = False
    square: np.ndarray | None = None  # uint8 network-input square (heat maps only)
    x: np.ndarray | None = None  # (3, S, S) float32 network input (heat maps only)
    logit: float = float("nan")  # raw authenticity logit (a float32 value)
    imagenet: np.ndarray | None = None  # (1000,) ImageNet logits
    embedding: np.ndarray | None = None  # (D,)
    sims: np.ndarray | None = None  # (M,) cosine similarity to each reference-bank photo
    cat: CategoryResult | None = None
    unfamiliar: bool = False  # farther from the reference bank than the card's distance threshold
    unvalidated: bool = False  # shows a category the card gives no verdict for (a watch)
    error: ImageError | None = None


_CACHE: dict[tuple[Any, ...], Assessor] = {}
_CACHE_LOCK = threading.Lock()


class Assessor:
    """Holds the model (one onnxruntime session per process) and assesses photos; thread-safe."""

    def __init__(self, card: ModelCard, card_path: Path, settings: Settings, *, background: bool = False) -> None:
        self.card = card
        self.background = background
        """A shadow model's assessor: its work gives way to live assessments (:mod:`.live_work`)."""
        self.card_path = card_path
        self.settings = settings
        self.model = OnnxModel(
            card,
            card_path,
            intra_op_threads=settings.ort_intra_op_threads,
            inter_op_threads=settings.ort_inter_op_threads,
            max_batch=settings.ort_max_batch,
        )
        self.model.warm_up()
        # The photos already run in parallel on this assessor's pool (and the requests on the
        # server's): OpenCV's own worker threads would only add hand-offs and spin-waits on the
        # same cores. Process-wide; results do not depend on it.
        cv2.setNumThreads(1)
        # onnxruntime's arena keeps the high-water mark of the runs that were in flight together
        runs = settings.ort_max_concurrent_runs
        self._run_slots: AbstractContextManager[Any] = threading.BoundedSemaphore(runs) if runs else nullcontext()
        self.model_sha256 = card.sha256
        bank_file = card.ood.get("bank")
        self.bank = ReferenceBank.load(card_path.parent / str(bank_file)) if bank_file else None
        self.bank_lines = load_bank_lines(card_path.parent / str(bank_file)) if bank_file else None
        self.category_config = CategoryConfig.from_card(
            card.ood,
            distance_threshold=settings.ood_distance_threshold,
            category_distance_threshold=settings.ood_category_distance_threshold,
            imagenet_min_prob=settings.ood_imagenet_min_prob,
        )
        self.limits = DecodeLimits(
            max_bytes=settings.vision_max_photo_bytes,
            max_megapixels=settings.vision_max_megapixels,
            min_short_side=settings.vision_min_short_side,
        )
        self.reduce_to = model_decode_size(card.preprocessing.input_size) if settings.vision_reduced_decode else None
        self.max_request_megapixels = settings.vision_max_request_megapixels
        self.scheduler = PhotoScheduler(settings.resolved_vision_threads, self.limits.max_megapixels)
        self.gate_thresholds = settings.quality_thresholds
        # the session left unused and the load's temporaries are freed: hand their pages back
        release_freed_heap()

    @classmethod
    def from_settings(cls, settings: Settings) -> Assessor:
        """The process-wide assessor for ``settings.weights_dir / settings.model_name`` (loaded once)."""
        card_path = (settings.weights_dir / f"{settings.model_name}.card.json").resolve()
        key = (str(card_path), settings.model_dump_json())
        with _CACHE_LOCK:
            found = _CACHE.get(key)
            if found is None:
                found = cls(ModelCard.load(card_path), card_path, settings)
                _CACHE[key] = found
            return found

    @property
    def threads(self) -> int:
        """Photos of one principal at once (``vision_threads`` resolved; the scheduler's)."""
        return self.scheduler.threads

    @property
    def model_info(self) -> dict[str, str]:
        return {"name": self.card.name, "version": self.card.version, "sha256": self.card.sha256}

    # --- the pipeline -------------------------------------------------------------------------
    def assess(
        self,
        photos: Sequence[PhotoInput],
        *,
        item_id: str | None = None,
        reuse_index: PhotoReuseIndex | None = None,
        heatmaps: bool = False,
        principal: str | None = None,
        line: DeclaredLine | None = None,
    ) -> Assessment:
        """Assess the photos of one item. See the module docstring for when this raises.

        ``reuse_index`` is only read (photos of items other than ``item_id``); remembering this
        request's photos is the caller's job once its verdict is recorded (:meth:`remember`), so
        a request that fails later leaves no trace in the index.

        ``principal`` (the platform or API key the request comes from; None = one shared
        anonymous principal) is whose fair share of the workers the photos use.

        ``line`` is what the item was registered as (category, brand, model): the verdict uses that
        line's validated operating point (``inconclusive`` + ``product_line_not_validated`` when the
        card has none, ``product_line_contradicted`` when the photos show something else); without
        it, the card's global pair (see :mod:`authenticator.vision.line_check`).
        """
        if not photos:
            raise InvalidInput("An assessment needs at least one photo.")
        # a served model's assessment is live work: shadow models' runs give way to it
        with nullcontext() if self.background else LIVE_WORK.live():
            return self._assess(photos, item_id, reuse_index, heatmaps, principal, line)

    def _assess(
        self,
        photos: Sequence[PhotoInput],
        item_id: str | None,
        reuse_index: PhotoReuseIndex | None,
        heatmaps: bool,
        principal: str | None,
        line: DeclaredLine | None,
    ) -> Assessment:
        costs = self._check_budget(photos)
        # Each photo's whole chain on the assessor's pool (PIL, OpenCV, numpy and onnxruntime
        # release the GIL): 4 photos of 1600x1200 on the 2-core machine take ~43-50 ms p50 instead
        # of ~75 ms one after the other (INT8 448 px model; float model: ~90 instead of ~145 ms).
        work = self._each_photo(photos, costs, keep_input=heatmaps, principal=principal)
        errors = [w.error for w in work if w.error is not None]
        if len(errors) == len(work):
            if len(errors) == 1:
                raise errors[0]
            named = "; ".join(
                f"{w.result.file or f'photo {i}'}: {e.message.rstrip('.')}"
                for i, (w, e) in enumerate(zip(work, errors, strict=True), 1)
            )
            raise NoUsablePhoto(
                f"None of the {len(work)} photos can be read. {named}",
                photos=[{"file": w.result.file, "reasons": [e.code]} for w, e in zip(work, errors, strict=True)],
            )
        self._check_reuse(work, item_id, reuse_index)
        scored = [w for w in work if w.usable]
        maps: dict[str, bytes] = {}
        if scored:
            imagenet = emb = sims = None
            if all(w.imagenet is not None and w.embedding is not None for w in scored):
                imagenet = np.stack([w.imagenet for w in scored if w.imagenet is not None])
                emb = np.stack([w.embedding for w in scored if w.embedding is not None])
                if self.bank is not None:  # once, for the category check and the product-line vote
                    sims = bank_similarities(emb, self.bank.embeddings)
            cats = self._categorize(imagenet, emb, len(scored), sims)
            for i, (w, cat) in enumerate(zip(scored, cats, strict=True)):
                w.cat = cat
                w.sims = None if sims is None else sims[i]
                w.result.logit = round(w.logit, 5)
                w.result.probability_authentic = round(calibrate(w.logit, self.card.temperature), 5)
                w.result.category = cat.category
                w.result.category_evidence = cat.as_dict()
                if cat.category is None:
                    w.result.reasons.append(reason("unsupported_object"))
                elif not self._validated(cat.category):
                    # no verdict can come from this photo (a watch: a lab must inspect it); the
                    # unfamiliar-photo gate measures nearness to the validated photos, moot here
                    w.unvalidated = True
                    w.result.reasons.append(reason("category_not_validated", category=cat.category))
                elif self._is_unfamiliar(cat):
                    w.unfamiliar = True
                    w.result.reasons.append(reason("unfamiliar_photo", f"bank distance {cat.unfamiliar_distance:.3f}"))
            if heatmaps:
                batch = np.stack([w.x for w in scored if w.x is not None])
                base = np.array([w.logit for w in scored], dtype=np.float32)
                chunk_cost = photo_cost(0.0) * self.model.max_batch  # one forward pass per image
                cell = occlusion_maps(
                    batch,
                    base,
                    self._occlusion_logits,
                    grid=self.settings.heatmap_grid,
                    chunk=self.model.max_batch,
                    map_chunks=self.scheduler.chunk_mapper(principal, chunk_cost),
                )
                for w, m in zip(scored, cell, strict=True):
                    if w.square is not None:
                        maps[w.result.sha256] = overlay_png(w.square, m)
        point = operating_point(self.card, line)
        decision, prob, category, reasons = self._decide(work, point)
        return Assessment(
            decision=decision,
            probability_authentic=prob,
            category=category,
            reasons=reasons,
            thresholds=point.thresholds,
            aggregation=self.card.aggregation,
            temperature=point.temperature,
            model=ModelInfo(**self.model_info),
            photos=[w.result for w in work],
            product_line=point.use,
            heatmaps=maps,
        )

    @staticmethod
    def remember(assessment: Assessment, item_id: str, index: PhotoReuseIndex) -> None:
        """Add the assessment's decoded photos to the reuse index under ``item_id``."""
        for p in assessment.photos:
            if p.phash is not None:
                index.add(int(p.phash, 16), item_id, p.sha256)

    def model_input(self, data: bytes) -> np.ndarray:
        """The network input (3, S, S) float32 for one photo, exactly as :meth:`assess` builds it."""
        img = decode_image(data, self.limits, reduce_to=self.reduce_to)
        spec = self.card.preprocessing
        return normalize(resize_to_input(composite_alpha(img.rgb, img.alpha, spec.alpha_background), spec), spec)

    def _check_budget(self, photos: Sequence[PhotoInput]) -> list[float]:
        """Each photo's scheduling cost, from its header alone; raise :class:`PixelBudgetExceeded`
        when the photos together would decode more than ``vision_max_request_megapixels``. A photo
        whose header is refused counts nothing here (its decode fails at once with that error)."""
        decoded: list[float] = []
        for p in photos:
            try:
                decoded.append(read_header(p.data, self.limits, reduce_to=self.reduce_to).decode_megapixels)
            except ImageError:
                decoded.append(0.0)
        total = sum(decoded)
        if total > self.max_request_megapixels:
            raise PixelBudgetExceeded(
                f"The {len(photos)} photos would decode to {total:.1f} megapixels; one request may decode at most "
                f"{self.max_request_megapixels:g}. Send fewer or smaller photos (JPEGs count at their reduced "
                "decode size, about 1 megapixel).",
                megapixels=round(total, 1),
                limit=self.max_request_megapixels,
            )
        return [photo_cost(mp) for mp in decoded]

    def _each_photo(
        self, photos: Sequence[PhotoInput], costs: Sequence[float], *, keep_input: bool, principal: str | None
    ) -> list[_Work]:
        """:meth:`_photo` for every photo, in order, each in ``principal``'s fair turn. A photo's
        :class:`ImageError` is recorded in its result; any other error propagates (photos not
        started yet are cancelled)."""
        return self.scheduler.run_each(functools.partial(self._photo, keep_input=keep_input), photos, costs, principal)

    def _photo(self, photo: PhotoInput, keep_input: bool) -> _Work:
        """One photo from bytes to network outputs: decode, gate and, if usable, one forward pass."""
        if self.background:
            LIVE_WORK.wait_idle()
        w = self._decode_and_gate(photo)
        if w.square is None:
            return w
        x = normalize(w.square, self.card.preprocessing)
        if self.background:
            out = LIVE_WORK.run_in_background(lambda options: self.model.run(x[None], options))
        else:
            with self._run_slots:
                out = self.model.run(x[None])
        w.logit = float(out.logits[0])
        w.imagenet = None if out.imagenet_logits is None else out.imagenet_logits[0]
        w.embedding = None if out.embeddings is None else out.embeddings[0]
        if keep_input:
            w.x = x
        else:
            w.square = None
        return w

    def _occlusion_logits(self, batch: np.ndarray) -> np.ndarray:
        """``model.logits`` chunk by chunk, each chunk one run under the process's run limit (a
        request with heat maps does not hold the model for seconds)."""
        step = self.model.max_batch
        parts = []
        for i in range(0, len(batch), step):
            with self._run_slots:
                parts.append(self.model.logits(batch[i : i + step]))
        return np.concatenate(parts)

    def _decode_and_gate(self, photo: PhotoInput) -> _Work:
        sha = hashlib.sha256(photo.data).hexdigest()
        w = _Work(result=PhotoResult(file=photo.filename, sha256=sha, view=photo.view))
        try:
            img = decode_image(photo.data, self.limits, reduce_to=self.reduce_to)
        except ImageError as exc:
            w.error = exc
            w.result.reasons.append(Reason(code=exc.code, message=exc.message))
            return w
        w.result.width, w.result.height = img.source_width or img.width, img.source_height or img.height
        gray = cv2.cvtColor(img.rgb, cv2.COLOR_RGB2GRAY)  # once, for the gate and the hash
        metrics = measure_quality(
            img.rgb,
            img.alpha,
            source_short_side=min(w.result.width or img.width, w.result.height or img.height),
            full_gray=gray,
        )
        w.result.quality = metrics.as_dict()
        w.result.phash = phash_hex(phash(gray))
        # a close-up that must be read (a stamp, a serial) is held to more sharpness than a whole item
        problems = gate(metrics, gate_thresholds(self.gate_thresholds, photo.framing))
        w.result.reasons.extend(problems)
        w.usable = not problems
        if w.usable:
            spec = self.card.preprocessing
            w.square = resize_to_input(composite_alpha(img.rgb, img.alpha, spec.alpha_background), spec)
        return w

    def _check_reuse(self, work: list[_Work], item_id: str | None, index: PhotoReuseIndex | None) -> None:
        if index is None:
            return
        hashed = [(w, int(w.result.phash, 16)) for w in work if w.result.phash is not None]
        if not hashed:
            return
        found = index.lookup_many([h for _, h in hashed], exclude_item=item_id)  # one query for the set
        for (w, _), matches in zip(hashed, found, strict=True):
            if matches:  # the closest first, at most MAX_REUSE_MATCHES of them
                closest = sorted(matches, key=lambda m: (m.distance, m.item_id, m.photo_sha256))[:MAX_REUSE_MATCHES]
                w.result.reused_from = [
                    ReusedFrom(item_id=m.item_id, photo_sha256=m.photo_sha256, distance=m.distance) for m in closest
                ]
                w.result.reasons.append(reason("photo_reused", f"seen for item {closest[0].item_id}"))

    def _categorize(
        self, imagenet: np.ndarray | None, emb: np.ndarray | None, n: int, sims: np.ndarray | None
    ) -> list[CategoryResult]:
        if imagenet is None or emb is None:  # a graph without the extra heads cannot tell: trust nothing
            return [CategoryResult(None, None, 0.0, None, None) for _ in range(n)]
        return categorize(imagenet, emb, self.category_config, self.bank, sims=sims)

    def _is_unfamiliar(self, cat: CategoryResult) -> bool:
        """The unfamiliar-photo gate the card's safety figures were measured with (training's
        ``gated_operating_point``): held-out photos farther than ``distance_threshold`` from the
        bank get no verdict. Without a bank or a threshold there is nothing to measure against."""
        thr = self.category_config.unfamiliar_threshold
        dist = cat.unfamiliar_distance  # to the bank's training rows (not its recognition-only ones)
        return self.settings.unfamiliar_photo_gate and thr is not None and dist is not None and dist > thr

    def _validated(self, category: str) -> bool:
        """Whether the card gives verdicts for ``category`` (or the setting lets every category through)."""
        return category in self.card.validated_categories or self.settings.enable_unvalidated_categories

    def _line_problem(self, point: OperatingPoint, category: str | None, familiar: list[_Work]) -> Reason | None:
        """Why the declared product line allows no verdict: the photos contradict it, or the card
        has no validated operating point for it (see :mod:`authenticator.vision.line_check`)."""
        emb = [w.embedding for w in familiar if w.embedding is not None]
        bank = None if self.bank is None else self.bank.embeddings
        rows = [w.sims for w in familiar if w.embedding is not None and w.sims is not None]
        contradicted = contradiction(
            self.card,
            point,
            category,
            np.stack(emb) if emb else None,
            bank,
            self.bank_lines,
            sims=np.stack(rows) if emb and len(rows) == len(emb) else None,
        )
        if contradicted is not None:
            return reason("product_line_contradicted", contradicted)
        if point.refusal is not None:
            return reason(point.refusal, point.detail)
        return None

    def _decide(
        self, work: list[_Work], point: OperatingPoint
    ) -> tuple[Decision, float | None, str | None, list[Reason]]:
        """Assessment-level rules, most fundamental first; see docs/vision-pipeline.md."""
        reasons: list[Reason] = []
        reused = any(w.result.reused_from for w in work)
        if reused:
            reasons.append(reason("photo_reused"))
        scored = [w for w in work if w.usable and w.cat is not None]
        if not scored:
            return "inconclusive", None, None, [*reasons, reason("no_usable_photo")]
        cats = Counter(w.cat.category for w in scored if w.cat is not None and w.cat.category is not None)
        category = cats.most_common(1)[0][0] if cats else None
        top = cats.most_common(2)
        tied = [c for c, n in top if n == top[0][1]] if top else []
        # An item whose photos show a category without a verdict (a watch) goes to a lab, whatever
        # else the photos show: a watch photo the check did not recognise is no reason to tell the
        # seller that this is "not a bag, watch or sneaker".
        unvalidated = [c for c in tied if c is not None and not self._validated(c)]
        if unvalidated:
            shown = unvalidated[0]
            return "inconclusive", None, shown, [*reasons, reason("category_not_validated", category=shown)]
        if any(w.cat is not None and w.cat.category is None for w in scored):
            return "inconclusive", None, category, [*reasons, reason("unsupported_object")]
        if len(tied) > 1:
            return "inconclusive", None, None, [*reasons, reason("mixed_categories")]
        familiar = [w for w in scored if not w.unfamiliar and not w.unvalidated]
        line_problem = self._line_problem(point, category, familiar)
        if line_problem is not None:
            return "inconclusive", None, category, [*reasons, line_problem]
        if not familiar:
            return "inconclusive", None, category, [*reasons, reason("unfamiliar_photo")]
        z = aggregate_logits([float(w.result.logit or 0.0) for w in familiar], self.card.aggregation)
        p = calibrate(z, point.temperature)
        decision = decide(p, point.thresholds.authentic_above, point.thresholds.counterfeit_below)
        if decision == "inconclusive":
            reasons.append(reason("uncertain_score"))
        if reused and decision == "authentic":
            # someone else's photo proves nothing about this item
            decision = "inconclusive"
        return decision, round(p, 5), category, reasons
