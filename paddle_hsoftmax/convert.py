"""``python -m paddle_hsoftmax.convert RUN_DIR [--trust-pickles]``: rewrite the pickles that
paddle_hsoftmax 0.1.0 left in a run directory as the data-only files this version reads.

Problem -> idea: 0.1.0 wrote ``checkpoints/last.pdckpt``, ``checkpoints/best.pdckpt`` and a CRF
tagger's ``inference/crf.pdparams`` with ``paddle.save``, i.e. as pickles; loading one runs any code
its author put in it, so this version refuses them (one line naming the file). The only way to read
them is to unpickle them, which is safe only for a run one made oneself. So this command

- without ``--trust-pickles``: lists the run's pickle files (found by their first bytes, never
  parsed), says what unpickling means, converts nothing and exits with status 2;
- with ``--trust-pickles`` (the user's explicit request, repeated on the first line printed):
  ``paddle.load`` s each of them, writes it again as safetensors (checkpoints in place, under the
  same name, through :func:`~paddle_hsoftmax.safe_io.save_state`; the CRF as
  ``inference/crf.safetensors``), reads the new file back and checks every tensor is bit-equal,
  then removes the pickle (and an ``inference/model.pdiparams.info``, a pickle only Paddle's old
  program loader reads). ``run.json`` records the conversion: the files and the SHA-256 of each
  pickle converted.

Arguments: ``RUN_DIR``; ``--trust-pickles``. Exit status 0 when converted (or nothing to convert),
2 when refused or on a damaged file.
"""

from __future__ import annotations

import argparse
import datetime
import sys
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from .data.text import CorpusError
from .errors import UserError
from .rundir import RunDir

__all__ = ["main", "convert_run"]


def _flat_arrays(obj, prefix=""):
    """``path -> ndarray`` of every tensor in a nested structure (for the bit-equality check)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flat_arrays(v, f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _flat_arrays(v, f"{prefix}/{i}")
    elif hasattr(obj, "numpy") and not isinstance(obj, np.generic):
        yield prefix, np.asarray(obj.numpy())
    elif isinstance(obj, (np.ndarray, np.generic)):
        yield prefix, np.asarray(obj)


def _same(a, b) -> bool:
    fa, fb = dict(_flat_arrays(a)), dict(_flat_arrays(b))
    return fa.keys() == fb.keys() and all(
        fa[k].dtype == fb[k].dtype and fa[k].shape == fb[k].shape and fa[k].tobytes() == fb[k].tobytes() for k in fa)


def convert_run(run_dir, log=print) -> List[str]:
    """Convert the pickles of ``run_dir`` (the caller has the user's explicit consent: this
    unpickles them). Returns the run-relative names converted or removed."""
    import paddle

    from .safe_io import load_state, load_tensors, save_state, save_tensors, sha256_file

    run = RunDir.open(run_dir)
    done, digests = [], {}

    def unpickle(path: Path):
        try:
            return paddle.load(str(path))
        except Exception as exc:  # a damaged pickle: one line, the file kept as it was
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise CorpusError(f"{path}: could not be unpickled ({reason}); left as it was") from None

    for path in run.pickle_files():
        rel = path.relative_to(run.path).as_posix()
        digests[rel] = sha256_file(path)
        if path.name == "model.pdiparams.info":
            path.unlink()
            log(f"removed {rel} (a pickle only Paddle's old program loader reads; the PIR loader does not need it)")
        elif path.name == "crf.pdparams":
            state = unpickle(path)
            target = path.with_name("crf.safetensors")
            save_tensors(target, state)
            if not _same(state, load_tensors(target)):  # pragma: no cover - a safetensors bug
                raise CorpusError(f"{target}: the converted file does not read back equal; {rel} kept")
            path.unlink()
            log(f"converted {rel} -> {target.relative_to(run.path).as_posix()}")
        else:
            state = unpickle(path)
            save_state(path, state)  # atomic: the pickle is replaced only by a complete new file
            if not _same(state, load_state(path)):  # pragma: no cover - a safetensors bug
                raise CorpusError(f"{path}: the converted file does not read back equal")
            log(f"converted {rel} (pickle -> safetensors, same name)")
        done.append(rel)
    record = run.record()
    if done and record is not None:
        record.setdefault("converted", []).append({
            "at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "from": "pickle", "sha256": digests})
        if record.get("files"):
            record["files"] = sorted(set(run.files()) | {run.RECORD})
        run.write_json(run.RECORD, record)
    return done


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m paddle_hsoftmax.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a run directory written by paddle_hsoftmax 0.1.0")
    parser.add_argument("--trust-pickles", action="store_true",
                        help="unpickle the run's pickle files to convert them: only for a run you made yourself")
    args = parser.parse_args(argv)
    try:
        run = RunDir.open(args.run_dir)
        pickles = run.pickle_files()
        if not pickles:
            print(f"{run.path}: no pickle files; nothing to convert")
            return 0
        names = ", ".join(p.relative_to(run.path).as_posix() for p in pickles)
        if not args.trust_pickles:
            print(f"error: {run.path}: pickle files {names}: not converted. Converting means unpickling them, "
                  "which runs any code their author put in them: do it only for a run you made yourself, with "
                  f"`python -m paddle_hsoftmax.convert {args.run_dir} --trust-pickles`", file=sys.stderr)
            return 2
        print(f"unpickling {len(pickles)} file(s) of {run.path} because you asked (--trust-pickles): {names}")
        convert_run(run.path)
    except UserError as exc:
        print(f"error: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
