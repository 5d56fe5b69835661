"""Named integer codes that the kernels branch on (kernels take scalars, never strings).

numba freezes module-level integers as compile-time constants, so ``act == LEAKY_RELU`` costs the
same as ``act_code == 1``. The string -> code tables the backends use are built from these names,
so a code has exactly one definition.
"""

# Activation functions (NetworkSpec.activation).
IDENTITY, LEAKY_RELU, TANH = 0, 1, 2
ACTIVATION_CODE = {"identity": IDENTITY, "leaky_relu": LEAKY_RELU, "tanh": TANH}

# SPELA loss functions (Spela.loss): the gradient scale g is 1 for -cos and 1/(2 - cos) for log(2 - cos).
NEG_COS, LOG_2_MINUS_COS = 0, 1
LOSS_CODE = {"neg_cos": NEG_COS, "log_2_minus_cos": LOG_2_MINUS_COS}

# Rounding modes (PrecisionSpec rounding of updates), in fixedpoint.ROUNDING_MODES order.
NEAREST, STOCHASTIC, TRUNCATE = 0, 1, 2

# Overflow handling of a format: saturate (also used for "raise"; the wrapper raises) or wrap.
SATURATE, WRAP = 0, 1

# Layout of a layer's weights in the fused kernels: input-major ``wt[j, i] = W[i, j]`` (a row per
# input: wide layers) or output-major ``W[i, :]`` (narrow layers).
INPUT_MAJOR, OUTPUT_MAJOR = 0, 1
