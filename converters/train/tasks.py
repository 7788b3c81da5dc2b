"""Per-family pieces of the training loop: build the model, make a batch, compute the loss, validate.

Every batch is a pure function of ``(seed, epoch, step)``: synthetic runs read fresh items
``(epoch * steps + step) * batch ..``, a user's data is read in a per-epoch permutation, and
augmentation draws from ``SeedSequence([seed, epoch, step])``. Images go through the same geometry
(``sdk.preprocess.letterbox`` / ``stretch``) and normalisation as the exported model's contract.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .config import TrainConfig
from .data import TrainData

__all__ = ["Task", "make_task", "build_network", "MAIN_METRIC"]

logger = logging.getLogger(__name__)

#: The validation metric each task selects the best checkpoint by (higher is better).
MAIN_METRIC = {"classify": "top1", "detect": "map50", "identity": "roc_auc"}
_KEEP = {"classify": ("top1", "top5"), "detect": ("map50", "map50_95", "map75", "map_small", "ar_max"),
         "identity": ("roc_auc", "eer", "tar_at_far")}


def build_network(cfg: TrainConfig, class_names: Sequence[str]) -> nn.Module:
    """Build the run's model from its family, ``cfg.model`` and the data's classes (seeded by ``cfg.seed``)."""
    from converters.zoo import build_model

    kwargs = dict(cfg.model)
    kwargs["input_size"] = cfg.size
    if cfg.family != "siamese":
        kwargs.setdefault("labels", list(class_names))
    if cfg.family == "yolo_backbone":
        from .backbone_classifier import build_yolo_backbone_classifier

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            return build_yolo_backbone_classifier(**kwargs)
    return build_model(cfg.family, seed=cfg.seed, **kwargs)


def _rng(cfg: TrainConfig, epoch: int, step: int, salt: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([cfg.seed, epoch, step, salt]))


class Task:
    """Base: batch indices, image normalisation from the contract, validation through ``sdk``'s code path.

    Args:
        cfg: the run.
        data: its datasets.
        model: the network (its contract decides the pre-processing).
    """

    task = "classify"

    def __init__(self, cfg: TrainConfig, data: TrainData, model: nn.Module) -> None:
        self.cfg, self.data = cfg, data
        spec = model.contract_spec()["input"]
        self.resize = spec["resize"]
        self.pad_value = int(spec.get("pad_value", 114))
        self.scale = float(spec["scale"])
        self.mean = torch.tensor(spec["mean"], dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(spec["std"], dtype=torch.float32).view(1, 3, 1, 1)
        self.input_hw = tuple(model.input_hw)
        n = len(data.train)
        self.steps_per_epoch = cfg.steps_per_epoch or max(
            1, (cfg.train_images if data.synthetic else n) // cfg.batch)

    # -- indices ---------------------------------------------------------------------------------------
    def indices(self, epoch: int, step: int) -> List[int]:
        """Dataset indices of batch ``step`` of ``epoch``."""
        b = self.cfg.batch
        if self.data.synthetic:
            start = (epoch * self.steps_per_epoch + step) * b
            return list(range(start, start + b))
        n = len(self.data.train)
        order = np.random.default_rng(np.random.SeedSequence([self.cfg.seed, epoch, 1 << 20])).permutation(n)
        pos = (step * b + np.arange(b)) % n
        return order[pos].tolist()

    # -- images ----------------------------------------------------------------------------------------
    def geometry(self, image: np.ndarray) -> Tuple[np.ndarray, Any]:
        """BGR image → network-size BGR image and the ``sdk.preprocess.Transform`` (frame → input)."""
        from sdk.preprocess import letterbox, stretch

        if self.resize == "letterbox":
            return letterbox(image, self.input_hw, pad_value=self.pad_value)
        return stretch(image, self.input_hw)

    def to_tensor(self, images: Sequence[np.ndarray], *, normalise: bool = True) -> torch.Tensor:
        """Network-size BGR uint8 images → ``[B, 3, H, W]`` float32 (RGB, the contract's scale/mean/std)."""
        arr = np.stack([np.ascontiguousarray(im[:, :, ::-1]) for im in images])
        x = torch.from_numpy(arr).permute(0, 3, 1, 2).float()
        if not normalise:
            return x.div_(255.0)
        return (x * self.scale - self.mean) / self.std

    # -- hooks -----------------------------------------------------------------------------------------
    def batch(self, epoch: int, step: int) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Any) -> Tuple[torch.Tensor, Dict[str, float]]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, model: nn.Module, batch: Any) -> Any:
        """A forward pass without the loss (BatchNorm calibration)."""
        return model(batch[0])

    def batch_size(self, batch: Any) -> int:
        return int(len(batch[0]))

    def evaluate(self, model: nn.Module) -> Dict[str, Any]:
        """Validation metrics of ``model`` (through :func:`converters.train.predict.eval_predictor`)."""
        from .predict import eval_predictor

        report = self._report(eval_predictor(model), self.data.val)
        keep = {k: report[k] for k in _KEEP[self.task] if k in report}
        keep["val_images"] = len(self.data.val)
        return keep

    def _report(self, predictor: Any, dataset: Any) -> Dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


