"""Documents → SOP sections → chunks → a versioned Chroma index."""
