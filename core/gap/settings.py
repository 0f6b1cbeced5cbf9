"""Every tunable constant of the gap predictor and its evidence kernel, in one dataclass.

The kernel only orders the evidence rows shown beside an answer (most similar first); the prediction itself
is the mixed model of `model`. `shrink_grid` is searched inside each fit by leave-one-source-out on the
training sources (`model.calibrate`), never on the data the fit is scored on.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a recommendation weighs (core.gap.recommend); here so the CLI lists them without importing the predictor.
PRIORITIES: tuple[str, ...] = ("accuracy", "cost", "robustness", "storage", "time")


@dataclass(frozen=True)
class GapSettings:
    """Coverage, the shrinkage grid, the evidence rule and the similarity kernel's factors."""

    coverage: float = 0.8  # the central interval every answer and score uses
    shrink_grid: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)  # mean = shrink x the mixed model's mean
    cell_pseudo_sources: float = 2.0  # sources' worth of pull from a family x task median to its parent
    margin: float = 1.0  # points: report P(FFT beats the method by more than this)
    min_own_pairs: int = 3  # a method's own pairs on the task type before its evidence is its family's
    scarce: int = 5  # fewer evidence rows than this is called scarce in the notes
    # Kernel (a product of per-feature factors; Racine & Li 2004): the factor for a mismatch of each
    # categorical feature, and Gaussian bandwidths in the feature's log units (decades; doublings for rank).
    other_task_type: float = 0.1
    same_family_other_method: float = 0.5
    other_family: float = 0.05
    other_distribution: float = 0.1
    other_targets: float = 0.5
    bandwidth_params: float = 0.5
    bandwidth_size: float = 0.75
    bandwidth_rank: float = 1.5
    bandwidth_share: float = 0.75
    unknown: float = 0.5  # one side knows a feature, the other does not

    def __post_init__(self) -> None:
        if not 0 < self.coverage < 1:
            raise ValueError(f"coverage must be in (0, 1), got {self.coverage}")
        if not self.shrink_grid or any(not 0 <= s <= 1 for s in self.shrink_grid):
            raise ValueError(f"shrink grid must be non-empty values in [0, 1], got {self.shrink_grid}")
        if self.cell_pseudo_sources <= 0:
            raise ValueError("cell_pseudo_sources must be positive")
        if self.margin < 0 or self.min_own_pairs < 1 or self.scarce < 0:
            raise ValueError("margin must be >= 0, min_own_pairs >= 1 and scarce >= 0")
        factors = (self.other_task_type, self.same_family_other_method, self.other_family, self.other_distribution,
                   self.other_targets, self.unknown)  # fmt: skip
        if any(not 0 < f <= 1 for f in factors):
            raise ValueError("kernel mismatch factors must be in (0, 1]")
        if any(b <= 0 for b in (self.bandwidth_params, self.bandwidth_size, self.bandwidth_rank, self.bandwidth_share)):
            raise ValueError("kernel bandwidths must be positive")
