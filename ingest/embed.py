"""The embedding model, loaded by path from a packaged or assembled folder, never from a hub.

Everything is built on `embed_batch`; the model and its tokenizer load lazily on first use, so
commands that never embed never pay for torch. A model with a known upstream hash (the assembled
all-mpnet-base-v2) is verified before its weights are read (`ingest.models.verify`).

Document embeddings are cached by content: a SQLite file per model under the data dir maps the
SHA-256 of a chunk's text to its vector, so re-ingesting after an edit embeds only the chunks that
changed, and switching the model back and forth never mixes vectors of two models.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import sqlite3
from pathlib import Path

from sopilot.ingest.models import DEFAULT_MODELS_DIR, EncoderSpec, resolve, verified_onnx, verify

MAX_WORD_PIECES = 256
"""The smallest input any shipped encoder reads whole (all-MiniLM-L6-v2; all-mpnet-base-v2 reads 384)."""


def model_path(configured: str = "", models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """The model directory a setting names (see `ingest.models.resolve`)."""
    return resolve(configured, models_dir).path


class Embedder:
    """Sentence embeddings (L2-normalised, so cosine = dot product) and word-piece counts."""

    def __init__(self, configured: str = "", models_dir: Path = DEFAULT_MODELS_DIR, *, onnx: bool = True) -> None:
        self.spec: EncoderSpec = resolve(configured, models_dir)
        self.models_dir = models_dir
        self.onnx = onnx
        """Encode queries with the verified ONNX export when there is one (documents always with torch)."""
        self.path = self.spec.path
        self.name = self.spec.name
        """Identifies the model in the index version: a model change is a new version, re-embedded."""
        self.max_word_pieces = self.spec.max_word_pieces

    @functools.cached_property
    def _model(self):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        if self.spec.sha256:
            verify(self.path, self.spec.sha256)
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

    @functools.cached_property
    def _onnx(self):
        found = verified_onnx(self.spec, self.models_dir) if self.onnx else None
        if found is None:
            return None
        import onnxruntime
        from tokenizers import Tokenizer

        folder, record = found
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(int(record["max_word_pieces"]))
        tokenizer.enable_padding()
        return session, tokenizer, list(record["inputs"])

    def embed_queries(self, texts: list[str]):
        """Embed the few pieces of one ticket on one thread, through ONNX Runtime when exported.

        A short input gains nothing from a second thread, and on a busy two-core machine the
        thread hand-off dominated the tail (bench: p95 489 ms with default threads, 81 ms with one).
        The ONNX export gives the same vectors (cosine ≥ 0.999, tested) in about a third of the
        time, and spares the query side the import of torch.
        """
        if self._onnx is not None:
            return self._embed_onnx(texts)
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self.embed_batch(texts)
        finally:
            torch.set_num_threads(threads)

    def _embed_onnx(self, texts: list[str]):
        import numpy as np

        session, tokenizer, names = self._onnx
        encoded = tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        feed = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = session.run(None, {n: feed[n] for n in names})[0]
        pooled = (hidden * mask[..., None]).sum(axis=1) / np.maximum(mask.sum(axis=1, keepdims=True), 1)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype("float32")

    def embed_query(self, text: str):
        """Embed one query (see `embed_queries`)."""
        return self.embed_queries([text])[0]

    def embed_documents(self, texts: list[str], *, cache_dir: Path | None = None,
                        progress: bool = False) -> tuple[list[list[float]], int]:
        """Embed documents, reusing cached vectors of identical text; return (vectors, newly embedded)."""
        if cache_dir is None:
            return [list(map(float, v)) for v in self.embed_batch(texts, progress=progress)], len(texts)
        import numpy as np

        cache_dir.mkdir(parents=True, exist_ok=True)
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        with sqlite3.connect(cache_dir / f"{_slug(self.name)}.sqlite") as db:
            db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
            found: dict[str, list[float]] = {}
            for start in range(0, len(keys), 500):
                part = keys[start:start + 500]
                rows = db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({','.join('?' * len(part))})", part)
                found.update({k: np.frombuffer(v, dtype="float32").tolist() for k, v in rows})
            todo = list(dict.fromkeys(i for i, k in enumerate(keys) if k not in found))
            if todo:
                vectors = self.embed_batch([texts[i] for i in todo], progress=progress)
                for i, vector in zip(todo, vectors, strict=True):
                    found[keys[i]] = vector.astype("float32").tolist()
                db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)",
                               [(keys[i], np.asarray(found[keys[i]], dtype="float32").tobytes()) for i in todo])
        return [found[k] for k in keys], len(todo)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name)


@functools.lru_cache(maxsize=4)
def get_embedder(configured: str = "", models_dir: Path = DEFAULT_MODELS_DIR) -> Embedder:
    """One embedder per model per process: loading it takes a second or more."""
    return Embedder(configured, models_dir)
