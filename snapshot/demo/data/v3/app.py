"""Iris API: serves the logistic regression that notebooks/train.ipynb saves."""

import json
from pathlib import Path

import numpy as np
import orjson
from flask import Flask, Response, request

# Loaded once at import so that a missing or broken model stops gunicorn from starting
# instead of failing the first request.
MODEL = json.loads((Path(__file__).parent / "model" / "model.json").read_text())
WEIGHTS = np.asarray(MODEL["weights"], dtype=float)

app = Flask(__name__)


def respond(body, status=200):
    # orjson serialises numpy floats directly and is several times faster than jsonify.
    return Response(orjson.dumps(body), status=status, mimetype="application/json")


def probability_of_second_class(features):
    z = MODEL["bias"] + float(WEIGHTS @ features)
    return 1.0 / (1.0 + np.exp(-z))


@app.get("/health")
def health():
    return respond({"status": "ok", "model_version": MODEL["model_version"]})


@app.get("/version")
def version():
    return respond(
        {
            "model_version": MODEL["model_version"],
            "trained_at": MODEL["trained_at"],
            "features": MODEL["features"],
            "classes": MODEL["classes"],
        }
    )


@app.post("/predict")
def predict():
    payload = request.get_json(silent=True) or {}
    features = payload.get("features")
    expected = MODEL["features"]
    # Callers kept sending 3 features or strings; say exactly what is expected.
    if not isinstance(features, list) or len(features) != len(expected):
        message = f"'features' must be a list of {len(expected)} numbers: {expected}"
        return respond({"error": message}, 400)
    try:
        values = np.asarray(features, dtype=float)
    except (TypeError, ValueError):
        return respond({"error": f"'features' must be numbers, got {features!r}"}, 400)
    p = float(probability_of_second_class(values))
    setosa, versicolor = MODEL["classes"]
    label = versicolor if p >= 0.5 else setosa
    return respond({"prediction": label, "probability": round(max(p, 1.0 - p), 4)})
