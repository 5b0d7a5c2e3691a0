"""Tiny random-weight causal LMs of real architectures, with tokenizers built here.

Nothing is downloaded: a byte-level BPE is trained on a few sentences with ``tokenizers``,
wrapped in ``PreTrainedTokenizerFast`` and saved next to a model built from its config.
"""

from __future__ import annotations

from pathlib import Path

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "A large red circle sits on the left of a black background.",
    "Hello there, how are you today? I am well, thank you.",
    "It is a truth universally acknowledged that a single man must be in want of a wife.",
    "Streaming text appears one token at a time in the studio.",
    "Numbers 0123456789 and punctuation: commas, colons; quotes \"like this\" and 'this'.",
] * 4

CHATML = ("{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for message in messages %}<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
          "{{ message['content'] }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")


def make_tokenizer(folder: Path, specials: list[str], bos: str | None, eos: str | None, template: str | None,
                   vocab: int = 320):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(SENTENCES, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos,
                                   pad_token=specials[0], model_max_length=256)
    if template:
        fast.chat_template = template
    fast.save_pretrained(folder)
    return fast


def build(kind: str, folder: Path, context: int = 128) -> Path:
    """Build and save a tiny model of ``kind``: gpt2 | llama | qwen2.  Returns the folder."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    if kind == "gpt2":
        # No end-of-text token: generation only ends at max_new_tokens, Stop or a stop string.
        tok = make_tokenizer(folder, ["<pad>"], None, None, None)
        config = GPT2Config(vocab_size=len(tok), n_positions=context, n_embd=32, n_layer=2, n_head=2,
                            bos_token_id=None, eos_token_id=None, pad_token_id=tok.pad_token_id)
        model = GPT2LMHeadModel(config)
    elif kind == "llama":
        tok = make_tokenizer(folder, ["<pad>", "<|begin_of_text|>", "<|eot_id|>", "<|start_header_id|>",
                                      "<|end_header_id|>"], "<|begin_of_text|>", "<|eot_id|>", LLAMA3)
        config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                             bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                             pad_token_id=tok.pad_token_id)
        model = LlamaForCausalLM(config)
    elif kind == "qwen2":
        tok = make_tokenizer(folder, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], None, "<|im_end|>", CHATML)
        config = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                             num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=context,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        model = Qwen2ForCausalLM(config)
    else:
        raise ValueError(kind)
    model.save_pretrained(folder, safe_serialization=True)
    return folder
