"""DVC stage `package`: import the gated model into the BentoML store and build the Bento.

Runs offline: the Bento's Python packages are bentofile.yaml's requirements file, the serving
group of uv.lock at exact versions (`make lock` exports it), so nothing is resolved or pulled.
Labels carry the model version, git commit and data hash; the result goes to reports/bento.json
for the deploy report. `bentoml containerize` runs on GitHub's runners.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from model.artifacts import GateReport, read_artifact
from model.atomic import write_json_atomically
from model.lineage import git_commit
from model.model_store import import_model, use_project_store
from model.params import Params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("onnx", type=Path, help="ONNX model written by `export`")
    parser.add_argument("metadata", type=Path, help="model metadata written by `export`")
    parser.add_argument("gate", type=Path, help="gate result written by `gate`")
    parser.add_argument("card", type=Path, help="model card written by `card`")
    parser.add_argument("bentofile", type=Path, help="the Bento build file")
    parser.add_argument("report", type=Path, help="where to write what was built (JSON)")
    args = parser.parse_args(argv)

    gate = read_artifact(args.gate, GateReport)
    if not gate.passed:
        print(
            f"package: {args.gate} says the model failed its gates; not packaging", file=sys.stderr
        )
        return 1
    use_project_store()
    import bentoml

    params = Params.load()
    # models/model.json is committed, so it cannot name the commit that holds it: the commit is
    # stamped here, as the model enters the store, and travels in the store's copy.
    info = {"training_commit": git_commit(), **json.loads(args.metadata.read_text())}
    registry_version = gate.registered.version if gate.registered else None
    model_tag, created = import_model(
        params.registry.model_name, args.onnx, info, registry_version, args.card
    )
    print(f"package: model {model_tag} {'imported' if created else 'already in the store'}")
    labels = {
        "model_tag": model_tag,
        "model_version": model_tag.split(":", 1)[1],
        "git_commit": git_commit()[:40],
        "data_md5": info["data_md5"],
    }
    bento = bentoml.bentos.build_bentofile(str(args.bentofile), labels=labels)
    write_json_atomically(
        args.report,
        {
            "bento_tag": str(bento.tag),
            "model_tag": model_tag,
            "onnx_sha256": info["sha256"],  # the report checks every output is of one model
            "labels": labels,
            "path": str(Path(bento.path).resolve()),
        },
    )
    print(f"package: built Bento {bento.tag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
