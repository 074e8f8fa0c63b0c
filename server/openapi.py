"""The OpenAPI 3 description of the API, written by hand (served at /openapi.json)."""
from __future__ import annotations

from neuedit.runtime.state import EditConfig

from neuedit.server.config import PROJECT_STEPS, ServerConfig


def _error_response(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def spec(cfg: ServerConfig, models: list[str]) -> dict:
    errors = {"400": _error_response("Invalid input (malformed JSON, missing field, bad base64, not a PNG, "
                                     "too many pixels, state of the wrong length or out of range, ...)"),
              "404": _error_response("Unknown model"),
              "413": _error_response(f"Body larger than {cfg.max_body_bytes} bytes"),
              "422": _error_response("The model produced non-finite numbers for this input"),
              "503": {**_error_response("Too many requests in flight; retry after the Retry-After header's seconds"),
                      "headers": {"Retry-After": {"schema": {"type": "integer"}}}}}
    vec = {"type": "array", "items": {"type": "number"}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "neuedit editing server", "version": "1",
                 "description": "Generate images from (z, c) and edit them with sketches: two-stage (one forward "
                                "pass of G2 over the image and the strokes) or latent optimisation (steps on z and "
                                "c). The server is stateless: every response carries the state, send it back with "
                                "the next edit. Images and sketches are base64 PNGs (a data: URL works too)."},
        "paths": {
            "/api/models": {"get": {
                "summary": "The models this server holds",
                "responses": {"200": {"description": "Models", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {"models": {
                        "type": "array", "items": {"$ref": "#/components/schemas/Model"}}}}}}}}}},
            "/api/generate": {"post": {
                "summary": "A new image: z from the seed, c given or sampled from the schema",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/GenerateRequest"}}}},
                "responses": {"200": {"description": "The image and its state", "content": {"application/json": {
                    "schema": {"$ref": "#/components/schemas/GenerateResponse"}}}}, **errors}}},
            "/api/edit": {"post": {
                "summary": "Edit a generated image (state) or a photo (image, two-stage only) with a sketch",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/EditRequest"}}}},
                "responses": {"200": {"description": "The edited image (and the new state)", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/EditResponse"}}}}, **errors}}},
            "/api/project": {"post": {
                "summary": "Project a photo into the latent space (the latent editor's start for a photo): the "
                           "best of a few random z, then Adam steps on (z, c) toward the photo",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/ProjectRequest"}}}},
                "responses": {"200": {"description": "G1's reconstruction of the photo and its state", "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/ProjectResponse"}}}},
                    **errors}}},
            "/healthz": {"get": {
                "summary": "Liveness and readiness (503 while draining at shutdown)",
                "responses": {"200": {"description": "Serving", "content": {"application/json": {"schema": {
                    "$ref": "#/components/schemas/Health"}}}},
                    "503": {"description": "Shutting down: finishing requests in flight, send no new ones"}}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3 document"}}}},
            "/": {"get": {"summary": "The web client",
                          "responses": {"200": {"description": "HTML page", "content": {"text/html": {}}}}}},
        },
        "components": {"schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {
                "type": "object", "required": ["code", "message"],
                "properties": {"code": {"type": "string", "example": "bad_state"}, "message": {"type": "string"}}}}},
            "Schema": {"type": "object", "description": "The label schema: c is the concatenation of its groups' "
                                                        "attributes; an exclusive group has at most one on",
                       "properties": {"name": {"type": "string"}, "groups": {"type": "array", "items": {
                           "type": "object", "properties": {
                               "name": {"type": "string"}, "attributes": {"type": "array", "items": {"type": "string"}},
                               "exclusive": {"type": "boolean"}}}}}},
            "Model": {"type": "object", "properties": {
                "name": {"type": "string", "enum": models}, "domain": {"type": "string"},
                "kind": {"type": "string"}, "resolution": {"type": "integer"}, "z_dim": {"type": "integer"},
                "c_dim": {"type": "integer"}, "schema": {"$ref": "#/components/schemas/Schema"},
                "methods": {"type": "array", "items": {"type": "string", "enum": ["two-stage", "latent"]}},
                "provider": {"type": "string"},
                "training_steps": {"type": "object", "description": "training iterations of each stage in the bundle",
                                   "properties": {"stage1": {"type": "integer"}, "stage2": {"type": "integer"}}}}},
            "State": {"type": "object", "required": ["z", "c"],
                      "description": "One image's editing state: z in (-1, 1) (z_dim values), c in [0, 1] "
                                     "(c_dim values); Adam's moments m, v (z_dim + c_dim values) and step t "
                                     "after a latent edit with optimizer adam; z0, c0: the state whose picture a latent edit "
                                     "started from (kept across calls, so the edit keeps that picture)",
                      "properties": {"z": vec, "c": vec, "m": vec, "v": vec, "t": {"type": "integer", "minimum": 0},
                                     "z0": vec, "c0": vec}},
            "GenerateRequest": {"type": "object", "required": ["model"], "properties": {
                "model": {"type": "string", "enum": models},
                "seed": {"type": "integer", "minimum": 0, "maximum": 2**53 - 1,
                         "description": "z is drawn from it (random when absent); the same seed with another c "
                                        "keeps z"},
                "c": {**vec, "description": "c_dim values in [0, 1]; sampled from the schema when absent"}}},
            "GenerateResponse": {"type": "object", "properties": {
                "model": {"type": "string"}, "image": {"type": "string", "format": "byte",
                                                       "description": "base64 PNG, resolution x resolution"},
                "state": {"$ref": "#/components/schemas/State"}, "seed": {"type": "integer"},
                "resolution": {"type": "integer"}}},
            "EditRequest": {"type": "object", "required": ["model", "sketch"], "properties": {
                "model": {"type": "string", "enum": models},
                "state": {"$ref": "#/components/schemas/State"},
                "image": {"type": "string", "format": "byte",
                          "description": "instead of state: a photo (base64 PNG/JPEG/WEBP, any size: centre-cropped "
                                         f"and resized; at most {cfg.max_photo_pixels} pixels); two-stage only"},
                "sketch": {"type": "string", "format": "byte",
                           "description": "base64 PNG of the strokes, any size (resized to the model's): alpha > 0 "
                                          "marks a stroke, RGB is its colour; without alpha, non-black pixels are "
                                          f"strokes; at most {cfg.max_sketch_pixels} pixels"},
                "method": {"type": "string", "enum": ["two-stage", "latent"], "default": "two-stage"},
                "steps": {"type": "integer", "minimum": 0, "maximum": cfg.max_steps, "default": 1,
                          "description": "latent: optimisation steps"},
                "optimizer": {"type": "string", "enum": ["gd", "adam"], "default": EditConfig().optimizer,
                              "description": "latent: plain gradient descent (the report) or Adam (iGAN)"},
                "lr": {"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": cfg.max_lr,
                       "description": "latent: step size of z (default 2.0 for gd; for adam 0, z held, on a model "
                                      "with a condition c, which then carries the edit, else 0.05)"}}},
            "EditResponse": {"type": "object", "properties": {
                "model": {"type": "string"}, "method": {"type": "string"},
                "image": {"type": "string", "format": "byte", "description": "base64 PNG"},
                "state": {"$ref": "#/components/schemas/State"},
                "dist": {"type": "number", "description": "Dist(image, sketch) over the stroked pixels"},
                "steps": {"type": "integer"}}},
            "ProjectRequest": {"type": "object", "required": ["model", "image"], "properties": {
                "model": {"type": "string", "enum": models},
                "image": {"type": "string", "format": "byte",
                          "description": "a photo (base64 PNG/JPEG/WEBP, any size: centre-cropped and resized; at most "
                                         f"{cfg.max_photo_pixels} pixels)"},
                "steps": {"type": "integer", "minimum": 0, "maximum": cfg.max_project_steps,
                          "default": min(PROJECT_STEPS, cfg.max_project_steps), "description": "Adam steps"}}},
            "ProjectResponse": {"type": "object", "properties": {
                "model": {"type": "string"},
                "image": {"type": "string", "format": "byte", "description": "base64 PNG: G1(z, c) of the state"},
                "state": {"$ref": "#/components/schemas/State"},
                "dist": {"type": "number", "description": "the reconstruction's Dist to the photo (mean L1 over "
                                                          "the whole image)"},
                "steps": {"type": "integer"}}},
            "Health": {"type": "object", "properties": {
                "status": {"type": "string", "enum": ["ok", "draining"]},
                "models": {"type": "array", "items": {"type": "string"}},
                "inflight": {"type": "integer"}, "queue_size": {"type": "integer"},
                "batching": {"type": "object"}}},
        }},
    }
