"""Loss modules: CrossEntropyLoss, NLLLoss, MSELoss, L1Loss, BCELoss, BCEWithLogitsLoss, KLDivLoss and
DistillationLoss (wrapping functional)."""
from . import functional as F
from .module import Module


class _Loss(Module):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__()
        reduction = F._reduction(size_average, reduce, reduction)
        F._check_reduction(type(self).__name__, reduction)
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        # A buffer, so it follows .to(dtype) and is saved in the state_dict like in PyTorch.
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(weight, size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"[CrossEntropyLoss] label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None, reduction="mean"):
        super().__init__(weight, size_average, reduce, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class MSELoss(_Loss):
    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean", pos_weight=None):
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, weight=self.weight, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class KLDivLoss(_Loss):
    """KL divergence of `target` from the distribution whose log-probabilities are `input`
    (see functional.kl_div); reduction also accepts 'batchmean'."""

    def __init__(self, size_average=None, reduce=None, reduction="mean", log_target=False):
        Module.__init__(self)
        reduction = F._reduction(size_average, reduce, reduction)
        if reduction not in ("none", "sum", "mean", "batchmean"):
            raise ValueError(f"[KLDivLoss] reduction must be 'none', 'sum', 'mean' or 'batchmean', got {reduction!r}")
        self.reduction = reduction
        self.log_target = log_target

    def forward(self, input, target):
        return F.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class DistillationLoss(Module):
    """alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * cross_entropy(student, target)
    (functional.distillation_loss). forward(student_logits, teacher_logits, target=None)."""

    def __init__(self, temperature=4.0, alpha=0.9, reduction="mean"):
        super().__init__()
        if not isinstance(temperature, (int, float)) or temperature <= 0:
            raise ValueError(f"[DistillationLoss] temperature must be a positive number, got {temperature!r}")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"[DistillationLoss] alpha must be in [0, 1], got {alpha!r}")
        self.temperature = temperature
        self.alpha = alpha
        self.reduction = reduction

    def forward(self, student_logits, teacher_logits, target=None):
        return F.distillation_loss(student_logits, teacher_logits, target, temperature=self.temperature,
                                   alpha=self.alpha, reduction=self.reduction)

    def extra_repr(self):
        return f"temperature={self.temperature}, alpha={self.alpha}"
