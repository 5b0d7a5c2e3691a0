"""A tiny random-weight MusicGen built from configs, with a locally built T5 tokenizer.

Nothing is downloaded: the tokenizer's vocabulary is made here (letters and a few words), the
weights are random.  ``build_tiny_musicgen(folder)`` saves a folder that the studio's own loader
opens like any MusicGen checkpoint (model + processor files).
"""

from __future__ import annotations

from pathlib import Path

WORDS = ("▁a", "▁slow", "▁fast", "▁chorale", "▁in", "▁d", "▁minor", "▁major", "▁organ", "▁piano", "▁music",
         "▁happy", "▁sad", "▁song", "▁with", "▁drums", "▁guitar", "▁the")


def build_tokenizer():
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(w, -3.0) for w in WORDS]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789,.'-!?"]
    vocab += [("▁" + c, -4.5) for c in "abcdefghijklmnopqrstuvwxyz0123456789"]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def build_tiny_musicgen(folder: str | Path, max_positions: int = 512, seed: int = 0, audio_channels: int = 1):
    import torch
    from transformers import (
        EncodecConfig,
        EncodecFeatureExtractor,
        MusicgenConfig,
        MusicgenDecoderConfig,
        MusicgenForConditionalGeneration,
        MusicgenProcessor,
        T5Config,
    )

    torch.manual_seed(seed)
    folder = Path(folder)
    tokenizer = build_tokenizer()
    text = T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1, num_heads=2,
                    relative_attention_num_buckets=8, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    audio = EncodecConfig(sampling_rate=16000, audio_channels=1, hidden_size=16, num_filters=4,
                          upsampling_ratios=[8, 5, 4, 2], codebook_size=64, num_lstm_layers=1,
                          target_bandwidths=[0.6], num_residual_layers=1, compress=2, use_conv_shortcut=False)
    num_codebooks = 2 * audio_channels
    decoder = MusicgenDecoderConfig(vocab_size=64, max_position_embeddings=max_positions, num_hidden_layers=2,
                                    ffn_dim=32, num_attention_heads=2, hidden_size=16, num_codebooks=num_codebooks,
                                    audio_channels=audio_channels, pad_token_id=64, bos_token_id=64,
                                    decoder_start_token_id=64)
    config = MusicgenConfig(text_encoder=text, audio_encoder=audio, decoder=decoder)
    model = MusicgenForConditionalGeneration(config).eval()
    model.generation_config.pad_token_id = 64
    model.generation_config.decoder_start_token_id = 64
    model.generation_config.bos_token_id = 64
    model.generation_config.do_sample = True
    model.generation_config.guidance_scale = 3.0
    model.generation_config.max_length = max_positions
    model.save_pretrained(folder)
    extractor = EncodecFeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0)
    MusicgenProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(folder)
    return folder
