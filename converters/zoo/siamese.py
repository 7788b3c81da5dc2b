"""Siamese embedding network for one-shot verification, with contrastive and triplet losses.

::

    model = build_siamese(backbone="v3_small", embedding_dim=128, input_size=96, loss="triplet")
    emb = model(x)                                  # [B, 3, 96, 96] → [B, 128], unit L2 norm
    loss = model.criterion(emb, identity_ids)       # in-batch mining (P identities x K images)
    same = (model(a) * model(b)).sum(1) > threshold  # cosine similarity of two crops

"Siamese" means one shared network applied to every image; there is a single branch to export.
Architecture: a torchvision MobileNet trunk (V3-Small default, or V2 / V3-Large) → global average pool →
``Linear`` projection to ``embedding_dim`` → L2 normalisation (inside the graph).

Losses take a batch of embeddings and their identity labels and mine pairs / triplets inside it, so a
``P x K`` sampler (P identities, K images each) is all the training loop needs:

* :class:`ContrastiveLoss` (Hadsell et al. 2006): positive pairs ``d^2``, negative pairs
  ``relu(margin - d)^2``, the two averaged separately (balanced), ``d`` the Euclidean distance;
* :class:`TripletLoss` (Schroff et al. 2015): ``relu(d(a, p) - d(a, n) + margin)``, over all valid
  triplets (mean of the active ones) or, with ``batch_hard=True``, the hardest positive and negative
  per anchor (Hermans et al. 2017).

Both also offer the explicit form (:meth:`ContrastiveLoss.pairs`, :meth:`TripletLoss.triplets`).
Export output ``embedding`` ``[B, D]`` → decoder ``{"type": "embedding"}``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ._common import (IMAGENET_MEAN, IMAGENET_STD, SizeArg, ZooModel, choice, positive_float, positive_int,
                      size_hw)
from .mobilenet import VARIANTS, _torchvision_mobilenet

__all__ = ["SiameseNet", "ContrastiveLoss", "TripletLoss", "build_siamese", "LOSSES", "pairwise_distances"]

LOSSES = ("contrastive", "triplet")


def pairwise_distances(embeddings: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distance matrix.

    Args:
        embeddings: ``[B, D]``.
        eps: guard that keeps the gradient of ``sqrt`` finite at zero distance.

    Returns:
        ``[B, B]`` distances (0 on the diagonal).
    """
    sq = embeddings.pow(2).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * embeddings @ embeddings.T).clamp(min=0.0)
    eye = torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
    return torch.where(eye, torch.zeros_like(d2), (d2 + eps).sqrt())


