"""Data sets as uint8 tensors in memory (Fashion-MNIST IDX, image folders)."""
from .base import BatchedTensorDataset, EpochSeededSampler, ImageTensors, tensor_loader
from .idx import read_idx, write_idx
from .registry import DatasetSplits, list_datasets, load_dataset, register_dataset

__all__ = ["BatchedTensorDataset", "DatasetSplits", "EpochSeededSampler", "ImageTensors", "list_datasets",
           "load_dataset", "read_idx", "register_dataset", "tensor_loader", "write_idx"]
