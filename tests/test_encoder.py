"""The encoders: named choices, all-mpnet-base-v2 assembled from split packages and verified before any use."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile

import pytest
from sopilot.ingest.embed import Embedder, get_embedder
from sopilot.ingest.models import DEFAULT_MODELS_DIR, MINILM, MPNET, MPNET_SHA256, assemble, resolve, sha256_of, verify

from sopilot.core.errors import ConfigError
from sopilot.core.settings import Settings


def _split_zip(tmp_path, files: dict[str, bytes], parts: int = 3):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(f"{MPNET}/{name}", data)
    blob = buffer.getvalue()
    size = len(blob) // parts + 1
    paths = []
    for n in range(parts):
        path = tmp_path / f"{MPNET}.zip.{n + 1:03d}"
        path.write_bytes(blob[n * size:(n + 1) * size])
        paths.append(path)
    return paths


def test_split_parts_are_joined_unzipped_and_verified(tmp_path):
    weights = b"weights of a tiny model"
    parts = _split_zip(tmp_path, {"model.safetensors": weights, "config.json": b"{}"})
    folder = assemble(tmp_path / "models", parts=parts, expected=hashlib.sha256(weights).hexdigest())
    assert folder == tmp_path / "models" / MPNET
    assert (folder / "model.safetensors").read_bytes() == weights
    assert [p.name for p in (tmp_path / "models").iterdir()] == [MPNET]


def test_parts_that_do_not_hash_to_upstream_never_reach_the_models_dir(tmp_path):
    parts = _split_zip(tmp_path, {"model.safetensors": b"tampered"})
    with pytest.raises(ConfigError, match="is corrupted or was replaced, so it is not loaded"):
        assemble(tmp_path / "models", parts=parts)
    assert list((tmp_path / "models").iterdir()) == []


def test_parts_out_of_order_are_refused_with_what_to_do(tmp_path):
    parts = _split_zip(tmp_path, {"model.safetensors": b"x" * 5000})
    with pytest.raises(ConfigError, match=re.escape("do not form a zip") + ".*--force-reinstall --no-deps"):
        assemble(tmp_path / "models", parts=list(reversed(parts)))


def test_a_corrupted_model_file_is_refused_before_it_is_loaded(tmp_path):
    folder = tmp_path / MPNET
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"\0" * 1024)
    embedder = Embedder(str(folder), tmp_path / "no-exports")
    assert embedder.name == MPNET and embedder.spec.sha256 == MPNET_SHA256
    refused = re.escape(f"{folder / 'model.safetensors'} has SHA-256 ") + ".*not the upstream " + MPNET_SHA256
    with pytest.raises(ConfigError, match=refused + ".*is not loaded"):
        embedder.embed_query("refund")
    with pytest.raises(ConfigError, match=refused):
        embedder.embed_batch(["documents are embedded with the weights themselves"])


def test_a_missing_model_file_says_how_to_assemble(tmp_path):
    with pytest.raises(ConfigError, match=re.escape("python -m sopilot.ingest.models assemble")):
        verify(tmp_path)


def test_the_assembled_mpnet_is_the_upstream_file():
    weights = DEFAULT_MODELS_DIR / MPNET / "model.safetensors"
    assert weights.is_file(), "run `make install` (python -m sopilot.ingest.models assemble)"
    assert sha256_of(weights) == MPNET_SHA256


@pytest.mark.parametrize(("configured", "name", "pieces"), [
    pytest.param(MINILM, MINILM, 256, id="the light option by name"),
    pytest.param("", MINILM, 256, id="empty is the packaged MiniLM"),
    pytest.param(MPNET, MPNET, 384, id="mpnet by name"),
])
def test_encoders_by_name(configured, name, pieces):
    spec = resolve(configured)
    assert (spec.name, spec.max_word_pieces) == (name, pieces)


def test_an_unknown_encoder_names_the_choices():
    with pytest.raises(ConfigError, match=re.escape(f"neither {MPNET!r}, {MINILM!r} nor a directory")):
        resolve("bert-of-my-dreams")


def test_document_embeddings_are_cached_by_content(tmp_path, embedder):
    texts = ["Refund the duplicate charge.", "Reset the password."]
    first, embedded = embedder.embed_documents(texts, cache_dir=tmp_path)
    assert embedded == 2
    again, embedded = embedder.embed_documents([texts[1], "A new chunk."], cache_dir=tmp_path)
    assert embedded == 1
    assert again[0] == pytest.approx(first[1], abs=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == [f"{MINILM}.sqlite"]


def test_an_index_built_with_another_encoder_is_named(indexed_settings):
    from sopilot.retriever.hybrid import load

    other = Settings.from_env({}, data_dir=indexed_settings.data_dir,
                              embedding_model=MPNET if get_embedder(indexed_settings.embedding_model).name != MPNET
                              else MINILM)
    with pytest.raises(ConfigError, match="was not built with the configured encoder .*run `sopilot ingest`"):
        load(other)


@pytest.mark.parametrize("name", [MINILM, MPNET])
def test_the_onnx_query_encoder_gives_the_original_vectors(name):
    import numpy as np

    texts = ["customer charged twice for the March invoice, 89 dollars",
             "Hi team, our office manager could not add four engineers: we reached our licence limit. " * 4]
    fast = get_embedder(name)
    assert fast._onnx is not None, "run `make install` (python -m sopilot.ingest.models assemble) to export it"
    original = Embedder(name, onnx=False)
    cosine = (np.asarray(fast.embed_queries(texts)) * np.asarray(original.embed_queries(texts))).sum(axis=1)
    assert cosine.min() >= 0.999


def test_a_corrupted_onnx_export_is_refused(tmp_path):
    import shutil

    from sopilot.ingest.models import onnx_dir, verified_onnx

    spec = resolve(MINILM)
    shutil.copytree(onnx_dir(spec), onnx_dir(spec, tmp_path))
    with open(onnx_dir(spec, tmp_path) / "model.onnx", "r+b") as handle:
        handle.seek(4096)
        handle.write(b"\xff\xfe")
    with pytest.raises(ConfigError, match="does not hash to the value recorded at export: it is corrupted"):
        verified_onnx(spec, tmp_path)
    assert verified_onnx(spec, tmp_path / "nowhere") is None
