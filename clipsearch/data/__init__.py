"""Dataset tools: collections of videos (UCF101 layout or any folder), UCF101, and SynthUCF
(its generator, its alternative rendering, and the vocabulary and readers of its files)."""
