"""The vision runtime: decoding, the quality gate, "what is it?", scores and decisions,
costs and fairness, on real photos."""