class ClassifyTask(Task):
    """Classifiers (``mobilenet``, ``yolo_backbone``): cross-entropy with label smoothing, random flips."""

    task = "classify"

    def batch(self, epoch: int, step: int) -> Tuple[torch.Tensor, torch.Tensor]:
        rng = _rng(self.cfg, epoch, step)
        images, labels = [], []
        for i in self.indices(epoch, step):
            image, label = self.data.train[i][:2]
            if not self.data.synthetic:
                image = _random_crop(image, rng)
            image = self.geometry(image)[0]
            if rng.random() < 0.5:
                image = image[:, ::-1]
            images.append(image)
            labels.append(int(label))
        return self.to_tensor(images), torch.tensor(labels, dtype=torch.int64)

    def loss(self, model: nn.Module, batch: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.cfg.label_smoothing)
        acc = float((logits.detach().argmax(1) == y).float().mean())
        return loss, {"loss": float(loss.detach()), "acc": acc}

    def _report(self, predictor: Any, dataset: Any) -> Dict[str, Any]:
        from converters.evaluation import evaluate_classification

        return evaluate_classification(predictor, dataset, num_classes=len(self.data.class_names),
                                       class_names=self.data.class_names, progress=False)


def _random_crop(image: np.ndarray, rng: np.random.Generator, min_scale: float = 0.6) -> np.ndarray:
    """A random crop of 60-100 % of the area with aspect 3/4..4/3 (a user's photos; synthetic crops need none)."""
    h, w = image.shape[:2]
    area = h * w * rng.uniform(min_scale, 1.0)
    aspect = np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3)))
    cw = int(min(w, round(np.sqrt(area * aspect))))
    ch = int(min(h, round(np.sqrt(area / aspect))))
    x0 = int(rng.integers(0, w - cw + 1))
    y0 = int(rng.integers(0, h - ch + 1))
    return image[y0:y0 + ch, x0:x0 + cw]


