"""One panel per kind of work (image, text, music, latent)."""
