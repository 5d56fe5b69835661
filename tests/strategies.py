"""Hypothesis strategies shared by the bit-exactness tests."""

from hypothesis import strategies as st

from spela_hw import FixedPointFormat, PrecisionSpec


@st.composite
def fixed_precisions(draw, vary_class_vector: bool = True):
    """Every five-format fixed-point precision the pipeline accepts (and some it rejects)."""
    wb = draw(st.integers(3, 16))
    ab = draw(st.integers(6, 16))
    fw = draw(st.integers(wb - 4, wb + 2))
    fa = draw(st.integers(2, ab))
    ub = draw(st.integers(8, 24))
    fu = draw(st.integers(fw + 1, fw + ub))
    ovf = draw(st.sampled_from(["saturate", "wrap"]))
    cv = (FixedPointFormat(draw(st.integers(4, 10)), draw(st.integers(2, 8))) if vary_class_vector
          else FixedPointFormat(8, 7))
    rounding = draw(st.sampled_from(["stochastic", "nearest", "truncate"]))
    # the SR unit's random bits per synapse (any width the unit has; 16 the widest)
    sr_bits = draw(st.sampled_from([16, 1, 2, 5, 8, 12, 15])) if rounding == "stochastic" else 16
    return PrecisionSpec(
        weight=FixedPointFormat(wb, fw, overflow=ovf),
        activation=FixedPointFormat(ab, fa, overflow=ovf),
        accumulator=FixedPointFormat(draw(st.integers(max(wb, 12), 32)), fw + fa, overflow=ovf),
        class_vector=cv,
        update=FixedPointFormat(ub, fu, rounding=rounding, overflow=ovf),
        sr_bits=sr_bits,
    )
