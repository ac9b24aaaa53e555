"""Face datasets: loaders that read each dataset's real layout into one table (see :mod:`vlbias.datasets.base`)."""

from vlbias.datasets.base import FaceDataset, LoadReport
from vlbias.datasets.spec import DatasetSpec, dataset_names, load_dataset

__all__ = ["DatasetSpec", "FaceDataset", "LoadReport", "dataset_names", "load_dataset"]
