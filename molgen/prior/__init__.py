"""Stage 2: a generative prior over the tokenizer's latent tokens (flow matching or diffusion)."""