class DetectTask(Task):
    """Detectors: letterbox (YOLO-nano) or stretch (SSD-Lite) to the input size, random horizontal flips.

    Targets are torchvision-style ``{"boxes": [n, 4] xyxy input pixels, "labels": [n]}``; boxes smaller
    than 2 px after resizing are dropped.
    """

    task = "detect"

    def __init__(self, cfg: TrainConfig, data: TrainData, model: nn.Module) -> None:
        super().__init__(cfg, data, model)
        self.family = cfg.family
        self.criterion = model.loss() if cfg.family == "yolo_nano" else None

    def batch(self, epoch: int, step: int) -> Tuple[torch.Tensor, List[Dict[str, torch.Tensor]]]:
        rng = _rng(self.cfg, epoch, step)
        images, targets = [], []
        w_in = self.input_hw[1]
        for i in self.indices(epoch, step):
            image, boxes, class_ids = self.data.train[i][:3]
            out, transform = self.geometry(image)
            b = transform.boxes_to_input(np.asarray(boxes, np.float32).reshape(-1, 4))
            b[:, 0::2] = b[:, 0::2].clip(0, w_in)
            b[:, 1::2] = b[:, 1::2].clip(0, self.input_hw[0])
            if rng.random() < 0.5:
                out = out[:, ::-1]
                b = np.stack([w_in - b[:, 2], b[:, 1], w_in - b[:, 0], b[:, 3]], 1).reshape(-1, 4)
            keep = ((b[:, 2] - b[:, 0]) >= 2) & ((b[:, 3] - b[:, 1]) >= 2)
            images.append(out)
            targets.append({"boxes": torch.from_numpy(np.ascontiguousarray(b[keep], np.float32)),
                            "labels": torch.from_numpy(np.asarray(class_ids, np.int64).reshape(-1)[keep])})
        return self.to_tensor(images, normalise=self.family != "ssdlite"), targets

    def loss(self, model: nn.Module, batch: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        x, targets = batch
        if self.family == "ssdlite":
            shifted = [{"boxes": t["boxes"], "labels": t["labels"] + 1} for t in targets]
            losses = model(list(x), shifted)
            loss = losses["bbox_regression"] + losses["classification"]
            parts = {"box": float(losses["bbox_regression"].detach()),
                     "cls": float(losses["classification"].detach())}
        else:
            loss, parts = self.criterion(model(x), targets)
        parts["loss"] = float(loss.detach())
        return loss, parts

    def forward(self, model: nn.Module, batch: Any) -> Any:
        if self.family == "ssdlite":
            return model.backbone(model.transform(list(batch[0]))[0].tensors)
        return model(batch[0])

    def evaluate(self, model: nn.Module) -> Dict[str, Any]:
        """mAP of the one-to-many head (NMS); an ``end2end`` YOLO-nano adds ``one2one_map50`` / ``_map50_95``."""
        from .predict import eval_predictor

        end2end = bool(getattr(model, "end2end", False))
        head = "one2many" if end2end else None
        report = self._report(eval_predictor(model, head=head), self.data.val)
        keep = {k: report[k] for k in _KEEP[self.task] if k in report}
        if end2end:
            o2o = self._report(eval_predictor(model, head="one2one"), self.data.val)
            keep.update({"one2one_map50": o2o.get("map50"), "one2one_map50_95": o2o.get("map50_95")})
        keep["val_images"] = len(self.data.val)
        return keep

    def _report(self, predictor: Any, dataset: Any) -> Dict[str, Any]:
        from converters.evaluation import evaluate_detection

        return evaluate_detection(predictor, dataset, class_names=self.data.class_names, progress=False)


class IdentityTask(Task):
    """Siamese: ``P x K`` batches (P identities, K renders / images each), the model's selected loss."""

    task = "identity"

    def __init__(self, cfg: TrainConfig, data: TrainData, model: nn.Module) -> None:
        super().__init__(cfg, data, model)
        self.groups = None if data.synthetic else _identity_groups(data.train)

    def batch(self, epoch: int, step: int) -> Tuple[torch.Tensor, torch.Tensor]:
        rng = _rng(self.cfg, epoch, step)
        p, k = self.cfg.identities_per_batch, self.cfg.images_per_identity
        images, ids = [], []
        if self.groups is None:
            ds = self.data.train
            pool = self.data.identities
            chosen = rng.choice(len(pool), size=min(p, len(pool)), replace=False)
            for j in chosen:
                ident = int(pool[int(j)])
                for _ in range(k):
                    images.append(self.geometry(ds.render(ident, rng))[0])
                    ids.append(ident)
        else:
            keys = list(self.groups)
            chosen = rng.choice(len(keys), size=min(p, len(keys)), replace=False)
            for j in chosen:
                members = self.groups[keys[int(j)]]
                pick = rng.choice(len(members), size=k, replace=len(members) < k)
                for m in pick:
                    image = _random_crop(self.data.train[members[int(m)]][0], rng, 0.8)
                    images.append(self.geometry(image)[0])
                    ids.append(keys[int(j)])
        return self.to_tensor(images), torch.tensor(ids, dtype=torch.int64)

    def loss(self, model: nn.Module, batch: Any) -> Tuple[torch.Tensor, Dict[str, float]]:
        x, ids = batch
        emb = model(x)
        loss = model.criterion(emb, ids)
        with torch.no_grad():
            sim = emb @ emb.T
            same = (ids[:, None] == ids[None, :]) & ~torch.eye(len(ids), dtype=torch.bool, device=ids.device)
            diff = ids[:, None] != ids[None, :]
            gap = float(sim[same].mean() - sim[diff].mean()) if bool(same.any()) and bool(diff.any()) else 0.0
        return loss, {"loss": float(loss.detach()), "sim_gap": gap}

    def _report(self, predictor: Any, dataset: Any) -> Dict[str, Any]:
        from converters.evaluation import evaluate_embeddings

        return evaluate_embeddings(predictor, dataset, progress=False, max_pairs=20000)


def _identity_groups(ds: Any) -> Dict[int, List[int]]:
    """identity → dataset indices, for identities with >= 2 images (labels read without decoding images)."""
    if hasattr(ds, "indices") and hasattr(ds.dataset, "labels"):
        labels = ds.dataset.labels[np.asarray(ds.indices, np.int64)]
    elif hasattr(ds, "labels"):
        labels = ds.labels
    else:
        labels = np.asarray([int(ds[i][1]) for i in range(len(ds))])
    groups: Dict[int, List[int]] = {}
    for i, lab in enumerate(np.asarray(labels).tolist()):
        groups.setdefault(int(lab), []).append(i)
    return {k: v for k, v in groups.items() if len(v) >= 2}


def make_task(cfg: TrainConfig, data: TrainData, model: nn.Module) -> Task:
    """The :class:`Task` of the run's family."""
    cls = {"classify": ClassifyTask, "detect": DetectTask, "identity": IdentityTask}[cfg.task]
    return cls(cfg, data, model)
