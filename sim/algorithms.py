"""What each training algorithm asks of the hardware: one :class:`AlgorithmProfile` per rule.

The memory ledger (:mod:`sim.ledger`), the closed-form inference counts (:mod:`sim.workload`) and
the energy model read these fields instead of testing rule names, so a new algorithm is one row
of :data:`ALGORITHMS`. Kept apart from the ledger because the workload module, which the ledger
imports, needs it too.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AlgorithmProfile", "ALGORITHMS"]


@dataclass(frozen=True)
class AlgorithmProfile:
    """What one training algorithm keeps in memory and how it reads out (one row of :data:`ALGORITHMS`).

    Attributes
    ----------
    stored : {"inputs", "outputs", "none"}
        Activations kept across layers for a backward or second pass: ``B * sum_l a_l`` (inputs)
        or ``B * sum_l o_l`` (outputs).
    rows : {"B", "B+B'", "2B"}
        Rows in flight while one layer steps (a local rule's working set is
        ``rows * max_k (a_k + o_k)``).
    target_rows : {"classes", "batch"} or None
        With ``rows = "B+B'"``: the rows ``B'`` of the target stream when the rule spec does not
        say (its ``targets``): ``C`` label rows or one per sample. None without a target stream.
    masks : {"hidden", "one_layer"}
        1-bit derivative masks of every hidden layer (kept for the backward pass) or of the
        stepping layer only.
    errors : {"ping_pong", "delta", "output", "none"}
        ``2 * B * max o`` (backprop), one delta per row of the stepping layer, ``B * C`` at the
        output (PEPITA), or none.
    delta_in_place : bool
        The delta may overwrite ``h`` (convention ``spela_delta = "in_place"``): the local loss
        needs ``h`` no more once it has its delta.
    targets : {"class_vectors", "front_projection", "drtp_feedback", "pepita_feedback", "none"}
        Fixed per-layer class vectors (SPELA), sigprop's trainable ``C x d_1`` front projection,
        DRTP's fixed ``C x d_l`` feedback matrices, PEPITA's ``d_0 x C`` projection.
    projections : bool
        Stores the convolution layers' loss projections (SPELA's CNN extension) as parameters.
    readout : {"cosine", "logits"}
        How the last layer predicts: cosine to its class vectors, or the argmax of its logits
        (a rule spec whose ``inference`` is not ``"output_layer"`` reads out by cosine instead).
        Every other exit reads out by cosine, as in ``spela_hw``.
    exit_class_vectors : bool
        An early exit of an inference network needs class vectors the rule does not train
        (backprop): the inference ledger stores them.
    global_gradient : bool
        Needs a whole-network gradient buffer unless fused (backprop).
    transposed_read : bool
        Needs arrays that read transposed and error-path ADCs.
    forward_passes : int
    source : str
    """

    name: str
    description: str
    stored: str
    rows: str
    target_rows: str | None
    masks: str
    errors: str
    delta_in_place: bool
    targets: str
    projections: bool
    readout: str
    exit_class_vectors: bool
    global_gradient: bool
    transposed_read: bool
    forward_passes: int
    source: str


def _profiles(*rows: AlgorithmProfile) -> dict[str, AlgorithmProfile]:
    return {p.name: p for p in rows}


ALGORITHMS: dict[str, AlgorithmProfile] = _profiles(
    AlgorithmProfile(
        name="backprop", description="end-to-end backpropagation (softmax cross-entropy)",
        stored="inputs", rows="B", target_rows=None, masks="hidden", errors="ping_pong", delta_in_place=False,
        targets="none", projections=False, readout="logits", exit_class_vectors=True, global_gradient=True,
        transposed_read=True, forward_passes=1,
        source="docs/hardware.md §9.2; NeuroSim V2 batch-state assumption"),
    AlgorithmProfile(
        name="spela", description="SPELA: per-layer cosine loss to fixed class vectors",
        stored="none", rows="B", target_rows=None, masks="one_layer", errors="delta", delta_in_place=True,
        targets="class_vectors", projections=True, readout="cosine", exit_class_vectors=False,
        global_gradient=False, transposed_read=False, forward_passes=1,
        source="docs/hardware.md §9.2; docs/spela.md §1.10"),
    AlgorithmProfile(
        name="sigprop", description="signal propagation: the label travels forward as a second stream",
        stored="none", rows="B+B'", target_rows="classes", masks="one_layer", errors="delta",
        delta_in_place=True, targets="front_projection", projections=False, readout="logits",
        exit_class_vectors=False, global_gradient=False, transposed_read=False, forward_passes=1,
        source="docs/hardware.md §9.2; docs/sigprop.md §3"),
    AlgorithmProfile(
        name="forward_forward",
        description="Forward-Forward (analytic): positive and negative pass, local goodness",
        stored="none", rows="2B", target_rows=None, masks="one_layer", errors="delta", delta_in_place=True,
        targets="none", projections=False, readout="cosine", exit_class_vectors=False, global_gradient=False,
        transposed_read=False, forward_passes=2,
        source="analytic; Hinton 2022 as summarised in docs/spela.md §4 (Table 1: 2 forward passes, "
               "current activations)"),
    AlgorithmProfile(
        name="pepita", description="PEPITA (analytic): second forward pass with an error-modulated input",
        stored="outputs", rows="B", target_rows=None, masks="one_layer", errors="output", delta_in_place=False,
        targets="pepita_feedback", projections=False, readout="cosine", exit_class_vectors=False,
        global_gradient=False, transposed_read=False, forward_passes=2,
        source="analytic; Dellaferrera & Kreiman 2022 as summarised in docs/spela.md §4 (Table 1: all "
               "activations stored)"),
    AlgorithmProfile(
        name="drtp", description="DRTP (analytic): direct random target projection",
        stored="none", rows="B", target_rows=None, masks="one_layer", errors="delta", delta_in_place=False,
        targets="drtp_feedback", projections=False, readout="cosine", exit_class_vectors=False,
        global_gradient=False, transposed_read=False, forward_passes=1,
        source="analytic; Frenkel, Lefebvre, Bol, Front. Neurosci. 2021"),
)
