"""Write the model cards (README.md) of the Shapes asset folders from the measured figures.

  python training/make_model_cards.py [--train-notes "..."]

Reads eval_shapeeval_*.json / eval_vector_vae.json / bench.json written by the
evaluation scripts next to each model, counts parameters from the weights and
sizes from the files.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from shapes_common import REPO

SD = REPO / "assets" / "models" / "shapes-sd"
VV = REPO / "assets" / "models" / "shapes-vae"


def n_params(path: Path) -> int:
    import numpy as np
    from safetensors import safe_open

    n = 0
    with safe_open(str(path), framework="np") as f:
        for k in f.keys():
            n += int(np.prod(f.get_slice(k).get_shape()))
    return n


def folder_mb(p: Path) -> float:
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 1e6


def sd_card(notes: str) -> str:
    from studio.shapes import suite

    comps = {
        "unet": SD / "unet" / "diffusion_pytorch_model.safetensors",
        "text_encoder": SD / "text_encoder" / "model.safetensors",
        "vae": SD / "vae" / "diffusion_pytorch_model.safetensors",
    }
    params = {k: n_params(v) for k, v in comps.items() if v.exists()}
    unet_cfg = json.loads((SD / "unet" / "config.json").read_text())
    te_cfg = json.loads((SD / "text_encoder" / "config.json").read_text())
    vae_cfg = json.loads((SD / "vae" / "config.json").read_text())
    sched = json.loads((SD / "scheduler" / "scheduler_config.json").read_text())
    state = json.loads((SD / "training_state.json").read_text()) if (SD / "training_state.json").exists() else {}
    evals = sorted(SD.glob("eval_shapeeval_*.json"))
    rows = []
    for e in evals:
        d = json.loads(e.read_text())
        rows.append((e.name, d))
    bench = json.loads((SD / "bench.json").read_text()) if (SD / "bench.json").exists() else None
    vocab = len(json.loads((SD / "tokenizer" / "vocab.json").read_text()))
    lines = [
        "# shapes-sd — the Studio Image panel's default model",
        "",
        "A tiny Stable-Diffusion-architecture text-to-image model trained from scratch on the synthetic",
        "**Shapes world** (`studio/shapes/`): 64x64 images of one or two flat coloured shapes on a flat",
        "background.  It is a standard diffusers `StableDiffusionPipeline` folder and loads with plain",
        "`diffusers.DiffusionPipeline.from_pretrained(folder)` (no safety checker, `requires_safety_checker: false`).",
        "",
        "```python",
        "from diffusers import DiffusionPipeline",
        "pipe = DiffusionPipeline.from_pretrained('assets/models/shapes-sd')",
        "img = pipe('a yellow triangle to the left of a green circle', num_inference_steps=25,",
        "           guidance_scale=7.5, height=64, width=64).images[0]",
        "```",
        "",
        "## Data",
        "",
        "Rendered on the fly by `studio.shapes.world` (numpy/PIL, 4x super-sampled, deterministic from a seed):",
        "shapes circle/square/triangle; colours red, green, blue, yellow, purple, orange, white, black (object",
        "colour != background colour); size small/large; position left/center/right x top/middle/bottom (+-1.5 px",
        "jitter); two-object scenes carry a relation (left of, right of, above, below).  Captions from",
        "`studio.shapes.captions`: many templates, optional words (size/position/background may be omitted),",
        "synonyms (disc, box, pyramid, crimson, violet, ...), both word orders for relations, re-drawn every",
        "time a sample is used.  About 10% of factor combinations are **held out** from training",
        "(`world.is_heldout`: single-object (shape, colour, size, position, background) tuples and unordered",
        "pairs of coloured objects); all evaluation prompts come from the held-out part.",
        "The shipped UNet and text encoder trained on a bank of 500 000 training scenes (60% two-object), 8",
        "captions each, latents pre-encoded with the VAE.",
        "",
        "## Architecture",
        "",
        "| component | details | parameters |",
        "|---|---|---|",
        f"| VAE (AutoencoderKL) | 64x64x3 -> 16x16x{vae_cfg['latent_channels']}, block_out_channels "
        f"{vae_cfg['block_out_channels']}, layers_per_block {vae_cfg['layers_per_block']}, scaling_factor "
        f"{vae_cfg['scaling_factor']:.4f} | {params.get('vae', 0):,} |",
        f"| text encoder (CLIPTextModel) | hidden {te_cfg['hidden_size']}, {te_cfg['num_hidden_layers']} layers, "
        f"{te_cfg['num_attention_heads']} heads, max {te_cfg['max_position_embeddings']} tokens, "
        f"vocab {te_cfg['vocab_size']} "
        f"| {params.get('text_encoder', 0):,} |",
        f"| tokenizer (CLIPTokenizer) | byte-level BPE built here from the caption vocabulary "
        f"(vocab.json + merges.txt, {vocab} tokens); every caption word is one token, unknown words fall back to "
        f"sub-words/bytes | - |",
        f"| UNet2DConditionModel | sample 16x16x4, block_out_channels {unet_cfg['block_out_channels']}, "
        f"{unet_cfg['down_block_types']}, layers_per_block {unet_cfg['layers_per_block']}, cross_attention_dim "
        f"{unet_cfg['cross_attention_dim']} | {params.get('unet', 0):,} |",
        f"| scheduler | {sched['_class_name']} ({sched.get('algorithm_type', '')}), trained as DDPM 1000 steps, "
        f"linear betas {sched['beta_start']}..{sched['beta_end']}, prediction_type {sched['prediction_type']}, "
        f"timestep_spacing {sched.get('timestep_spacing')} | - |",
        "",
        f"Total parameters {sum(params.values()):,}; weights fp32 safetensors; folder size "
        f"{folder_mb(SD):.1f} MB.",
        "",
        "## Training",
        "",
        "Scripts: `training/train_shapes_sd.py` (stages vae, vaedec, tok, latents, unet, export) and",
        "`training/train_shapes_sd_gpu.py` (the UNet + text encoder on a GPU; `training/gpu_session.sh` is the",
        "exact sequence), see `training/README.md`.  Seed 0.  The VAE and tokenizer were trained on a shared",
        "2-core CPU; the shipped UNet and text encoder on one lent NVIDIA H100.",
        "",
        notes,
        "",
        f"Exported state: {json.dumps(state)}",
        "",
        "## Evaluation (ShapeEval, held-out prompts)",
        "",
        "`python training/eval_shapes_sd.py --n 40 --steps 25 --guidance 7.5` — the scorer",
        "(`studio.shapes.scorer`) reads each generated image back into objects (background = dominant colour,",
        "connected components, nearest palette colour, shape by fill ratio/geometry, size by extent, position",
        "by thirds); it agrees with ground truth on 100% of factors on clean renders (tested, >= 99% required).",
        "Categories (`studio.shapes.suite`): single object (colour, shape, position, size, count, background),",
        "two objects (both shapes present), relation (both present and relation right), colour binding (each",
        "shape carries its colour).",
        "",
    ]
    for name, d in rows:
        lines.append(f"### {name}: steps {d['steps']}, guidance {d['guidance']}, "
                     f"{d['n_per_category']} prompts/category, "
                     f"UNet step {d.get('model_state', {}).get('unet_step')}")
        lines.append("")
        lines.append(suite.format_table(d))
        lines.append("")
    if bench:
        lines += ["## Speed", "", f"`python bench/bench_shapes_sd.py`: {bench['line']}", ""]
    lines += [
        "## Samples",
        "",
        "`grid.png`: rows of 6 tiles = 2 prompts x 3 seeds (prompts in `grid.txt`), 25 steps, guidance 7.5.",
        "",
        "## Limitations",
        "",
        "Trained for 18 minutes on one GPU; it knows only the Shapes world (3 shapes, 8 colours, 2 sizes,",
        "3x3 positions, 4 relations) at 64x64.  Figures below target are reported as measured.",
        "",
        "## Licence",
        "",
        "Weights, tokenizer and data generator were produced from scratch in this repository (no third-party",
        "weights or data); released under the same licence as the Studio repository.",
        "",
    ]
    return "\n".join(lines)


def vae_card(notes: str) -> str:
    cfg = json.loads((VV / "config.json").read_text())
    meta = json.loads((VV / "directions.json").read_text()) if (VV / "directions.json").exists() else {}
    ev = json.loads((VV / "eval_vector_vae.json").read_text()) if (VV / "eval_vector_vae.json").exists() else None
    p = n_params(VV / "model.safetensors")
    lines = [
        "# shapes-vae — the Studio Latent panel's default model",
        "",
        f"A vector-latent VAE ({cfg['latent_dim']}-d latent) for single-object Shapes-world scenes, with named",
        "latent directions.  Straight lines in the latent move / grow / recolour the object.",
        "",
        "## Files",
        "",
        "| file | content |",
        "|---|---|",
        "| `config.json` | constructor config of `studio.shapes.vector_vae.VectorVAE` |",
        "| `model.safetensors` | fp32 state dict |",
        "| `directions.safetensors` | unit latent directions `x`, `y`, `size`, `hue`, `background`, `shape_circle`, "
        "`shape_square`, `shape_triangle` (conditional), `boundary_*` (raw normals), `pca` [8, D], `latent_mean`, "
        "`latent_std` |",
        "| `directions.json` | per direction: units, `units_per_latent` (factor change per unit of latent length), "
        "range, R^2 of the linear read-out; PCA explained variance |",
        "",
        "```python",
        "from studio.shapes.vector_vae import load_vector_vae, load_directions_meta",
        "vae, dirs = load_vector_vae('assets/models/shapes-vae')",
        "meta = load_directions_meta('assets/models/shapes-vae')",
        "z = vae.encode_images(img_uint8_64x64x3)                 # [1, D]",
        "step = 10 / meta['factors']['x']['units_per_latent']    # latent length for +10 px",
        "moved = vae.decode_images(z + step * dirs['x'])          # uint8 [1, 64, 64, 3]",
        "```",
        "",
        "## Data",
        "",
        "`studio.shapes.world.sample_continuous_scene`: one circle/square/triangle, centre x, y uniform in",
        "[12, 52] px, half-size in [4, 11] px, hue in [0, 0.8] (S 0.85, V 0.95), background black or white;",
        "rendered on the fly (seeded per step).  Evaluation uses separate seed streams.",
        "",
        "## Architecture",
        "",
        f"Encoder: 4 strided 4x4 convs {cfg['channels']} (coordinate channels on the input) -> linear -> mean,",
        f"log-variance ({cfg['latent_dim']}-d).  Decoder: linear -> {cfg['dec_base']}x{cfg['dec_base']}x"
        f"{cfg['dec_channels'][0]} -> CoordConv blocks {cfg['dec_channels']} at 8/16/32 px -> pixel-shuffle 2x ->",
        f"sigmoid, 64x64x3.  {p:,} parameters.  Decoding one image takes a few milliseconds on one CPU core.",
        "",
        "Directions (InterFaceGAN-style, from ground-truth labels): a linear read-out factor = W z + b is fitted",
        "on 4000 encoded scenes; the named direction for factor k is column k of pinv(W) (moves factor k while",
        "the read-out of all other factors stays fixed), normalised to unit length; `boundary_*` is the raw",
        "normal W[k]/|W[k]|.  `pca` holds the top-8 principal axes of the latent means (GANSpace-style).",
        "",
        "## Training",
        "",
        "`training/train_vector_vae.py` (see `training/README.md`): Adam, Gaussian reconstruction loss",
        "(sigma 0.05, object pixels up-weighted), KL, and an auxiliary linear probe from the latent mean to the",
        "ground-truth factors (makes factors linearly readable).  Hardware: shared 2-core CPU, 1 thread.",
        "",
        notes,
        "",
        f"Training step of the exported weights: {meta.get('training_step')}",
        "",
        "## Measured figures (`python training/eval_vector_vae.py`)",
        "",
    ]
    if ev:
        lines += [
            f"Reconstruction PSNR on {ev['n_psnr']} held-out renders: **{ev['psnr_mean_per_image']:.2f} dB** "
            f"(mean of per-image PSNR), {ev['psnr_of_mean_mse']:.2f} dB (PSNR of the mean MSE); target >= 28 dB.",
            "",
            "Read-back of reconstructions by ShapeEval (shape, background exact; x/y within 1.5 px; size within",
            "1 px; hue within 0.03): " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in ev["readback_agreement"].items()),
            "",
            "| direction | selectivity (target >= 0.8) | monotonicity, Spearman (target >= 0.95) | failed reads |",
            "|---|---|---|---|",
        ]
        for k, v in ev["directions"].items():
            mono = "n/a (categorical)" if v["monotonicity"] is None else f"{v['monotonicity']:.3f}"
            lines.append(f"| {k} | {v['selectivity']:.3f} | {mono} | {v['fail']}/{v['n']} |")
        lines += ["", "Protocol: for each direction and each of the held-out base images the target factor's",
                  "read-out is swept over 9 values inside its range (10% margin); every decode is read back by",
                  "ShapeEval; selectivity = total variation of the target factor / sum over factors (x, y: 40 px,",
                  "size: 7 px, hue: 0.8, background and shape: 1 per flip); monotonicity = Spearman(sweep, target).",
                  ""]
        if ev.get("pca"):
            lines.append("PCA directions, factor each moves most (share of normalised change): " + ", ".join(
                f"pc{r['pc']}: {r['top_factor']} ({r['share']:.2f})" for r in ev["pca"]))
            lines.append("")
    lines += ["## Licence", "", "Trained from scratch in this repository on generated data; same licence as the",
              "Studio repository.", ""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sd-notes", default="")
    ap.add_argument("--vae-notes", default="")
    a = ap.parse_args()
    if (SD / "model_index.json").exists():
        (SD / "README.md").write_text(sd_card(a.sd_notes))
        print("wrote", SD / "README.md")
    if (VV / "config.json").exists():
        (VV / "README.md").write_text(vae_card(a.vae_notes))
        print("wrote", VV / "README.md")


if __name__ == "__main__":
    main()
