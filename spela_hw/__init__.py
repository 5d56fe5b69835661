"""spela-hw learning core: fixed-point formats, class vectors, learning rules, backends, estimators.

Public API (everything else is private or a sub-module's detail):

>>> from spela_hw import SpelaClassifier, PrecisionSpec, load_dataset
>>> data = load_dataset("mnist-bundled")
>>> clf = SpelaClassifier((1024, 10), precision=PrecisionSpec.fixed(8), random_state=0)
>>> clf.fit(data.features("train"), data.y_train).score_layers(data.features("test"), data.y_test)
"""

from .classvectors import class_vectors
from .conv import ConvNetSpec
from .conv.estimator import ConvBackpropClassifier, ConvSpelaClassifier
from .counts import COUNTERS, Counts
from .datasets import DATASETS, Dataset, find_dataset_dir, load_dataset, make_noisy_xor, to_float
from .device import DeviceModel, MatVecDeviceModel
from .errors import (CapacityError, ConfigError, DataError, MappingError, ModelFileError,
                     SaturationError, SpelaError)
from .estimator import BackpropClassifier, Classifier, SpelaClassifier
from .fixedpoint import FixedPointFormat
from .specs import Adam, Backprop, NetworkSpec, PrecisionSpec, Sgd, Sigprop, Spela

__version__ = "0.1.0"

__all__ = [
    "Adam", "Backprop", "BackpropClassifier", "COUNTERS", "CapacityError", "Classifier",
    "ConfigError", "ConvBackpropClassifier", "ConvNetSpec", "ConvSpelaClassifier", "Counts", "DATASETS", "DataError", "Dataset", "DeviceModel", "FixedPointFormat",
    "MappingError", "MatVecDeviceModel", "ModelFileError", "NetworkSpec", "PrecisionSpec", "SaturationError", "Sgd",
    "Sigprop", "Spela", "SpelaClassifier", "SpelaError", "class_vectors", "find_dataset_dir", "load_dataset",
    "make_noisy_xor", "to_float",
]
