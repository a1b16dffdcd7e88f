"""Speech: corpora, synthetic accented speech, recognisers and last-mile conditions."""
