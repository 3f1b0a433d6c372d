"""Datasets of the reproduction (raw-file/tfds loading, the paper's splits and augmentation chains)
and, in data.run_directory, the run-directory files every layer reads and writes."""
from data.input_pipeline import build_dataset, load_split, num_classes
from data.input_pipeline import num_examples, SPLITS
from data.preprocessing import CHAINS as PREPROCESSING_CHAINS
from data.readers import DataError
from data.sources import DATASETS, DEFAULT_DATA_DIR
