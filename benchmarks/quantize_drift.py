"""What each quantization costs: size, time to quantize, and embedding drift from the source.

Quantizes one unquantized model to several types with gritdesk's quantizer and prints,
per type, the file size, the seconds it took, and the mean/min cosine of the fixed
sample sentences' embeddings against the source model's (gritdesk.models.drift).

    .venv/bin/python benchmarks/quantize_drift.py --model tiny --types Q8_0 Q6_K Q4_K_M Q4_0

On synthetic models the drift numbers only rank the types (random weights are not a
trained model's); on a real f16 GritLM they are the numbers a user should look at.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _models import resolve_model
from gritdesk.models.drift import compare, embed_samples
from gritdesk.models.quantize_progress import quantize_with_progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="synthetic shape name or an f16/f32 GGUF")
    parser.add_argument("--types", nargs="+", default=["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_0"])
    parser.add_argument("--json", action="store_true", help="print JSON lines")
    args = parser.parse_args()

    source = resolve_model(args.model)
    reference = embed_samples(source)
    print(f"source {source} ({source.stat().st_size / 2**20:.1f} MiB)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="gritdesk-quant-") as folder:
        for qtype in args.types:
            out = Path(folder) / f"{source.stem}-{qtype}.gguf"
            start = time.perf_counter()
            quantize_with_progress(source, out, qtype)
            seconds = time.perf_counter() - start
            report = compare(reference, embed_samples(out), str(out))
            row = {
                "type": qtype,
                "mib": round(out.stat().st_size / 2**20, 2),
                "seconds": round(seconds, 2),
                "mean_cosine": round(report.mean, 6),
                "min_cosine": round(report.min, 6),
            }
            if args.json:
                print(json.dumps(row))
            else:
                print(
                    f"{qtype:8} {row['mib']:10.2f} MiB {row['seconds']:8.2f} s   "
                    f"mean {row['mean_cosine']:.6f}   min {row['min_cosine']:.6f}"
                )
            out.unlink()


if __name__ == "__main__":
    main()
