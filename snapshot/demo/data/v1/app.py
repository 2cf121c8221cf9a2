"""Iris API: serves the logistic regression that notebooks/train.ipynb saves."""

import json
import math
from pathlib import Path

from flask import Flask, jsonify, request

# Loaded once at import so that a missing or broken model stops gunicorn from starting
# instead of failing the first request.
MODEL = json.loads((Path(__file__).parent / "model" / "model.json").read_text())

app = Flask(__name__)


def probability_of_second_class(features):
    z = MODEL["bias"] + sum(w * x for w, x in zip(MODEL["weights"], features, strict=True))
    return 1.0 / (1.0 + math.exp(-z))


@app.get("/health")
def health():
    return jsonify(status="ok", model_version=MODEL["model_version"])


@app.post("/predict")
def predict():
    payload = request.get_json(silent=True) or {}
    features = payload.get("features")
    if not isinstance(features, list) or len(features) != len(MODEL["features"]):
        return jsonify(error="invalid features"), 400
    p = probability_of_second_class([float(x) for x in features])
    setosa, versicolor = MODEL["classes"]
    label = versicolor if p >= 0.5 else setosa
    return jsonify(prediction=label, probability=round(max(p, 1.0 - p), 4))
