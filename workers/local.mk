# workers/ fragment (filled by the generation, provider and verification work)
