"""MusicGen through transformers (MusicgenForConditionalGeneration + MusicgenProcessor).

Text-to-music with classifier-free guidance, top-k/top-p/temperature sampling and seeds;
continuation of a WAV clip; clips longer than the model's window (30 s for the published
checkpoints) are extended in overlapping chunks; audio is decoded and streamed while the
tokens are still being generated.  Importing this package does not import torch.
"""

from __future__ import annotations

from collections.abc import Callable

from studio.plugin_api import API_VERSION, Kind, LoadOptions, ModelChoice, Param, ParamType

MAX_SECONDS = 120.0


class MusicGenPlugin:
    id = "musicgen"
    label = "MusicGen (transformers)"
    kind = Kind.MUSIC
    api_version = API_VERSION

    def parameters(self):
        return (
            Param("prompt", ParamType.TEXT, "", label="Prompt", help="describe the music; empty = unconditional"),
            Param("seconds", ParamType.FLOAT, 8.0, label="Length (s)", minimum=0.1, maximum=MAX_SECONDS,
                  help="about 50 tokens per second; past the model's window the clip is extended in chunks"),
            Param("guidance", ParamType.FLOAT, 3.0, label="Guidance (CFG)", minimum=1.0, maximum=15.0, step=0.5,
                  help="1 = off"),
            Param("top_k", ParamType.INT, 250, label="Top-k", minimum=0, maximum=4096, help="0 = off"),
            Param("top_p", ParamType.FLOAT, 0.0, label="Top-p", minimum=0.0, maximum=1.0, step=0.05,
                  help="0 = off"),
            Param("temperature", ParamType.FLOAT, 1.0, minimum=0.05, maximum=3.0, step=0.05),
            Param("seed", ParamType.SEED, -1),
            Param("continue_from", ParamType.FILE_PATH, None, label="Continue clip", optional=True,
                  help="a WAV file the music continues from"),
            Param("preview_seconds", ParamType.FLOAT, 1.0, label="Preview every (s)", minimum=0.0, maximum=10.0,
                  advanced=True, help="decode and stream audio this often; 0 = only at the end"),
            Param("overlap_seconds", ParamType.FLOAT, 10.0, label="Chunk overlap (s)", minimum=1.0, maximum=20.0,
                  advanced=True, help="context kept when a long clip is extended"),
        )

    def modes(self):
        return ()

    def models(self):
        return (ModelChoice("facebook/musicgen-small", "MusicGen small (hub id; needs downloads allowed)",
                            "300M parameters, 32 kHz mono"),)

    def load(self, source: str, options: LoadOptions, progress: Callable[[str], None]):
        from studio_musicgen.loaded import load_musicgen

        return load_musicgen(source, options, progress)