def _check_batch(embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings: expected shape [B, D], got {list(embeddings.shape)}")
    labels = torch.as_tensor(labels, device=embeddings.device)
    if labels.shape != embeddings.shape[:1]:
        raise ValueError(f"labels: expected shape [{embeddings.shape[0]}] (one identity per embedding), "
                         f"got {list(labels.shape)}")
    return labels


class ContrastiveLoss(nn.Module):
    """Contrastive loss over every pair in the batch (or explicit pairs via :meth:`pairs`).

    Args:
        margin: negatives closer than this (Euclidean; embeddings are unit vectors, so 0..2) are pushed apart.
    """

    def __init__(self, margin: float = 1.0) -> None:
        super().__init__()
        self.margin = positive_float(margin, "margin")

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """In-batch loss.

        Args:
            embeddings: ``[B, D]``.
            labels: ``[B]`` identity ids.

        Returns:
            Scalar: mean over positive pairs of ``d^2`` plus mean over negative pairs of
            ``relu(margin - d)^2`` (a term is 0 when the batch has no such pair).

        Raises:
            ValueError: shapes that do not match.
        """
        labels = _check_batch(embeddings, labels)
        d = pairwise_distances(embeddings)
        same = labels[:, None] == labels[None, :]
        upper = torch.ones_like(same).triu(1)
        pos, neg = same & upper, ~same & upper
        zero = embeddings.sum() * 0.0
        loss_pos = d[pos].pow(2).mean() if bool(pos.any()) else zero
        loss_neg = F.relu(self.margin - d[neg]).pow(2).mean() if bool(neg.any()) else zero
        return loss_pos + loss_neg

    def pairs(self, a: torch.Tensor, b: torch.Tensor, same: torch.Tensor) -> torch.Tensor:
        """Explicit pairs.

        Args:
            a: ``[B, D]`` first embeddings.
            b: ``[B, D]`` second embeddings.
            same: ``[B]`` 1 / True where the pair shows the same identity.

        Returns:
            Scalar: mean of ``same * d^2 + (1 - same) * relu(margin - d)^2``.
        """
        if a.shape != b.shape or a.ndim != 2:
            raise ValueError(f"a, b: expected two [B, D] tensors, got {list(a.shape)} and {list(b.shape)}")
        same_f = torch.as_tensor(same, device=a.device).to(a.dtype).reshape(-1)
        if same_f.shape[0] != a.shape[0]:
            raise ValueError(f"same: expected shape [{a.shape[0]}], got {list(torch.as_tensor(same).shape)}")
        d = ((a - b).pow(2).sum(1) + 1e-12).sqrt()
        return (same_f * d.pow(2) + (1 - same_f) * F.relu(self.margin - d).pow(2)).mean()


class TripletLoss(nn.Module):
    """Triplet loss with in-batch mining (or explicit triplets via :meth:`triplets`).

    Args:
        margin: required gap ``d(a, n) - d(a, p)``.
        batch_hard: per anchor, only the farthest positive and the closest negative (Hermans et al.);
            otherwise every valid triplet, averaged over those with a non-zero loss ("batch all").
    """

    def __init__(self, margin: float = 0.2, *, batch_hard: bool = False) -> None:
        super().__init__()
        self.margin = positive_float(margin, "margin")
        self.batch_hard = bool(batch_hard)

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """In-batch loss.

        Args:
            embeddings: ``[B, D]``.
            labels: ``[B]`` identity ids (the batch needs >= 2 images of some identity and >= 2 identities
                for a non-zero loss).

        Returns:
            Scalar loss (0 with a gradient path when no valid triplet exists).

        Raises:
            ValueError: shapes that do not match.
        """
        labels = _check_batch(embeddings, labels)
        d = pairwise_distances(embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool, device=d.device)
        pos_mask, neg_mask = same & ~eye, ~same
        zero = embeddings.sum() * 0.0
        if self.batch_hard:
            valid = pos_mask.any(1) & neg_mask.any(1)
            if not bool(valid.any()):
                return zero
            hardest_pos = torch.where(pos_mask, d, torch.zeros_like(d)).amax(1)
            hardest_neg = torch.where(neg_mask, d, torch.full_like(d, float("inf"))).amin(1)
            return F.relu(hardest_pos - hardest_neg + self.margin)[valid].mean()
        loss = d[:, :, None] - d[:, None, :] + self.margin                   # [a, p, n]
        valid = pos_mask[:, :, None] & neg_mask[:, None, :]
        loss = F.relu(loss) * valid
        active = loss > 1e-12
        return loss.sum() / active.sum() if bool(active.any()) else zero

    def triplets(self, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        """Explicit triplets: mean of ``relu(d(a, p) - d(a, n) + margin)`` over ``[B, D]`` inputs."""
        if not anchor.shape == positive.shape == negative.shape or anchor.ndim != 2:
            raise ValueError(f"anchor, positive, negative: expected three [B, D] tensors, got "
                             f"{list(anchor.shape)}, {list(positive.shape)}, {list(negative.shape)}")
        d_ap = ((anchor - positive).pow(2).sum(1) + 1e-12).sqrt()
        d_an = ((anchor - negative).pow(2).sum(1) + 1e-12).sqrt()
        return F.relu(d_ap - d_an + self.margin).mean()


class SiameseNet(ZooModel, nn.Module):
    """Shared MobileNet trunk → projection → unit-norm embedding.

    Args:
        backbone: ``"v3_small"``, ``"v3_large"`` or ``"v2"``.
        embedding_dim: D.
        width_mult: trunk width multiplier.
        input_hw: network input (height, width).
        loss: ``"contrastive"`` or ``"triplet"`` (selects :attr:`criterion`).
        margin: the loss margin.
        batch_hard: triplet mining mode.

    Attributes:
        features: the trunk, ``[B, 3, H, W]`` → ``[B, F, h, w]``.
        projection: ``nn.Linear(F, D)``.
        criterion: the selected loss module (``criterion(embeddings, labels)``).
    """

    family = "siamese"
    output_names = ("embedding",)

    def __init__(self, *, backbone: str, embedding_dim: int, width_mult: float, input_hw: Tuple[int, int],
                 loss: str, margin: float, batch_hard: bool) -> None:
        super().__init__()
        self.backbone_variant = backbone
        self.embedding_dim = embedding_dim
        self.input_hw = input_hw
        trunk = _torchvision_mobilenet(backbone, num_classes=1, width_mult=width_mult, dropout=0.0)
        self.features = trunk.features
        num_features = int(trunk.features[-1].out_channels)
        self.projection = nn.Linear(num_features, embedding_dim)
        nn.init.normal_(self.projection.weight, 0, 0.01)
        nn.init.zeros_(self.projection.bias)
        self.criterion: nn.Module = (ContrastiveLoss(margin) if loss == "contrastive"
                                     else TripletLoss(margin, batch_hard=batch_hard))
        self.config: Dict[str, Any] = {"backbone": backbone, "embedding_dim": embedding_dim,
                                       "width_mult": width_mult, "input_size": list(input_hw), "loss": loss,
                                       "margin": margin, "batch_hard": batch_hard}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings.

        Args:
            x: ``[B, 3, H, W]`` float32, RGB, ``(pixel / 255 - mean) / std`` (ImageNet mean/std).

        Returns:
            ``[B, D]`` unit-L2-norm embeddings.
        """
        f = torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)
        return F.normalize(self.projection(f), dim=1)

    def forward_pair(self, a: torch.Tensor, b: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Embeddings of two batches through the shared network (one forward pass, batch-concatenated)."""
        e = self(torch.cat([a, b], 0))
        return e[: len(a)], e[len(a):]

    @staticmethod
    def similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Cosine similarity ``[B]`` of matching rows of two ``[B, D]`` embedding batches."""
        return (a * b).sum(1)

    # -- zoo protocol ----------------------------------------------------------------------------------
    def export_module(self) -> nn.Module:
        """The network itself (eval mode): ``[B, 3, H, W]`` → ``embedding`` ``[B, D]``."""
        return self.eval()

    def backbone_modules(self) -> List[nn.Module]:
        """``[features]`` (the projection stays trainable)."""
        return [self.features]

    def contract_spec(self, *, batch: Optional[int] = 1, layout: str = "NCHW",
                      postprocess: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """Contract fields: task ``embed``, decoder ``{"type": "embedding", "output": "embedding"}``,
        input RGB stretched to ``input_size`` with ImageNet mean/std.

        Returns:
            A dict that ``sdk.contract.ModelContract.from_dict`` accepts.
        """
        return self._contract(task="embed", decoder={"type": "embedding", "output": self.output_names[0]},
                              resize="stretch", mean=IMAGENET_MEAN, std=IMAGENET_STD, labels=(), batch=batch,
                              layout=layout, postprocess=postprocess)


def build_siamese(*, backbone: str = "v3_small", embedding_dim: int = 128, width_mult: float = 1.0,
                  input_size: SizeArg = 96, loss: str = "triplet", margin: Optional[float] = None,
                  batch_hard: bool = True) -> SiameseNet:
    """Build a Siamese embedding network (random weights).

    Args:
        backbone: MobileNet trunk, ``"v3_small"`` (default), ``"v3_large"`` or ``"v2"``.
        embedding_dim: D (default 128).
        width_mult: trunk width multiplier.
        input_size: ``int`` or ``(h, w)``, >= 32 (96 default: the synthetic identity crops' size).
        loss: ``"triplet"`` (default) or ``"contrastive"``.
        margin: loss margin (default 0.2 for triplet, 1.0 for contrastive).
        batch_hard: batch-hard triplet mining (else batch-all); ignored for contrastive.

    Returns:
        A :class:`SiameseNet` in training mode.

    Raises:
        ValueError: an out-of-range argument (expected-vs-got).
    """
    backbone = choice(backbone, VARIANTS, "backbone")
    embedding_dim = positive_int(embedding_dim, "embedding_dim")
    width_mult = positive_float(width_mult, "width_mult")
    hw = size_hw(input_size, minimum=32)
    loss = choice(loss, LOSSES, "loss")
    margin = positive_float((0.2 if loss == "triplet" else 1.0) if margin is None else margin, "margin")
    if not isinstance(batch_hard, bool):
        raise ValueError(f"batch_hard: expected True or False, got {batch_hard!r}")
    return SiameseNet(backbone=backbone, embedding_dim=embedding_dim, width_mult=width_mult, input_hw=hw,
                      loss=loss, margin=margin, batch_hard=batch_hard)
