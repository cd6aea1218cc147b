"""Safe import of NVIDIA's StyleGAN2 network pickles (stylegan2-ada-pytorch, stylegan3 --cfg=stylegan2,
TensorFlow StyleGAN2): parsed as data by a restricted unpickler, converted to a normal model folder.
See unpickler.py for what is allowed and importer.py for the folder written; zipped.py unpacks a zipped
model folder (an upload) as safely."""
from .errors import PickleImportError, UnsafePickleError, UnsupportedNetworkError
from .importer import cached_import, import_pickle, read_network_pickle, sha256_file
from .model import ImportedModel
from .zipped import ZipImportError, import_zipped_folder

__all__ = ["PickleImportError", "UnsafePickleError", "UnsupportedNetworkError", "ImportedModel", "cached_import",
           "import_pickle", "import_zipped_folder", "read_network_pickle", "sha256_file", "ZipImportError"]
