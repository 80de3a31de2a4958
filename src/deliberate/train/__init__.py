"""Training: SFT, GRPO and STaR on TRL, their rewards and data, and search traces as SFT data."""
