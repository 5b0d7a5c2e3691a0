"""The load-cost figures in words (status bar and its tooltip)."""

from __future__ import annotations

from studio.core.load_memory import human_bytes, load_memory_details, load_memory_summary


def test_human_bytes_picks_binary_units():
    assert human_bytes(512) == "512 bytes"
    assert human_bytes(1536) == "1.5 KiB"
    assert human_bytes(716 * 2**20) == "716 MiB"
    assert human_bytes(12.5 * 2**30) == "12.5 GiB"
    assert human_bytes(3 * 2**40) == "3 TiB"


def test_summary_names_rss_and_vram_and_nothing_when_unmeasured():
    assert load_memory_summary({"peak_rss_bytes": 2**30, "peak_vram_bytes": 3 * 2**29}) == \
        "peak RSS 1 GiB · VRAM 1.5 GiB"
    assert load_memory_summary({"peak_rss_bytes": 2**30}) == "peak RSS 1 GiB"
    assert load_memory_summary({"seconds": 1.0}) == ""
    assert load_memory_summary({"peak_rss_bytes": "a lot"}) == ""  # not a number: not shown


def test_details_list_every_measured_figure():
    text = load_memory_details({"peak_rss_bytes": 2**30, "weights_bytes": 5 * 2**20, "quantized_saved_bytes": 2**20,
                                "seconds": 2.25, "quantization": "int8", "transformer_file": "flux-Q8_0.gguf"})
    assert text.splitlines() == ["Peak RSS during the load: 1 GiB", "Weights in memory: 5 MiB",
                                 "Saved by quantization: 1 MiB", "Load time: 2.2 s", "Quantization: int8",
                                 "Transformer file: flux-Q8_0.gguf"]
